package sandbox

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
			for i := range c.calls {
				ev := testEvent()
				ev.User = fmt.Sprint("user-", i)
				ev.Conversation = fmt.Sprint("conv-", i)
				start := time.Now()
				res, err := rt.Run(context.Background(), Call{Key: testKey, Program: prog, Event: ev, Timeout: c.timeout})
				if d := time.Since(start); d > scaled(c.max) {
					t.Errorf("call %d took %v, more than %v", i, d, scaled(c.max))
				}
				if c.kind != "" {
					wantScriptError(t, err, c.kind, c.msg)
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
