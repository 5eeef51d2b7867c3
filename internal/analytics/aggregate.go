package analytics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/internal/redisx"
	"github.com/redis/go-redis/v9"
)

// Dimensions a query can group and filter by.
const (
	DimChannel = "channel"
	DimIntent  = "intent"
	DimSource  = "source"
	DimOutcome = "outcome"
)

var dimensions = []string{DimChannel, DimIntent, DimSource, DimOutcome}

// dimField is the field prefix of each dimension in a bucket's hash.
var dimField = map[string]string{DimChannel: "c|", DimIntent: "i|", DimSource: "s|", DimOutcome: "o|"}

// totalField is the field of a bucket's totals.
const totalField = "*"

// tuple is one cell of a bucket's cube: the dimensions that can be
// combined in one query. No value contains '|': channels, sources and
// outcomes are fixed names, intents are handler names, which cannot.
type tuple struct{ channel, intent, outcome string }

func (t tuple) field() string { return t.channel + "|" + t.intent + "|" + t.outcome }

func parseTuple(f string) (tuple, bool) {
	ch, rest, ok1 := strings.Cut(f, "|")
	in, out, ok2 := strings.Cut(rest, "|")
	return tuple{channel: ch, intent: in, outcome: out}, ok1 && ok2
}

// get returns the tuple's value of a dimension; a tuple has no source.
func (t tuple) get(dim string) string {
	switch dim {
	case DimChannel:
		return t.channel
	case DimIntent:
		return t.intent
	}
	return t.outcome
}

// counts are the additive figures of a set of turns, in the order they are
// encoded in Redis.
type counts [numCounts]int64

// Positions in counts.
const (
	cTurns         = iota // processed turns (rejected webhooks are not turns)
	cConversations        // conversations started
	cEnded                // conversations ended
	cNewUsers             // users seen for the first time
	cLatency              // sum of turn latencies, microseconds
	cHandler              // sum of handler times, microseconds
	cConfidence           // sum of confidences x 10000, of turns that had one
	cConfident            // turns that had a confidence
	cOutcomes             // first of the outcome counts, in the order of outcomes
	cSources       = cOutcomes + 5
	cBins          = cSources + 5 // first latency histogram bin
	// cPostback counts turns routed by a button's payload: a source added
	// after the histogram, so that the indexes stored before stay valid.
	cPostback = cBins + numBins
)

// The outcomes and sources counted, in their order in counts (and in
// [Outcomes] and [Sources]).
var (
	outcomes = []string{OutcomeHandled, OutcomeFallback, OutcomeError, OutcomeTimeout, OutcomeRejected}
	sources  = []string{"platform", "expect", "classifier", "fallback", "builtin"}
)

func indexOf(list []string, v string) int {
	for i, s := range list {
		if s == v {
			return i
		}
	}
	return -1
}

func (c *counts) add(t *Turn) {
	switch t.Kind {
	case KindHandoff:
		c[cHandoffs]++
		return
	case KindRelease:
		c[cReleases]++
		return
	case KindAgent:
		return
	}
	if t.Handoff {
		c[cHandoffs]++
	}
	if o := indexOf(outcomes, t.Outcome); o >= 0 {
		c[cOutcomes+o]++
	}
	if t.Outcome == OutcomeRejected {
		return
	}
	c[cTurns]++
	if s := indexOf(sources, t.Source); s >= 0 {
		c[cSources+s]++
	} else if t.Source == "postback" {
		c[cPostback]++
	}
	if t.NewConversation {
		c[cConversations]++
	}
	if t.EndConversation {
		c[cEnded]++
	}
	if t.NewUser {
		c[cNewUsers]++
	}
	c[cLatency] += t.Latency.Microseconds()
	c[cHandler] += t.HandlerTime.Microseconds()
	if t.Confidence > 0 {
		c[cConfidence] += int64(math.Round(t.Confidence * 10000))
		c[cConfident]++
	}
	c[cBins+binOf(t.Latency)]++
	c[cLLMInput] += int64(t.LLMInputTokens)
	c[cLLMOutput] += int64(t.LLMOutputTokens)
}

func (c *counts) merge(o *counts) {
	for i, v := range o {
		c[i] += v
	}
}

func (c *counts) bins() []int64 { return c[cBins : cBins+numBins] }

// encode writes the non-zero counts as "index:value" pairs separated by
// commas, the form the merge script adds up.
func (c *counts) encode() string {
	var b []byte
	for i, v := range c {
		if v == 0 {
			continue
		}
		if len(b) > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, ':')
		b = strconv.AppendInt(b, v, 10)
	}
	return string(b)
}

