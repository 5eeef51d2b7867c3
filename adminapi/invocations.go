package adminapi

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/parleyhq/parley/internal/apierr"
	"github.com/parleyhq/parley/internal/invocations"
)

// Invocations serves bots' invocation logs and usage totals;
// *invocations.Recorder implements it.
type Invocations interface {
	Recent(ctx context.Context, bot string, q invocations.Query) ([]invocations.Entry, error)
	// Follow returns a feed of the bot's entries as they are written, on
	// any replica, for GET /v1/bots/{bot}/logs as server-sent events.
	Follow(ctx context.Context, bot string, q invocations.FollowQuery) (*invocations.Feed, error)
	Usage(ctx context.Context, bot string, from, to time.Time) ([]invocations.Day, error)
}

// DefaultUsageDays is the range of a usage query without from.
const DefaultUsageDays = 30

var outcomes = map[string]bool{"ok": true, "error": true, "timeout": true, "limit": true, "rejected": true}

// errNoInvocations answers the log routes of a server that records none.
var errNoInvocations = apierr.New(http.StatusNotImplemented, "not_configured", "invocation logs are not recorded by this server")

// invocationLogs answers GET /v1/bots/{bot}/logs?intent=&outcome=&since=&limit=:
// the bot's recent handler invocations, newest first; with ?follow=true or
// Accept: text/event-stream, a stream of them as they happen (see
// [API.followLogs]).
func (a *API) invocationLogs(c *gin.Context) error {
	bot, err := a.invocationBot(c)
	if err != nil {
		return err
	}
	q := invocations.Query{Intent: c.Query("intent"), Outcome: c.Query("outcome")}
	if q.Outcome != "" && !outcomes[q.Outcome] {
		return invalid("outcome must be ok, error, timeout, limit or rejected")
	}
	if v := c.Query("since"); v != "" {
		if q.Since, err = parseSince(v, a.cfg.Now()); err != nil {
			return err
		}
	}
	if wantsStream(c) {
		return a.followLogs(c, bot, q)
	}
	if l := c.Query("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > invocations.MaxLimit {
			return invalid("limit must be between 1 and " + strconv.Itoa(invocations.MaxLimit))
		}
		q.Limit = n
	}
	entries, err := a.cfg.Invocations.Recent(c, bot, q)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"bot": bot, "invocations": entries})
	return nil
}

// parseSince reads a since parameter: a duration back from now ("10m",
// "2h") or an RFC 3339 time.
func parseSince(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	return time.Time{}, invalid("since must be a duration back from now (10m, 2h) or an RFC 3339 time")
}

// wantsStream reports whether a logs request asks for server-sent events.
func wantsStream(c *gin.Context) bool {
	if f := c.Query("follow"); f != "" {
		return f == "true" || f == "1"
	}
	return strings.Contains(c.GetHeader("Accept"), "text/event-stream")
}

// usage answers GET /v1/bots/{bot}/usage?from=YYYY-MM-DD&to=YYYY-MM-DD: the
// bot's daily totals (UTC days, both ends included; default the last 30
// days) and their sum.
func (a *API) usage(c *gin.Context) error {
	bot, err := a.invocationBot(c)
	if err != nil {
		return err
	}
	to := a.cfg.Now().UTC()
	if v := c.Query("to"); v != "" {
		d, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return invalid("to must be a date like 2026-01-31")
		}
		to = d
	}
	from := to.AddDate(0, 0, -(DefaultUsageDays - 1))
	if v := c.Query("from"); v != "" {
		d, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return invalid("from must be a date like 2026-01-01")
		}
		from = d
	}
	days, err := a.cfg.Invocations.Usage(c, bot, from, to)
	if err != nil {
		return err
	}
	total := invocations.Day{Outcomes: map[string]int64{}}
	for _, d := range days {
		total.Invocations += d.Invocations
		total.ComputeMS += d.ComputeMS
		total.Instructions += d.Instructions
		total.HTTPCalls += d.HTTPCalls
		total.ColdStarts += d.ColdStarts
		total.WarmStarts += d.WarmStarts
		total.LLMCalls += d.LLMCalls
		total.LLMInputTokens += d.LLMInputTokens
		total.LLMOutputTokens += d.LLMOutputTokens
		for o, n := range d.Outcomes {
			total.Outcomes[o] += n
		}
	}
	c.JSON(http.StatusOK, gin.H{"bot": bot, "from": from.Format(time.DateOnly), "to": to.Format(time.DateOnly),
		"days": days, "total": gin.H{"invocations": total.Invocations, "compute_ms": total.ComputeMS,
			"instructions": total.Instructions, "http_calls": total.HTTPCalls, "cold_starts": total.ColdStarts,
			"warm_starts": total.WarmStarts, "llm_calls": total.LLMCalls, "llm_input_tokens": total.LLMInputTokens,
			"llm_output_tokens": total.LLMOutputTokens, "outcomes": total.Outcomes}})
	return nil
}

// invocationBot checks that the logs are recorded and the bot exists.
func (a *API) invocationBot(c *gin.Context) (string, error) {
	if a.cfg.Invocations == nil {
		return "", errNoInvocations
	}
	if err := a.requireBot(c); err != nil {
		return "", err
	}
	return c.Param("bot"), nil
}
