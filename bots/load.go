package bots

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/parleyhq/parley/sandbox"
	"github.com/redis/go-redis/v9"
)

// Loading a snapshot of a bot from Redis, with every handler version it
// serves compiled (or reused from the previous snapshot or an upload here).

// load reads a bot from Redis and builds its snapshot.
func (c *Catalog) load(ctx context.Context, name string) (*Bot, error) {
	if !botName.MatchString(name) {
		return nil, ErrBotNotFound
	}
	k := c.keys(name)
	var settings, gen, nluSum, modelSum *redis.StringCmd
	var channels, current, rollouts, secrets *redis.MapStringStringCmd
	var hasNLU *redis.IntCmd
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		gen = p.Get(ctx, k.gen)
		settings = p.Get(ctx, k.settings)
		channels = p.HGetAll(ctx, k.channels)
		secrets = p.HGetAll(ctx, k.secrets)
		current = p.HGetAll(ctx, k.current)
		rollouts = p.HGetAll(ctx, k.rollouts)
		hasNLU = p.Exists(ctx, k.nlu)
		nluSum = p.Get(ctx, k.nluSum)
		modelSum = p.GetRange(ctx, k.model, 0, sumLen-1)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("load bot %s: %w", name, err)
	}
	rawSettings, err := settings.Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrBotNotFound
	}
	b := &Bot{Name: name, Channels: make(map[string]map[string]string), Handlers: make(map[string]Handler)}
	b.generation, _ = gen.Int64()
	if err := json.Unmarshal(rawSettings, &b.Settings); err != nil {
		return nil, fmt.Errorf("decode settings of %s: %w", name, err)
	}
	for ch, raw := range channels.Val() {
		s, err := c.openChannel(name, ch, raw)
		if err != nil {
			// Serve the rest of the bot; the channel answers as not configured.
			c.log.Error("channel settings cannot be opened; connect the channel again, or configure the key they were sealed with",
				"bot", name, "channel", ch, "err", err)
			continue
		}
		b.Channels[ch] = s
	}
	b.secrets = c.openSecrets(name, secrets.Val())
	if hasNLU.Val() > 0 {
		if b.Model, err = c.loadModel(ctx, name, nluSum.Val(), modelSum.Val()); err != nil {
			return nil, err
		}
		if b.Model != nil {
			b.Classifier = b.Model
		}
	}

	// Every version a conversation may be pinned to is compiled now, never
	// on a turn: the stable one, the canary and the previous stable one.
	type wanted struct {
		intent string
		role   Role
		ver    string
		src    *redis.SliceCmd
	}
	ros := decodeRollouts(rollouts.Val())
	var want []*wanted
	for intent, v := range current.Val() {
		want = append(want, &wanted{intent: intent, role: RoleStable, ver: v})
		r := ros[intent]
		if r.Canary != 0 {
			want = append(want, &wanted{intent: intent, role: RoleCanary, ver: strconv.Itoa(r.Canary)})
		}
		if r.Previous != 0 && strconv.Itoa(r.Previous) != v {
			want = append(want, &wanted{intent: intent, role: RolePrevious, ver: strconv.Itoa(r.Previous)})
		}
	}
	if _, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, w := range want {
			w.src = p.HMGet(ctx, c.ks.intent(name, w.intent), "src:"+w.ver, "meta:"+w.ver)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("load handlers of %s: %w", name, err)
	}
	prev := c.snapshots.newest(name)
	canaries, previous := make(map[string]Release), make(map[string]Release)
	for _, w := range want {
		vals := w.src.Val()
		src, _ := vals[0].(string)
		metaRaw, _ := vals[1].(string)
		var meta Version
		if err := json.Unmarshal([]byte(metaRaw), &meta); err != nil {
			return nil, fmt.Errorf("decode version %s of %s/%s: %w", w.ver, name, w.intent, err)
		}
		prog := c.program(prev, w.intent, meta)
		if prog == nil {
			if prog, err = sandbox.Compile(w.intent+".lua", src); err != nil {
				// Stored sources compiled at upload; failing now means a
				// runtime upgrade changed the rules. Serve the rest of the bot.
				c.log.Error("stored handler no longer compiles", "bot", name, "intent", w.intent, "version", meta.Version,
					"role", w.role, "err", err)
				continue
			}
		}
		rel := Release{Version: meta.Version, Program: prog}
		switch w.role {
		case RoleStable:
			b.Handlers[w.intent] = Handler{Version: rel.Version, Program: rel.Program}
		case RoleCanary:
			canaries[w.intent] = rel
		case RolePrevious:
			previous[w.intent] = rel
		}
	}
	for intent, h := range b.Handlers {
		if rel, ok := canaries[intent]; ok {
			h.Canary, h.CanaryPercent = rel, ros[intent].Percent
		}
		h.Previous = previous[intent]
		b.Handlers[intent] = h
	}
	return b, nil
}

// program finds an already compiled program for a stored version: one the
// previous snapshot served, or one uploaded through this replica.
func (c *Catalog) program(prev *Bot, intent string, v Version) *sandbox.Program {
	if prev != nil {
		for _, r := range prev.Handlers[intent].releases() {
			if r.Program.SHA256() == v.SHA256 {
				return r.Program
			}
		}
	}
	return c.uploads.take(v.SHA256)
}

// programs holds the programs compiled by uploads through this replica, by
// sha256, until the next load of their bot takes them, so a version is not
// compiled twice.
type programs struct {
	mu    sync.Mutex
	bySum map[string]*sandbox.Program
}

func newPrograms() *programs { return &programs{bySum: make(map[string]*sandbox.Program)} }

// put keeps p for the next load.
func (ps *programs) put(p *sandbox.Program) {
	ps.mu.Lock()
	ps.bySum[p.SHA256()] = p
	ps.mu.Unlock()
}

// take returns and forgets the program with sha256 sum, or nil.
func (ps *programs) take(sum string) *sandbox.Program {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p, ok := ps.bySum[sum]
	if ok {
		delete(ps.bySum, sum)
	}
	return p
}
