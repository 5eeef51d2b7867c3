package bots

import (
	"context"
	"crypto/sha1"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley/intents/nlu"
	"github.com/parleyhq/parley/sandbox"
	"github.com/redis/go-redis/v9"
)

var (
	//go:embed lua/upload.lua
	uploadSource string
	//go:embed lua/rollback.lua
	rollbackSource string
	//go:embed lua/nlu_model.lua
	modelSource string
	//go:embed lua/canary.lua
	canarySource string

	uploadScript   = redis.NewScript(uploadSource)
	rollbackScript = redis.NewScript(rollbackSource)
	modelScript    = redis.NewScript(modelSource)
	canaryScript   = redis.NewScript(canarySource)

	//go:embed lua/put_bot.lua
	putBotSource string
	putBotScript = redis.NewScript(putBotSource)
)

// Config configures a [Catalog].
type Config struct {
	// KeyPrefix starts every key (default "parley:").
	KeyPrefix string
	// RefreshInterval is how often cached bots are checked against Redis for
	// changes whose announcement was missed (default 2s).
	RefreshInterval time.Duration
	// Logger receives reload and subscription errors; nil discards them.
	Logger *slog.Logger
	// OnRetire is called with handler versions this process no longer
	// serves (neither stable, canary nor previous), so their sandbox pools
	// can be released. Optional.
	OnRetire func(bot, intent string, version int)
	// OnLoad is called with every generation of a bot this process loads:
	// its first load and each load after a change. Bots with min_vms are
	// loaded at start and again right after each change, without waiting
	// for a turn, so OnLoad can warm their sandbox pools. Optional.
	OnLoad func(b *Bot)
	// NLUSyncExamples is the most examples PutNLU trains on before it
	// returns (default 2000); larger data trains in the background while the
	// previous model keeps serving.
	NLUSyncExamples int
	// NLUTrainTimeout bounds one training (default 2m).
	NLUTrainTimeout time.Duration
	// OnTrain is called after every training of a bot's classifier in this
	// process, with its duration and error. Optional.
	OnTrain func(bot string, examples int, took time.Duration, err error)
}

// Catalog stores bots in Redis and caches snapshots of them. Create it with [New].
type Catalog struct {
	rdb redis.UniversalClient
	cfg Config
	log *slog.Logger

	mu    sync.Mutex
	cache map[string]*Bot
	// last is the newest snapshot loaded per bot, kept after its cache
	// entry is dropped so a reload reuses its compiled programs and knows
	// which versions it retires.
	last map[string]*Bot
	// epochs counts the invalidations of each bot, so a load that read
	// Redis before a change is not cached after it.
	epochs   map[string]uint64
	compiled map[string]*sandbox.Program // uploaded here, by sha256, until the next load uses them
	models   map[string]storedModel      // by bot: the last model loaded, kept across reloads
	trainers map[string]*trainer         // by bot: its background training in this process

	beforeTraining func() // test hook: runs at the start of each background training
}

// trainer is one background training.
type trainer struct{ cancel context.CancelFunc }

// storedModel is a decoded model with the checksum of the NLU data it was
// trained on.
type storedModel struct {
	sum   string
	model *nlu.Model
}

// New returns a Catalog over rdb.
func New(rdb redis.UniversalClient, cfg Config) *Catalog {
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = "parley:"
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = 2 * time.Second
	}
	if cfg.NLUSyncExamples <= 0 {
		cfg.NLUSyncExamples = 2000
	}
	if cfg.NLUTrainTimeout <= 0 {
		cfg.NLUTrainTimeout = 2 * time.Minute
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Catalog{rdb: rdb, cfg: cfg, log: log, cache: make(map[string]*Bot), compiled: make(map[string]*sandbox.Program),
		last: make(map[string]*Bot), epochs: make(map[string]uint64),
		models: make(map[string]storedModel), trainers: make(map[string]*trainer)}
}

type botKeys struct {
	settings, channels, current, nlu, gen string
	// rollouts holds, per intent, its canary (version and percent) and the
	// previous stable version, as JSON.
	rollouts string
	// nluSum is the sha1 of the NLU data; model is the sha1 of the data it
	// was trained on followed by the serialized model; training is the
	// lease of the replica training a model for the data with that sha1.
	nluSum, model, training string
}

