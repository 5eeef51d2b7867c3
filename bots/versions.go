package bots

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/sandbox"
	"github.com/redis/go-redis/v9"
)

// Handler versions: uploads (stable or canary), the management view of an
// intent's versions, rollback, and the canary's percent, promotion and abort.

// Canary is an intent's version on trial and its share of new conversations.
type Canary struct {
	// Version is the canary's version.
	Version int `json:"version"`
	// Percent is the share (0-100) of new conversations it gets.
	Percent int `json:"percent"`
}

// rollout is an intent's entry in the rollouts hash: its canary, and the
// stable version before the last promotion.
type rollout struct {
	Canary   int `json:"canary,omitempty"`
	Percent  int `json:"percent,omitempty"`
	Previous int `json:"previous,omitempty"`
}

// decodeRollouts decodes a rollouts hash; unreadable entries are ignored
// (the intent serves its stable version).
func decodeRollouts(raw map[string]string) map[string]rollout {
	out := make(map[string]rollout, len(raw))
	for intent, v := range raw {
		var r rollout
		if json.Unmarshal([]byte(v), &r) == nil {
			out[intent] = r
		}
	}
	return out
}

// MaxSourceBytes bounds an uploaded handler's source.
const MaxSourceBytes = 256 << 10

// PutHandler compiles source and stores it as the intent's new stable
// version, which every conversation gets from its next turn on (a plain
// upload keeps no previous version). Uploading the stable source again
// returns the stable version with unchanged set; so does uploading the
// running canary's source, which leaves the canary as it is. Any other source
// is refused with a *CanaryConflictError while a canary runs. A script that
// does not compile is rejected with a *sandbox.ScriptError.
func (c *Catalog) PutHandler(ctx context.Context, bot, intent, source string) (v Version, unchanged bool, err error) {
	v, st, err := c.upload(ctx, bot, intent, source, -1)
	return v, st != uploadStored, err
}

// CanaryUpload is the outcome of [Catalog.PutCanary].
type CanaryUpload struct {
	Version
	// Unchanged is set when no new version was stored.
	Unchanged bool
	// Stable is set when the source is the intent's stable version: no
	// canary was started or changed.
	Stable bool
}

// Outcomes of the upload script.
const (
	uploadStored = iota
	uploadUnchanged
	uploadPercent
	uploadConflict
	uploadNoStable
	uploadCanaryUnchanged
)

// PutCanary compiles source and stores it as the intent's canary for
// percent (0-100) of the conversations that start using the intent, chosen
// by [Bucket]. The stable version keeps serving the others, and every
// conversation stays on the version it got until it ends. A canary replaces
// any earlier canary of the intent. Uploading the canary's source again only
// sets its percent; uploading the stable source changes nothing (unchanged
// is set in both cases). The intent must have a stable version.
func (c *Catalog) PutCanary(ctx context.Context, bot, intent, source string, percent int) (CanaryUpload, error) {
	if err := validPercent(percent); err != nil {
		return CanaryUpload{}, err
	}
	v, st, err := c.upload(ctx, bot, intent, source, percent)
	if err != nil {
		return CanaryUpload{}, err
	}
	return CanaryUpload{Version: v, Unchanged: st != uploadStored, Stable: st == uploadUnchanged}, nil
}

func validPercent(percent int) error {
	if percent < 0 || percent > 100 {
		return invalid("canary percent must be between 0 and 100")
	}
	return nil
}

