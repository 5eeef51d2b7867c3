package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"

	"github.com/gin-gonic/gin"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/internal/apierr"
	"github.com/parleyhq/parley/internal/jsonx"
	"github.com/parleyhq/parley/msg"
)

// Streamed answers of synchronous channels.
//
// A caller of a channel that implements channels.EventStreamer (the web
// channel, with Accept: text/event-stream) gets the answer as server-sent
// events: "delta" with {"text": "..."} for each piece of the reply's text
// as the handler writes it, then one "reply" whose data is the channel's
// usual answer, then "done". A turn that fails before anything was sent
// gets the usual error answer; one that fails after gets an "error" event
// with the usual error body, then "done".
//
// A synchronous channel that implements channels.Streamer (Alexa's
// progressive responses) gets a stream per event, finished before the
// answer is rendered.

// eventStream writes a turn's answer as server-sent events. Its Write is
// the turn's msg.Stream.
type eventStream struct {
	w http.ResponseWriter

	mu      sync.Mutex
	started bool // the headers were written
	closed  bool // the answer is complete: later writes are dropped
	failed  bool // the client went away
	buf     []byte
}

func newEventStream(w http.ResponseWriter) *eventStream { return &eventStream{w: w} }

// start writes the headers. mu is held.
func (s *eventStream) start() {
	if s.started {
		return
	}
	s.started = true
	h := s.w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // proxies such as nginx: do not hold the events back
	s.w.WriteHeader(http.StatusOK)
}

// event writes one event and flushes it. mu is held.
func (s *eventStream) event(name string, data []byte) {
	if s.failed {
		return
	}
	s.start()
	s.buf = append(s.buf[:0], "event: "...)
	s.buf = append(s.buf, name...)
	s.buf = append(s.buf, "\ndata: "...)
	s.buf = append(s.buf, data...)
	s.buf = append(s.buf, "\n\n"...)
	if _, err := s.w.Write(s.buf); err != nil {
		s.failed = true
		return
	}
	if f, ok := s.w.(http.Flusher); ok {
		f.Flush()
	}
}

// Write implements msg.Stream: a delta event with the new text.
func (s *eventStream) Write(text string) {
	if text == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	data := append(jsonx.AppendString(append(make([]byte, 0, len(text)+16), `{"text":`...), text), '}')
	s.event("delta", data)
}

// Started reports whether anything was sent.
func (s *eventStream) Started() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started
}

// reply ends the stream with the rendered answer, then done.
func (s *eventStream) reply(resp *channels.Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.event("reply", resp.Body)
	s.event("done", []byte("{}"))
}

// fail ends a started stream with an error event, then done.
func (s *eventStream) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	body, _ := json.Marshal(apierr.Classify(err).Body())
	s.event("error", body)
	s.event("done", []byte("{}"))
}

// turnStreams are the streams a synchronous turn's events run with.
type turnStreams struct {
	events *eventStream // nil unless the caller asked for server-sent events
}

// openStreams prepares the streams of a synchronous request's turns.
func (s *Server) openStreams(c *gin.Context, adapter channels.Adapter, req *channels.Request) turnStreams {
	var ts turnStreams
	if es, ok := adapter.(channels.EventStreamer); ok && es.WantsEvents(req) {
		ts.events = newEventStream(c.Writer)
	}
	return ts
}

// fail answers a failed turn: the usual error answer (returned for the
// caller to write) unless events were sent already, in which case the
// stream ends with an error event.
func (ts turnStreams) fail(c *gin.Context, err error) error {
	if ts.events == nil || !ts.events.Started() {
		return err
	}
	ts.events.fail(err)
	c.Set(ctxTurnFailed, apierr.Classify(err).Status)
	return nil
}

// run runs one event's turn with its streams: the caller's event stream,
// or the adapter's own stream, finished with the turn's result before it
// is rendered.
func (ts turnStreams) run(ctx context.Context, d Dispatcher, adapter channels.Adapter, req *channels.Request,
	ev *msg.Event) (*msg.TurnResult, error) {
	if ts.events != nil {
		ctx = msg.WithStream(ctx, ts.events)
	}
	var rs channels.ReplyStream
	if ts.events == nil {
		if st, ok := adapter.(channels.RequestStreamer); ok {
			rs = st.StreamRequest(ctx, req, ev)
		} else if st, ok := adapter.(channels.Streamer); ok {
			rs = st.Stream(ctx, req.Settings, ev)
		}
		if rs != nil {
			ctx = msg.WithStream(ctx, rs)
		}
	}
	t, err := d.Run(ctx, ev)
	if rs != nil {
		var res *msg.TurnResult
		if err == nil {
			res = &t.TurnResult
		}
		// A synchronous stream only adjusts the result; it sends nothing
		// that the answer carries.
		_, _ = rs.Finish(ctx, res)
	}
	if err != nil {
		return nil, err
	}
	return &t.TurnResult, nil
}