func (c *Catalog) keys(bot string) botKeys {
	base := c.cfg.KeyPrefix + "bot:{" + bot + "}:"
	return botKeys{settings: base + "settings", channels: base + "channels", current: base + "intents",
		nlu: base + "nlu", gen: base + "gen", rollouts: base + "rollouts",
		nluSum: base + "nlu:sum", model: base + "nlu:model", training: base + "nlu:training"}
}

func (c *Catalog) intentKey(bot, intent string) string {
	return c.cfg.KeyPrefix + "bot:{" + bot + "}:intent:" + intent
}

func (c *Catalog) indexKey() string   { return c.cfg.KeyPrefix + "bots" }
func (c *Catalog) changesKey() string { return c.cfg.KeyPrefix + "changes" }

// announce drops the local snapshot of bot and tells the other replicas to drop theirs.
func (c *Catalog) announce(ctx context.Context, bot string) {
	c.invalidate(bot)
	if err := c.rdb.Publish(ctx, c.changesKey(), bot).Err(); err != nil {
		c.log.Warn("announce bot change", "bot", bot, "err", err)
	}
}

// PutBot creates or updates a bot's settings. created is true for a new bot.
// A bot whose deletion is under way cannot be created again until the
// deletion finishes: PutBot returns ErrBotDeleting.
func (c *Catalog) PutBot(ctx context.Context, name string, s Settings) (created bool, err error) {
	if err := ValidateBotName(name); err != nil {
		return false, err
	}
	if err := s.Validate(); err != nil {
		return false, err
	}
	raw, err := json.Marshal(s)
	if err != nil {
		return false, fmt.Errorf("encode settings: %w", err)
	}
	k := c.keys(name)
	stored, err := putBotScript.Run(ctx, c.rdb, []string{k.settings, k.gen, c.deletionKey(name)}, raw).Int()
	if err != nil {
		return false, fmt.Errorf("save bot %s: %w", name, err)
	}
	if stored < 0 {
		return false, ErrBotDeleting
	}
	added := c.rdb.SAdd(ctx, c.indexKey(), name)
	if err := added.Err(); err != nil {
		return false, fmt.Errorf("save bot %s: %w", name, err)
	}
	c.announce(ctx, name)
	return added.Val() == 1, nil
}

// BotInfo is a bot as the management API shows it.
type BotInfo struct {
	Name     string         `json:"name"`
	Settings Settings       `json:"settings"`
	Channels []string       `json:"channels"`
	Intents  map[string]int `json:"intents"`
	// Canaries are the running canaries, by intent.
	Canaries map[string]Canary `json:"canaries,omitempty"`
	NLU      map[string]int    `json:"nlu_examples,omitempty"`
}

// Canary is an intent's version on trial and its share of new conversations.
type Canary struct {
	Version int `json:"version"`
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

// GetBot describes a bot.
func (c *Catalog) GetBot(ctx context.Context, name string) (*BotInfo, error) {
	k := c.keys(name)
	var settings *redis.StringCmd
	var channels *redis.StringSliceCmd
	var current, rollouts *redis.MapStringStringCmd
	var nlu *redis.StringCmd
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		settings = p.Get(ctx, k.settings)
		channels = p.HKeys(ctx, k.channels)
		current = p.HGetAll(ctx, k.current)
		rollouts = p.HGetAll(ctx, k.rollouts)
		nlu = p.Get(ctx, k.nlu)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read bot %s: %w", name, err)
	}
	raw, err := settings.Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrBotNotFound
	}
	info := &BotInfo{Name: name, Intents: make(map[string]int)}
	if err := json.Unmarshal(raw, &info.Settings); err != nil {
		return nil, fmt.Errorf("decode settings of %s: %w", name, err)
	}
	info.Channels = channels.Val()
	sort.Strings(info.Channels)
	for intent, v := range current.Val() {
		info.Intents[intent], _ = strconv.Atoi(v)
	}
	for intent, r := range decodeRollouts(rollouts.Val()) {
		if r.Canary != 0 {
			if info.Canaries == nil {
				info.Canaries = make(map[string]Canary)
			}
			info.Canaries[intent] = Canary{Version: r.Canary, Percent: r.Percent}
		}
	}
	if raw, err := nlu.Bytes(); err == nil {
		var n NLU
		if json.Unmarshal(raw, &n) == nil {
			info.NLU = make(map[string]int, len(n.Intents))
			for intent, ex := range n.Intents {
				info.NLU[intent] = len(ex)
			}
		}
	}
	return info, nil
}

