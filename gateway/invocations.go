package gateway

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/parleyhq/parley/invocations"
)

// Invocations serves bots' invocation logs and usage totals;
// *invocations.Recorder implements it.
type Invocations interface {
	Recent(ctx context.Context, bot string, q invocations.Query) ([]invocations.Entry, error)
	Usage(ctx context.Context, bot string, from, to time.Time) ([]invocations.Day, error)
}

// DefaultUsageDays is the range of a usage query without from.
const DefaultUsageDays = 30

var outcomes = map[string]bool{"ok": true, "error": true, "timeout": true, "limit": true, "rejected": true}

func (s *Server) invocationRoutes(v1 *gin.RouterGroup) {
	v1.GET("/bots/:bot/logs", s.invocationLogs)
	v1.GET("/bots/:bot/usage", s.usage)
}

// invocationLogs answers GET /v1/bots/{bot}/logs?intent=&outcome=&limit=:
// the bot's recent handler invocations, newest first.
func (s *Server) invocationLogs(c *gin.Context) {
	bot, ok := s.invocationBot(c)
	if !ok {
		return
	}
	q := invocations.Query{Intent: c.Query("intent"), Outcome: c.Query("outcome")}
	if q.Outcome != "" && !outcomes[q.Outcome] {
		s.fail(c, newError(http.StatusBadRequest, "invalid", "outcome must be ok, error, timeout, limit or rejected"))
		return
	}
	if l := c.Query("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > invocations.MaxLimit {
			s.fail(c, newError(http.StatusBadRequest, "invalid", "limit must be between 1 and "+strconv.Itoa(invocations.MaxLimit)))
			return
		}
		q.Limit = n
	}
	entries, err := s.cfg.Invocations.Recent(c, bot, q)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"bot": bot, "invocations": entries})
}

// usage answers GET /v1/bots/{bot}/usage?from=YYYY-MM-DD&to=YYYY-MM-DD: the
// bot's daily totals (UTC days, both ends included; default the last 30
// days) and their sum.
func (s *Server) usage(c *gin.Context) {
	bot, ok := s.invocationBot(c)
	if !ok {
		return
	}
	to := s.cfg.Now().UTC()
	if v := c.Query("to"); v != "" {
		d, err := time.Parse(time.DateOnly, v)
		if err != nil {
			s.fail(c, newError(http.StatusBadRequest, "invalid", "to must be a date like 2026-01-31"))
			return
		}
		to = d
	}
	from := to.AddDate(0, 0, -(DefaultUsageDays - 1))
	if v := c.Query("from"); v != "" {
		d, err := time.Parse(time.DateOnly, v)
		if err != nil {
			s.fail(c, newError(http.StatusBadRequest, "invalid", "from must be a date like 2026-01-01"))
			return
		}
		from = d
	}
	days, err := s.cfg.Invocations.Usage(c, bot, from, to)
	if errors.Is(err, invocations.ErrRange) {
		s.fail(c, newError(http.StatusBadRequest, "invalid", err.Error()))
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	total := invocations.Day{Outcomes: map[string]int64{}}
	for _, d := range days {
		total.Invocations += d.Invocations
		total.ComputeMS += d.ComputeMS
		total.Instructions += d.Instructions
		total.HTTPCalls += d.HTTPCalls
		total.ColdStarts += d.ColdStarts
		total.WarmStarts += d.WarmStarts
		for o, n := range d.Outcomes {
			total.Outcomes[o] += n
		}
	}
	c.JSON(http.StatusOK, gin.H{"bot": bot, "from": from.Format(time.DateOnly), "to": to.Format(time.DateOnly),
		"days": days, "total": gin.H{"invocations": total.Invocations, "compute_ms": total.ComputeMS,
			"instructions": total.Instructions, "http_calls": total.HTTPCalls, "cold_starts": total.ColdStarts,
			"warm_starts": total.WarmStarts, "outcomes": total.Outcomes}})
}

// invocationBot checks that the logs are served and the bot exists.
func (s *Server) invocationBot(c *gin.Context) (string, bool) {
	if s.cfg.Invocations == nil {
		s.fail(c, newError(http.StatusNotImplemented, "not_configured", "invocation logs are not recorded by this server"))
		return "", false
	}
	bot := c.Param("bot")
	if _, err := s.cfg.Catalog.Bot(c, bot); err != nil {
		s.fail(c, err)
		return "", false
	}
	return bot, true
}
