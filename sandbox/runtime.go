package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parleyhq/parley/msg"
)

// Config configures a Runtime. The zero value of every field means its default.
type Config struct {
	// MaxVMsPerPool bounds the VMs of one pool, idle or busy, when the
	// call does not set Call.MaxVMs; a call that finds them all busy waits
	// for one. Default 2*GOMAXPROCS.
	MaxVMsPerPool int
	// IdleTimeout is how long a VM may sit unused in its pool before the
	// reaper closes it, keeping the pool's Call.MinVMs; a pool without VMs
	// that was not used for this long is forgotten, so an idle handler
	// costs only its compiled Program. Default 60s; negative disables the
	// reaper, and pools then keep their VMs until they are dropped.
	IdleTimeout time.Duration
	// MaxUses is how many calls a VM serves before it is closed and
	// replaced, which returns memory a state keeps after growing. Default 10000.
	MaxUses int
	// DefaultTimeout is a call's budget when Call.Timeout is zero. Default 1s.
	DefaultTimeout time.Duration
	// MaxSessionBytes caps the JSON encoding of the session a handler
	// leaves behind. Default 64 KiB.
	MaxSessionBytes int
	// MaxReplyBytes caps the total size of a reply's strings. Default 64 KiB.
	MaxReplyBytes int
	// MaxLogLines caps the log() lines kept per call; later lines are
	// dropped. Default 20.
	MaxLogLines int
	// Logger receives handler log() lines, with bot, intent and version
	// attributes. Nil discards them (they are still returned in Result.Logs).
	Logger *slog.Logger
	// HeapLimit is the heap size, in bytes, above which the heap guard
	// interrupts the running call with the largest allocation estimate
	// (see guard.go). Default 1 GiB; negative disables the guard.
	HeapLimit int64
	// HeapCheckInterval is how often the heap guard looks at the heap
	// while calls are running. Default 10ms.
	HeapCheckInterval time.Duration
	// KV backs the store module; nil makes every store call fail with
	// "store: unavailable".
	KV KV
	// HTTP makes the http module's requests; nil makes every http call
	// fail with "http: not available".
	HTTP HTTPClient
	// Secrets resolves secret("NAME"); nil makes every secret() call
	// return nil and "secret: not available".
	Secrets Secrets
	// MaxHTTPResponseBytes caps the body of one http response, and the
	// text and tool calls of one llm answer. Default 256 KiB.
	MaxHTTPResponseBytes int
	// LLM makes the llm module's calls; nil makes every llm call fail with
	// "llm: not available".
	LLM LLM
	// Clock, when set, is the handlers' clock: what os.time(), os.date
	// without a time argument and time.now() read, given the context of the
	// call (the one passed to Run). It lets a host that runs handlers under
	// test freeze their time (parley test); a server leaves it nil, and
	// handlers read the real time. Only the Runtime's owner sets it: nothing
	// a handler does reaches it.
	Clock Clock
	// ChannelKinds, when set, are the channel kinds a reply's channel_data
	// may name (the host's adapters: "slack", "dialogflow-cx", ...): a
	// misspelt kind is a runtime error that names it rather than data no
	// channel ever reads. Empty allows any kind of lowercase letters,
	// digits, '_' and '-'.
	ChannelKinds []string
}

// Clock tells the handlers' time (Config.Clock).
type Clock interface {
	// Now is the time for a call running under ctx.
	Now(ctx context.Context) time.Time
}

// Defaults of per-call limits that a Call may override.
const (
	// DefaultMaxHTTPCalls is the http module's requests per call when
	// Call.MaxHTTPCalls is zero.
	DefaultMaxHTTPCalls = 10
	// DefaultHeapLimit is Config.HeapLimit's default.
	DefaultHeapLimit = 1 << 30
	// DefaultIdleTimeout is Config.IdleTimeout's default.
	DefaultIdleTimeout = time.Minute
)