// ListBots returns every bot name, sorted.
func (c *Catalog) ListBots(ctx context.Context) ([]string, error) {
	names, err := c.rdb.SMembers(ctx, c.indexKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("list bots: %w", err)
	}
	sort.Strings(names)
	return names, nil
}

func (c *Catalog) requireBot(ctx context.Context, name string) error {
	n, err := c.rdb.Exists(ctx, c.keys(name).settings).Result()
	if err != nil {
		return fmt.Errorf("read bot %s: %w", name, err)
	}
	if n == 0 {
		return ErrBotNotFound
	}
	return nil
}

// PutChannel stores a channel's settings for a bot; the caller validates them.
func (c *Catalog) PutChannel(ctx context.Context, bot, channel string, settings map[string]string) error {
	if err := c.requireBot(ctx, bot); err != nil {
		return err
	}
	raw, err := json.Marshal(settings)
	if err != nil {
		return fmt.Errorf("encode channel settings: %w", err)
	}
	k := c.keys(bot)
	if _, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, k.channels, channel, raw)
		p.Incr(ctx, k.gen)
		return nil
	}); err != nil {
		return fmt.Errorf("save channel %s of %s: %w", channel, bot, err)
	}
	c.announce(ctx, bot)
	return nil
}

// DeleteChannel disconnects a channel from a bot.
func (c *Catalog) DeleteChannel(ctx context.Context, bot, channel string) error {
	k := c.keys(bot)
	var del *redis.IntCmd
	if _, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		del = p.HDel(ctx, k.channels, channel)
		p.Incr(ctx, k.gen)
		return nil
	}); err != nil {
		return fmt.Errorf("delete channel %s of %s: %w", channel, bot, err)
	}
	c.announce(ctx, bot)
	if del.Val() == 0 {
		return ErrBotNotFound
	}
	return nil
}

// ChannelSettings returns a channel's stored settings for a bot.
func (c *Catalog) ChannelSettings(ctx context.Context, bot, channel string) (map[string]string, error) {
	raw, err := c.rdb.HGet(ctx, c.keys(bot).channels, channel).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrBotNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read channel %s of %s: %w", channel, bot, err)
	}
	var settings map[string]string
	if err := json.Unmarshal(raw, &settings); err != nil {
		return nil, fmt.Errorf("decode channel %s of %s: %w", channel, bot, err)
	}
	return settings, nil
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
	res, err := uploadScript.Run(ctx, c.rdb, []string{c.intentKey(bot, intent), k.current, k.gen, k.rollouts},
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
	c.mu.Lock()
	c.compiled[prog.SHA256()] = prog
	c.mu.Unlock()
	c.announce(ctx, bot)
	v.Created = created
	return v, outcome, nil
}