// upload stores a handler version: stable when percent is negative, else a
// canary. It returns the upload script's outcome.
func (c *Catalog) upload(ctx context.Context, bot, intent, source string, percent int) (v Version, outcome int, err error) {
	if err := ValidateIntentName(intent); err != nil {
		return Version{}, 0, err
	}
	if err := c.requireBot(ctx, bot); err != nil {
		return Version{}, 0, err
	}
	prog, err := sandbox.Compile(intent+".lua", source)
	if err != nil {
		return Version{}, 0, err
	}
	k := c.keys(bot)
	created := time.Now().UTC().Format(time.RFC3339)
	res, err := uploadScript.Run(ctx, c.rdb, []string{c.ks.intent(bot, intent), k.current, k.gen, k.rollouts},
		intent, source, prog.SHA256(), created, percent).Int64Slice()
	if err != nil {
		return Version{}, 0, fmt.Errorf("save handler %s/%s: %w", bot, intent, err)
	}
	v = Version{Version: int(res[0]), SHA256: prog.SHA256()}
	outcome = int(res[1])
	switch outcome {
	case uploadUnchanged, uploadCanaryUnchanged:
		return v, outcome, nil
	case uploadPercent:
		c.announce(ctx, bot)
		return v, outcome, nil
	case uploadConflict:
		conflict := &CanaryConflictError{Intent: intent, Version: int(res[0])}
		if len(res) > 2 {
			conflict.Percent = int(res[2])
		}
		return Version{}, outcome, conflict
	case uploadNoStable:
		return Version{}, outcome, invalid("intent %s has no stable version yet: upload it without a canary first", intent)
	}
	c.uploads.put(prog)
	c.announce(ctx, bot)
	v.Created = created
	return v, outcome, nil
}

// HandlerInfo is one intent's handler as the management API shows it.
type HandlerInfo struct {
	// Intent is the intent's name.
	Intent string `json:"intent"`
	// Current is the stable version.
	Current int `json:"version"`
	// SHA256 is the stable version's source checksum.
	SHA256 string `json:"sha256"`
	// Canary is the running canary, if any.
	Canary *Canary `json:"canary,omitempty"`
	// Previous is the stable version before the last promotion, still
	// serving the conversations that began on it; 0 when none.
	Previous int `json:"previous,omitempty"`
	// Source is the stable version's source (GetHandler only).
	Source string `json:"source,omitempty"`
	// Versions are every stored version, oldest first (GetHandler only).
	Versions []Version `json:"versions,omitempty"`
}

// setRollout fills the canary and previous version from a rollout entry.
func (h *HandlerInfo) setRollout(r rollout) {
	if r.Canary != 0 {
		h.Canary = &Canary{Version: r.Canary, Percent: r.Percent}
	}
	h.Previous = r.Previous
}

// ListHandlers returns the current version of every intent of a bot.
func (c *Catalog) ListHandlers(ctx context.Context, bot string) ([]HandlerInfo, error) {
	if err := c.requireBot(ctx, bot); err != nil {
		return nil, err
	}
	var currentCmd, rolloutsCmd *redis.MapStringStringCmd
	if _, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		currentCmd = p.HGetAll(ctx, c.keys(bot).current)
		rolloutsCmd = p.HGetAll(ctx, c.keys(bot).rollouts)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list handlers of %s: %w", bot, err)
	}
	current, rollouts := currentCmd.Val(), decodeRollouts(rolloutsCmd.Val())
	names := make([]string, 0, len(current))
	for name := range current {
		names = append(names, name)
	}
	sort.Strings(names)
	metas := make([]*redis.StringCmd, len(names))
	if _, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, name := range names {
			metas[i] = p.HGet(ctx, c.ks.intent(bot, name), "meta:"+current[name])
		}
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("list handlers of %s: %w", bot, err)
	}
	out := make([]HandlerInfo, 0, len(names))
	for i, name := range names {
		var v Version
		_ = json.Unmarshal([]byte(metas[i].Val()), &v)
		info := HandlerInfo{Intent: name, Current: v.Version, SHA256: v.SHA256}
		info.setRollout(rollouts[name])
		out = append(out, info)
	}
	return out, nil
}

