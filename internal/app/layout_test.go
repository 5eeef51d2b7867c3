package app

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependenciesPointOneWay holds the layering: lower layers never import
// higher ones, and each heavy dependency stays in its own package.
func TestDependenciesPointOneWay(t *testing.T) {
	const mod = "github.com/parleyhq/parley/"
	forbidden := map[string][]string{
		// The message types every stage speaks are a standard-library leaf;
		// the router knows only them.
		"msg":                  {"github.com/", mod},
		"intents":              {"github.com/gin-gonic/", "github.com/redis/", "github.com/yuin/", mod + "engine", mod + "sessions", mod + "bots", mod + "sandbox"},
		"internal/rate":        {"github.com/", mod},
		"sandbox":              {"github.com/gin-gonic/", "github.com/redis/", "net/http", mod + "sessions", mod + "gateway", mod + "bots"},
		"internal/kvstore":     {"github.com/gin-gonic/", mod + "gateway", mod + "engine"},
		"internal/egress":      {"github.com/gin-gonic/", "github.com/redis/", mod + "gateway", mod + "engine"},
		"internal/llm":         {"github.com/gin-gonic/", mod + "gateway", mod + "engine", mod + "bots", mod + "sessions", mod + "channels"},
		"internal/invocations": {"github.com/gin-gonic/", "github.com/yuin/", mod + "sandbox", mod + "gateway", mod + "engine"},
		"sessions":             {"github.com/gin-gonic/", "github.com/yuin/gopher-lua", mod + "gateway", mod + "sandbox"},
		"internal/queue":       {"github.com/gin-gonic/", "github.com/yuin/", mod + "gateway", mod + "engine", mod + "sandbox", mod + "bots"},
		"engine":               {"github.com/gin-gonic/", mod + "gateway"},
		"bots":                 {"github.com/gin-gonic/", mod + "gateway", mod + "engine", mod + "internal/ratelimit"},
		"internal/store":       {"github.com/gin-gonic/", mod + "gateway", mod + "sandbox"},
		"intents/nlu":          {"github.com/gin-gonic/", "github.com/redis/", "github.com/yuin/", mod + "sessions", mod + "bots", mod + "engine", mod + "sandbox"},
		"internal/analytics":   {"github.com/gin-gonic/", "github.com/yuin/", mod + "gateway", mod + "engine", mod + "sandbox", mod + "bots"},
		"internal/tracing":     {"github.com/gin-gonic/", "github.com/yuin/", mod},
		"internal/metrics":     {"github.com/gin-gonic/", "github.com/yuin/", mod},
		"internal/scheduler":   {"github.com/gin-gonic/", mod + "gateway"},
		"internal/handoff":     {"github.com/gin-gonic/", mod + "gateway", mod + "adminapi", mod + "internal/queue", mod + "internal/analytics"},
		// The web channel's outboxes are storage only: the adapter reaches
		// them through its own small interface.
		"internal/webchat": {"github.com/gin-gonic/", "github.com/yuin/", mod + "gateway", mod + "engine", mod + "sandbox", mod + "bots", mod + "channels"},
		// The webhook gateway and the management API meet only in the router
		// the composition root hands over.
		"gateway":  {mod + "adminapi", mod + "console", mod + "internal/scheduler", mod + "internal/invocations", mod + "internal/queue"},
		"adminapi": {mod + "gateway"},
		// Errors carry their API answer through internal/apierr, a
		// standard-library leaf; internal/httpx adds only that.
		"internal/apierr": {"github.com/", mod},
		"internal/httpx":  {"github.com/gin-gonic/", "github.com/redis/", "github.com/yuin/", mod + "gateway", mod + "adminapi", mod + "bots", mod + "engine", mod + "channels"},
		// Shared helpers are leaves: the standard library, and go-redis (and
		// the tracing helpers, for its tracing hook) for redisx.
		"internal/jsonx": {"github.com/", mod},
		"internal/xmlx":  {"github.com/", mod},
		"internal/redisx": {"github.com/gin-gonic/", "github.com/yuin/", mod + "gateway", mod + "adminapi", mod + "engine", mod + "bots",
			mod + "sessions", mod + "sandbox", mod + "channels", mod + "intents", mod + "msg"},
		// Encryption at rest is the standard library's AES-GCM and nothing else.
		"internal/seal": {"github.com/", mod},
		// The CLI's building blocks: the API client is the standard library
		// only; the bot directory reads and deploys through the API, never
		// through the composition root or the HTTP layers.
		"internal/apiclient": {"github.com/", mod},
		"internal/botdir":    {"github.com/gin-gonic/", mod + "internal/app", mod + "gateway", mod + "adminapi"},
	}
	// Every channel adapter only speaks HTTP payloads and the msg types:
	// no storage, no Lua, no web framework, no knowledge of the engine.
	out, err := exec.Command("go", "list", "./../../channels/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list channels: %v\n%s", err, out)
	}
	for _, full := range strings.Fields(string(out)) {
		forbidden[strings.TrimPrefix(full, mod)] = []string{"github.com/gin-gonic/", "github.com/redis/", "github.com/yuin/",
			mod + "gateway", mod + "sessions", mod + "engine", mod + "bots", mod + "sandbox", mod + "internal/queue"}
	}
	for pkg, bad := range forbidden {
		out, err := exec.Command("go", "list", "-deps", mod+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if dep == mod+pkg {
				continue
			}
			for _, b := range bad {
				if strings.HasPrefix(dep, b) {
					t.Errorf("%s depends on %s", pkg, dep)
				}
			}
		}
	}
}