// decode adds an encoded value to c; malformed pairs and indexes it does
// not know are skipped.
func (c *counts) decode(s string) {
	idx, v, neg, inValue, ok := 0, int64(0), false, false, true
	put := func() {
		if ok && inValue && idx < numCounts {
			if neg {
				v = -v
			}
			c[idx] += v
		}
		idx, v, neg, inValue, ok = 0, 0, false, false, true
	}
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch >= '0' && ch <= '9':
			if inValue {
				v = v*10 + int64(ch-'0')
			} else if idx < numCounts {
				idx = idx*10 + int(ch-'0')
			}
		case ch == ':' && !inValue:
			inValue = true
		case ch == '-' && inValue && v == 0:
			neg = true
		case ch == ',':
			put()
		default:
			ok = false
		}
	}
	put()
}

type bucketID struct {
	bot   string
	step  Step
	start int64 // Unix seconds
}

// fieldKey names a field of a bucket without building the string: kind is
// 0 for the totals, the dimension's letter for a dimension value, or 'x'
// for a cube tuple.
type fieldKey struct {
	kind  byte
	value string // the dimension value
	tup   tuple
}

func (k fieldKey) name() string {
	switch k.kind {
	case 0:
		return totalField
	case 'x':
		return k.tup.field()
	}
	return string(k.kind) + "|" + k.value
}

// bucket sums one bucket's turns by every field it will write.
type bucket struct {
	fields map[fieldKey]*counts // totals, one field per dimension value, the cube
}

func (b *bucket) merge(k fieldKey, c *counts) {
	into := b.fields[k]
	if into == nil {
		into = &counts{}
		b.fields[k] = into
	}
	into.merge(c)
}

type fallbackID struct {
	bot  string
	day  int64 // Unix seconds
	text string
}

// cellKey names the turns of one bot and minute that share their channel,
// intent, source and outcome: every field of every bucket is a sum of such
// cells, so a turn costs one map lookup however many fields it counts in.
type cellKey struct {
	bot                              string
	minute                           int64 // Unix seconds of the minute's start
	channel, intent, source, outcome string
}

// usersKey names the users of one bot, minute and channel.
type usersKey struct {
	bot     string
	minute  int64
	channel string
}

// aggregate sums turns in memory so that a flush writes each field once.
// Turns are summed by minute and cell as they are added; [aggregate.buckets]
// spreads the sums over the minute, hour and day buckets and their fields.
type aggregate struct {
	cells     map[cellKey]*counts
	users     map[usersKey]map[string]struct{}
	fallbacks map[fallbackID]int64
	live      func(Step, time.Time) bool // false for buckets already past their retention
}

func newAggregate(live func(Step, time.Time) bool) *aggregate {
	return &aggregate{cells: make(map[cellKey]*counts), users: make(map[usersKey]map[string]struct{}),
		fallbacks: make(map[fallbackID]int64), live: live}
}

// add counts t in its minute, hour and day buckets. Its utterance joins the
// fallback top list only when withText is set.
func (a *aggregate) add(t *Turn, withText bool) {
	if t.Kind == KindAgent {
		return
	}
	k := cellKey{bot: t.Bot, minute: Minute.Floor(t.At).Unix(), channel: label(t.Channel), intent: label(t.Intent),
		source: label(t.Source), outcome: label(t.Outcome)}
	if t.Outcome == OutcomeRejected {
		k.intent, k.source = None, None
	}
	c := a.cells[k]
	if c == nil {
		c = &counts{}
		a.cells[k] = c
	}
	c.add(t)
	if t.User != "" && t.Outcome != OutcomeRejected && t.Kind == KindTurn {
		uk := usersKey{bot: k.bot, minute: k.minute, channel: k.channel}
		set := a.users[uk]
		if set == nil {
			set = make(map[string]struct{})
			a.users[uk] = set
		}
		set[t.User] = struct{}{}
	}
	if withText {
		if u := t.fallbackUtterance(); u != "" {
			a.fallbacks[fallbackID{bot: t.Bot, day: Day.Floor(t.At).Unix(), text: u}]++
		}
	}
}

