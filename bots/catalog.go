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

	uploadScript   = redis.NewScript(uploadSource)
	rollbackScript = redis.NewScript(rollbackSource)
	modelScript    = redis.NewScript(modelSource)
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
	// OnRetire is called with handler versions no longer current in this
	// process, so their sandbox pools can be released. Optional.
	OnRetire func(bot, intent string, version int)
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

	mu       sync.Mutex
	cache    map[string]*Bot
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
		models: make(map[string]storedModel), trainers: make(map[string]*trainer)}
}

type botKeys struct {
	settings, channels, current, nlu, gen string
	// nluSum is the sha1 of the NLU data; model is the sha1 of the data it
	// was trained on followed by the serialized model; training is the
	// lease of the replica training a model for the data with that sha1.
	nluSum, model, training string
}

func (c *Catalog) keys(bot string) botKeys {
	base := c.cfg.KeyPrefix + "bot:{" + bot + "}:"
	return botKeys{settings: base + "settings", channels: base + "channels", current: base + "intents",
		nlu: base + "nlu", gen: base + "gen",
		nluSum: base + "nlu:sum", model: base + "nlu:model", training: base + "nlu:training"}
}

func (c *Catalog) intentKey(bot, intent string) string {
	return c.cfg.KeyPrefix + "bot:{" + bot + "}:intent:" + intent
}

func (c *Catalog) indexKey() string   { return c.cfg.KeyPrefix + "bots" }
func (c *Catalog) changesKey() string { return c.cfg.KeyPrefix + "changes" }

// announce drops the local snapshot of bot and tells the other replicas to drop theirs.
func (c *Catalog) announce(ctx context.Context, bot string) {
	c.mu.Lock()
	delete(c.cache, bot)
	c.mu.Unlock()
	if err := c.rdb.Publish(ctx, c.changesKey(), bot).Err(); err != nil {
		c.log.Warn("announce bot change", "bot", bot, "err", err)
	}
}

// PutBot creates or updates a bot's settings. created is true for a new bot.
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
	var added *redis.IntCmd
	_, err = c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, k.settings, raw, 0)
		p.Incr(ctx, k.gen)
		return nil
	})
	if err == nil {
		added = c.rdb.SAdd(ctx, c.indexKey(), name)
		err = added.Err()
	}
	if err != nil {
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
	NLU      map[string]int `json:"nlu_examples,omitempty"`
}

// GetBot describes a bot.
func (c *Catalog) GetBot(ctx context.Context, name string) (*BotInfo, error) {
	k := c.keys(name)
	var settings *redis.StringCmd
	var channels *redis.StringSliceCmd
	var current *redis.MapStringStringCmd
	var nlu *redis.StringCmd
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		settings = p.Get(ctx, k.settings)
		channels = p.HKeys(ctx, k.channels)
		current = p.HGetAll(ctx, k.current)
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

// DeleteBot removes a bot with its channels, handlers and NLU data.
// Conversations already stored expire with their TTL.
func (c *Catalog) DeleteBot(ctx context.Context, name string) error {
	k := c.keys(name)
	intentsNow, err := c.rdb.HKeys(ctx, k.current).Result()
	if err != nil {
		return fmt.Errorf("delete bot %s: %w", name, err)
	}
	exists, err := c.rdb.Exists(ctx, k.settings).Result()
	if err != nil {
		return fmt.Errorf("delete bot %s: %w", name, err)
	}
	if exists == 0 {
		return ErrBotNotFound
	}
	keys := []string{k.settings, k.channels, k.current, k.nlu, k.gen, k.nluSum, k.model, k.training}
	for _, intent := range intentsNow {
		keys = append(keys, c.intentKey(name, intent))
	}
	if _, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, keys...)
		return nil
	}); err != nil {
		return fmt.Errorf("delete bot %s: %w", name, err)
	}
	if err := c.rdb.SRem(ctx, c.indexKey(), name).Err(); err != nil {
		return fmt.Errorf("delete bot %s: %w", name, err)
	}
	c.mu.Lock()
	if tr := c.trainers[name]; tr != nil {
		tr.cancel()
	}
	delete(c.models, name)
	c.mu.Unlock()
	c.announce(ctx, name)
	return nil
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

// PutHandler compiles source and stores it as the intent's new current
// version. Uploading the current source again returns the current version
// with unchanged set. A script that does not compile is rejected with a
// *sandbox.ScriptError.
func (c *Catalog) PutHandler(ctx context.Context, bot, intent, source string) (v Version, unchanged bool, err error) {
	if err := ValidateIntentName(intent); err != nil {
		return Version{}, false, err
	}
	if err := c.requireBot(ctx, bot); err != nil {
		return Version{}, false, err
	}
	prog, err := sandbox.Compile(intent+".lua", source)
	if err != nil {
		return Version{}, false, err
	}
	k := c.keys(bot)
	created := time.Now().UTC().Format(time.RFC3339)
	res, err := uploadScript.Run(ctx, c.rdb, []string{c.intentKey(bot, intent), k.current, k.gen},
		intent, source, prog.SHA256(), created).Int64Slice()
	if err != nil {
		return Version{}, false, fmt.Errorf("save handler %s/%s: %w", bot, intent, err)
	}
	c.mu.Lock()
	c.compiled[prog.SHA256()] = prog
	c.mu.Unlock()
	if res[1] == 1 {
		return Version{Version: int(res[0]), SHA256: prog.SHA256()}, true, nil
	}
	c.announce(ctx, bot)
	return Version{Version: int(res[0]), SHA256: prog.SHA256(), Created: created}, false, nil
}

