package bots

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testredis"
	"github.com/parleyhq/parley/sandbox"
	"github.com/redis/go-redis/v9"
)

func versionSource(v string) string {
	return fmt.Sprintf("function handle() return %q end", v)
}

func TestBucketIsDeterministicAndEven(t *testing.T) {
	if first, again := Bucket("Order", "alice"), Bucket("Order", "alice"); first != again {
		t.Fatal("Bucket is not deterministic")
	}
	// The ids are fixed, so these shares are fixed too: the bounds cannot flake.
	const n = 20000
	var counts [100]int
	for i := range n {
		counts[Bucket("Order", fmt.Sprintf("conv-%d", i))]++
	}
	for _, p := range []int{1, 5, 10, 30, 50, 90} {
		in := 0
		for b := range p {
			in += counts[b]
		}
		if share := 100 * float64(in) / n; share < float64(p)-1 || share > float64(p)+1 {
			t.Errorf("a %d%% canary gets %.2f%% of %d conversations", p, share, n)
		}
	}
	// Different intents pick different conversations.
	same := 0
	for i := range 1000 {
		id := fmt.Sprintf("conv-%d", i)
		if (Bucket("Order", id) < 10) == (Bucket("Greet", id) < 10) {
			same++
		}
	}
	if same > 900 {
		t.Errorf("canaries of two intents agree on %d of 1000 conversations", same)
	}
}

func TestHandlerSelect(t *testing.T) {
	prog := func(v string) *sandbox.Program {
		p, err := sandbox.Compile("Order.lua", versionSource(v))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	h := Handler{Version: 2, Program: prog("v2"), Canary: Release{Version: 3, Program: prog("v3")}, CanaryPercent: 40,
		Previous: Release{Version: 1, Program: prog("v1")}}
	var inCanary, outside string
	for i := 0; inCanary == "" || outside == ""; i++ {
		id := fmt.Sprintf("c%d", i)
		if Bucket("Order", id) < 40 {
			inCanary = id
		} else {
			outside = id
		}
	}
	for _, tc := range []struct {
		name         string
		conversation string
		pinned, want int
	}{
		{"new conversation in the canary's share", inCanary, 0, 3},
		{"new conversation outside it", outside, 0, 2},
		{"pinned to the canary", outside, 3, 3},
		{"pinned to stable", inCanary, 2, 2},
		{"pinned to previous", inCanary, 1, 1},
		{"pinned to a version no longer served", inCanary, 7, 3},
		{"pinned to a version no longer served, outside", outside, 7, 2},
	} {
		if got := h.Select("Order", tc.conversation, tc.pinned); got.Version != tc.want || got.Program == nil {
			t.Errorf("%s: Select = %d, want %d", tc.name, got.Version, tc.want)
		}
	}
	// Without canary and previous, every conversation gets the stable version.
	plain := Handler{Version: 5, Program: prog("v5")}
	for _, pinned := range []int{0, 1, 3, 5} {
		if got := plain.Select("Order", inCanary, pinned); got.Version != 5 {
			t.Errorf("pinned %d: Select = %d, want 5", pinned, got.Version)
		}
	}
	// A canary at 0% keeps its pinned conversations but gets no new ones.
	paused := h
	paused.CanaryPercent = 0
	if got := paused.Select("Order", inCanary, 0); got.Version != 2 {
		t.Errorf("0%% canary took a new conversation")
	}
	if got := paused.Select("Order", inCanary, 3); got.Version != 3 {
		t.Errorf("0%% canary dropped a pinned conversation")
	}
}

// retirements records OnRetire calls.
type retirements struct {
	mu  sync.Mutex
	got []string
}

func (r *retirements) add(bot, intent string, version int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, fmt.Sprintf("%s/%s@%d", bot, intent, version))
}

func (r *retirements) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.got
	r.got = nil
	slices.Sort(out)
	return out
}

// served describes what a snapshot serves for an intent, e.g. "2 canary 3@40 previous 1".
func served(t *testing.T, c *Catalog, bot, intent string) string {
	t.Helper()
	b, err := c.Bot(context.Background(), bot)
	if err != nil {
		t.Fatal(err)
	}
	h, ok := b.Handlers[intent]
	if !ok {
		return "none"
	}
	s := fmt.Sprint(h.Version)
	if h.Canary.Program != nil {
		s += fmt.Sprintf(" canary %d@%d", h.Canary.Version, h.CanaryPercent)
	}
	if h.Previous.Program != nil {
		s += fmt.Sprintf(" previous %d", h.Previous.Version)
	}
	return s
}

