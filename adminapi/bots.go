package adminapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/parleyhq/parley/bots"
	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/web"
	"github.com/parleyhq/parley/internal/apierr"
	"github.com/parleyhq/parley/msg"
)

// invalid is a 400 "invalid" answer.
func invalid(message string) error {
	return apierr.New(http.StatusBadRequest, "invalid", message)
}

// decode reads a JSON body strictly: unknown fields and trailing data are errors.
// An empty body decodes to the zero value when allowEmpty is set.
func (a *API) decode(c *gin.Context, v any, allowEmpty bool) error {
	body, err := a.body(c)
	if err != nil {
		return err
	}
	if allowEmpty && len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return apierr.New(http.StatusBadRequest, "bad_json", fmt.Sprintf("body is not valid JSON for this route: %v", err))
	}
	if dec.More() {
		return apierr.New(http.StatusBadRequest, "bad_json", "body has data after the JSON value")
	}
	return nil
}

func (a *API) listBots(c *gin.Context) error {
	names, err := a.cfg.Catalog.ListBots(c)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"bots": names})
	return nil
}

func (a *API) putBot(c *gin.Context) error {
	var raw json.RawMessage
	if err := a.decode(c, &raw, true); err != nil {
		return err
	}
	var settings bots.Settings
	if len(raw) > 0 {
		var err error
		if settings, err = bots.ParseSettings(raw); err != nil {
			return err
		}
	}
	created, err := a.cfg.Catalog.PutBot(c, c.Param("bot"), settings)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	ans := gin.H{"name": c.Param("bot"), "settings": settings, "created": created}
	warnings, err := a.secretWarnings(c, settings)
	if err != nil {
		return err
	}
	if len(warnings) > 0 {
		ans["warnings"] = warnings
	}
	c.JSON(status, ans)
	return nil
}

// getBot describes a bot, or the deletion under way of a deleted one.
func (a *API) getBot(c *gin.Context) error {
	info, err := a.cfg.Catalog.GetBot(c, c.Param("bot"))
	if errors.Is(err, bots.ErrBotNotFound) {
		d, derr := a.cfg.Deletions.Status(c, c.Param("bot"))
		if derr != nil {
			return derr
		}
		if d != nil {
			c.JSON(http.StatusOK, deletionAnswer(d))
			return nil
		}
	}
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, info)
	return nil
}

// deleteBot deletes a bot: it is gone at once, and its data are removed in
// the background (202, with the deletion's status).
func (a *API) deleteBot(c *gin.Context) error {
	d, err := a.cfg.Deletions.Delete(c, c.Param("bot"))
	if err != nil {
		return err
	}
	c.JSON(http.StatusAccepted, deletionAnswer(d))
	return nil
}

// deletionAnswer shows a deletion under way.
func deletionAnswer(d *bots.Deletion) gin.H {
	return gin.H{"name": d.Bot, "status": d.Status, "deletion": d}
}

// adapter is the channel adapter the route names.
func (a *API) adapter(c *gin.Context) (channels.Adapter, error) {
	ad, ok := a.cfg.Channels.Get(c.Param("channel"))
	if !ok {
		return nil, apierr.New(http.StatusNotFound, "channel_not_found",
			fmt.Sprintf("unknown channel %q; known channels: %v", c.Param("channel"), a.cfg.Channels.Names()))
	}
	return ad, nil
}

func (a *API) listChannels(c *gin.Context) error {
	info, err := a.cfg.Catalog.GetBot(c, c.Param("bot"))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"channels": info.Channels, "available": a.cfg.Channels.Names()})
	return nil
}

func (a *API) putChannel(c *gin.Context) error {
	ad, err := a.adapter(c)
	if err != nil {
		return err
	}
	var raw map[string]json.RawMessage
	if err := a.decode(c, &raw, false); err != nil {
		return err
	}
	settings, err := channels.DecodeSettings(ad, raw)
	if err != nil {
		return err
	}
	if err := channels.Validate(ad, settings); err != nil {
		return err
	}
	if err := a.cfg.Catalog.PutChannel(c, c.Param("bot"), ad.Name(), settings); err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"channel": ad.Name(), "settings": channels.Redact(ad, settings),
		"webhook": "/hooks/" + c.Param("bot") + "/" + ad.Name()})
	return nil
}

