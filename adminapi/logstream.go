package adminapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/parleyhq/parley/internal/apierr"
	"github.com/parleyhq/parley/internal/invocations"
)

// Defaults of the log streams.
const (
	// DefaultMaxFollowers bounds the open log streams of one bot on one
	// server.
	DefaultMaxFollowers = 8
	// DefaultHeartbeat is how long a log stream may stay silent before a
	// comment line keeps proxies from closing it.
	DefaultHeartbeat = 15 * time.Second
	// streamRetryMS is the reconnection delay a stream asks clients for.
	streamRetryMS = 2000
)

// streams tracks the open log streams: how many each bot has, and a
// context that ends them all when the server shuts down.
type streams struct {
	mu     sync.Mutex
	perBot map[string]int
	ctx    context.Context
	cancel context.CancelFunc
}

func newStreams() *streams {
	ctx, cancel := context.WithCancel(context.Background())
	return &streams{perBot: map[string]int{}, ctx: ctx, cancel: cancel}
}

// acquire counts a new stream of bot, unless it has max open already.
func (s *streams) acquire(bot string, maxStreams int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perBot[bot] >= maxStreams {
		return false
	}
	s.perBot[bot]++
	return true
}

func (s *streams) release(bot string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perBot[bot]--; s.perBot[bot] <= 0 {
		delete(s.perBot, bot)
	}
}

// CloseStreams ends every open log stream, and every stream opened after
// it, at once: call it when the server starts shutting down, so that its
// drain does not wait for streams that never end by themselves.
func (a *API) CloseStreams() { a.streams.cancel() }

// errTooManyFollowers answers a stream over the per-bot bound.
func errTooManyFollowers(n int) error {
	return &apierr.Error{Status: http.StatusTooManyRequests, Code: "too_many_followers",
		Message: fmt.Sprintf("this bot's logs are followed by %d streams on this server already; close one or retry later", n),
		Retry:   5 * time.Second}
}

// followLogs streams a bot's invocations as server-sent events, each
// "id: <entry id>", "event: invocation" and the entry as data, starting
// after the entry named by Last-Event-ID (or ?after=), else with the kept
// entries since ?since=, else with the next entry. A comment line goes out
// when nothing happened for the heartbeat interval. The stream ends when
// the client goes, or when the server shuts down (clients reconnect
// with Last-Event-ID to any replica and miss nothing the log keeps).
func (a *API) followLogs(c *gin.Context, bot string, q invocations.Query) error {
	fq := invocations.FollowQuery{Intent: q.Intent, Outcome: q.Outcome, Since: q.Since}
	after := c.GetHeader("Last-Event-ID")
	if v := c.Query("after"); v != "" {
		after = v
	}
	if after != "" {
		id, err := invocations.ParseID(after)
		if err != nil {
			return invalid("Last-Event-ID (or after) must be an entry id such as 1764104645120-0")
		}
		fq.After = &id
	}
	if !a.streams.acquire(bot, a.cfg.MaxFollowers) {
		return errTooManyFollowers(a.cfg.MaxFollowers)
	}
	defer a.streams.release(bot)

	ctx, cancel := context.WithCancel(c.Request.Context())
	defer cancel()
	stop := context.AfterFunc(a.streams.ctx, cancel)
	defer stop()
	feed, err := a.cfg.Invocations.Follow(ctx, bot, fq)
	if err != nil {
		return err
	}
	defer func() { _ = feed.Close() }()

	w := c.Writer
	rc := http.NewResponseController(w)
	// A stream outlives the server's read and write timeouts.
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprintf(w, "retry: %d\n: following %s\n\n", streamRetryMS, bot); err != nil {
		return nil
	}
	if rc.Flush() != nil {
		return nil
	}
	for {
		wait, cancelWait := context.WithTimeout(ctx, a.cfg.Heartbeat)
		entries, err := feed.Next(wait)
		cancelWait()
		switch {
		case ctx.Err() != nil:
			return nil // the client went, or the server is shutting down
		case errors.Is(err, context.DeadlineExceeded):
			_, err = io.WriteString(w, ": keepalive\n\n")
		case err != nil:
			a.log.WarnContext(ctx, "log stream failed", "bot", bot, "err", err)
			_, _ = io.WriteString(w, "event: error\ndata: {\"message\":\"the log is unavailable; reconnect\"}\n\n")
			_ = rc.Flush()
			return nil
		default:
			err = writeEntries(w, entries)
		}
		if err != nil || rc.Flush() != nil {
			return nil // the client went
		}
	}
}

// writeEntries writes entries as "invocation" events.
func writeEntries(w io.Writer, entries []invocations.Entry) error {
	for _, e := range entries {
		data, err := json.Marshal(e)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "id: %s\nevent: invocation\ndata: %s\n\n", e.ID, data); err != nil {
			return err
		}
	}
	return nil
}