// buckets spreads the sums over the buckets of every step that are still
// within their retention: per bucket, the totals, one field per dimension
// value and the cube. The users are not spread: see writeUsers.
func (a *aggregate) buckets() map[bucketID]*bucket {
	out := make(map[bucketID]*bucket)
	get := func(bot string, s Step, minute int64) *bucket {
		start := s.Floor(time.Unix(minute, 0))
		if !a.live(s, start) {
			return nil
		}
		id := bucketID{bot: bot, step: s, start: start.Unix()}
		b := out[id]
		if b == nil {
			b = &bucket{fields: make(map[fieldKey]*counts)}
			out[id] = b
		}
		return b
	}
	for k, c := range a.cells {
		tup := tuple{channel: k.channel, intent: k.intent, outcome: k.outcome}
		for _, s := range steps {
			b := get(k.bot, s, k.minute)
			if b == nil {
				continue
			}
			b.merge(fieldKey{}, c)
			b.merge(fieldKey{kind: 'c', value: k.channel}, c)
			b.merge(fieldKey{kind: 'i', value: k.intent}, c)
			b.merge(fieldKey{kind: 's', value: k.source}, c)
			b.merge(fieldKey{kind: 'o', value: k.outcome}, c)
			b.merge(fieldKey{kind: 'x', tup: tup}, c)
		}
	}
	return out
}

// pipe sends a flush's commands in rounds: pipelines of at most about
// roundWeight of work for Redis (a user or conversation of a script call, a
// field of a merge, eight members of a PFADD or ZADD, one plain command
// count 1). Each script call or PFADD is itself bounded (maxScriptEntries,
// maxZAddMembers), so that no single command holds Redis for long (Redis
// serves its other clients between the commands of a pipeline as they
// arrive), and a flush parks between rounds, waiting for their answers,
// so that turns waiting for the processor run meanwhile. Scripts run as
// EVALSHA; those Redis does not know (after a restart or SCRIPT FLUSH) are
// sent again in full. After a failed round the rest is not sent: the flush
// is retried or dropped.
type pipe struct {
	ctx    context.Context
	rdb    redis.UniversalClient
	p      redis.Pipeliner
	weight int
	err    error
	resent map[*redis.Cmd]*redis.Cmd
}

// roundWeight is the work one round of a flush sends to Redis: 16 users
// of the user index or conversations of the transcripts, one script call
// (about 0.3 ms of Redis's time on a busy 2-core machine, where 64 took
// 1.5 ms). Small rounds keep each of them short, in Parley and in Redis, so
// that turns running beside a flush wait little for either; in
// scripts/perf.sh, 16 gave 6 to 9 % more turns per second than 64.
const roundWeight = maxScriptEntries

func (s *Service) pipeline(ctx context.Context) *pipe {
	return &pipe{ctx: ctx, rdb: s.rdb, p: s.rdb.Pipeline()}
}

// add counts the weight of the commands just queued, and sends the round
// once it is full.
func (p *pipe) add(weight int) {
	p.weight += weight
	if p.weight >= roundWeight {
		p.exec()
	}
}

// exec sends the queued commands.
func (p *pipe) exec() {
	p.weight = 0
	if p.p.Len() == 0 {
		return
	}
	if p.err != nil {
		p.p.Discard()
		return
	}
	cmds, err := p.p.Exec(p.ctx)
	if err != nil {
		err = p.resend(cmds)
	}
	if err != nil && p.err == nil {
		p.err = err
	}
}

// yieldEvery lets the goroutines waiting for the processor run after every
// planStep turns or users a flush has gone through while it prepares its
// commands or reads their answers:
// with one core, a turn would otherwise wait for as much of that work as
// the scheduler lets run at once (up to 10 ms).
func yieldEvery(i int) {
	if i%planStep == planStep-1 {
		runtime.Gosched()
	}
}

// planStep is how many turns a flush goes through between two yields
// while it prepares its commands.
const planStep = 64

// result is the command whose answer counts for cmd: cmd itself, or the
// EVAL that replaced it after a NOSCRIPT.
func (p *pipe) result(cmd *redis.Cmd) *redis.Cmd {
	if r, ok := p.resent[cmd]; ok {
		return r
	}
	return cmd
}

