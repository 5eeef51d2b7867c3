package gateway

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/parleyhq/parley/bots"
	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/engine"
	"github.com/parleyhq/parley/internal/apierr"
	"github.com/parleyhq/parley/msg"
)

var (
	errUnauthorized = apierr.New(http.StatusUnauthorized, "unauthorized", "missing or wrong bearer token")
	errNoRoute      = apierr.New(http.StatusNotFound, "not_found", "no such route")
	errNoMethod     = apierr.New(http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed on this route")
	// errHookRefused is the one answer an outsider gets for a webhook to an
	// unknown bot, to a channel the bot has not connected, or that failed
	// verification: the same status and body, so that the answers do not
	// tell which bots exist or which channels they use. 401 is what the
	// platforms that probe endpoints (Discord) expect of a bad signature.
	errHookRefused = apierr.New(http.StatusUnauthorized, "unauthorized", "the request could not be verified")
)

// fail writes err as the JSON error answer (apierr.Write decides it) and
// stops the handler chain.
func (s *Server) fail(c *gin.Context, err error) {
	ans := apierr.Write(c.Writer, err)
	c.Abort()
	if ans.Status >= 500 {
		s.log.ErrorContext(c, "request failed", "method", c.Request.Method, "path", c.FullPath(), "status", ans.Status, "err", err)
	}
}

// refuseHook returns the answer to a webhook that is refused before a turn
// (unknown bot, unconfigured channel, failed verification), errHookRefused,
// and logs why. A caller with the admin key gets err instead, for setting a
// channel up.
func (s *Server) refuseHook(c *gin.Context, err error) error {
	s.log.InfoContext(c, "webhook refused", "bot", c.Param("bot"), "channel", c.Param("channel"), "err", err)
	if s.isAdmin(c) {
		return err
	}
	return errHookRefused
}

// hookRefusal reports whether err is a webhook refusal that must not be told
// apart from an unknown bot: an unknown bot, a failed verification, or a
// method the channel does not take (checked before verification).
func hookRefusal(err error) bool {
	if errors.Is(err, bots.ErrBotNotFound) || errors.Is(err, channels.ErrNotConfigured) {
		return true
	}
	status := apierr.Classify(err).Status
	return status == http.StatusUnauthorized || status == http.StatusMethodNotAllowed
}

// busyAnswer is the answer to a turn refused by one of its bot's limits
// (concurrency or rate) on a channel whose platform shows only answers in
// its own format (an [channels.ErrorRenderer]: voice assistants, SMS): the
// bot's busy reply as an ordinary answer, so the user hears or reads it.
// It is nil for other errors and other channels, which get 429 with
// Retry-After.
func busyAnswer(adapter channels.Adapter, ev *msg.Event, err error) *msg.TurnResult {
	var be *engine.BusyError
	if _, ok := adapter.(channels.ErrorRenderer); !ok || !errors.As(err, &be) {
		return nil
	}
	return &msg.TurnResult{Event: ev, Conversation: ev.Conversation, Outcome: msg.OutcomeError,
		Replies: []msg.Reply{{Text: be.Reply}}}
}
