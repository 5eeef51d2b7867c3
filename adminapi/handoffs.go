package adminapi

import (
	"context"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/parleyhq/parley/internal/apierr"
	"github.com/parleyhq/parley/internal/handoff"
	"github.com/parleyhq/parley/msg"
)

// Handoffs hands conversations to people and back; *handoff.Manager
// implements it.
type Handoffs interface {
	Handoff(ctx context.Context, bot string, conv msg.ConversationKey, user, queue, reason string) (*handoff.State, error)
	Claim(ctx context.Context, bot string, conv msg.ConversationKey, agent string) (*handoff.State, error)
	Send(ctx context.Context, bot string, conv msg.ConversationKey, agent, text string) (*handoff.State, error)
	Release(ctx context.Context, bot string, conv msg.ConversationKey) (*handoff.Released, error)
	List(ctx context.Context, bot, queue string, offset, limit int64) (*handoff.Page, error)
}

// Paging of GET /v1/bots/{bot}/handoffs.
const (
	defaultHandoffLimit = 50
	maxHandoffLimit     = 500
)

// convOf is the conversation a handoff route names.
func convOf(c *gin.Context) msg.ConversationKey {
	return msg.KeyOf(c.Param("channel"), c.Param("conversation"))
}

// errNoHandoffs answers the handoff routes of a server without handoffs.
var errNoHandoffs = apierr.New(http.StatusNotImplemented, "not_implemented", "this server does not hand conversations to people")

func (a *API) handoffs() (Handoffs, error) {
	if a.cfg.Handoffs == nil {
		return nil, errNoHandoffs
	}
	return a.cfg.Handoffs, nil
}

func (a *API) listHandoffs(c *gin.Context) error {
	h, err := a.handoffs()
	if err != nil {
		return err
	}
	limit, offset := int64(defaultHandoffLimit), int64(0)
	if v := c.Query("limit"); v != "" {
		if limit, err = strconv.ParseInt(v, 10, 64); err != nil || limit < 1 || limit > maxHandoffLimit {
			return invalid("limit must be 1.." + strconv.Itoa(maxHandoffLimit))
		}
	}
	if v := c.Query("offset"); v != "" {
		if offset, err = strconv.ParseInt(v, 10, 64); err != nil || offset < 0 {
			return invalid("offset must be a number of 0 or more")
		}
	}
	page, err := h.List(c, c.Param("bot"), c.Query("queue"), offset, limit)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, page)
	return nil
}

func (a *API) startHandoff(c *gin.Context) error {
	h, err := a.handoffs()
	if err != nil {
		return err
	}
	var body struct {
		Queue  string `json:"queue"`
		Reason string `json:"reason"`
		User   string `json:"user"`
	}
	if err := a.decode(c, &body, true); err != nil {
		return err
	}
	st, err := h.Handoff(c, c.Param("bot"), convOf(c), body.User, body.Queue, body.Reason)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, st)
	return nil
}

func (a *API) claimHandoff(c *gin.Context) error {
	h, err := a.handoffs()
	if err != nil {
		return err
	}
	var body struct {
		Agent string `json:"agent"`
	}
	if err := a.decode(c, &body, false); err != nil {
		return err
	}
	st, err := h.Claim(c, c.Param("bot"), convOf(c), body.Agent)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, st)
	return nil
}

func (a *API) agentMessage(c *gin.Context) error {
	h, err := a.handoffs()
	if err != nil {
		return err
	}
	var body struct {
		Text  string `json:"text"`
		Agent string `json:"agent"`
	}
	if err := a.decode(c, &body, false); err != nil {
		return err
	}
	st, err := h.Send(c, c.Param("bot"), convOf(c), body.Agent, body.Text)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, st)
	return nil
}

func (a *API) releaseHandoff(c *gin.Context) error {
	h, err := a.handoffs()
	if err != nil {
		return err
	}
	if err := a.decode(c, &struct{}{}, true); err != nil {
		return err
	}
	r, err := h.Release(c, c.Param("bot"), convOf(c))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, r)
	return nil
}
