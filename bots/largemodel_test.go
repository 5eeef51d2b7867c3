package bots

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/parleyhq/parley/intents/nlu"
	"github.com/parleyhq/parley/internal/testredis"
	"github.com/parleyhq/parley/msg"
	"github.com/parleyhq/parley/sandbox"
	"github.com/redis/go-redis/v9"
)

// TestLargeModelStored trains CLINC150 (a model of several MiB) in a
// process whose sandbox has already run handlers: the sandbox's caps on
// gopher-lua (the .. operator among them) apply to its own VMs only, not to
// the embedded store's Lua scripts, which store the model with one large
// concatenation.
func TestLargeModelStored(t *testing.T) {
	rt := sandbox.New(sandbox.Config{})
	defer rt.Close()
	prog, err := sandbox.Compile("Big.lua", `function handle(e, s) local x = string.rep("x", 65536) for i = 1, 5 do x = x .. x end return "ok" end`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Run(context.Background(), sandbox.Call{Key: sandbox.PoolKey{Bot: "b", Intent: "Big", Version: 1},
		Program: prog, Event: &msg.Event{Bot: "b"}, Timeout: time.Minute}); err == nil {
		t.Fatal("a 2 MiB concatenation passed the sandbox's cap")
	}

	f, err := os.Open("../testdata/clinc150/train_val.json")
	if err != nil {
		t.Fatal(err)
	}
	data, _, err := nlu.ReadCLINC(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	for intent, examples := range data.Intents {
		data.Intents[intent] = examples[:min(len(examples), 50)]
	}
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		c := New(rdb, Config{KeyPrefix: testredis.Prefix(t), NLUSyncExamples: 1 << 20, NLUTrainTimeout: 5 * time.Minute})
		newBot(t, c, "clinc")
		if err := c.PutNLU(ctx, "clinc", data); err != nil {
			t.Fatal(err)
		}
		n, err := rdb.StrLen(ctx, c.keys("clinc").model).Result()
		if err != nil || n <= 1<<20 {
			t.Fatalf("stored model is %d bytes (%v), want more than 1 MiB", n, err)
		}
		bot, err := c.Bot(ctx, "clinc")
		if err != nil {
			t.Fatal(err)
		}
		if got := best(t, bot, "what is my credit score"); got != "credit_score" {
			t.Errorf("routed to %q", got)
		}
	})
}