func (a *API) getChannel(c *gin.Context) error {
	ad, err := a.adapter(c)
	if err != nil {
		return err
	}
	settings, err := a.cfg.Catalog.ChannelSettings(c, c.Param("bot"), ad.Name())
	if err != nil {
		return notConfigured(err, c)
	}
	c.JSON(http.StatusOK, gin.H{"channel": ad.Name(), "settings": channels.Redact(ad, settings),
		"webhook": "/hooks/" + c.Param("bot") + "/" + ad.Name()})
	return nil
}

func (a *API) deleteChannel(c *gin.Context) error {
	ad, err := a.adapter(c)
	if err != nil {
		return err
	}
	if err := a.cfg.Catalog.DeleteChannel(c, c.Param("bot"), ad.Name()); err != nil {
		return notConfigured(err, c)
	}
	c.Status(http.StatusNoContent)
	return nil
}

// notConfigured refines "not found" for a channel route: the bot may exist
// without that channel.
func notConfigured(err error, c *gin.Context) error {
	if errors.Is(err, bots.ErrBotNotFound) {
		return &apierr.Error{Status: http.StatusNotFound, Code: "channel_not_configured", Err: err,
			Message: fmt.Sprintf("channel %s is not configured for bot %s (or the bot does not exist)",
				c.Param("channel"), c.Param("bot"))}
	}
	return err
}

func (a *API) listIntents(c *gin.Context) error {
	list, err := a.cfg.Catalog.ListHandlers(c, c.Param("bot"))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"intents": list})
	return nil
}

// putIntent uploads a handler version: the new stable version, or with
// ?canary=PERCENT a canary for that share of new conversations.
func (a *API) putIntent(c *gin.Context) error {
	body, err := a.body(c)
	if err != nil {
		return err
	}
	if raw, ok := c.GetQuery("canary"); ok {
		percent, err := strconv.Atoi(raw)
		if err != nil {
			return invalid("canary must be a percentage from 0 to 100")
		}
		return a.putCanary(c, string(body), percent)
	}
	v, unchanged, err := a.cfg.Catalog.PutHandler(c, c.Param("bot"), c.Param("intent"), string(body))
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if unchanged {
		status = http.StatusOK
	}
	c.JSON(status, gin.H{"intent": c.Param("intent"), "version": v.Version, "sha256": v.SHA256, "unchanged": unchanged})
	return nil
}

func (a *API) putCanary(c *gin.Context, source string, percent int) error {
	up, err := a.cfg.Catalog.PutCanary(c, c.Param("bot"), c.Param("intent"), source, percent)
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if up.Unchanged {
		status = http.StatusOK
	}
	out := gin.H{"intent": c.Param("intent"), "version": up.Version.Version, "sha256": up.SHA256, "unchanged": up.Unchanged}
	if !up.Stable {
		out["canary"] = bots.Canary{Version: up.Version.Version, Percent: percent}
	}
	c.JSON(status, out)
	return nil
}

// setCanary changes the share of new conversations a canary gets.
func (a *API) setCanary(c *gin.Context) error {
	var req struct {
		Percent *int `json:"percent"`
	}
	if err := a.decode(c, &req, false); err != nil {
		return err
	}
	if req.Percent == nil {
		return invalid("\"percent\" is required (0-100)")
	}
	if err := a.cfg.Catalog.SetCanaryPercent(c, c.Param("bot"), c.Param("intent"), *req.Percent); err != nil {
		return err
	}
	return a.getIntentRollout(c)
}

func (a *API) promoteCanary(c *gin.Context) error {
	if _, err := a.cfg.Catalog.PromoteCanary(c, c.Param("bot"), c.Param("intent")); err != nil {
		return err
	}
	return a.getIntentRollout(c)
}