func TestCanaryLifecycle(t *testing.T) {
	ctx := context.Background()
	ret := &retirements{}
	c := New(testredis.Client(t), Config{KeyPrefix: testredis.Prefix(t), OnRetire: ret.add})
	newBot(t, c, "shop")
	mustPut := func(src string) Version {
		t.Helper()
		v, _, err := c.PutHandler(ctx, "shop", "Order", src)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	mustCanary := func(src string, percent int) CanaryUpload {
		t.Helper()
		up, err := c.PutCanary(ctx, "shop", "Order", src, percent)
		if err != nil {
			t.Fatal(err)
		}
		return up
	}
	expect := func(want string) {
		t.Helper()
		if got := served(t, c, "shop", "Order"); got != want {
			t.Fatalf("serves %q, want %q", got, want)
		}
	}

	if _, err := c.PutCanary(ctx, "shop", "Order", versionSource("v1"), 10); err == nil || !strings.Contains(err.Error(), "no stable version") {
		t.Fatalf("canary without a stable version: %v", err)
	}
	mustPut(versionSource("v1"))
	expect("1")
	if _, err := c.PutCanary(ctx, "shop", "Order", versionSource("v2"), 101); err == nil {
		t.Fatal("canary at 101% accepted")
	}
	if up := mustCanary(versionSource("v2"), 30); up.Version.Version != 2 || up.Unchanged || up.Stable {
		t.Fatalf("canary upload = %+v", up)
	}
	expect("1 canary 2@30")

	// A plain upload of other code is refused while the canary runs; one of
	// the canary's own code changes nothing.
	var conflict *CanaryConflictError
	if _, _, err := c.PutHandler(ctx, "shop", "Order", versionSource("v9")); !errors.As(err, &conflict) ||
		conflict.Version != 2 || conflict.Percent != 30 {
		t.Fatalf("plain upload during a canary: %v", err)
	}
	if v, unchanged, err := c.PutHandler(ctx, "shop", "Order", versionSource("v2")); err != nil || !unchanged || v.Version != 2 {
		t.Fatalf("plain upload of the canary's code: %v %v %v", v, unchanged, err)
	}
	// Uploading the canary again sets its percent; uploading the stable code starts nothing.
	if up := mustCanary(versionSource("v2"), 50); !up.Unchanged || up.Stable || up.Version.Version != 2 {
		t.Fatalf("canary re-upload = %+v", up)
	}
	expect("1 canary 2@50")
	if up := mustCanary(versionSource("v1"), 50); !up.Unchanged || !up.Stable || up.Version.Version != 1 {
		t.Fatalf("canary upload of the stable code = %+v", up)
	}
	if err := c.SetCanaryPercent(ctx, "shop", "Order", 40); err != nil {
		t.Fatal(err)
	}
	expect("1 canary 2@40")

	info, err := c.GetHandler(ctx, "shop", "Order")
	if err != nil {
		t.Fatal(err)
	}
	if info.Current != 1 || info.Canary == nil || *info.Canary != (Canary{Version: 2, Percent: 40}) || len(info.Versions) != 2 {
		t.Fatalf("handler info = %+v", info)
	}
	bi, err := c.GetBot(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if bi.Canaries["Order"] != (Canary{Version: 2, Percent: 40}) || bi.Intents["Order"] != 1 {
		t.Fatalf("bot info = %+v", bi)
	}
	list, err := c.ListHandlers(ctx, "shop")
	if err != nil || len(list) != 1 || list[0].Canary == nil || list[0].Canary.Version != 2 {
		t.Fatalf("handler list = %+v, %v", list, err)
	}

	// Promote: the old stable version stays for its conversations.
	if v, err := c.PromoteCanary(ctx, "shop", "Order"); err != nil || v != 2 {
		t.Fatalf("promote = %d, %v", v, err)
	}
	expect("2 previous 1")
	if got := ret.take(); len(got) != 0 {
		t.Fatalf("promotion retired %v", got)
	}
	// A new canary keeps the previous version; replacing it retires the old canary.
	mustCanary(versionSource("v3"), 20)
	expect("2 canary 3@20 previous 1")
	mustCanary(versionSource("v4"), 20)
	expect("2 canary 4@20 previous 1")
	if got := ret.take(); !slices.Equal(got, []string{"shop/Order@3"}) {
		t.Fatalf("replacing the canary retired %v", got)
	}
	if v, err := c.AbortCanary(ctx, "shop", "Order"); err != nil || v != 4 {
		t.Fatalf("abort = %d, %v", v, err)
	}
	expect("2 previous 1")
	if _, err := c.AbortCanary(ctx, "shop", "Order"); !errors.Is(err, ErrNoCanary) {
		t.Fatalf("second abort: %v", err)
	}
	if err := c.SetCanaryPercent(ctx, "shop", "Order", 5); !errors.Is(err, ErrNoCanary) {
		t.Fatalf("percent without a canary: %v", err)
	}
	if _, err := c.PromoteCanary(ctx, "shop", "Order"); !errors.Is(err, ErrNoCanary) {
		t.Fatalf("promote without a canary: %v", err)
	}

	// A plain upload serves everyone: no previous version is kept.
	mustPut(versionSource("v5"))
	expect("5")
	if got := ret.take(); !slices.Equal(got, []string{"shop/Order@1", "shop/Order@2", "shop/Order@4"}) {
		t.Fatalf("plain upload retired %v", got)
	}
	// Rollback drops canary and previous.
	mustCanary(versionSource("v6"), 50)
	if _, err := c.PromoteCanary(ctx, "shop", "Order"); err != nil {
		t.Fatal(err)
	}
	mustCanary(versionSource("v7"), 50)
	expect("6 canary 7@50 previous 5")
	if err := c.Rollback(ctx, "shop", "Order", 5); err != nil {
		t.Fatal(err)
	}
	expect("5")
	if got := ret.take(); !slices.Equal(got, []string{"shop/Order@6", "shop/Order@7"}) {
		t.Fatalf("rollback retired %v", got)
	}
	// Deleting the handler deletes its rollout.
	mustCanary(versionSource("v8"), 50)
	if err := c.DeleteHandler(ctx, "shop", "Order"); err != nil {
		t.Fatal(err)
	}
	mustPut(versionSource("again"))
	expect("1")
}

// dropPublish makes a client lose its change announcements, as a replica
// whose Pub/Sub message never arrives.
type dropPublish struct{}

func (dropPublish) DialHook(next redis.DialHook) redis.DialHook { return next }
func (dropPublish) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "publish" {
			return nil
		}
		return next(ctx, cmd)
	}
}
func (dropPublish) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestMissedAnnouncementIsCaughtByGenerationCheck changes a canary on one
// replica whose announcements are lost: the other replica notices within
// its refresh interval.
func TestMissedAnnouncementIsCaughtByGenerationCheck(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prefix := testredis.Prefix(t)
	quiet := testredis.Client(t)
	quiet.AddHook(dropPublish{})
	a := New(quiet, Config{KeyPrefix: prefix})
	b := New(testredis.Client(t), Config{KeyPrefix: prefix, RefreshInterval: 100 * time.Millisecond})
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	newBot(t, a, "shop")
	if _, _, err := a.PutHandler(ctx, "shop", "Order", versionSource("v1")); err != nil {
		t.Fatal(err)
	}
	if got := served(t, b, "shop", "Order"); got != "1" {
		t.Fatalf("b serves %q", got)
	}
	for _, step := range []struct {
		change func() error
		want   string
	}{
		{func() error { _, err := a.PutCanary(ctx, "shop", "Order", versionSource("v2"), 25); return err }, "1 canary 2@25"},
		{func() error { return a.SetCanaryPercent(ctx, "shop", "Order", 75) }, "1 canary 2@75"},
		{func() error { _, err := a.PromoteCanary(ctx, "shop", "Order"); return err }, "2 previous 1"},
		{func() error { return a.Rollback(ctx, "shop", "Order", 1) }, "1"},
	} {
		start := time.Now()
		if err := step.change(); err != nil {
			t.Fatal(err)
		}
		for served(t, b, "shop", "Order") != step.want {
			if time.Since(start) > time.Second {
				t.Fatalf("b still serves %q 1s after a change to %q", served(t, b, "shop", "Order"), step.want)
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Logf("change to %q reached the other replica by the generation check in %v", step.want, time.Since(start).Round(time.Millisecond))
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// pauseAfterPipeline holds the first snapshot-loading pipeline (the one with
// many commands) run after arming until release is closed, after it has read
// Redis.
type pauseAfterPipeline struct {
	mu      sync.Mutex
	armed   bool
	paused  chan struct{}
	release chan struct{}
}

func (p *pauseAfterPipeline) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (p *pauseAfterPipeline) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (p *pauseAfterPipeline) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if len(cmds) < 5 {
			return err // connection setup, or a handler source read
		}
		p.mu.Lock()
		armed := p.armed
		p.armed = false
		p.mu.Unlock()
		if armed {
			close(p.paused)
			<-p.release
		}
		return err
	}
}

// TestLoadRacingAChangeIsNotCached: a snapshot read before a change but
// finished after its announcement answers its own caller only.
func TestLoadRacingAChangeIsNotCached(t *testing.T) {
	ctx := context.Background()
	prefix := testredis.Prefix(t)
	a := New(testredis.Client(t), Config{KeyPrefix: prefix})
	slow := testredis.Client(t)
	pause := &pauseAfterPipeline{paused: make(chan struct{}), release: make(chan struct{})}
	slow.AddHook(pause)
	b := New(slow, Config{KeyPrefix: prefix, RefreshInterval: time.Hour})
	newBot(t, a, "shop")
	if _, _, err := a.PutHandler(ctx, "shop", "Order", versionSource("v1")); err != nil {
		t.Fatal(err)
	}
	pause.mu.Lock()
	pause.armed = true
	pause.mu.Unlock()
	got := make(chan string, 1)
	go func() { got <- served(t, b, "shop", "Order") }()
	<-pause.paused // b has read version 1 and not yet cached it
	if _, err := a.PutCanary(ctx, "shop", "Order", versionSource("v2"), 50); err != nil {
		t.Fatal(err)
	}
	b.invalidate("shop") // the announcement arrives
	close(pause.release)
	if s := <-got; s != "1" {
		t.Fatalf("racing load served %q, want the state it read", s)
	}
	if s := served(t, b, "shop", "Order"); s != "1 canary 2@50" {
		t.Fatalf("after the announcement b serves %q: a stale snapshot was cached", s)
	}
}
