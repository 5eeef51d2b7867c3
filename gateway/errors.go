package gateway

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/parleyhq/parley/bots"
	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/engine"
	"github.com/parleyhq/parley/intents"
	"github.com/parleyhq/parley/queue"
	"github.com/parleyhq/parley/sandbox"
	"github.com/parleyhq/parley/scheduler"
)

// apiError is an error with the status and code the API answers it with.
type apiError struct {
	Status  int
	Code    string
	Message string
	Extra   map[string]any
	// RetryAfter, when set, is sent as the Retry-After header (503 and 429
	// answers get one second otherwise).
	RetryAfter time.Duration
}

func (e *apiError) Error() string { return e.Message }

func newError(status int, code, message string) *apiError {
	return &apiError{Status: status, Code: code, Message: message}
}

var (
	errBodyTooLarge = newError(http.StatusRequestEntityTooLarge, "body_too_large", "request body is too large")
	errUnauthorized = newError(http.StatusUnauthorized, "unauthorized", "missing or wrong bearer token")
	// errHookRefused is the one answer an outsider gets for a webhook to an
	// unknown bot, to a channel the bot has not connected, or that failed
	// verification: the same status and body, so that the answers do not
	// tell which bots exist or which channels they use. 401 is what the
	// platforms that probe endpoints (Discord) expect of a bad signature.
	errHookRefused = newError(http.StatusUnauthorized, "unauthorized", "the request could not be verified")
)

// classify decides the HTTP answer for any error; it is the only place that does.
func classify(err error) *apiError {
	var ae *apiError
	var ce *channels.Error
	var ve *bots.ValidationError
	var se *sandbox.ScriptError
	var sve *scheduler.ValidationError
	var mbe *http.MaxBytesError
	var be *engine.BusyError
	var cce *bots.CanaryConflictError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &be):
		// The bot's own busy reply, for clients that show the message.
		code := "busy"
		if be.RateLimited() {
			code = "rate_limited"
		}
		return &apiError{Status: http.StatusTooManyRequests, Code: code, Message: be.Reply, RetryAfter: be.RetryAfter}
	case errors.Is(err, queue.ErrFull):
		return &apiError{Status: http.StatusServiceUnavailable, Code: "queue_full",
			Message: "too many events are waiting; retry later", RetryAfter: 5 * time.Second}
	case errors.As(err, &mbe):
		return errBodyTooLarge
	case errors.As(err, &ce):
		return &apiError{Status: ce.Status, Code: ce.Code, Message: ce.Message}
	case errors.As(err, &ve):
		return newError(http.StatusBadRequest, "invalid", ve.Msg)
	case errors.As(err, &sve):
		return newError(http.StatusBadRequest, "invalid", sve.Msg)
	case errors.Is(err, scheduler.ErrNotFound):
		return newError(http.StatusNotFound, "schedule_not_found", "unknown schedule")
	case errors.As(err, &se):
		return &apiError{Status: http.StatusBadRequest, Code: "lua_" + string(se.Kind), Message: se.Error(),
			Extra: map[string]any{"line": se.Line}}
	case errors.Is(err, bots.ErrBotDeleting):
		return newError(http.StatusConflict, "bot_deleting",
			"a bot of this name was deleted and its data are still being removed; the name can be used again "+
				"once GET /v1/bots/{bot} answers 404 (usually about a minute)")
	case errors.Is(err, bots.ErrBotNotFound):
		return newError(http.StatusNotFound, "bot_not_found", "unknown bot")
	case errors.Is(err, bots.ErrIntentNotFound):
		return newError(http.StatusNotFound, "intent_not_found", "unknown intent")
	case errors.Is(err, bots.ErrVersionNotFound):
		return newError(http.StatusNotFound, "version_not_found", "unknown version")
	case errors.Is(err, bots.ErrNoCanary):
		return newError(http.StatusNotFound, "canary_not_found", "the intent has no canary")
	case errors.As(err, &cce):
		return &apiError{Status: http.StatusConflict, Code: "canary_running", Message: cce.Error(),
			Extra: map[string]any{"canary": bots.Canary{Version: cce.Version, Percent: cce.Percent}}}
	case errors.Is(err, engine.ErrErased):
		return newError(http.StatusGone, "erased", "the conversation or its user was erased after this message was received")
	case errors.Is(err, engine.ErrUnavailable):
		// The cause (an address, a driver message) stays in the log.
		return newError(http.StatusServiceUnavailable, "unavailable", "the conversation store is unavailable; retry shortly")
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return newError(http.StatusServiceUnavailable, "unavailable", "request timed out")
	case isNetworkError(err):
		return newError(http.StatusServiceUnavailable, "unavailable", "the store is unreachable; retry shortly")
	}
	return newError(http.StatusInternalServerError, "internal", "internal error")
}

// fail writes err as the JSON error answer and stops the handler chain.
func (s *Server) fail(c *gin.Context, err error) {
	ae := classify(err)
	if ae.Status >= 500 {
		s.log.ErrorContext(c, "request failed", "method", c.Request.Method, "path", c.FullPath(), "status", ae.Status, "err", err)
	}
	if ae.Status == http.StatusServiceUnavailable || ae.Status == http.StatusTooManyRequests {
		secs := int((ae.RetryAfter + time.Second - 1) / time.Second)
		c.Header("Retry-After", strconv.Itoa(max(secs, 1)))
	}
	body := gin.H{"code": ae.Code, "message": ae.Message}
	for k, v := range ae.Extra {
		body[k] = v
	}
	c.AbortWithStatusJSON(ae.Status, gin.H{"error": body})
}

// refuseHook answers a webhook that is refused before a turn (unknown bot,
// unconfigured channel, failed verification) with errHookRefused, and logs
// why. A caller with the admin key gets the detailed answer instead, for
// setting a channel up.
func (s *Server) refuseHook(c *gin.Context, err error) {
	s.log.InfoContext(c, "webhook refused", "bot", c.Param("bot"), "channel", c.Param("channel"), "err", err)
	if s.isAdmin(c) {
		s.fail(c, err)
		return
	}
	s.fail(c, errHookRefused)
}

// hookRefusal reports whether err is a webhook refusal that must not be told
// apart from an unknown bot: an unknown bot, a failed verification, or a
// method the channel does not take (checked before verification).
func hookRefusal(err error) bool {
	if errors.Is(err, bots.ErrBotNotFound) || errors.Is(err, channels.ErrNotConfigured) {
		return true
	}
	status := classify(err).Status
	return status == http.StatusUnauthorized || status == http.StatusMethodNotAllowed
}

// isNetworkError reports a failure to reach the store (Redis down or the
// connection dropped), as opposed to a bug.
func isNetworkError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// busyAnswer is the answer to a turn refused by one of its bot's limits
// (concurrency or rate) on a channel whose platform shows only answers in
// its own format (an [channels.ErrorRenderer]: voice assistants, SMS): the
// bot's busy reply as an ordinary answer, so the user hears or reads it.
// It is nil for other errors and other channels, which get 429 with
// Retry-After.
func busyAnswer(adapter channels.Adapter, ev *intents.Event, err error) *intents.TurnResult {
	var be *engine.BusyError
	if _, ok := adapter.(channels.ErrorRenderer); !ok || !errors.As(err, &be) {
		return nil
	}
	return &intents.TurnResult{Event: ev, Conversation: ev.Conversation, Outcome: intents.OutcomeError,
		Replies: []intents.Reply{{Text: be.Reply}}}
}
