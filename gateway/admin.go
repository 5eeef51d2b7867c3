package gateway

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
	"github.com/parleyhq/parley/intents"
)

// decode reads a JSON body strictly: unknown fields and trailing data are errors.
// An empty body decodes to the zero value when allowEmpty is set.
func (s *Server) decode(c *gin.Context, v any, allowEmpty bool) error {
	body, err := s.body(c)
	if err != nil {
		return err
	}
	if allowEmpty && len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return newError(http.StatusBadRequest, "bad_json", fmt.Sprintf("body is not valid JSON for this route: %v", err))
	}
	if dec.More() {
		return newError(http.StatusBadRequest, "bad_json", "body has data after the JSON value")
	}
	return nil
}

func (s *Server) listBots(c *gin.Context) {
	names, err := s.cfg.Catalog.ListBots(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"bots": names})
}

func (s *Server) putBot(c *gin.Context) {
	var raw json.RawMessage
	if err := s.decode(c, &raw, true); err != nil {
		s.fail(c, err)
		return
	}
	var settings bots.Settings
	if len(raw) > 0 {
		var err error
		if settings, err = bots.ParseSettings(raw); err != nil {
			s.fail(c, err)
			return
		}
	}
	created, err := s.cfg.Catalog.PutBot(c, c.Param("bot"), settings)
	if err != nil {
		s.fail(c, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	c.JSON(status, gin.H{"name": c.Param("bot"), "settings": settings, "created": created})
}

// getBot describes a bot, or the deletion under way of a deleted one.
func (s *Server) getBot(c *gin.Context) {
	info, err := s.cfg.Catalog.GetBot(c, c.Param("bot"))
	if errors.Is(err, bots.ErrBotNotFound) {
		d, derr := s.cfg.Deletions.Status(c, c.Param("bot"))
		if derr != nil {
			s.fail(c, derr)
			return
		}
		if d != nil {
			c.JSON(http.StatusOK, deletionAnswer(d))
			return
		}
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, info)
}

// deleteBot deletes a bot: it is gone at once, and its data are removed in
// the background (202, with the deletion's status).
func (s *Server) deleteBot(c *gin.Context) {
	d, err := s.cfg.Deletions.Delete(c, c.Param("bot"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, deletionAnswer(d))
}

// deletionAnswer shows a deletion under way.
func deletionAnswer(d *bots.Deletion) gin.H {
	return gin.H{"name": d.Bot, "status": d.Status, "deletion": d}
}

func (s *Server) adapter(c *gin.Context) (channels.Adapter, bool) {
	a, ok := s.cfg.Channels.Get(c.Param("channel"))
	if !ok {
		s.fail(c, newError(http.StatusNotFound, "channel_not_found",
			fmt.Sprintf("unknown channel %q; known channels: %v", c.Param("channel"), s.cfg.Channels.Names())))
	}
	return a, ok
}

func (s *Server) listChannels(c *gin.Context) {
	info, err := s.cfg.Catalog.GetBot(c, c.Param("bot"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"channels": info.Channels, "available": s.cfg.Channels.Names()})
}

func (s *Server) putChannel(c *gin.Context) {
	a, ok := s.adapter(c)
	if !ok {
		return
	}
	var raw map[string]json.RawMessage
	if err := s.decode(c, &raw, false); err != nil {
		s.fail(c, err)
		return
	}
	settings, err := channels.DecodeSettings(a, raw)
	if err != nil {
		s.fail(c, err)
		return
	}
	if err := channels.Validate(a, settings); err != nil {
		s.fail(c, err)
		return
	}
	if err := s.cfg.Catalog.PutChannel(c, c.Param("bot"), a.Name(), settings); err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"channel": a.Name(), "settings": channels.Redact(a, settings),
		"webhook": "/hooks/" + c.Param("bot") + "/" + a.Name()})
}

func (s *Server) getChannel(c *gin.Context) {
	a, ok := s.adapter(c)
	if !ok {
		return
	}
	settings, err := s.cfg.Catalog.ChannelSettings(c, c.Param("bot"), a.Name())
	if err != nil {
		s.fail(c, notConfigured(err, c))
		return
	}
	c.JSON(http.StatusOK, gin.H{"channel": a.Name(), "settings": channels.Redact(a, settings),
		"webhook": "/hooks/" + c.Param("bot") + "/" + a.Name()})
}

func (s *Server) deleteChannel(c *gin.Context) {
	a, ok := s.adapter(c)
	if !ok {
		return
	}
	if err := s.cfg.Catalog.DeleteChannel(c, c.Param("bot"), a.Name()); err != nil {
		s.fail(c, notConfigured(err, c))
		return
	}
	c.Status(http.StatusNoContent)
}

// notConfigured refines "not found" for a channel route: the bot may exist
// without that channel.
func notConfigured(err error, c *gin.Context) error {
	if err == bots.ErrBotNotFound {
		return newError(http.StatusNotFound, "channel_not_configured",
			fmt.Sprintf("channel %s is not configured for bot %s (or the bot does not exist)", c.Param("channel"), c.Param("bot")))
	}
	return err
}

func (s *Server) listIntents(c *gin.Context) {
	list, err := s.cfg.Catalog.ListHandlers(c, c.Param("bot"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"intents": list})
}

// putIntent uploads a handler version: the new stable version, or with
// ?canary=PERCENT a canary for that share of new conversations.
func (s *Server) putIntent(c *gin.Context) {
	body, err := s.body(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	if raw, ok := c.GetQuery("canary"); ok {
		percent, err := strconv.Atoi(raw)
		if err != nil {
			s.fail(c, newError(http.StatusBadRequest, "invalid", "canary must be a percentage from 0 to 100"))
			return
		}
		s.putCanary(c, string(body), percent)
		return
	}
	v, unchanged, err := s.cfg.Catalog.PutHandler(c, c.Param("bot"), c.Param("intent"), string(body))
	if err != nil {
		s.fail(c, err)
		return
	}
	status := http.StatusCreated
	if unchanged {
		status = http.StatusOK
	}
	c.JSON(status, gin.H{"intent": c.Param("intent"), "version": v.Version, "sha256": v.SHA256, "unchanged": unchanged})
}

func (s *Server) putCanary(c *gin.Context, source string, percent int) {
	up, err := s.cfg.Catalog.PutCanary(c, c.Param("bot"), c.Param("intent"), source, percent)
	if err != nil {
		s.fail(c, err)
		return
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
}

// setCanary changes the share of new conversations a canary gets.
func (s *Server) setCanary(c *gin.Context) {
	var req struct {
		Percent *int `json:"percent"`
	}
	if err := s.decode(c, &req, false); err != nil {
		s.fail(c, err)
		return
	}
	if req.Percent == nil {
		s.fail(c, newError(http.StatusBadRequest, "invalid", "\"percent\" is required (0-100)"))
		return
	}
	if err := s.cfg.Catalog.SetCanaryPercent(c, c.Param("bot"), c.Param("intent"), *req.Percent); err != nil {
		s.fail(c, err)
		return
	}
	s.getIntentRollout(c)
}

func (s *Server) promoteCanary(c *gin.Context) {
	if _, err := s.cfg.Catalog.PromoteCanary(c, c.Param("bot"), c.Param("intent")); err != nil {
		s.fail(c, err)
		return
	}
	s.getIntentRollout(c)
}

func (s *Server) abortCanary(c *gin.Context) {
	if _, err := s.cfg.Catalog.AbortCanary(c, c.Param("bot"), c.Param("intent")); err != nil {
		s.fail(c, err)
		return
	}
	s.getIntentRollout(c)
}

// getIntentRollout answers a canary change with the intent's versions after it.
func (s *Server) getIntentRollout(c *gin.Context) {
	info, err := s.cfg.Catalog.GetHandler(c, c.Param("bot"), c.Param("intent"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"intent": info.Intent, "version": info.Current, "sha256": info.SHA256,
		"canary": info.Canary, "previous": info.Previous})
}

func (s *Server) getIntent(c *gin.Context) {
	info, err := s.cfg.Catalog.GetHandler(c, c.Param("bot"), c.Param("intent"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, info)
}

func (s *Server) deleteIntent(c *gin.Context) {
	if err := s.cfg.Catalog.DeleteHandler(c, c.Param("bot"), c.Param("intent")); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (s *Server) rollback(c *gin.Context) {
	var req struct {
		Version int `json:"version"`
	}
	if err := s.decode(c, &req, false); err != nil {
		s.fail(c, err)
		return
	}
	if req.Version <= 0 {
		s.fail(c, newError(http.StatusBadRequest, "invalid", "\"version\" must be a positive version number"))
		return
	}
	if err := s.cfg.Catalog.Rollback(c, c.Param("bot"), c.Param("intent"), req.Version); err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"intent": c.Param("intent"), "version": req.Version})
}

func (s *Server) putNLU(c *gin.Context) {
	var n bots.NLU
	if err := s.decode(c, &n, false); err != nil {
		s.fail(c, err)
		return
	}
	if err := s.cfg.Catalog.PutNLU(c, c.Param("bot"), n); err != nil {
		s.fail(c, err)
		return
	}
	total := 0
	for _, ex := range n.Intents {
		total += len(ex)
	}
	c.JSON(http.StatusOK, gin.H{"intents": len(n.Intents), "examples": total})
}

func (s *Server) getNLU(c *gin.Context) {
	n, err := s.cfg.Catalog.GetNLU(c, c.Param("bot"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, n)
}

// invoke runs one turn as if it came from the web channel, and answers with
// the details a developer needs: routing, version, logs and the handler error.
func (s *Server) invoke(c *gin.Context) {
	body, err := s.body(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	ev, err := web.DecodeMessage(body)
	if err != nil {
		s.fail(c, err)
		return
	}
	ev.Bot, ev.Channel, ev.Timestamp = c.Param("bot"), web.Name, s.cfg.Now().UTC()
	t, err := s.cfg.Dispatcher.Run(c, ev)
	if err != nil {
		s.fail(c, err)
		return
	}
	out := gin.H{"answer": web.NewAnswer(&t.TurnResult), "decision": t.Decision, "outcome": t.Outcome,
		"version": t.Version, "logs": t.Logs, "handler_ms": float64(t.HandlerTime.Microseconds()) / 1000,
		"duplicate": t.Duplicate}
	if t.Err != nil {
		ae := classify(t.Err)
		e := gin.H{"code": ae.Code, "message": t.Err.Error()}
		for k, v := range ae.Extra {
			e[k] = v
		}
		out["error"] = e
	}
	c.JSON(http.StatusOK, out)
}

// getConversation answers GET /v1/bots/{bot}/conversations/{channel}/{conversation}:
// a conversation's session and transcript. Conversation ids are the
// platforms' own, so the channel is part of the address.
func (s *Server) getConversation(c *gin.Context) {
	if _, err := s.cfg.Catalog.Bot(c, c.Param("bot")); err != nil {
		s.fail(c, err)
		return
	}
	conv, err := s.cfg.Conversations.Describe(c, c.Param("bot"), intents.KeyOf(c.Param("channel"), c.Param("conversation")))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, conv)
}

// conversationNeedsChannel answers a conversation addressed without its
// channel.
func (s *Server) conversationNeedsChannel(c *gin.Context) {
	s.fail(c, newError(http.StatusBadRequest, "channel_required",
		"address a conversation with its channel: /v1/bots/{bot}/conversations/{channel}/{conversation}"))
}
