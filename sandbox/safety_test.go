package sandbox

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// safetyCase is a script of testdata/safety with its header directives:
//
//	-- calls: N              run N calls on one pool (default 1)
//	-- timeout: 50ms         the handler's budget (default testTimeout)
//	-- max: 500ms            the longest each call may take
//	-- expect: error KIND [text]
//
// Without an expect line every call must return "ok"; scripts check their
// own assertions in Lua.
//
// Every script also runs with a session that must come back untouched when
// the call fails, a VM that must be discarded when the failure may have
// left it dirty (a timeout or a limit), and a benign handler of another bot
// running beside it on the same Runtime that must keep answering.
type safetyCase struct {
	calls   int
	timeout time.Duration
	max     time.Duration
	kind    ErrorKind
	msg     string
}

func parseSafetyHeader(t *testing.T, path string) safetyCase {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := safetyCase{calls: 1, timeout: testTimeout, max: 10 * time.Second}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "-- ")
		if !ok {
			break
		}
		key, val, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		switch key {
		case "calls":
			c.calls, err = strconv.Atoi(val)
		case "timeout":
			c.timeout, err = time.ParseDuration(val)
		case "max":
			c.max, err = time.ParseDuration(val)
		case "expect":
			fields := strings.Fields(val)
			if len(fields) < 2 || fields[0] != "error" {
				err = fmt.Errorf("bad expect %q", val)
				break
			}
			c.kind = ErrorKind(fields[1])
			c.msg = strings.Join(fields[2:], " ")
		}
		if err != nil {
			t.Fatalf("%s: %s: %v", path, key, err)
		}
	}
	return c
}

func TestSafety(t *testing.T) {
	paths, err := filepath.Glob("testdata/safety/*.lua")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no safety scripts: %v", err)
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".lua"), func(t *testing.T) {
			t.Parallel()
			c := parseSafetyHeader(t, path)
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			prog, err := Compile(filepath.Base(path), string(src))
			if err != nil {
				t.Fatal(err)
			}
			rt := New(Config{MaxVMsPerPool: 1})
			defer rt.Close()
			stopNeighbour := runNeighbour(t, rt)
			defer stopNeighbour()
			for i := range c.calls {
				ev := testEvent()
				ev.User = fmt.Sprint("user-", i)
				ev.Conversation = fmt.Sprint("conv-", i)
				session := map[string]any{"keep": "me", "n": int64(1), "list": []any{"a"}}
				before := rt.Stats().Discarded
				start := time.Now()
				res, err := rt.Run(context.Background(), Call{Key: testKey, Program: prog, Event: ev, Timeout: c.timeout, Session: session})
				if d := time.Since(start); d > scaled(c.max) {
					t.Errorf("call %d took %v, more than %v", i, d, scaled(c.max))
				}
				if c.kind != "" {
					_ = wantScriptError(t, err, c.kind, c.msg)
					if res.Session != nil {
						t.Errorf("call %d: a failed call returned a session", i)
					}
					if !reflect.DeepEqual(session, map[string]any{"keep": "me", "n": int64(1), "list": []any{"a"}}) {
						t.Errorf("call %d: the caller's session changed: %v", i, session)
					}
					discarded := rt.Stats().Discarded > before
					if (c.kind == KindTimeout || c.kind == KindLimit) && !discarded {
						t.Errorf("call %d: a VM stopped by a %s went back to its pool", i, c.kind)
					}
					continue
				}
				if err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
				if res.Reply.Text != "ok" {
					t.Fatalf("call %d: got %+v", i, res.Reply)
				}
			}
		})
	}
}

// runNeighbour runs a benign handler of another bot on rt until the
// returned function is called, which fails the test if any of its calls
// failed or took longer than a generous bound.
func runNeighbour(t *testing.T, rt *Runtime) (stop func()) {
	t.Helper()
	prog := mustCompile(t, `function handle(e, s) s.n = (s.n or 0) + 1 return "hi " .. e.user end`)
	key := PoolKey{Bot: "neighbour", Intent: "Greet", Version: 1}
	done := make(chan struct{})
	var wg sync.WaitGroup
	var calls int
	var worst time.Duration
	var failure error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			start := time.Now()
			res, err := rt.Run(context.Background(), Call{Key: key, Program: prog, Event: testEvent(), Timeout: testTimeout})
			worst = max(worst, time.Since(start))
			calls++
			if err == nil && res.Reply.Text != "hi ann" {
				err = fmt.Errorf("reply %+v", res.Reply)
			}
			if err != nil {
				failure = err
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		if failure != nil {
			t.Errorf("neighbour call %d failed: %v", calls, failure)
		}
		if limit := scaled(time.Second); worst > limit {
			t.Errorf("neighbour: slowest of %d calls took %v, more than %v", calls, worst, limit)
		}
	}
}