// HandlerInfo is one intent's handler as the management API shows it.
type HandlerInfo struct {
	Intent  string `json:"intent"`
	Current int    `json:"version"`
	SHA256  string `json:"sha256"`
	// Canary is the running canary, if any.
	Canary *Canary `json:"canary,omitempty"`
	// Previous is the stable version before the last promotion, still
	// serving the conversations that began on it; 0 when none.
	Previous int       `json:"previous,omitempty"`
	Source   string    `json:"source,omitempty"`
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
			metas[i] = p.HGet(ctx, c.intentKey(bot, name), "meta:"+current[name])
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
		fieldsCmd = p.HGetAll(ctx, c.intentKey(bot, intent))
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
	ok, err := rollbackScript.Run(ctx, c.rdb, []string{c.intentKey(bot, intent), k.current, k.gen, k.rollouts},
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
		p.Del(ctx, c.intentKey(bot, intent))
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

// PutNLU replaces a bot's NLU data and trains its classifier. Up to
// NLUSyncExamples examples, the model is trained before PutNLU returns and
// stored with the data in one step. Larger data is stored at once and
// trained in the background: the previous model keeps serving on every
// replica until the new one is stored, which bumps the bot's generation.
func (c *Catalog) PutNLU(ctx context.Context, bot string, n NLU) error {
	if err := validateNLU(n); err != nil {
		return err
	}
	if err := c.requireBot(ctx, bot); err != nil {
		return err
	}
	raw, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("encode nlu: %w", err)
	}
	sum := checksum(raw)
	k := c.keys(bot)
	if n.Examples() > c.cfg.NLUSyncExamples {
		if _, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, k.nlu, raw, 0)
			p.Set(ctx, k.nluSum, sum, 0)
			p.Set(ctx, k.training, sum, c.cfg.NLUTrainTimeout)
			return nil
		}); err != nil {
			return fmt.Errorf("save nlu of %s: %w", bot, err)
		}
		c.trainInBackground(bot, n, sum)
		return nil
	}
	m, model, err := c.train(ctx, bot, n)
	if err != nil {
		return err
	}
	if _, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, k.nlu, raw, 0)
		p.Set(ctx, k.nluSum, sum, 0)
		if m != nil {
			p.Set(ctx, k.model, sum+string(model), 0)
		} else {
			p.Del(ctx, k.model) // no examples: no classifier
		}
		p.Del(ctx, k.training)
		p.Incr(ctx, k.gen)
		return nil
	}); err != nil {
		return fmt.Errorf("save nlu of %s: %w", bot, err)
	}
	c.mu.Lock()
	if tr := c.trainers[bot]; tr != nil {
		tr.cancel()
	}
	if m != nil {
		c.models[bot] = storedModel{sum: sum, model: m}
	}
	c.mu.Unlock()
	c.announce(ctx, bot)
	return nil
}

// checksum identifies NLU data as Redis scripts can (redis.sha1hex).
func checksum(raw []byte) string {
	h := sha1.Sum(raw)
	return hex.EncodeToString(h[:])
}

// train trains and serializes a model, within NLUTrainTimeout.
func (c *Catalog) train(ctx context.Context, bot string, n NLU) (*nlu.Model, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.NLUTrainTimeout)
	defer cancel()
	start := time.Now()
	m, err := nlu.Train(ctx, n, nlu.Options{})
	var raw []byte
	if err == nil {
		raw, err = m.MarshalBinary()
	}
	if c.cfg.OnTrain != nil {
		c.cfg.OnTrain(bot, n.Examples(), time.Since(start), err)
	}
	if err != nil {
		if errors.Is(err, nlu.ErrNoData) {
			return nil, nil, nil
		}
		return nil, nil, fmt.Errorf("train nlu of %s: %w", bot, err)
	}
	c.log.Info("trained classifier", "bot", bot, "examples", n.Examples(), "took", time.Since(start),
		"model_bytes", len(raw))
	return m, raw, nil
}

// trainInBackground trains a model for data with checksum sum and stores it
// unless the data has changed by then. A newer upload to this replica
// cancels an older training of the same bot. The training outlives the
// request that started it, so it runs under its own context, bounded by
// NLUTrainTimeout.
func (c *Catalog) trainInBackground(bot string, n NLU, sum string) {
	ctx, cancel := context.WithCancel(context.Background())
	tr := &trainer{cancel: cancel}
	c.mu.Lock()
	if prev := c.trainers[bot]; prev != nil {
		prev.cancel()
	}
	c.trainers[bot] = tr
	c.mu.Unlock()
	go func() {
		defer func() {
			cancel()
			c.mu.Lock()
			if c.trainers[bot] == tr {
				delete(c.trainers, bot)
			}
			c.mu.Unlock()
		}()
		if c.beforeTraining != nil {
			c.beforeTraining()
		}
		m, raw, err := c.train(ctx, bot, n)
		if err != nil || m == nil {
			if err != nil && ctx.Err() == nil {
				c.log.Error("background training failed; the previous model keeps serving", "bot", bot, "err", err)
			}
			return
		}
		if err := c.storeModel(ctx, bot, sum, m, raw); err != nil && ctx.Err() == nil {
			c.log.Error("store trained model", "bot", bot, "err", err)
		}
	}()
}