// HandlerInfo is one intent's handler as the management API shows it.
type HandlerInfo struct {
	Intent   string    `json:"intent"`
	Current  int       `json:"version"`
	SHA256   string    `json:"sha256"`
	Source   string    `json:"source,omitempty"`
	Versions []Version `json:"versions,omitempty"`
}

// ListHandlers returns the current version of every intent of a bot.
func (c *Catalog) ListHandlers(ctx context.Context, bot string) ([]HandlerInfo, error) {
	if err := c.requireBot(ctx, bot); err != nil {
		return nil, err
	}
	current, err := c.rdb.HGetAll(ctx, c.keys(bot).current).Result()
	if err != nil {
		return nil, fmt.Errorf("list handlers of %s: %w", bot, err)
	}
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
		out = append(out, HandlerInfo{Intent: name, Current: v.Version, SHA256: v.SHA256})
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
	fields, err := c.rdb.HGetAll(ctx, c.intentKey(bot, intent)).Result()
	if err != nil {
		return nil, fmt.Errorf("read handler %s/%s: %w", bot, intent, err)
	}
	info := &HandlerInfo{Intent: intent, Source: fields["src:"+cur]}
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

// Rollback makes an earlier (or later) stored version current again.
func (c *Catalog) Rollback(ctx context.Context, bot, intent string, version int) error {
	if err := c.requireBot(ctx, bot); err != nil {
		return err
	}
	k := c.keys(bot)
	ok, err := rollbackScript.Run(ctx, c.rdb, []string{c.intentKey(bot, intent), k.current, k.gen},
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
	c.mu.Unlock()
	if b != nil {
		return b, nil
	}
	b, err := c.load(ctx, name)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	prev := c.cache[name]
	if prev == nil || prev.generation <= b.generation {
		c.cache[name] = b
	}
	c.mu.Unlock()
	return b, nil
}

func (c *Catalog) load(ctx context.Context, name string) (*Bot, error) {
	if !botName.MatchString(name) {
		return nil, ErrBotNotFound
	}
	k := c.keys(name)
	var settings, gen, nluSum, modelSum *redis.StringCmd
	var channels, current *redis.MapStringStringCmd
	var hasNLU *redis.IntCmd
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		gen = p.Get(ctx, k.gen)
		settings = p.Get(ctx, k.settings)
		channels = p.HGetAll(ctx, k.channels)
		current = p.HGetAll(ctx, k.current)
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

	versions := current.Val()
	names := make([]string, 0, len(versions))
	for intent := range versions {
		names = append(names, intent)
	}
	srcs := make([]*redis.SliceCmd, len(names))
	if _, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, intent := range names {
			srcs[i] = p.HMGet(ctx, c.intentKey(name, intent), "src:"+versions[intent], "meta:"+versions[intent])
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("load handlers of %s: %w", name, err)
	}
	c.mu.Lock()
	prev := c.cache[name]
	c.mu.Unlock()
	for i, intent := range names {
		vals := srcs[i].Val()
		src, _ := vals[0].(string)
		metaRaw, _ := vals[1].(string)
		var meta Version
		if err := json.Unmarshal([]byte(metaRaw), &meta); err != nil {
			return nil, fmt.Errorf("decode version of %s/%s: %w", name, intent, err)
		}
		prog := c.program(prev, intent, meta)
		if prog == nil {
			if prog, err = sandbox.Compile(intent+".lua", src); err != nil {
				// Stored sources compiled at upload; failing now means a
				// runtime upgrade changed the rules. Serve the rest of the bot.
				c.log.Error("stored handler no longer compiles", "bot", name, "intent", intent, "version", meta.Version, "err", err)
				continue
			}
		}
		b.Handlers[intent] = Handler{Version: meta.Version, Program: prog}
	}
	if prev != nil && c.cfg.OnRetire != nil {
		for intent, h := range prev.Handlers {
			if now, ok := b.Handlers[intent]; !ok || now.Version != h.Version {
				c.cfg.OnRetire(name, intent, h.Version)
			}
		}
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

// program finds an already compiled program for a stored version.
func (c *Catalog) program(prev *Bot, intent string, v Version) *sandbox.Program {
	if prev != nil {
		if h, ok := prev.Handlers[intent]; ok && h.Program.SHA256() == v.SHA256 {
			return h.Program
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
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-msgs:
			if !ok {
				return nil
			}
			c.invalidate(m.Payload)
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
		}
	}
	return nil
}
