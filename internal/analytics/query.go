package analytics

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// maxBuckets bounds the buckets one query reads.
const maxBuckets = 5000

// QueryError is a query that cannot be answered as asked (bad syntax, an
// empty or too long range); the API answers it with 400.
type QueryError struct{ Msg string }

func (e *QueryError) Error() string { return e.Msg }

// HTTPStatus is 400.
func (e *QueryError) HTTPStatus() int { return http.StatusBadRequest }

// ErrorCode is "invalid".
func (e *QueryError) ErrorCode() string { return "invalid" }

func badQuery(format string, args ...any) error {
	return &QueryError{Msg: fmt.Sprintf(format, args...)}
}

// ParseTime reads an RFC 3339 time, "now", or a time relative to now such
// as "-24h", "-90m" or "-7d".
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "now" {
		return now, nil
	}
	if rel, ok := strings.CutPrefix(s, "-"); ok {
		d, err := ParseDuration(rel)
		if err != nil || d < 0 {
			return time.Time{}, badQuery("bad relative time %q: want e.g. -24h, -90m or -7d", s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, badQuery("bad time %q: want RFC 3339 (2026-11-25T14:00:00Z), now, or relative like -24h", s)
	}
	return t.UTC(), nil
}

// timeRange reads the from and to parameters with their defaults.
func timeRange(v url.Values, now time.Time, defaultSpan time.Duration) (from, to time.Time, err error) {
	to, from = now, now.Add(-defaultSpan)
	if s := v.Get("to"); s != "" {
		if to, err = ParseTime(s, now); err != nil {
			return
		}
		if v.Get("from") == "" {
			from = to.Add(-defaultSpan)
		}
	}
	if s := v.Get("from"); s != "" {
		if from, err = ParseTime(s, now); err != nil {
			return
		}
	}
	if !from.Before(to) {
		err = badQuery("from (%s) must be before to (%s)", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	return
}

// Query asks for turn statistics of one bot.
type Query struct {
	// From and To bound the range; they are widened to whole steps.
	From, To time.Time
	// Step is the bucket width of the series; empty chooses one from the
	// range: minute up to 6 hours, hour up to 31 days, day beyond (and no
	// finer than the retention allows).
	Step Step
	// GroupBy lists dimensions (channel, intent, source, outcome) to split
	// the series and totals by.
	GroupBy []string
	// Filters keep only turns with these dimension values.
	Filters map[string]string
}

// ParseQuery reads a query from URL parameters: from, to, step, group_by
// (comma-separated or repeated) and one filter per dimension (channel=web).
func ParseQuery(v url.Values, now time.Time) (Query, error) {
	var q Query
	var err error
	if q.From, q.To, err = timeRange(v, now, 24*time.Hour); err != nil {
		return q, err
	}
	if s := v.Get("step"); s != "" && s != "auto" {
		if q.Step, err = ParseStep(s); err != nil {
			return q, badQuery("%v", err)
		}
	}
	for _, g := range v["group_by"] {
		for _, dim := range strings.Split(g, ",") {
			dim = strings.TrimSpace(dim)
			if dim == "" {
				continue
			}
			if !slices.Contains(dimensions, dim) {
				return q, badQuery("cannot group by %q: use channel, intent, source or outcome", dim)
			}
			if !slices.Contains(q.GroupBy, dim) {
				q.GroupBy = append(q.GroupBy, dim)
			}
		}
	}
	for _, dim := range dimensions {
		if v.Has(dim) {
			if q.Filters == nil {
				q.Filters = make(map[string]string)
			}
			q.Filters[dim] = v.Get(dim)
		}
	}
	return q, nil
}

// Report answers a [Query].
type Report struct {
	Bot     string            `json:"bot"`
	From    time.Time         `json:"from"`
	To      time.Time         `json:"to"`
	Step    Step              `json:"step"`
	GroupBy []string          `json:"group_by,omitempty"`
	Filters map[string]string `json:"filters,omitempty"`
	// Totals cover the whole range (and every group).
	Totals Stats `json:"totals"`
	// Groups are the totals of each group, largest first, when grouping.
	Groups []Point `json:"groups,omitempty"`
	// Series has one point per bucket, oldest first, and per group when
	// grouping (then buckets without turns of a group are left out).
	Series []Point `json:"series"`
}

// Point is the statistics of one bucket or group.
type Point struct {
	// T is the bucket's start; zero (and omitted) in Report.Groups.
	T *time.Time `json:"t,omitempty"`
	// Group holds the grouped dimensions' values.
	Group map[string]string `json:"group,omitempty"`
	Stats
}

// Stats are the figures of a set of turns.
type Stats struct {
	// Turns counts processed turns (rejected webhooks are not turns).
	Turns int64 `json:"turns"`
	// Conversations counts conversations that started.
	Conversations int64 `json:"conversations"`
	// ConversationsEnded counts conversations a handler ended.
	ConversationsEnded int64 `json:"conversations_ended"`
	// Users is the number of distinct users (HyperLogLog, about 0.8%
	// standard error). Users are counted overall and per channel only: it
	// is left out when filtering by intent, source or outcome, and from
	// groups and series points when grouping by them.
	Users *int64 `json:"users,omitempty"`
	// NewUsers counts users seen for the first time.
	NewUsers int64 `json:"new_users"`
	// FallbackRate is the share of turns with outcome fallback.
	FallbackRate float64 `json:"fallback_rate"`
	// ErrorRate is the share of turns with outcome error or timeout.
	ErrorRate float64 `json:"error_rate"`
	// TurnsPerConversation is Turns / Conversations.
	TurnsPerConversation float64 `json:"turns_per_conversation"`
	// LatencyMS are whole-turn latency percentiles and mean, in milliseconds.
	LatencyMS Latency `json:"latency_ms"`
	// HandlerMS is the mean handler time in milliseconds.
	HandlerMS struct {
		Avg float64 `json:"avg"`
	} `json:"handler_ms"`
	// Confidence is the mean routing confidence of turns that had one.
	Confidence *float64 `json:"confidence,omitempty"`
	// Outcomes counts turns by outcome.
	Outcomes Outcomes `json:"outcomes"`
	// Sources counts turns by how their intent was chosen.
	Sources Sources `json:"sources"`
	// Rejected counts webhooks refused before a turn could run.
	Rejected int64 `json:"rejected"`
	// LLMTokens are the model tokens the turns' llm calls used.
	LLMTokens LLMTokens `json:"llm_tokens"`
	// Handoffs counts conversations handed to a person (by a handler's
	// reply, under its intent, or by the management API, under none), and
	// Releases those given back to the bot.
	Handoffs int64 `json:"handoffs"`
	Releases int64 `json:"releases"`
}

// LLMTokens counts model tokens.
type LLMTokens struct {
	Input  int64 `json:"input"`
	Output int64 `json:"output"`
}

// Outcomes counts turns by outcome.
type Outcomes struct {
	Handled  int64 `json:"handled"`
	Fallback int64 `json:"fallback"`
	Error    int64 `json:"error"`
	Timeout  int64 `json:"timeout"`
}

// Sources counts turns by how their intent was chosen.
type Sources struct {
	Platform   int64 `json:"platform,omitempty"`
	Postback   int64 `json:"postback,omitempty"`
	Expect     int64 `json:"expect,omitempty"`
	Classifier int64 `json:"classifier,omitempty"`
	Fallback   int64 `json:"fallback,omitempty"`
	Builtin    int64 `json:"builtin,omitempty"`
}

// Latency are percentiles from the fixed histogram bins: each lies in the
// same bin as the exact value, so it is off by at most that bin's width
// (a third of the value at most).
type Latency struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Avg float64 `json:"avg"`
}

func (c *counts) stats(users *int64) Stats {
	o, src := c[cOutcomes:cSources], c[cSources:cBins] // in the order of outcomes and sources (postback apart)
	st := Stats{Turns: c[cTurns], Conversations: c[cConversations], ConversationsEnded: c[cEnded], Users: users,
		NewUsers: c[cNewUsers], Rejected: o[4],
		Outcomes: Outcomes{Handled: o[0], Fallback: o[1], Error: o[2], Timeout: o[3]},
		Sources: Sources{Platform: src[0], Postback: c[cPostback], Expect: src[1], Classifier: src[2], Fallback: src[3],
			Builtin: src[4]},
		LLMTokens: LLMTokens{Input: c[cLLMInput], Output: c[cLLMOutput]},
		Handoffs:  c[cHandoffs], Releases: c[cReleases]}
	if n := float64(c[cTurns]); n > 0 {
		bins := c.bins()
		st.FallbackRate = round(float64(o[1])/n, 6)
		st.ErrorRate = round(float64(o[2]+o[3])/n, 6)
		st.LatencyMS = Latency{P50: round(percentile(bins, 0.50), 3), P95: round(percentile(bins, 0.95), 3),
			P99: round(percentile(bins, 0.99), 3), Avg: round(float64(c[cLatency])/n/1000, 3)}
		st.HandlerMS.Avg = round(float64(c[cHandler])/n/1000, 3)
	}
	if c[cConversations] > 0 {
		st.TurnsPerConversation = round(float64(c[cTurns])/float64(c[cConversations]), 3)
	}
	if c[cConfident] > 0 {
		v := round(float64(c[cConfidence])/10000/float64(c[cConfident]), 4)
		st.Confidence = &v
	}
	return st
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// plan resolves the step and aligns the range to it.
func (s *Service) plan(q Query, now time.Time) (Step, time.Time, time.Time, error) {
	step := q.Step
	if step == "" {
		span := q.To.Sub(q.From)
		switch {
		case span <= 6*time.Hour:
			step = Minute
		case span <= 31*24*time.Hour:
			step = Hour
		default:
			step = Day
		}
		if step == Minute && q.From.Before(now.Add(-s.cfg.Retention.Minute)) {
			step = Hour
		}
		if step == Hour && q.From.Before(now.Add(-s.cfg.Retention.Hour)) {
			step = Day
		}
	}
	from, to := step.Floor(q.From), step.Ceil(q.To)
	if n := to.Sub(from) / step.Duration(); n > maxBuckets {
		return "", from, to, badQuery("the range holds %d %s buckets, more than %d: use a larger step or a shorter range", n, step, maxBuckets)
	}
	return step, from, to, nil
}

// usersCountable reports whether users can be counted for q's totals and
// for its groups: users are counted overall and per channel only.
func usersCountable(q Query) (totals, groups bool) {
	for d := range q.Filters {
		if d != DimChannel {
			return false, false
		}
	}
	for _, d := range q.GroupBy {
		if d != DimChannel {
			return true, false
		}
	}
	return true, true
}

// Query answers q for bot. Without groups or filters it reads one field
// per bucket; with one dimension, each bucket's hash of per-value counts;
// with several, each bucket's cube (channel, intent and outcome combined:
// source cannot be combined with other dimensions).
func (s *Service) Query(ctx context.Context, bot string, q Query) (*Report, error) {
	now := s.now()
	step, from, to, err := s.plan(q, now)
	if err != nil {
		return nil, err
	}
	dims := queryDims(q)
	if len(dims) > 1 && slices.Contains(dims, DimSource) {
		return nil, badQuery("source can be grouped or filtered by alone only, not with %s", strings.Join(slices.DeleteFunc(dims, func(d string) bool { return d == DimSource }), ", "))
	}
	var starts []time.Time
	for t := from; t.Before(to); t = t.Add(step.Duration()) {
		starts = append(starts, t)
	}
	r := &Report{Bot: bot, From: from, To: to, Step: step, GroupBy: q.GroupBy, Filters: q.Filters}
	if len(dims) == 0 {
		err = s.queryTotals(ctx, r, starts)
	} else {
		err = s.queryGroups(ctx, r, q, dims, starts)
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

// queryDims lists the dimensions q groups or filters by.
func queryDims(q Query) []string {
	var dims []string
	for _, d := range dimensions {
		if _, ok := q.Filters[d]; ok || slices.Contains(q.GroupBy, d) {
			dims = append(dims, d)
		}
	}
	return dims
}

// queryTotals reads the totals and user count of every bucket in one round trip.
func (s *Service) queryTotals(ctx context.Context, r *Report, starts []time.Time) error {
	totals := make([]*redis.StringCmd, len(starts))
	users := make([]*redis.IntCmd, len(starts))
	var total *redis.IntCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, t := range starts {
			totals[i] = p.HGet(ctx, s.keys.counters(r.Bot, r.Step, t), totalField)
			users[i] = p.PFCount(ctx, s.keys.users(r.Bot, r.Step, t, ""))
		}
		total = s.countUnion(ctx, p, r.Bot, s.cover(r.Bot, r.From, r.To, r.Step, ""))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("read analytics: %w", err)
	}
	var sum counts
	r.Series = make([]Point, len(starts))
	for i := range starts {
		var c counts
		c.decode(totals[i].Val())
		sum.merge(&c)
		n := users[i].Val()
		r.Series[i] = Point{T: &starts[i], Stats: c.stats(&n)}
	}
	n := total.Val()
	r.Totals = sum.stats(&n)
	return nil
}

// cover returns the HyperLogLog keys whose union counts the users of
// [from, to): whole days where they fit, then hours, then minutes.
func (s *Service) cover(bot string, from, to time.Time, step Step, channel string) []string {
	var out []string
	for t := from; t.Before(to); {
		for _, st := range []Step{Day, Hour, Minute} {
			if st.Duration() < step.Duration() {
				break
			}
			if st.Floor(t).Equal(t) && !t.Add(st.Duration()).After(to) {
				out = append(out, s.keys.users(bot, st, t, channel))
				t = t.Add(st.Duration())
				break
			}
		}
	}
	return out
}

// countUnion queues the count of the union of HyperLogLogs. Several keys
// are merged into a short-lived key of the same slot and counted there:
// the embedded store's PFCOUNT adds the keys' counts instead of counting
// their union.
func (s *Service) countUnion(ctx context.Context, p redis.Pipeliner, bot string, keys []string) *redis.IntCmd {
	if len(keys) == 1 {
		return p.PFCount(ctx, keys[0])
	}
	tmp := s.keys.prefix + "an:{" + bot + "}:tmp:" + uuid.NewString()
	p.PFMerge(ctx, tmp, keys...)
	p.PExpire(ctx, tmp, time.Minute)
	n := p.PFCount(ctx, tmp)
	p.Del(ctx, tmp)
	return n
}

type groupAcc struct {
	group map[string]string
	c     counts
}

// queryGroups reads, for every bucket, the per-value counts of the one
// dimension q uses or the cube for several, keeps what passes the filters,
// sums it per group and counts users where it can.
func (s *Service) queryGroups(ctx context.Context, r *Report, q Query, dims []string, starts []time.Time) error {
	// When the filters name the one field every bucket needs, read just it.
	exact := ""
	if len(dims) == 1 {
		if v, ok := q.Filters[dims[0]]; ok {
			exact = dimField[dims[0]] + v
		}
	} else if len(q.Filters) == 3 {
		exact = tuple{q.Filters[DimChannel], q.Filters[DimIntent], q.Filters[DimOutcome]}.field()
	}
	hashes := make([]func() map[string]string, len(starts))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, t := range starts {
			key := s.keys.counters(r.Bot, r.Step, t)
			if len(dims) > 1 {
				key = s.keys.cube(r.Bot, r.Step, t)
			}
			if exact != "" {
				cmd := p.HGet(ctx, key, exact)
				hashes[i] = func() map[string]string {
					if cmd.Err() != nil {
						return nil
					}
					return map[string]string{exact: cmd.Val()}
				}
				continue
			}
			hashes[i] = p.HGetAll(ctx, key).Val
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("read analytics: %w", err)
	}
	// value returns a field's group key and group, or ok false when the
	// field is not of the query's dimension or fails a filter.
	var gk strings.Builder
	value := func(field string) (key string, get func(string) string, ok bool) {
		if len(dims) == 1 {
			v, found := strings.CutPrefix(field, dimField[dims[0]])
			if !found {
				return "", nil, false
			}
			get = func(string) string { return v }
		} else {
			t, found := parseTuple(field)
			if !found {
				return "", nil, false
			}
			get = t.get
		}
		for d, want := range q.Filters {
			if get(d) != want {
				return "", nil, false
			}
		}
		gk.Reset()
		for _, d := range q.GroupBy {
			gk.WriteString(get(d))
			gk.WriteByte(0)
		}
		return gk.String(), get, true
	}

	perBucket := make([]map[string]*groupAcc, len(starts))
	groups := make(map[string]*groupAcc)
	var sum counts
	for i := range starts {
		perBucket[i] = make(map[string]*groupAcc)
		for field, raw := range hashes[i]() {
			key, get, ok := value(field)
			if !ok {
				continue
			}
			g := perBucket[i][key]
			if g == nil {
				tg := groups[key]
				if tg == nil {
					tg = &groupAcc{group: groupOf(get, q.GroupBy)}
					groups[key] = tg
				}
				g = &groupAcc{group: tg.group}
				perBucket[i][key] = g
			}
			var c counts
			c.decode(raw)
			g.c.merge(&c)
			sum.merge(&c)
		}
		for key, g := range perBucket[i] {
			groups[key].c.merge(&g.c)
		}
	}
	users, err := s.cubeUsers(ctx, r, q, starts, perBucket, groups)
	if err != nil {
		return err
	}
	size := func(g *groupAcc) int64 { return g.c[cTurns] + g.c[cOutcomes+indexOf(outcomes, OutcomeRejected)] }
	groupKeys := make([]string, 0, len(groups))
	for k := range groups {
		groupKeys = append(groupKeys, k)
	}
	slices.SortFunc(groupKeys, func(a, b string) int {
		return cmp.Or(cmp.Compare(size(groups[b]), size(groups[a])), strings.Compare(a, b))
	})
	grouped := len(q.GroupBy) > 0
	r.Series = []Point{}
	for i := range starts {
		if !grouped {
			var c counts
			if g := perBucket[i][""]; g != nil {
				c = g.c
			}
			r.Series = append(r.Series, Point{T: &starts[i], Stats: c.stats(users.bucket(i, ""))})
			continue
		}
		keys := make([]string, 0, len(perBucket[i]))
		for k := range perBucket[i] {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			g := perBucket[i][k]
			r.Series = append(r.Series, Point{T: &starts[i], Group: g.group, Stats: g.c.stats(users.bucket(i, g.group[DimChannel]))})
		}
	}
	if grouped {
		for _, k := range groupKeys {
			g := groups[k]
			r.Groups = append(r.Groups, Point{Group: g.group, Stats: g.c.stats(users.group(g.group[DimChannel]))})
		}
	}
	r.Totals = sum.stats(users.total(q.Filters[DimChannel]))
	return nil
}

// userCounts are the unique-user counts a cube query could get.
type userCounts struct {
	totalsOK, groupsOK bool
	buckets            []map[string]int64 // per bucket, by channel ("" for all)
	totals             map[string]int64   // by channel ("" for all)
}

// bucket is a series point's user count.
func (u *userCounts) bucket(i int, channel string) *int64 {
	if !u.groupsOK {
		return nil
	}
	n := u.buckets[i][channel]
	return &n
}

// group is a group's user count over the range.
func (u *userCounts) group(channel string) *int64 {
	if !u.groupsOK {
		return nil
	}
	n := u.totals[channel]
	return &n
}

// total is the user count of the whole answer.
func (u *userCounts) total(channel string) *int64 {
	if !u.totalsOK {
		return nil
	}
	n := u.totals[channel]
	return &n
}

// cubeUsers counts users per bucket and in total, for the channels a
// query groups or filters by, in one round trip.
func (s *Service) cubeUsers(ctx context.Context, r *Report, q Query, starts []time.Time,
	perBucket []map[string]*groupAcc, groups map[string]*groupAcc) (*userCounts, error) {
	u := &userCounts{}
	if u.totalsOK, u.groupsOK = usersCountable(q); !u.totalsOK {
		return u, nil
	}
	filter := q.Filters[DimChannel]
	grouped := slices.Contains(q.GroupBy, DimChannel)
	type bucketCmd struct {
		i       int
		channel string
		cmd     *redis.IntCmd
	}
	var bcmds []bucketCmd
	tcmds := make(map[string]*redis.IntCmd)
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, t := range starts {
			if !u.groupsOK {
				break
			}
			var channels []string
			if grouped {
				for _, g := range perBucket[i] {
					channels = append(channels, g.group[DimChannel])
				}
			} else {
				channels = []string{filter}
			}
			for _, ch := range channels {
				bcmds = append(bcmds, bucketCmd{i, ch, p.PFCount(ctx, s.keys.users(r.Bot, r.Step, t, ch))})
			}
		}
		totals := []string{filter}
		if grouped && u.groupsOK {
			for _, g := range groups {
				totals = append(totals, g.group[DimChannel])
			}
		}
		for _, ch := range totals {
			if tcmds[ch] == nil {
				tcmds[ch] = s.countUnion(ctx, p, r.Bot, s.cover(r.Bot, r.From, r.To, r.Step, ch))
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("count users: %w", err)
	}
	u.buckets = make([]map[string]int64, len(starts))
	for i := range u.buckets {
		u.buckets[i] = make(map[string]int64)
	}
	for _, b := range bcmds {
		key := b.channel
		if !grouped {
			key = ""
		}
		u.buckets[b.i][key] = b.cmd.Val()
	}
	u.totals = make(map[string]int64)
	for ch, c := range tcmds {
		u.totals[ch] = c.Val()
	}
	if !grouped {
		u.totals[""] = u.totals[filter]
	}
	return u, nil
}

func groupOf(get func(string) string, dims []string) map[string]string {
	if len(dims) == 0 {
		return nil
	}
	g := make(map[string]string, len(dims))
	for _, d := range dims {
		g[d] = get(d)
	}
	return g
}