// storeModel stores a model trained on the data with checksum sum, if that
// is still the bot's data, and announces the change.
func (c *Catalog) storeModel(ctx context.Context, bot, sum string, m *nlu.Model, raw []byte) error {
	k := c.keys(bot)
	ok, err := modelScript.Run(ctx, c.rdb, []string{k.nlu, k.nluSum, k.model, k.gen, k.training}, sum, raw).Int()
	if err != nil {
		return err
	}
	if ok == 0 {
		return nil // the data changed meanwhile; its own training stores its model
	}
	c.mu.Lock()
	c.models[bot] = storedModel{sum: sum, model: m}
	c.mu.Unlock()
	c.announce(ctx, bot)
	return nil
}

// GetNLU returns a bot's NLU examples.
func (c *Catalog) GetNLU(ctx context.Context, bot string) (NLU, error) {
	if err := c.requireBot(ctx, bot); err != nil {
		return NLU{}, err
	}
	raw, err := c.rdb.Get(ctx, c.keys(bot).nlu).Bytes()
	if errors.Is(err, redis.Nil) {
		return NLU{Intents: map[string][]string{}}, nil
	}
	if err != nil {
		return NLU{}, fmt.Errorf("read nlu of %s: %w", bot, err)
	}
	var n NLU
	if err := json.Unmarshal(raw, &n); err != nil {
		return NLU{}, fmt.Errorf("decode nlu of %s: %w", bot, err)
	}
	return n, nil
}

// Bot returns the cached snapshot of a bot, loading it from Redis when it is
// not cached or has changed.
func (c *Catalog) Bot(ctx context.Context, name string) (*Bot, error) {
	c.mu.Lock()
	b := c.cache[name]
	epoch := c.epochs[name]
	c.mu.Unlock()
	if b != nil {
		return b, nil
	}
	b, err := c.load(ctx, name)
	if errors.Is(err, ErrBotNotFound) {
		// Deleted (perhaps through another replica): its pools go too, so a
		// bot created later under this name starts from nothing.
		c.mu.Lock()
		last := c.last[name]
		delete(c.last, name)
		c.mu.Unlock()
		if c.cfg.OnRetire != nil && last != nil {
			for _, r := range retiredBy(last, &Bot{}) {
				c.cfg.OnRetire(name, r.intent, r.version)
			}
		}
	}
	if err != nil {
		return nil, err
	}
	var retired []retiredVersion
	loaded := false
	c.mu.Lock()
	// A load that raced with an invalidation may have read the state before
	// the change: it answers this call but is not cached, or the replica
	// would serve it until the next generation check.
	if c.epochs[name] == epoch {
		if prev := c.cache[name]; prev == nil || prev.generation <= b.generation {
			c.cache[name] = b
		}
	}
	if last := c.last[name]; last == nil || last.generation < b.generation {
		retired = retiredBy(last, b)
		c.last[name] = b
		loaded = true
	}
	c.mu.Unlock()
	if c.cfg.OnRetire != nil {
		for _, r := range retired {
			c.cfg.OnRetire(name, r.intent, r.version)
		}
	}
	if loaded && c.cfg.OnLoad != nil {
		c.cfg.OnLoad(b)
	}
	return b, nil
}

// warm reports whether bot keeps VMs warm (min_vms): as last loaded here,
// or, for a bot this process has not loaded, as its settings in Redis say.
func (c *Catalog) warm(ctx context.Context, bot string) bool {
	c.mu.Lock()
	last := c.last[bot]
	c.mu.Unlock()
	if last != nil {
		return last.Settings.MinVMs > 0
	}
	var s Settings
	raw, err := c.rdb.Get(ctx, c.keys(bot).settings).Bytes()
	return err == nil && json.Unmarshal(raw, &s) == nil && s.MinVMs > 0
}

// reloadWarm loads a changed bot again at once when it keeps VMs warm, so
// the pools of its new versions fill before a turn needs them.
func (c *Catalog) reloadWarm(ctx context.Context, bot string) {
	if c.cfg.OnLoad == nil {
		return
	}
	go func() {
		if !c.warm(ctx, bot) {
			return
		}
		if _, err := c.Bot(ctx, bot); err != nil && ctx.Err() == nil && !errors.Is(err, ErrBotNotFound) {
			c.log.Warn("reload a bot with warm VMs", "bot", bot, "err", err)
		}
	}()
}

