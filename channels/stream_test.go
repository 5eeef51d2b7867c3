package channels

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/msg"
)

// recEditor records posts and edits with their times.
type recEditor struct {
	mu    sync.Mutex
	texts []string
	times []time.Time
	fail  bool
}

func (e *recEditor) Post(_ context.Context, text string) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fail {
		return "", errors.New("down")
	}
	e.texts, e.times = append(e.texts, "post:"+text), append(e.times, time.Now())
	return "m1", nil
}

func (e *recEditor) Edit(_ context.Context, id, text string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.texts, e.times = append(e.texts, "edit:"+text), append(e.times, time.Now())
	return nil
}

func (e *recEditor) snapshot() ([]string, []time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.texts...), append([]time.Time(nil), e.times...)
}

// TestEditStreamThrottles: changes are at least an interval apart however
// fast text comes, each carries the whole text so far, and Final shows the
// final text exactly.
func TestEditStreamThrottles(t *testing.T) {
	ed := &recEditor{}
	const interval = 40 * time.Millisecond
	s := NewEditStream(context.Background(), ed, interval, 0)
	var all strings.Builder
	end := time.Now().Add(300 * time.Millisecond)
	for i := 0; time.Now().Before(end); i++ {
		s.Write("w ")
		all.WriteString("w ")
		time.Sleep(time.Millisecond)
	}
	// The last text is shown within an interval or so.
	deadline := time.Now().Add(5 * time.Second)
	for {
		texts, _ := ed.snapshot()
		if texts[len(texts)-1] == "edit:"+all.String() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("last change %q, want the whole text", texts[len(texts)-1])
		}
		time.Sleep(10 * time.Millisecond)
	}
	posted, err := s.Final(context.Background(), "the final answer")
	if !posted || err != nil {
		t.Fatalf("final: %v, %v", posted, err)
	}
	texts, times := ed.snapshot()
	if !strings.HasPrefix(texts[0], "post:w") || texts[len(texts)-1] != "edit:the final answer" {
		t.Fatalf("changes %q", texts)
	}
	// The stream measures its interval from its own clock reading, a little
	// before the editor records the change: allow a few milliseconds.
	const slack = 5 * time.Millisecond
	for i := 1; i < len(times)-1; i++ { // the final edit is not throttled
		if gap := times[i].Sub(times[i-1]); gap < interval-slack {
			t.Fatalf("changes %d and %d %v apart, want at least %v", i-1, i, gap, interval)
		}
	}
	if n := len(texts); n > 300/40+3 {
		t.Fatalf("%d changes in 300ms", n)
	}
	// Writes after the end are dropped; Final again shows the same text.
	s.Write("late")
	if posted, err := s.Final(context.Background(), "the final answer"); !posted || err != nil {
		t.Fatalf("final again: %v, %v", posted, err)
	}
	if again, _ := ed.snapshot(); len(again) != len(texts) {
		t.Fatalf("changes after the end: %q", again[len(texts):])
	}
}

func TestEditStreamPreviewAndNothingPosted(t *testing.T) {
	ed := &recEditor{}
	s := NewEditStream(context.Background(), ed, time.Millisecond, 5)
	s.Write("abcdefgh")
	for deadline := time.Now().Add(5 * time.Second); ; {
		if texts, _ := ed.snapshot(); len(texts) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	id, shown := s.Stop()
	if id != "m1" || shown != "abcd…" {
		t.Fatalf("preview %q of %q", shown, id)
	}
	// A stream whose preview was never posted leaves the reply to the caller.
	down := &recEditor{fail: true}
	s = NewEditStream(context.Background(), down, time.Millisecond, 0)
	s.Write("x")
	if posted, err := s.Final(context.Background(), "x!"); posted || err != nil {
		t.Fatalf("final without a post: %v, %v", posted, err)
	}
	if posted, err := NewEditStream(context.Background(), ed, 0, 0).Final(context.Background(), "y"); posted || err != nil {
		t.Fatalf("final of an unused stream: %v, %v", posted, err)
	}
}

func TestSinglePlain(t *testing.T) {
	for _, tc := range []struct {
		res  *msg.TurnResult
		want bool
	}{
		{&msg.TurnResult{Replies: []msg.Reply{{Text: "hi"}}}, true},
		{&msg.TurnResult{Replies: []msg.Reply{{Text: "hi", SSML: "<speak>hi</speak>"}}}, true},
		{&msg.TurnResult{Replies: []msg.Reply{{Text: "hi"}, {Text: "again"}}}, false},
		{&msg.TurnResult{Replies: []msg.Reply{{Text: "hi", Options: []string{"a"}}}}, false},
		{&msg.TurnResult{Replies: []msg.Reply{{Text: "hi", Buttons: []msg.Button{{Title: "a", Payload: "a"}}}}}, false},
		{&msg.TurnResult{Replies: []msg.Reply{{}}}, false},
		{nil, false},
	} {
		if _, ok := SinglePlain(tc.res); ok != tc.want {
			t.Errorf("%+v: %v", tc.res, ok)
		}
	}
}
