package adminapi

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/parleyhq/parley/bots"
	"github.com/parleyhq/parley/internal/analytics"
	"github.com/parleyhq/parley/internal/apierr"
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

var errNoAnalytics = apierr.New(http.StatusNotFound, "not_found", "analytics are not configured on this server")

// analyticsFor checks that analytics are configured and the bot exists.
func (a *API) analyticsFor(c *gin.Context) (Analytics, error) {
	if a.cfg.Analytics == nil {
		return nil, errNoAnalytics
	}
	if err := a.requireBot(c); err != nil {
		return nil, err
	}
	return a.cfg.Analytics, nil
}

// analyticsRoute answers a query of the bot's analytics: parse reads the
// query string, run answers it.
func analyticsRoute[Q, R any](a *API, parse func(url.Values, time.Time) (Q, error),
	run func(Analytics, context.Context, string, Q) (R, error)) handlerFunc {
	return func(c *gin.Context) error {
		an, err := a.analyticsFor(c)
		if err != nil {
			return err
		}
		q, err := parse(c.Request.URL.Query(), a.cfg.Now())
		if err != nil {
			return err
		}
		rep, err := run(an, c, c.Param("bot"), q)
		if err != nil {
			return err
		}
		c.JSON(http.StatusOK, rep)
		return nil
	}
}

func (a *API) getAnalyticsSettings(c *gin.Context) error {
	an, err := a.analyticsFor(c)
	if err != nil {
		return err
	}
	view, err := an.Settings(c, c.Param("bot"))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, view)
	return nil
}

func (a *API) putAnalyticsSettings(c *gin.Context) error {
	an, err := a.analyticsFor(c)
	if err != nil {
		return err
	}
	var st analytics.Settings
	if err := a.decode(c, &st, true); err != nil {
		return err
	}
	if err := st.Validate(); err != nil {
		return apierr.Wrap(http.StatusBadRequest, "invalid", err)
	}
	if err := an.PutSettings(c, c.Param("bot"), st); err != nil {
		return err
	}
	view, err := an.Settings(c, c.Param("bot"))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, view)
	return nil
}

// eraseUser deletes a user's data. It works for a bot that no longer
// exists too: its data may outlive it.
func (a *API) eraseUser(c *gin.Context) error {
	if a.cfg.Analytics == nil {
		return errNoAnalytics
	}
	if err := bots.ValidateBotName(c.Param("bot")); err != nil {
		return err
	}
	er, err := a.cfg.Analytics.Erase(c, c.Param("bot"), c.Param("user"))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, er)
	return nil
}