// warmUp loads the bots that keep VMs warm (min_vms), for OnLoad.
func (c *Catalog) warmUp(ctx context.Context) error {
	names, err := c.ListBots(ctx)
	if err != nil || len(names) == 0 {
		return err
	}
	settings := make([]*redis.StringCmd, len(names))
	_, err = c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, name := range names {
			settings[i] = p.Get(ctx, c.keys(name).settings)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("read bot settings: %w", err)
	}
	for i, name := range names {
		var s Settings
		raw, err := settings[i].Bytes()
		if err != nil || json.Unmarshal(raw, &s) != nil || s.MinVMs == 0 {
			continue
		}
		if _, err := c.Bot(ctx, name); err != nil && !errors.Is(err, ErrBotNotFound) {
			c.log.Warn("load a bot with warm VMs", "bot", name, "err", err)
		}
	}
	return nil
}

type retiredVersion struct {
	intent  string
	version int
}

// retiredBy lists the handler versions served in prev but not in next.
func retiredBy(prev, next *Bot) []retiredVersion {
	if prev == nil {
		return nil
	}
	var out []retiredVersion
	for intent, h := range prev.Handlers {
		now := next.Handlers[intent]
		for _, r := range h.releases() {
			if !now.serves(r.Version) {
				out = append(out, retiredVersion{intent: intent, version: r.Version})
			}
		}
	}
	return out
}

func (c *Catalog) load(ctx context.Context, name string) (*Bot, error) {
	if !botName.MatchString(name) {
		return nil, ErrBotNotFound
	}
	k := c.keys(name)
	var settings, gen, nluSum, modelSum *redis.StringCmd
	var channels, current, rollouts *redis.MapStringStringCmd
	var hasNLU *redis.IntCmd
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		gen = p.Get(ctx, k.gen)
		settings = p.Get(ctx, k.settings)
		channels = p.HGetAll(ctx, k.channels)
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
		var s map[string]string
		if err := json.Unmarshal([]byte(raw), &s); err != nil {
			return nil, fmt.Errorf("decode channel %s of %s: %w", ch, name, err)
		}
		b.Channels[ch] = s
	}
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
		role   int // 0 stable, 1 canary, 2 previous
		ver    string
		src    *redis.SliceCmd
	}
	ros := decodeRollouts(rollouts.Val())
	var want []*wanted
	for intent, v := range current.Val() {
		want = append(want, &wanted{intent: intent, role: 0, ver: v})
		r := ros[intent]
		if r.Canary != 0 {
			want = append(want, &wanted{intent: intent, role: 1, ver: strconv.Itoa(r.Canary)})
		}
		if r.Previous != 0 && strconv.Itoa(r.Previous) != v {
			want = append(want, &wanted{intent: intent, role: 2, ver: strconv.Itoa(r.Previous)})
		}
	}
	if _, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, w := range want {
			w.src = p.HMGet(ctx, c.intentKey(name, w.intent), "src:"+w.ver, "meta:"+w.ver)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("load handlers of %s: %w", name, err)
	}
	c.mu.Lock()
	prev := c.last[name]
	c.mu.Unlock()
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
				c.log.Error("stored handler no longer compiles", "bot", name, "intent", w.intent, "version", meta.Version, "err", err)
				continue
			}
		}
		rel := Release{Version: meta.Version, Program: prog}
		switch w.role {
		case 0:
			b.Handlers[w.intent] = Handler{Version: rel.Version, Program: rel.Program}
		case 1:
			canaries[w.intent] = rel
		case 2:
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

// sumLen is the length of a checksum: sha1 in hex.
const sumLen = 40

// loadModel returns the bot's stored model, decoding it only when it is not
// the one this replica already has. A model trained on older data (a newer
// upload still training) keeps serving. When there is no model, or only one
// in an older format, the data is trained again here: small data before
// loadModel returns, large data in the background (until then the bot has no
// classifier).
func (c *Catalog) loadModel(ctx context.Context, bot, dataSum, modelSum string) (*nlu.Model, error) {
	c.mu.Lock()
	have, ok := c.models[bot]
	c.mu.Unlock()
	if ok && have.sum == modelSum && modelSum != "" {
		c.resumeTraining(ctx, bot, dataSum, modelSum)
		return have.model, nil
	}
	k := c.keys(bot)
	if len(modelSum) == sumLen {
		raw, err := c.rdb.Get(ctx, k.model).Bytes()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("load model of %s: %w", bot, err)
		}
		if len(raw) > sumLen {
			m, err := nlu.UnmarshalModel(raw[sumLen:])
			if err == nil {
				sum := string(raw[:sumLen])
				c.mu.Lock()
				c.models[bot] = storedModel{sum: sum, model: m}
				c.mu.Unlock()
				c.resumeTraining(ctx, bot, dataSum, sum)
				return m, nil
			}
			c.log.Warn("stored model is unreadable or from an older release; retraining", "bot", bot, "err", err)
		}
	}
	raw, err := c.rdb.Get(ctx, k.nlu).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load nlu of %s: %w", bot, err)
	}
	var n NLU
	if err := json.Unmarshal(raw, &n); err != nil {
		return nil, fmt.Errorf("decode nlu of %s: %w", bot, err)
	}
	sum := checksum(raw)
	if n.Examples() > c.cfg.NLUSyncExamples {
		c.resumeTraining(ctx, bot, sum, "")
		return nil, nil
	}
	m, model, err := c.train(ctx, bot, n)
	if err != nil || m == nil {
		return nil, err
	}
	if err := c.storeModel(ctx, bot, sum, m, model); err != nil {
		c.log.Warn("store retrained model", "bot", bot, "err", err)
	}
	return m, nil
}