// GetHandler returns an intent's current source and all its versions.
func (c *Catalog) GetHandler(ctx context.Context, bot, intent string) (*HandlerInfo, error) {
	if err := c.requireBot(ctx, bot); err != nil {
		return nil, err
	}
	cur, err := c.rdb.HGet(ctx, c.keys(bot).current, intent).Result()
	if errors.Is(err, redis.Nil) {
		return nil, ErrIntentNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read handler %s/%s: %w", bot, intent, err)
	}
	var fieldsCmd *redis.MapStringStringCmd
	var rolloutCmd *redis.StringCmd
	if _, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		fieldsCmd = p.HGetAll(ctx, c.ks.intent(bot, intent))
		rolloutCmd = p.HGet(ctx, c.keys(bot).rollouts, intent)
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read handler %s/%s: %w", bot, intent, err)
	}
	fields := fieldsCmd.Val()
	info := &HandlerInfo{Intent: intent, Source: fields["src:"+cur]}
	if raw := rolloutCmd.Val(); raw != "" {
		info.setRollout(decodeRollouts(map[string]string{intent: raw})[intent])
	}
	for field, raw := range fields {
		if !strings.HasPrefix(field, "meta:") {
			continue
		}
		var v Version
		if err := json.Unmarshal([]byte(raw), &v); err != nil {
			return nil, fmt.Errorf("decode version of %s/%s: %w", bot, intent, err)
		}
		info.Versions = append(info.Versions, v)
		if strconv.Itoa(v.Version) == cur {
			info.Current, info.SHA256 = v.Version, v.SHA256
		}
	}
	sort.Slice(info.Versions, func(i, j int) bool { return info.Versions[i].Version < info.Versions[j].Version })
	return info, nil
}

// Rollback makes an earlier (or later) stored version the intent's stable
// version and the only one served: its canary and previous version are
// dropped, and every conversation gets this version from its next turn on.
func (c *Catalog) Rollback(ctx context.Context, bot, intent string, version int) error {
	if err := c.requireBot(ctx, bot); err != nil {
		return err
	}
	k := c.keys(bot)
	ok, err := rollbackScript.Run(ctx, c.rdb, []string{c.ks.intent(bot, intent), k.current, k.gen, k.rollouts},
		intent, version).Int()
	if err != nil {
		return fmt.Errorf("roll back %s/%s: %w", bot, intent, err)
	}
	if ok == 0 {
		return ErrVersionNotFound
	}
	c.announce(ctx, bot)
	return nil
}

// DeleteHandler removes an intent's handler and all its versions.
func (c *Catalog) DeleteHandler(ctx context.Context, bot, intent string) error {
	k := c.keys(bot)
	var del *redis.IntCmd
	if _, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		del = p.HDel(ctx, k.current, intent)
		p.HDel(ctx, k.rollouts, intent)
		p.Del(ctx, c.ks.intent(bot, intent))
		p.Incr(ctx, k.gen)
		return nil
	}); err != nil {
		return fmt.Errorf("delete handler %s/%s: %w", bot, intent, err)
	}
	c.announce(ctx, bot)
	if del.Val() == 0 {
		return ErrIntentNotFound
	}
	return nil
}

// SetCanaryPercent changes the share (0-100) of new conversations that an
// intent's canary gets. Conversations already pinned keep their version.
func (c *Catalog) SetCanaryPercent(ctx context.Context, bot, intent string, percent int) error {
	if err := validPercent(percent); err != nil {
		return err
	}
	_, err := c.changeCanary(ctx, bot, intent, "percent", percent)
	return err
}

// PromoteCanary makes an intent's canary its stable version and returns it.
// The old stable version becomes the previous one: conversations that
// began on it finish on it, new ones get the promoted version.
func (c *Catalog) PromoteCanary(ctx context.Context, bot, intent string) (version int, err error) {
	return c.changeCanary(ctx, bot, intent, "promote", 0)
}

// AbortCanary drops an intent's canary and returns its version; the
// conversations pinned to it move to the stable version at their next turn.
func (c *Catalog) AbortCanary(ctx context.Context, bot, intent string) (version int, err error) {
	return c.changeCanary(ctx, bot, intent, "abort", 0)
}

func (c *Catalog) changeCanary(ctx context.Context, bot, intent, action string, percent int) (int, error) {
	if err := c.requireBot(ctx, bot); err != nil {
		return 0, err
	}
	k := c.keys(bot)
	v, err := canaryScript.Run(ctx, c.rdb, []string{k.current, k.gen, k.rollouts}, intent, action, percent).Int()
	if err != nil {
		return 0, fmt.Errorf("%s canary of %s/%s: %w", action, bot, intent, err)
	}
	if v == 0 {
		return 0, ErrNoCanary
	}
	c.announce(ctx, bot)
	return v, nil
}