// resend runs again, as EVAL, the scripts that failed with NOSCRIPT, and
// returns the first error left.
func (p *pipe) resend(cmds []redis.Cmder) error {
	retry := p.rdb.Pipeline()
	var first error
	for _, c := range cmds {
		err := c.Err()
		if err == nil || errors.Is(err, redis.Nil) { // a read of nothing is an answer
			continue
		}
		args := c.Args()
		if len(args) < 3 || !redisx.IsNoScript(err) {
			if first == nil {
				first = err
			}
			continue
		}
		if src, ok := scriptSources[fmt.Sprint(args[1])]; ok {
			again := append([]any{"eval", src}, args[2:]...)
			r := retry.Do(p.ctx, again...)
			if orig, ok := c.(*redis.Cmd); ok {
				if p.resent == nil {
					p.resent = make(map[*redis.Cmd]*redis.Cmd)
				}
				p.resent[orig] = r
			}
			continue
		}
		if first == nil {
			first = err
		}
	}
	if retry.Len() > 0 {
		if _, err := retry.Exec(p.ctx); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// writeAggregate adds a's counts, users and utterances to Redis: one merge
// script per bucket hash, one PFADD per user set. Buckets whose retention
// is over are left out.
func (s *Service) writeAggregate(p *pipe, a *aggregate, now time.Time) {
	ctx := p.ctx
	for id, b := range a.buckets() {
		start := time.Unix(id.start, 0).UTC()
		expireAt := start.Add(id.step.Duration()).Add(s.retention(id.step))
		if !expireAt.After(now) {
			continue
		}
		var views, cube []any
		for k, c := range b.fields {
			if k.kind == 'x' {
				cube = append(cube, k.name(), c.encode())
			} else {
				views = append(views, k.name(), c.encode())
			}
		}
		for _, f := range []struct {
			key    string
			fields []any
		}{{s.keys.counters(id.bot, id.step, start), views}, {s.keys.cube(id.bot, id.step, start), cube}} {
			for rest := f.fields; len(rest) > 0; {
				n := min(len(rest), 2*maxScriptEntries)
				args := append([]any{expireAt.Unix(), numCounts}, rest[:n]...)
				mergeScript.EvalSha(ctx, p.p, []string{f.key}, args...)
				p.add(n / 2)
				rest = rest[n:]
			}
		}
	}
	s.writeUsers(p, a, now)
	touched := make(map[string]time.Time)
	for id, n := range a.fallbacks {
		day := time.Unix(id.day, 0).UTC()
		expireAt := day.Add(24 * time.Hour).Add(s.cfg.Retention.Fallbacks)
		if !expireAt.After(now) {
			continue
		}
		key := s.keys.fallbacks(id.bot, day)
		p.p.ZIncrBy(ctx, key, float64(n), id.text)
		touched[key] = expireAt
		p.add(1)
	}
	for key, expireAt := range touched {
		// Keep the top of the list: an utterance that is not among the most
		// frequent ones of the day is forgotten.
		p.p.ZRemRangeByRank(ctx, key, 0, -(maxFallbacksPerDay + 1))
		p.p.ExpireAt(ctx, key, expireAt)
		p.add(2)
	}
}

// writeUsers adds the users of each minute of a to the HyperLogLogs of
// every live bucket that holds the minute, all channels' and the minute's
// channel's. A user is added once per minute and key rather than once per
// bucket: a HyperLogLog ignores a member it has seen, and copying every
// minute's users into per-bucket sets first would cost a flush of many
// users more time than the PFADDs, in one stretch that no turn could
// interrupt. Members are sent in PFADDs of at most maxZAddMembers, and the
// flush yields between them.
func (s *Service) writeUsers(p *pipe, a *aggregate, now time.Time) {
	ctx := p.ctx
	var members []any
	expires := make(map[string]time.Time)
	for k, set := range a.users {
		members = members[:0]
		for u := range set {
			members = append(members, u)
			yieldEvery(len(members))
		}
		for _, step := range steps {
			start := step.Floor(time.Unix(k.minute, 0)).UTC()
			expireAt := start.Add(step.Duration()).Add(s.retention(step))
			if !expireAt.After(now) {
				continue
			}
			for _, ch := range []string{"", k.channel} {
				key := s.keys.users(k.bot, step, start, ch)
				for rest := members; len(rest) > 0; {
					n := min(len(rest), maxZAddMembers)
					p.p.PFAdd(ctx, key, rest[:n]...) // copies its arguments
					p.add(n/8 + 1)
					rest = rest[n:]
					runtime.Gosched()
				}
				expires[key] = expireAt
			}
		}
	}
	for key, at := range expires {
		p.p.ExpireAt(ctx, key, at)
		p.add(1)
	}
}

// liveAt returns a test of whether a bucket is still within its retention at now.
func (s *Service) liveAt(now time.Time) func(Step, time.Time) bool {
	return func(step Step, start time.Time) bool {
		return start.Add(step.Duration()).Add(s.retention(step)).After(now)
	}
}

func (s *Service) retention(step Step) time.Duration {
	switch step {
	case Minute:
		return s.cfg.Retention.Minute
	case Hour:
		return s.cfg.Retention.Hour
	}
	return s.cfg.Retention.Day
}