// resumeTraining starts a background training when the stored model is
// older than the data and no replica holds the training lease (the one that
// accepted the upload stopped before it finished).
func (c *Catalog) resumeTraining(ctx context.Context, bot, dataSum, modelSum string) {
	if dataSum == "" || dataSum == modelSum {
		return
	}
	c.mu.Lock()
	busy := c.trainers[bot] != nil
	c.mu.Unlock()
	if busy {
		return
	}
	k := c.keys(bot)
	ok, err := c.rdb.SetNX(ctx, k.training, dataSum, c.cfg.NLUTrainTimeout).Result()
	if err != nil || !ok {
		return
	}
	raw, err := c.rdb.Get(ctx, k.nlu).Bytes()
	if err != nil {
		return
	}
	var n NLU
	if err := json.Unmarshal(raw, &n); err != nil || checksum(raw) != dataSum {
		return
	}
	c.log.Info("resuming an unfinished training", "bot", bot)
	c.trainInBackground(bot, n, dataSum)
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
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.compiled[v.SHA256]; ok {
		delete(c.compiled, v.SHA256)
		return p
	}
	return nil
}

// Run keeps the cache fresh until ctx ends: it drops bots announced as
// changed by any replica, and every RefreshInterval compares the cached
// generations with Redis to catch announcements lost while disconnected.
func (c *Catalog) Run(ctx context.Context) error {
	sub := c.rdb.Subscribe(ctx, c.changesKey())
	defer sub.Close()
	msgs := sub.Channel()
	tick := time.NewTicker(c.cfg.RefreshInterval)
	defer tick.Stop()
	if c.cfg.OnLoad != nil {
		// After subscribing, so no change made during the warm-up is missed.
		go func() {
			if err := c.warmUp(ctx); err != nil && ctx.Err() == nil {
				c.log.Warn("load the bots with warm VMs", "err", err)
			}
		}()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-msgs:
			if !ok {
				return nil
			}
			c.invalidate(m.Payload)
			c.reloadWarm(ctx, m.Payload)
		case <-tick.C:
			if err := c.refresh(ctx); err != nil && ctx.Err() == nil {
				c.log.Warn("check bots for changes", "err", err)
			}
		}
	}
}

func (c *Catalog) invalidate(bot string) {
	c.mu.Lock()
	delete(c.cache, bot)
	c.epochs[bot]++
	c.mu.Unlock()
}

func (c *Catalog) refresh(ctx context.Context) error {
	c.mu.Lock()
	cached := make(map[string]int64, len(c.cache))
	for name, b := range c.cache {
		cached[name] = b.generation
	}
	c.mu.Unlock()
	if len(cached) == 0 {
		return nil
	}
	gens := make(map[string]*redis.StringCmd, len(cached))
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for name := range cached {
			gens[name] = p.Get(ctx, c.keys(name).gen)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	for name, cmd := range gens {
		if g, _ := cmd.Int64(); g != cached[name] {
			c.invalidate(name)
			c.reloadWarm(ctx, name)
		}
	}
	return nil
}
