package gateway

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/parleyhq/parley/analytics"
	"github.com/parleyhq/parley/bots"
	"github.com/parleyhq/parley/internal/logctx"
)

// Analytics answers the analytics, conversation list, settings and erasure
// routes; *analytics.Service implements it.
type Analytics interface {
	Query(ctx context.Context, bot string, q analytics.Query) (*analytics.Report, error)
	Fallbacks(ctx context.Context, bot string, q analytics.FallbackQuery) (*analytics.FallbackReport, error)
	Conversations(ctx context.Context, bot string, q analytics.ConversationQuery) (*analytics.ConversationList, error)
	Settings(ctx context.Context, bot string) (*analytics.SettingsView, error)
	PutSettings(ctx context.Context, bot string, s analytics.Settings) error
	Erase(ctx context.Context, bot, user string) (*analytics.Erasure, error)
}

// Instruments receives stage timings and refused webhooks, for metrics and
// analytics; *analytics.Service and *analytics.Metrics implement it.
type Instruments interface {
	// ObserveStage records how long a stage of a turn took (analytics.StageAdapter, StageSend).
	ObserveStage(stage string, d time.Duration)
	// WebhookRejected reports a webhook to a configured bot and channel
	// that got an error status instead of a turn.
	WebhookRejected(bot, channel string, status int)
}

// Keys of values the webhook handler leaves in the gin context for trace.
const (
	// ctxHookTarget is set once the webhook's bot and channel are known to be configured.
	ctxHookTarget = "parley.hook_target"
	// ctxTurnFailed holds the status of a turn that could not run although
	// the channel answered the platform with an apology.
	ctxTurnFailed = "parley.turn_failed"
	// maxRequestIDLength bounds an X-Request-Id taken from the client.
	maxRequestIDLength = 128
)

// analyticsRoutes registers /metrics and the analytics routes.
func (s *Server) analyticsRoutes(r *gin.Engine, v1 *gin.RouterGroup) {
	if s.cfg.Metrics != nil {
		metrics := gin.WrapH(s.cfg.Metrics)
		if s.cfg.MetricsRequireKey {
			r.GET("/metrics", s.requireAdmin, metrics)
		} else {
			r.GET("/metrics", metrics)
		}
	}
	v1.GET("/bots/:bot/analytics", analyticsRoute(s, analytics.ParseQuery, Analytics.Query))
	v1.GET("/bots/:bot/analytics/fallbacks", analyticsRoute(s, analytics.ParseFallbackQuery, Analytics.Fallbacks))
	v1.GET("/bots/:bot/analytics/settings", s.getAnalyticsSettings)
	v1.PUT("/bots/:bot/analytics/settings", s.putAnalyticsSettings)
	v1.GET("/bots/:bot/conversations", analyticsRoute(s, analytics.ParseConversationQuery, Analytics.Conversations))
	v1.DELETE("/bots/:bot/users/:user", s.eraseUser)
}

// trace gives every request an id (the client's X-Request-Id when it is
// sensible, else a new one), echoes it, and puts it in the request context
// so that every log line of the request carries it. After a webhook it
// reports refused ones to the instruments.
func (s *Server) trace(c *gin.Context) {
	id := c.GetHeader("X-Request-Id")
	if !validRequestID(id) {
		id = uuid.NewString()
	}
	c.Header("X-Request-Id", id)
	c.Request = c.Request.WithContext(logctx.WithRequestID(c.Request.Context(), id))
	start := time.Now()
	c.Next()
	status := c.Writer.Status()
	s.log.DebugContext(c, "request", "method", c.Request.Method, "route", c.FullPath(), "status", status,
		"duration_ms", float64(time.Since(start).Microseconds())/1000)
	if s.cfg.Instruments == nil || !c.GetBool(ctxHookTarget) {
		return
	}
	if failed := c.GetInt(ctxTurnFailed); failed != 0 {
		status = failed
	}
	if status >= 400 {
		s.cfg.Instruments.WebhookRejected(c.Param("bot"), c.Param("channel"), status)
	}
}

func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

// stage reports the time since start as a stage of the turn.
func (s *Server) stage(name string, start time.Time) {
	if s.cfg.Instruments != nil {
		s.cfg.Instruments.ObserveStage(name, time.Since(start))
	}
}

var errNoAnalytics = newError(http.StatusNotFound, "not_found", "analytics are not configured on this server")

// analyticsFor checks that analytics are configured and the bot exists.
func (s *Server) analyticsFor(c *gin.Context) (Analytics, bool) {
	if s.cfg.Analytics == nil {
		s.fail(c, errNoAnalytics)
		return nil, false
	}
	if _, err := s.cfg.Catalog.Bot(c, c.Param("bot")); err != nil {
		s.fail(c, err)
		return nil, false
	}
	return s.cfg.Analytics, true
}

// badQuery turns the analytics package's refusals into 400 answers.
func badQuery(err error) error {
	var qe *analytics.QueryError
	if errors.As(err, &qe) {
		return newError(http.StatusBadRequest, "invalid", qe.Msg)
	}
	return err
}

// analyticsRoute answers a query of the bot's analytics: parse reads the
// query string, run answers it.
func analyticsRoute[Q, R any](s *Server, parse func(url.Values, time.Time) (Q, error),
	run func(Analytics, context.Context, string, Q) (R, error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		an, ok := s.analyticsFor(c)
		if !ok {
			return
		}
		q, err := parse(c.Request.URL.Query(), s.cfg.Now())
		if err != nil {
			s.fail(c, badQuery(err))
			return
		}
		rep, err := run(an, c, c.Param("bot"), q)
		if err != nil {
			s.fail(c, badQuery(err))
			return
		}
		c.JSON(http.StatusOK, rep)
	}
}

func (s *Server) getAnalyticsSettings(c *gin.Context) {
	an, ok := s.analyticsFor(c)
	if !ok {
		return
	}
	view, err := an.Settings(c, c.Param("bot"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, view)
}

func (s *Server) putAnalyticsSettings(c *gin.Context) {
	an, ok := s.analyticsFor(c)
	if !ok {
		return
	}
	var st analytics.Settings
	if err := s.decode(c, &st, true); err != nil {
		s.fail(c, err)
		return
	}
	if err := st.Validate(); err != nil {
		s.fail(c, newError(http.StatusBadRequest, "invalid", err.Error()))
		return
	}
	if err := an.PutSettings(c, c.Param("bot"), st); err != nil {
		s.fail(c, err)
		return
	}
	view, err := an.Settings(c, c.Param("bot"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, view)
}

// eraseUser deletes a user's data. It works for a bot that no longer
// exists too: its data may outlive it.
func (s *Server) eraseUser(c *gin.Context) {
	if s.cfg.Analytics == nil {
		s.fail(c, errNoAnalytics)
		return
	}
	if err := bots.ValidateBotName(c.Param("bot")); err != nil {
		s.fail(c, err)
		return
	}
	er, err := s.cfg.Analytics.Erase(c, c.Param("bot"), c.Param("user"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, er)
}
