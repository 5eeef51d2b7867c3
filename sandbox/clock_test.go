package sandbox

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ctxClock is a Clock that reads the time from the call's context, as a
// test host does to give each test its own frozen time.
type ctxClock struct{}

type clockKey struct{}

func (ctxClock) Now(ctx context.Context) time.Time {
	if t, ok := ctx.Value(clockKey{}).(time.Time); ok {
		return t
	}
	return time.Now()
}

func TestClockFreezesHandlerTime(t *testing.T) {
	rt := New(Config{Clock: ctxClock{}})
	defer rt.Close()
	frozen := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	src := `function handle(e, s)
		return table.concat({os.time(), os.time(nil), os.date("!%Y-%m-%d %H:%M:%S"), time.now(), time.format(time.now()),
			os.date("!*t").year, os.time({year = 2000, month = 1, day = 1, hour = 0}) - os.time({year = 1999, month = 12, day = 31, hour = 0}),
			os.date("!%H:%M", 0)}, "|")
	end`
	prog := mustCompile(t, src)
	for _, at := range []time.Time{frozen, frozen.Add(36 * time.Hour)} {
		ctx := context.WithValue(context.Background(), clockKey{}, at)
		res, err := rt.Run(ctx, Call{Key: testKey, Program: prog, Event: testEvent(), Timeout: testTimeout})
		if err != nil {
			t.Fatal(err)
		}
		unix := strconv.FormatInt(at.Unix(), 10)
		want := unix + "|" + unix + "|" + at.Format(time.DateTime) + "|" + unix + "|" + at.Format(time.RFC3339) + "|" +
			strconv.Itoa(at.Year()) + "|86400|00:00"
		if res.Reply.Text != want {
			t.Errorf("at %s:\n got %s\nwant %s", at, res.Reply.Text, want)
		}
	}
}

func TestClockDefaultsToRealTime(t *testing.T) {
	for _, cfg := range []Config{{}, {Clock: ctxClock{}}} {
		rt := New(cfg)
		before := time.Now().Unix()
		res, err := runWith(t, rt, `function handle() return os.time() .. "|" .. math.floor(time.now()) .. "|" .. os.date("!%Y") end`, Call{})
		after := time.Now().Unix()
		rt.Close()
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(res.Reply.Text, "|")
		if len(parts) != 3 {
			t.Fatalf("reply %q", res.Reply.Text)
		}
		var nums [3]int64
		for i, part := range parts {
			if nums[i], err = strconv.ParseInt(part, 10, 64); err != nil {
				t.Fatalf("reply %q: %v", res.Reply.Text, err)
			}
		}
		osTime, now, year := nums[0], nums[1], nums[2]
		if osTime < before || osTime > after || now < before || now > after || year != int64(time.Unix(osTime, 0).UTC().Year()) {
			t.Errorf("clock %v: reply %q, want times within [%d, %d]", cfg.Clock, res.Reply.Text, before, after)
		}
	}
}
