package queue

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/internal/testredis"
	"github.com/parleyhq/parley/msg"
)

// streamingRunner writes its answer to the turn's stream before returning it.
type streamingRunner struct{ fakeRunner }

func (r *streamingRunner) Run(ctx context.Context, ev *msg.Event) (*msg.TurnResult, error) {
	if s := msg.StreamOf(ctx); s != nil && ev.Text != "quiet" {
		s.Write("re: ")
		s.Write(ev.Text)
	}
	return r.fakeRunner.Run(ctx, ev)
}

// streamingSender is a Streamer whose streams record what they were given;
// a stream that was written to delivers the result itself.
type streamingSender struct {
	fakeSender
	mu       sync.Mutex
	streamed map[string]string // event id -> text written
	finished map[string]string // event id -> final text ("<nil>" for none)
	failOnce bool
}

type recStream struct {
	s    *streamingSender
	ev   *msg.Event
	text strings.Builder
}

func (s *streamingSender) Stream(_ context.Context, _ channels.Settings, ev *msg.Event) channels.ReplyStream {
	return &recStream{s: s, ev: ev}
}

func (r *recStream) Write(text string) { r.text.WriteString(text) }

func (r *recStream) Finish(_ context.Context, res *msg.TurnResult) (bool, error) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.s.streamed == nil {
		r.s.streamed, r.s.finished = map[string]string{}, map[string]string{}
	}
	r.s.streamed[r.ev.ID] = r.text.String()
	if res == nil {
		r.s.finished[r.ev.ID] = "<nil>"
		return false, nil
	}
	if r.text.Len() == 0 {
		return false, nil
	}
	if r.s.failOnce {
		r.s.failOnce = false
		return true, &channels.SendError{Retryable: true, Err: errors.New("edit failed")}
	}
	r.s.finished[r.ev.ID] = res.Replies[0].Text
	return true, nil
}

func (s *streamingSender) result(id string) (streamed, finished string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.finished[id]
	return s.streamed[id], f, ok
}

// TestStreamedTurns: a turn whose channel streams runs with the stream,
// and its stream delivers the result (retried like a send); a turn that
// streamed nothing is sent as usual.
func TestStreamedTurns(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		r := &streamingRunner{fakeRunner: *newRunner()}
		s := &streamingSender{failOnce: true}
		q := testQueue(t, rdb, testredis.Prefix(t), r, s)
		run(t, q)
		enqueue(t, q, event("e1", "c1", "hello"))
		enqueue(t, q, event("e2", "c2", "quiet"))
		eventually(t, "the streamed turn finished", func() bool { _, _, ok := s.result("e1"); return ok })
		streamed, final, _ := s.result("e1")
		if streamed != "re: hello" || final != "re: hello" {
			t.Fatalf("streamed %q, final %q", streamed, final)
		}
		eventually(t, "the quiet turn sent", func() bool { return len(s.sentIDs()) == 1 })
		if ids := s.sentIDs(); ids[0] != "e2" {
			t.Fatalf("sent %v", ids)
		}
	})
}