func (a *API) abortCanary(c *gin.Context) error {
	if _, err := a.cfg.Catalog.AbortCanary(c, c.Param("bot"), c.Param("intent")); err != nil {
		return err
	}
	return a.getIntentRollout(c)
}

// getIntentRollout answers a canary change with the intent's versions after it.
func (a *API) getIntentRollout(c *gin.Context) error {
	info, err := a.cfg.Catalog.GetHandler(c, c.Param("bot"), c.Param("intent"))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"intent": info.Intent, "version": info.Current, "sha256": info.SHA256,
		"canary": info.Canary, "previous": info.Previous})
	return nil
}

func (a *API) getIntent(c *gin.Context) error {
	info, err := a.cfg.Catalog.GetHandler(c, c.Param("bot"), c.Param("intent"))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, info)
	return nil
}

func (a *API) deleteIntent(c *gin.Context) error {
	if err := a.cfg.Catalog.DeleteHandler(c, c.Param("bot"), c.Param("intent")); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}

func (a *API) rollback(c *gin.Context) error {
	var req struct {
		Version int `json:"version"`
	}
	if err := a.decode(c, &req, false); err != nil {
		return err
	}
	if req.Version <= 0 {
		return invalid("\"version\" must be a positive version number")
	}
	if err := a.cfg.Catalog.Rollback(c, c.Param("bot"), c.Param("intent"), req.Version); err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"intent": c.Param("intent"), "version": req.Version})
	return nil
}

func (a *API) putNLU(c *gin.Context) error {
	var n bots.NLU
	if err := a.decode(c, &n, false); err != nil {
		return err
	}
	if err := a.cfg.Catalog.PutNLU(c, c.Param("bot"), n); err != nil {
		return err
	}
	total := 0
	for _, ex := range n.Intents {
		total += len(ex)
	}
	c.JSON(http.StatusOK, gin.H{"intents": len(n.Intents), "examples": total})
	return nil
}

func (a *API) getNLU(c *gin.Context) error {
	n, err := a.cfg.Catalog.GetNLU(c, c.Param("bot"))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, n)
	return nil
}

// invoke runs one turn as if it came from the web channel, and answers with
// the details a developer needs: routing, the slots the handler saw,
// version, logs and the handler error.
func (a *API) invoke(c *gin.Context) error {
	body, err := a.body(c)
	if err != nil {
		return err
	}
	ev, err := web.DecodeMessage(body)
	if err != nil {
		return err
	}
	ev.Bot, ev.Channel, ev.Timestamp = c.Param("bot"), web.Name, a.cfg.Now().UTC()
	t, err := a.cfg.Dispatcher.Run(c, ev)
	if err != nil {
		return err
	}
	out := gin.H{"answer": web.NewAnswer(&t.TurnResult), "decision": t.Decision, "outcome": t.Outcome,
		"version": t.Version, "logs": t.Logs, "handler_ms": float64(t.HandlerTime.Microseconds()) / 1000,
		"duplicate": t.Duplicate, "slots": ev.Slots}
	if t.Err != nil {
		e := apierr.Classify(t.Err).Body()
		e["message"] = t.Err.Error()
		out["error"] = e
	}
	c.JSON(http.StatusOK, out)
	return nil
}

// getConversation answers GET /v1/bots/{bot}/conversations/{channel}/{conversation}:
// a conversation's session and transcript. Conversation ids are the
// platforms' own, so the channel is part of the address.
func (a *API) getConversation(c *gin.Context) error {
	if err := a.requireBot(c); err != nil {
		return err
	}
	conv, err := a.cfg.Conversations.Describe(c, c.Param("bot"), msg.KeyOf(c.Param("channel"), c.Param("conversation")))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, conv)
	return nil
}

// conversationNeedsChannel answers a conversation addressed without its
// channel.
func conversationNeedsChannel(*gin.Context) error {
	return apierr.New(http.StatusBadRequest, "channel_required",
		"address a conversation with its channel: /v1/bots/{bot}/conversations/{channel}/{conversation}")
}
