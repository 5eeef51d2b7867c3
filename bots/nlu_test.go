package bots

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/intents"
	"github.com/parleyhq/parley/intents/nlu"
	"github.com/parleyhq/parley/internal/testredis"
	"github.com/parleyhq/parley/msg"
	"github.com/redis/go-redis/v9"
)

// trainings counts the trainings of one catalog.
type trainings struct{ n atomic.Int32 }

func (tr *trainings) config(prefix string) Config {
	return Config{KeyPrefix: prefix, RefreshInterval: 50 * time.Millisecond,
		OnTrain: func(string, int, time.Duration, error) { tr.n.Add(1) }}
}

var shopNLU = NLU{
	Intents: map[string][]string{
		"Order":    {"I want a [large](size) pizza", "order a pizza", "can I get a [small](size) pizza"},
		"Greet":    {"hello", "hi there", "good morning"},
		"fallback": {"what is the weather", "tell me a joke"},
	},
	Slots: map[string]Slot{"size": {Values: map[string][]string{"large": {"big"}}}},
}

// bigger is shopNLU plus an Hours intent.
func bigger() NLU {
	n := NLU{Intents: map[string][]string{"Hours": {"when are you open", "opening hours", "are you open today"}}, Slots: shopNLU.Slots}
	for k, v := range shopNLU.Intents {
		n.Intents[k] = v
	}
	return n
}

type Slot = nlu.Slot

func best(t *testing.T, b *Bot, text string) string {
	t.Helper()
	if b.Model == nil {
		t.Fatalf("bot %s has no model", b.Name)
	}
	c := b.Classifier.Classify(text)
	if len(c) == 0 || c[0].Confidence < b.Threshold() {
		return "fallback"
	}
	return c[0].Intent
}

func newBot(t *testing.T, c *Catalog, name string) {
	t.Helper()
	if _, err := c.PutBot(context.Background(), name, Settings{}); err != nil {
		t.Fatal(err)
	}
}

// TestModelSharedBetweenReplicas: the replica that receives the upload trains
// and stores the model; another replica uses the stored one without training.
func TestModelSharedBetweenReplicas(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		prefix := testredis.Prefix(t)
		var ta, tb trainings
		a, b := New(rdb, ta.config(prefix)), New(rdb, tb.config(prefix))
		newBot(t, a, "shop")
		if err := a.PutNLU(ctx, "shop", shopNLU); err != nil {
			t.Fatal(err)
		}
		if ta.n.Load() != 1 {
			t.Fatalf("uploading replica trained %d times, want 1", ta.n.Load())
		}
		bot, err := b.Bot(ctx, "shop")
		if err != nil {
			t.Fatal(err)
		}
		if got := best(t, bot, "I'd like a big pizza"); got != "Order" {
			t.Errorf("replica b routes to %q", got)
		}
		if got := bot.Model.Slots("a big one"); got["size"] != "large" {
			t.Errorf("slots on replica b = %v", got)
		}
		if tb.n.Load() != 0 {
			t.Errorf("replica b trained %d times, want 0 (it should load the stored model)", tb.n.Load())
		}
		// The management view still counts examples.
		info, err := b.GetBot(ctx, "shop")
		if err != nil || info.NLU["Order"] != 3 {
			t.Errorf("GetBot = %+v, %v", info, err)
		}
		// Reloading after an unrelated change reuses the decoded model.
		if _, err := a.PutBot(ctx, "shop", Settings{DisplayName: "Shop"}); err != nil {
			t.Fatal(err)
		}
		b.invalidate("shop")
		again, err := b.Bot(ctx, "shop")
		if err != nil || again.Model != bot.Model || again.Settings.DisplayName != "Shop" {
			t.Errorf("reload: model reused %v, settings %+v, err %v", again.Model == bot.Model, again.Settings, err)
		}
	})
}

