package bots

import (
	"embed"

	"github.com/parleyhq/parley/internal/redisx"
)

// The catalog's Redis scripts; each file documents its KEYS and ARGV.
var (
	//go:embed lua/*.lua
	luaFS embed.FS

	putBotScript        = redisx.NewScript(luaFS, "lua/put_bot.lua")
	deleteBotScript     = redisx.NewScript(luaFS, "lua/delete_bot.lua")
	claimDeletionScript = redisx.NewScript(luaFS, "lua/claim_deletion.lua")
	modelScript         = redisx.NewScript(luaFS, "lua/nlu_model.lua")
	uploadScript        = redisx.NewScript(luaFS, "lua/upload.lua")
	rollbackScript      = redisx.NewScript(luaFS, "lua/rollback.lua")
	canaryScript        = redisx.NewScript(luaFS, "lua/canary.lua")
	putSecretScript     = redisx.NewScript(luaFS, "lua/put_secret.lua")
	resealScript        = redisx.NewScript(luaFS, "lua/reseal.lua")
)
