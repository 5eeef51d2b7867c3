package channels

import (
	"context"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/parleyhq/parley/msg"
)

// Streamed replies.
//
// A handler's llm.chat{stream = true} writes the model's text to the turn's
// [msg.Stream] while the model generates it. An adapter that can show it
// at once implements [Streamer]: the queue worker (asynchronous channels)
// or the gateway (synchronous ones) opens a [ReplyStream] for the turn's
// event, runs the turn with it, and finishes it with the turn's result.
// The reply the handler returns is the final one: what was streamed is a
// preview that Finish makes exact.

// Streamer is an adapter that shows a turn's reply while the handler writes it.
type Streamer interface {
	// Stream opens the stream of ev's turn, or returns nil when that turn
	// cannot be streamed (a group chat, a request type without it). It
	// sends nothing until text is written.
	Stream(ctx context.Context, s Settings, ev *msg.Event) ReplyStream
}

// RequestStreamer is a synchronous [Streamer] that opens a turn's stream
// from the request its Parse decoded (Request.Parsed), without decoding
// the body again. The gateway prefers it to Stream.
type RequestStreamer interface {
	StreamRequest(ctx context.Context, req *Request, ev *msg.Event) ReplyStream
}

// ReplyStream is one turn's reply, shown while it is written.
type ReplyStream interface {
	msg.Stream
	// Finish ends the stream once the turn has its result. An adapter that
	// sends its replies (a [Sender]) returns sent true when Finish
	// delivered res itself, so the caller must not send it again; false
	// when nothing was streamed and the caller sends res as usual. A
	// synchronous adapter may adjust res before it is rendered, and
	// returns false. res nil means the turn has no result (it failed and
	// will be retried): the stream stops and what it showed stays. Finish
	// may be called again after a failed try; it must be safe to repeat.
	Finish(ctx context.Context, res *msg.TurnResult) (sent bool, err error)
}

// EventStreamer is a synchronous adapter whose callers may take the
// answer as server-sent events: the gateway then sends the reply's text as
// the handler writes it ("delta" events), then the adapter's rendered
// answer ("reply"), then "done".
type EventStreamer interface {
	// WantsEvents reports whether req asks for server-sent events.
	WantsEvents(req *Request) bool
}

// EditPreviewInterval is the shortest time between two changes of a
// streamed message: platforms allow about one message or edit per second
// per chat.
const EditPreviewInterval = time.Second

// Editor posts and edits the one message that previews a streamed reply.
type Editor interface {
	// Post sends text as a new message and returns the message's id.
	Post(ctx context.Context, text string) (id string, err error)
	// Edit replaces the message's text.
	Edit(ctx context.Context, id, text string) error
}

// EditStream shows a streamed reply as one message edited as it grows: the
// first text is posted at once, later text at most once per interval (the
// edit carries the whole text so far), and identical edits are skipped.
// Failures of previews are not retried: the final edit, by [EditStream.Final],
// is what must arrive. Create it with [NewEditStream].
type EditStream struct {
	ed       Editor
	interval time.Duration
	limit    int // characters a message may hold; the preview is cut to it
	ctx      context.Context

	mu      sync.Mutex
	text    strings.Builder
	running bool // the loop was started
	stopped bool // Stop was called: no loop starts any more
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{} // the loop ended

	// Owned by the loop until done is closed, then by Final.
	id    string // the preview message, once posted
	shown string // what it shows
}

// NewEditStream returns a stream that previews through ed, changing the
// message at most once per interval (default [EditPreviewInterval]), each
// preview cut to limit characters (0: no limit). Its requests are bounded
// by ctx.
func NewEditStream(ctx context.Context, ed Editor, interval time.Duration, limit int) *EditStream {
	if interval <= 0 {
		interval = EditPreviewInterval
	}
	return &EditStream{ed: ed, interval: interval, limit: limit, ctx: ctx,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

// Write implements [msg.Stream]: it never blocks.
func (s *EditStream) Write(text string) {
	if text == "" {
		return
	}
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.text.WriteString(text)
	start := !s.running
	s.running = true
	s.mu.Unlock()
	if start {
		go s.loop()
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// loop sends previews until the stream is stopped. A request under way when
// it is stopped completes, so the preview's id is never lost.
func (s *EditStream) loop() {
	defer close(s.done)
	var last time.Time
	for {
		select {
		case <-s.stop:
			return
		case <-s.ctx.Done():
			return
		case <-s.wake:
		}
		if wait := s.interval - time.Since(last); !last.IsZero() && wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-s.stop:
				t.Stop()
				return
			case <-s.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		s.mu.Lock()
		text := preview(s.text.String(), s.limit)
		s.mu.Unlock()
		if text == s.shown {
			continue
		}
		last = time.Now()
		if s.id == "" {
			id, err := s.ed.Post(s.ctx, text)
			if err != nil {
				continue
			}
			s.id = id
		} else if err := s.ed.Edit(s.ctx, s.id, text); err != nil {
			continue
		}
		s.shown = text
	}
}

// preview is text cut to limit characters, marked as cut.
func preview(text string, limit int) string {
	if limit <= 0 || utf8.RuneCountInString(text) <= limit {
		return text
	}
	n := 0
	for i := range text {
		if n == limit-1 {
			return text[:i] + "…"
		}
		n++
	}
	return text
}

// Stop ends the previews and waits for the request under way, if any. It
// returns the preview message's id ("" when none was posted) and the text
// it shows. It may be called more than once.
func (s *EditStream) Stop() (id, shown string) {
	s.mu.Lock()
	running := s.running
	if !s.stopped {
		s.stopped = true
		close(s.stop)
	}
	s.mu.Unlock()
	if running {
		<-s.done
	}
	return s.id, s.shown
}

// Final stops the previews and makes the message show text exactly (an
// edit, skipped when it shows it already). posted is false when no preview
// was ever posted: then nothing was sent, and the caller sends the reply
// as usual.
func (s *EditStream) Final(ctx context.Context, text string) (posted bool, err error) {
	id, shown := s.Stop()
	if id == "" {
		return false, nil
	}
	if text == shown {
		return true, nil
	}
	if err := s.ed.Edit(ctx, id, text); err != nil {
		return true, err
	}
	s.shown = text
	return true, nil
}

// SinglePlain returns the text of a turn that is one reply of plain text,
// which the preview message can become by an edit; ok is false for any
// other turn (several replies, options, buttons, cards or media), which is
// sent as usual after the preview is removed.
func SinglePlain(res *msg.TurnResult) (text string, ok bool) {
	if res == nil || len(res.Replies) != 1 {
		return "", false
	}
	r := &res.Replies[0]
	if r.Text == "" || len(r.Options) > 0 || r.Rich() {
		return "", false
	}
	return r.Text, true
}