// TestRetrainWhileServing: large data trains in the background while the
// previous model keeps answering on every replica; the new model takes over
// when it is stored.
func TestRetrainWhileServing(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		prefix := testredis.Prefix(t)
		var ta, tb trainings
		cfgA := ta.config(prefix)
		cfgA.NLUSyncExamples = 8 // shopNLU (8 examples) trains at once, bigger() in the background
		release := make(chan struct{})
		cfgA.OnTrainStart = func(ctx context.Context, _ string, examples int) {
			if examples > cfgA.NLUSyncExamples { // only the background training waits
				select {
				case <-release:
				case <-ctx.Done():
				}
			}
		}
		a, b := New(rdb, cfgA), New(rdb, tb.config(prefix))
		for _, c := range []*Catalog{a, b} {
			go func() { _ = c.Run(ctx) }() // Run only ever ends with nil, once ctx is done
		}
		newBot(t, a, "shop")
		if err := a.PutNLU(ctx, "shop", shopNLU); err != nil {
			t.Fatal(err)
		}
		if err := a.PutNLU(ctx, "shop", bigger()); err != nil {
			t.Fatal(err)
		}
		// The new data is stored at once...
		if n, err := a.GetNLU(ctx, "shop"); err != nil || len(n.Intents) != 4 {
			t.Fatalf("GetNLU = %v, %v", n.Intents, err)
		}
		// ... but both replicas keep serving the previous model.
		for name, c := range map[string]*Catalog{"a": a, "b": b} {
			bot, err := c.Bot(ctx, "shop")
			if err != nil {
				t.Fatal(err)
			}
			if got := best(t, bot, "order a pizza"); got != "Order" {
				t.Errorf("replica %s while training: %q", name, got)
			}
			for _, intent := range bot.Model.Intents() {
				if intent == "Hours" {
					t.Errorf("replica %s serves the new model before it is stored", name)
				}
			}
		}
		close(release)
		for name, c := range map[string]*Catalog{"a": a, "b": b} {
			deadline := time.Now().Add(20 * time.Second)
			for {
				bot, err := c.Bot(ctx, "shop")
				if err != nil {
					t.Fatal(err)
				}
				if best(t, bot, "what are your opening hours") == "Hours" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("replica %s never served the new model", name)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		if ta.n.Load() != 2 || tb.n.Load() != 0 {
			t.Errorf("trainings: a %d (want 2), b %d (want 0)", ta.n.Load(), tb.n.Load())
		}
	})
}

// TestModelRetrainedWhenMissingOrOld: a stored model from another format
// version, or none at all (data from before models were stored), is
// retrained by the replica that loads the bot and stored for the others.
func TestModelRetrainedWhenMissingOrOld(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		prefix := testredis.Prefix(t)
		var ta trainings
		a := New(rdb, ta.config(prefix))
		newBot(t, a, "shop")
		if err := a.PutNLU(ctx, "shop", shopNLU); err != nil {
			t.Fatal(err)
		}
		k := a.keys("shop")
		sum, err := rdb.Get(ctx, k.nluSum).Result()
		if err != nil {
			t.Fatal(err)
		}
		for name, damage := range map[string]func(){
			"old format": func() { rdb.Set(ctx, k.model, sum+"PNLU\x00\x00\x00\x00stale", 0) },
			"missing":    func() { rdb.Del(ctx, k.model, k.nluSum) },
		} {
			damage()
			var tc, td trainings
			c, d := New(rdb, tc.config(prefix)), New(rdb, td.config(prefix))
			bot, err := c.Bot(ctx, "shop")
			if err != nil {
				t.Fatal(err)
			}
			if got := best(t, bot, "hello there"); got != "Greet" || tc.n.Load() != 1 {
				t.Errorf("%s: routed to %q after %d trainings", name, got, tc.n.Load())
			}
			if _, err := d.Bot(ctx, "shop"); err != nil || td.n.Load() != 0 {
				t.Errorf("%s: the next replica trained again (%d, %v)", name, td.n.Load(), err)
			}
		}
	})
}

func TestPutNLURejectsBadData(t *testing.T) {
	ctx := context.Background()
	c := New(testredis.Embedded(t), Config{})
	newBot(t, c, "shop")
	for _, n := range []NLU{
		{Intents: map[string][]string{"bad name!": {"x"}}},
		{Intents: map[string][]string{"A": {"x"}}, Slots: map[string]Slot{"s": {Regex: "("}}},
		{Intents: map[string][]string{"A": {"x"}}, Threshold: 2},
	} {
		var ve *ValidationError
		if err := c.PutNLU(ctx, "shop", n); err == nil || !errors.As(err, &ve) {
			t.Errorf("%+v: err = %v, want a ValidationError", n, err)
		}
	}
}