func (c Config) withDefaults() Config {
	if c.MaxVMsPerPool <= 0 {
		c.MaxVMsPerPool = 2 * runtime.GOMAXPROCS(0)
	}
	if c.MaxUses <= 0 {
		c.MaxUses = 10000
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.DefaultTimeout <= 0 {
		c.DefaultTimeout = time.Second
	}
	if c.MaxSessionBytes <= 0 {
		c.MaxSessionBytes = 64 << 10
	}
	if c.MaxReplyBytes <= 0 {
		c.MaxReplyBytes = 64 << 10
	}
	if c.MaxLogLines <= 0 {
		c.MaxLogLines = 20
	}
	if c.HeapLimit == 0 {
		c.HeapLimit = DefaultHeapLimit
	}
	if c.HeapCheckInterval <= 0 {
		c.HeapCheckInterval = 10 * time.Millisecond
	}
	if c.MaxHTTPResponseBytes <= 0 {
		c.MaxHTTPResponseBytes = 256 << 10
	}
	return c
}

// PoolKey identifies a pool of VMs: one per handler version of a bot.
// VMs are never shared between keys, so never between bots.
type PoolKey struct {
	// Bot is the tenant.
	Bot string
	// Intent is the handler's intent.
	Intent string
	// Version is the handler's version; a new upload gets a new pool.
	Version int
}

// String formats the key as bot/intent@version.
func (k PoolKey) String() string {
	return fmt.Sprintf("%s/%s@%d", k.Bot, k.Intent, k.Version)
}

// Call is one handler invocation.
type Call struct {
	// Key selects the pool of VMs to run on.
	Key PoolKey
	// Program is the compiled handler.
	Program *Program
	// Event is the user's turn. Required.
	Event *msg.Event
	// Route is the router's decision for the turn; its intent, source and
	// candidates are shown to the handler.
	Route msg.Decision
	// Session is the conversation state before the turn, as decoded from
	// JSON. Nil is an empty session. It is not modified.
	Session map[string]any
	// Timeout is the handler's budget; zero means Config.DefaultTimeout.
	Timeout time.Duration
	// MaxSessionBytes caps the session's JSON encoding after the call;
	// zero means Config.MaxSessionBytes.
	MaxSessionBytes int
	// MaxReplyBytes caps the reply; zero means Config.MaxReplyBytes.
	MaxReplyBytes int
	// MaxHTTPCalls caps the http module's requests in this call; zero
	// means DefaultMaxHTTPCalls, negative allows none.
	MaxHTTPCalls int
	// HTTPAllow lists the hosts the http module may reach (see HTTPClient).
	HTTPAllow []string
	// LLM are the bot's settings for the llm module (see LLM).
	LLM LLMSettings
	// MinVMs is how many VMs the pool keeps when idle: after this call
	// they are built in the background, and the reaper does not go below
	// them. Zero lets the pool scale to zero; at most the pool's maximum.
	MinVMs int
	// MaxVMs bounds the pool's VMs, idle or busy; zero means
	// Config.MaxVMsPerPool. The latest call's bounds apply to the pool.
	MaxVMs int
}

// Result is what a successful call produced.
type Result struct {
	// Reply is the handler's answer.
	Reply msg.Reply
	// Session is the conversation state after the turn. It is nil when the
	// call failed: a failed turn changes nothing. When the call's session
	// was an empty map and the handler left it empty, it is that map.
	Session map[string]any
	// Logs are the handler's log() lines, at most Config.MaxLogLines.
	Logs []string
	// Duration is the time spent running the handler and converting its
	// results, not counting any wait for a VM.
	Duration time.Duration
	// ColdStart is true when the call had to build a new VM.
	ColdStart bool
	// WarmStart is true when the call ran on a VM that was idle in its
	// pool. Both are false when the call never got a VM.
	WarmStart bool
	// Instructions is the number of Lua VM instructions the call ran.
	Instructions int64
	// Compute is the call's Duration less the time it waited for host I/O
	// (store, http): the compute it used, as far as wall-clock time can tell.
	Compute time.Duration
	// HTTPCalls is the number of http module requests the call made,
	// llm calls included.
	HTTPCalls int
	// LLMCalls is the number of llm calls that reached the model, and
	// LLMInputTokens and LLMOutputTokens the tokens they used.
	LLMCalls                        int
	LLMInputTokens, LLMOutputTokens int
}

// Stats are counters of a Runtime.
type Stats struct {
	// Pools is the number of live pools.
	Pools int
	// VMs is the number of live VMs, idle or busy.
	VMs int
	// IdleVMs is the number of VMs waiting in their pools for a call.
	IdleVMs int
	// ColdStarts counts calls that built a new VM.
	ColdStarts uint64
	// WarmStarts counts calls served by an idle VM.
	WarmStarts uint64
	// Discarded counts VMs closed when their call returned instead of going
	// back to their pool: after a timeout, an abandoned call, a panic, a
	// limit, MaxUses, or because the pool was dropped or its maximum
	// lowered meanwhile.
	Discarded uint64
	// HeapInterrupts counts calls the heap guard interrupted.
	HeapInterrupts uint64
	// ReapedVMs counts VMs the reaper closed after IdleTimeout unused.
	ReapedVMs uint64
	// ReapedPools counts pools the reaper forgot, empty and idle.
	ReapedPools uint64
}

// Runtime runs handlers in bounded pools of sandboxed VMs. It is safe for
// concurrent use.
type Runtime struct {
	cfg    Config
	vmcfg  vmConfig
	lim    limits
	pools  sync.Map // PoolKey -> *pool
	closed atomic.Bool
	guard  *heapGuard // nil when disabled

	now        func() time.Time // the clock of idle times
	realClock  bool             // now is time.Now: a call's end time serves as its put time
	stopReaper chan struct{}    // closed by Close; nil without a reaper
	reaperDone chan struct{}

	vms         atomic.Int64
	idleVMs     atomic.Int64
	coldStarts  atomic.Uint64
	warmStarts  atomic.Uint64
	discarded   atomic.Uint64
	reapedVMs   atomic.Uint64
	reapedPools atomic.Uint64
}

// New returns a Runtime with cfg's zero fields set to their defaults.
func New(cfg Config) *Runtime {
	r := newRuntime(cfg, time.Now)
	r.realClock = true
	return r
}

// newRuntime is New with the clock that pools and the reaper read.
func newRuntime(cfg Config, now func() time.Time) *Runtime {
	cfg = cfg.withDefaults()
	r := &Runtime{
		cfg: cfg,
		vmcfg: vmConfig{logger: cfg.Logger, maxLogLines: cfg.MaxLogLines, kv: cfg.KV, http: cfg.HTTP,
			secrets: cfg.Secrets, llm: cfg.LLM, maxHTTPBody: cfg.MaxHTTPResponseBytes, clock: cfg.Clock},
		lim: limits{maxSessionBytes: cfg.MaxSessionBytes, maxReplyBytes: cfg.MaxReplyBytes,
			channelKinds: slices.Sorted(slices.Values(cfg.ChannelKinds))},
		now: now,
	}
	if cfg.HeapLimit > 0 {
		r.guard = newHeapGuard(uint64(cfg.HeapLimit), cfg.HeapCheckInterval)
	}
	if cfg.IdleTimeout > 0 {
		r.stopReaper, r.reaperDone = make(chan struct{}), make(chan struct{})
		go r.reapEvery(reapInterval(cfg.IdleTimeout))
	}
	return r
}

// Run calls the program's handle(event, session) on a VM of c.Key's pool.
//
// Script failures are *ScriptError (kind "timeout" when the handler ran out
// of its own budget). When ctx ends first, while waiting for a VM or while
// the handler runs, the error wraps ctx.Err() instead. On any error the
// Result carries no Session, so the caller keeps the old one.
func (r *Runtime) Run(ctx context.Context, c Call) (Result, error) {
	if c.Program == nil {
		return Result{}, errors.New("sandbox: call without a program")
	}
	if c.Event == nil {
		return Result{}, errors.New("sandbox: call without an event")
	}
	if r.closed.Load() {
		return Result{}, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("sandbox: %s: %w", c.Program.name, err)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = r.cfg.DefaultTimeout
	}
	var (
		p    *pool
		v    *vm
		cold bool
		err  error
	)
	for {
		if p, err = r.programPool(c.Key, c.Program); err != nil {
			return Result{}, err
		}
		v, cold, err = p.get(ctx, c.MinVMs, c.MaxVMs)
		if !errors.Is(err, errPoolGone) {
			break
		}
		// The pool was dropped, or the reaper forgot it, after this call
		// found it: use the pool that replaces it.
		forgetPool(c.Program, p)
	}
	if err != nil {
		return Result{}, fmt.Errorf("sandbox: waiting for a VM of %s: %w", c.Key, err)
	}
	if cold {
		r.coldStarts.Add(1)
	} else {
		r.warmStarts.Add(1)
	}
	lim := r.lim
	if c.MaxSessionBytes > 0 {
		lim.maxSessionBytes = c.MaxSessionBytes
	}
	if c.MaxReplyBytes > 0 {
		lim.maxReplyBytes = c.MaxReplyBytes
	}
	res, o, err := v.run(ctx, &c, timeout, lim)
	res.ColdStart, res.WarmStart = cold, !cold
	now := v.ended
	if !r.realClock {
		now = r.now()
	}
	p.putAt(v, o == keepVM && v.uses < r.cfg.MaxUses, now)
	return res, err
}

// Drop closes a pool's idle VMs and forgets the pool, for example after a
// new version of its handler was uploaded. Calls in flight finish; their VMs
// are closed when they return.
func (r *Runtime) Drop(key PoolKey) {
	if p, ok := r.pools.LoadAndDelete(key); ok {
		p.(*pool).drop()
	}
}

// Close stops the reaper and drops every pool. Later calls to Run return
// ErrClosed; calls in flight finish.
func (r *Runtime) Close() {
	if r.closed.Swap(true) {
		return
	}
	if r.stopReaper != nil {
		close(r.stopReaper)
		<-r.reaperDone
	}
	r.pools.Range(func(k, _ any) bool {
		r.Drop(k.(PoolKey))
		return true
	})
	if r.guard != nil {
		r.guard.close()
	}
}

// Stats returns the current counters.
func (r *Runtime) Stats() Stats {
	n := 0
	r.pools.Range(func(_, _ any) bool { n++; return true })
	st := Stats{
		Pools:       n,
		VMs:         int(r.vms.Load()),
		IdleVMs:     int(r.idleVMs.Load()),
		ColdStarts:  r.coldStarts.Load(),
		WarmStarts:  r.warmStarts.Load(),
		Discarded:   r.discarded.Load(),
		ReapedVMs:   r.reapedVMs.Load(),
		ReapedPools: r.reapedPools.Load(),
	}
	if r.guard != nil {
		st.HeapInterrupts = r.guard.interrupts.Load()
	}
	return st
}
