// Command analytics-load writes synthetic turns straight into Redis, the way
// the analytics recorder aggregates them (counters, latency histograms,
// unique users, fallback utterances), for the scale benchmark of the
// analytics queries. It does not go through HTTP and writes no transcripts.
//
//	go run ./tools/analytics-load -redis redis://127.0.0.1:6379/0 -turns 10000000 -days 30 -expect /tmp/expect.json
//
// The turns fill the whole hours of the last -days days. -expect receives
// the exact figures of what was written, which the benchmark compares with
// what the query answers.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/parleyhq/parley/internal/analytics"
	"github.com/redis/go-redis/v9"
)

// Expect is what was written, for the benchmark to check the query against.
type Expect struct {
	Bot      string           `json:"bot"`
	Prefix   string           `json:"prefix"`
	From     time.Time        `json:"from"`
	To       time.Time        `json:"to"`
	Turns    int64            `json:"turns"`
	Outcomes map[string]int64 `json:"outcomes"`
	Intents  map[string]int64 `json:"intents"`
	Channels map[string]int64 `json:"channels"`
	Users    int64            `json:"users"`
	NewUsers int64            `json:"new_users"`
	Convs    int64            `json:"conversations"`
}

func main() {
	url := flag.String("redis", "redis://127.0.0.1:6379/0", "Redis URL")
	prefix := flag.String("prefix", "parley:", "key prefix")
	bot := flag.String("bot", "loadbot", "bot name")
	turns := flag.Int64("turns", 10_000_000, "turns to write")
	days := flag.Int("days", 30, "days the turns span, ending with the last whole hour")
	users := flag.Int("users", 300_000, "distinct users")
	seed := flag.Uint64("seed", 1, "random seed")
	expectPath := flag.String("expect", "", "write the exact figures of the load to this JSON file")
	flag.Parse()

	opts, err := redis.ParseURL(*url)
	if err != nil {
		log.Fatalf("bad -redis: %v", err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ctx := context.Background()
	if err := rdb.Ping(ctx).Err(); err != nil {
		log.Fatalf("redis: %v", err)
	}
	svc := analytics.New(rdb, analytics.Config{KeyPrefix: *prefix})

	to := analytics.Hour.Floor(time.Now())
	from := to.Add(-time.Duration(*days) * 24 * time.Hour)
	exp := &Expect{Bot: *bot, Prefix: *prefix, From: from, To: to, Outcomes: map[string]int64{},
		Intents: map[string]int64{}, Channels: map[string]int64{}}
	g := newGenerator(*bot, *users, *seed)
	start := time.Now()
	perHour := float64(*turns) / float64(*days*24)
	var written int64
	var batch []analytics.Turn
	for hour := from; hour.Before(to); hour = hour.Add(time.Hour) {
		// A daily rhythm: quiet nights, busy afternoons; the total stays exact.
		n := int64(math.Round(perHour * (1 + 0.6*math.Sin(2*math.Pi*float64(hour.Hour()-9)/24))))
		if hour.Add(time.Hour).Equal(to) {
			n = *turns - written
		}
		n = min(max(n, 0), *turns-written)
		for i := int64(0); i < n; i++ {
			t := g.turn(hour.Add(time.Duration(g.rng.Int64N(int64(time.Hour)))))
			exp.add(&t)
			batch = append(batch, t)
		}
		written += n
		if hour.Hour() == 23 || !hour.Add(time.Hour).Before(to) {
			slices.SortFunc(batch, func(a, b analytics.Turn) int { return a.At.Compare(b.At) })
			g.mark(batch, exp)
			if err := svc.WriteAggregates(ctx, batch); err != nil {
				log.Fatalf("write: %v", err)
			}
			batch = batch[:0]
			fmt.Fprintf(os.Stderr, "\r%s: %d turns, %.0f turns/s", hour.Format("2006-01-02"), written,
				float64(written)/time.Since(start).Seconds())
		}
	}
	elapsed := time.Since(start)
	exp.Users = int64(len(g.seen))
	mem, _ := rdb.Info(ctx, "memory").Result()
	keys, _ := rdb.DBSize(ctx).Result()
	fmt.Fprintf(os.Stderr, "\n")
	fmt.Printf("wrote %d turns of %d users over %d days in %s (%.0f turns/s, GOMAXPROCS %d); %d keys in the database; %s\n",
		written, exp.Users, *days, elapsed.Round(time.Millisecond), float64(written)/elapsed.Seconds(),
		runtime.GOMAXPROCS(0), keys, usedMemory(mem))
	if *expectPath != "" {
		raw, _ := json.MarshalIndent(exp, "", "  ")
		if err := os.WriteFile(*expectPath, raw, 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

func (e *Expect) add(t *analytics.Turn) {
	e.Turns++
	e.Outcomes[t.Outcome]++
	e.Intents[t.Intent]++
	e.Channels[t.Channel]++
}

func usedMemory(info string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory_human:"); ok {
			return "redis used_memory " + v
		}
	}
	return ""
}

// generator makes plausible turns: three channels, twenty intents with a
// skewed popularity, a few percent of fallbacks drawn from a few hundred
// phrasings, rare errors and timeouts, log-normal latencies.
type generator struct {
	bot       string
	rng       *rand.Rand
	users     int
	userNames []string
	userIndex map[string]int
	intents   []string
	phrases   []string
	seen      map[int]bool
	lastDay   map[int]int64
}

func newGenerator(bot string, users int, seed uint64) *generator {
	g := &generator{bot: bot, rng: rand.New(rand.NewPCG(seed, 2)), users: users, seen: make(map[int]bool, users),
		lastDay: make(map[int]int64, users)}
	g.userNames = make([]string, users)
	g.userIndex = make(map[string]int, users)
	for i := range g.userNames {
		g.userNames[i] = fmt.Sprintf("user-%07d", i)
		g.userIndex[g.userNames[i]] = i
	}
	for i := 0; i < 20; i++ {
		g.intents = append(g.intents, fmt.Sprintf("Intent%02d", i))
	}
	for i := 0; i < 400; i++ {
		g.phrases = append(g.phrases, fmt.Sprintf("unmatched phrasing number %d", i))
	}
	return g
}

// zipf picks 0..n-1 with a skew towards small values.
func (g *generator) zipf(n int) int {
	return min(n-1, int(math.Floor(math.Pow(float64(n+1), g.rng.Float64())))-1)
}

func (g *generator) turn(at time.Time) analytics.Turn {
	u := g.zipf(g.users)
	t := analytics.Turn{At: at, Bot: g.bot, User: g.userNames[u], Conversation: g.userNames[u], Outcome: analytics.OutcomeHandled}
	switch c := g.rng.IntN(100); {
	case c < 60:
		t.Channel = "web"
	case c < 85:
		t.Channel = "voice"
	default:
		t.Channel = "slack"
	}
	switch c := g.rng.IntN(100); {
	case c < 8:
		t.Intent, t.Source, t.Outcome = "fallback", "fallback", analytics.OutcomeFallback
		t.Text = g.phrases[g.zipf(len(g.phrases))]
	case c < 10:
		t.Source, t.Outcome = "builtin", analytics.OutcomeFallback
		t.Text = g.phrases[g.zipf(len(g.phrases))]
	default:
		t.Intent = g.intents[g.zipf(len(g.intents))]
		switch {
		case t.Channel == "voice":
			t.Source, t.Confidence = "platform", 0.7+0.3*g.rng.Float64()
		case c < 30:
			t.Source = "expect"
		default:
			t.Source, t.Confidence = "classifier", 0.5+0.5*g.rng.Float64()
		}
		if e := g.rng.IntN(1000); e < 10 {
			t.Outcome = analytics.OutcomeError
		} else if e < 15 {
			t.Outcome = analytics.OutcomeTimeout
		}
	}
	t.Latency = time.Duration(math.Exp(math.Log(8e6)+0.8*g.rng.NormFloat64())) + 300*time.Microsecond
	t.HandlerTime = t.Latency / 3
	return t
}

// mark sets NewUser on each user's first turn ever and NewConversation on
// each user's first turn of a day, on turns in time order.
func (g *generator) mark(turns []analytics.Turn, e *Expect) {
	for i := range turns {
		t := &turns[i]
		u := g.userIndex[t.User]
		if !g.seen[u] {
			g.seen[u] = true
			t.NewUser = true
			e.NewUsers++
		}
		day := t.At.Unix() / 86400
		if g.lastDay[u] != day {
			g.lastDay[u] = day
			t.NewConversation = true
			e.Convs++
		}
	}
}