// TestOutdatedModel: a model stored by an older release that this one still
// reads (format version 1) keeps answering while it is trained again; the
// retrained model, with this release's calibration, is stored for every
// replica. Small data is retrained before the bot loads, large data in the
// background.
func TestOutdatedModel(t *testing.T) {
	old, err := os.ReadFile("testdata/shop-v1.model")
	if err != nil {
		t.Fatal(err)
	}
	if m, err := nlu.UnmarshalModel(old); err != nil || !m.Outdated() {
		t.Fatalf("testdata/shop-v1.model: %v", err)
	}
	for _, background := range []bool{false, true} {
		t.Run(map[bool]string{false: "small", true: "large"}[background], func(t *testing.T) {
			testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				prefix := testredis.Prefix(t)
				var ta trainings
				a := New(rdb, ta.config(prefix))
				newBot(t, a, "shop")
				if err := a.PutNLU(ctx, "shop", shopNLU); err != nil {
					t.Fatal(err)
				}
				k := a.keys("shop")
				sum, err := rdb.Get(ctx, k.nluSum).Result()
				if err != nil {
					t.Fatal(err)
				}
				if err := rdb.Set(ctx, k.model, sum+string(old), 0).Err(); err != nil {
					t.Fatal(err)
				}
				var tc trainings
				cfg := tc.config(prefix)
				release := make(chan struct{})
				if background {
					cfg.NLUSyncExamples = 1
					cfg.OnTrainStart = func(ctx context.Context, _ string, _ int) {
						select {
						case <-release:
						case <-ctx.Done():
						}
					}
				} else {
					close(release)
				}
				c := New(rdb, cfg)
				go func() { _ = c.Run(ctx) }()
				bot, err := c.Bot(ctx, "shop")
				if err != nil {
					t.Fatal(err)
				}
				if background {
					// The old model answers while the new one trains.
					if bot.Model == nil || !bot.Model.Outdated() || best(t, bot, "hello there") != "Greet" {
						t.Fatalf("while retraining: model %v", bot.Model)
					}
					close(release)
				}
				deadline := time.Now().Add(20 * time.Second)
				for bot.Model == nil || bot.Model.Outdated() {
					if time.Now().After(deadline) {
						t.Fatal("the outdated model was never replaced")
					}
					time.Sleep(20 * time.Millisecond)
					if bot, err = c.Bot(ctx, "shop"); err != nil {
						t.Fatal(err)
					}
				}
				if best(t, bot, "hello there") != "Greet" || bot.Threshold() != bot.Model.Calibration().Threshold {
					t.Errorf("retrained: threshold %v, calibration %+v", bot.Threshold(), bot.Model.Calibration())
				}
				raw, err := rdb.Get(ctx, k.model).Bytes()
				if err != nil {
					t.Fatal(err)
				}
				if m, err := nlu.UnmarshalModel(raw[sumLen:]); err != nil || m.Outdated() {
					t.Errorf("stored model after retraining: outdated, or %v", err)
				}
				// Another replica loads the stored model without training.
				var td trainings
				if _, err := New(rdb, td.config(prefix)).Bot(ctx, "shop"); err != nil || td.n.Load() != 0 {
					t.Errorf("the next replica trained %d times (%v)", td.n.Load(), err)
				}
				if tc.n.Load() != 1 {
					t.Errorf("retrained %d times, want 1", tc.n.Load())
				}
			})
		})
	}
}

// TestCalibratedThreshold: a small bot's model is calibrated on its own
// examples, the calibrated threshold is the one the bot routes with (on a
// replica that loaded the stored model, too), and the bot's nlu_threshold
// setting still overrides it.
func TestCalibratedThreshold(t *testing.T) {
	ctx := context.Background()
	rdb := testredis.Embedded(t)
	prefix := testredis.Prefix(t)
	var ta, tb trainings
	a, b := New(rdb, ta.config(prefix)), New(rdb, tb.config(prefix))
	newBot(t, a, "shop")
	data := NLU{Intents: map[string][]string{
		"Order":  {"I want a pizza", "order a pizza", "can I get a pizza", "a pizza please", "I'd like to order food"},
		"Greet":  {"hello", "hi there", "good morning", "hey", "good evening"},
		"Hours":  {"when are you open", "opening hours", "are you open today", "what time do you close", "are you open on sunday"},
		"Track":  {"where is my order", "track my delivery", "is my pizza on its way", "how long until my food arrives", "delivery status"},
		"Cancel": {"cancel my order", "I don't want the pizza anymore", "stop my order", "cancel the delivery", "please cancel it"},
	}}
	if err := a.PutNLU(ctx, "shop", data); err != nil {
		t.Fatal(err)
	}
	bot, err := b.Bot(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	cal := bot.Model.Calibration()
	if tb.n.Load() != 0 || cal.HeldOut == 0 || cal.StandIns == 0 || bot.Threshold() != cal.Threshold || cal.Threshold == DefaultThreshold {
		t.Fatalf("threshold %v, calibration %+v, trainings on the loading replica %d", bot.Threshold(), cal, tb.n.Load())
	}
	has := func(string) bool { return true }
	route := func(bot *Bot, text string) msg.Decision {
		return intents.Route(&msg.Event{Text: text}, intents.RouteInput{Has: has, Classifier: bot.Classifier, Threshold: bot.Threshold()})
	}
	for text, want := range map[string]string{
		"could I order a pizza":       "Order",
		"hi!":                         "Greet",
		"are you open tomorrow":       "Hours",
		"where is my delivery":        "Track",
		"what is the capital of peru": intents.FallbackIntent,
	} {
		if d := route(bot, text); d.Intent != want {
			t.Errorf("%q: %+v, want %s (threshold %.3f)", text, d, want, bot.Threshold())
		}
	}
	if _, err := a.PutBot(ctx, "shop", Settings{NLUThreshold: 0.999}); err != nil {
		t.Fatal(err)
	}
	b.invalidate("shop")
	if bot, err = b.Bot(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	if bot.Threshold() != 0.999 {
		t.Fatalf("nlu_threshold 0.999: threshold %v", bot.Threshold())
	}
	if d := route(bot, "could I order a pizza"); d.Intent != intents.FallbackIntent || len(d.Candidates) == 0 {
		t.Errorf("nlu_threshold 0.999: %+v", d)
	}
}
