package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/gin-gonic/gin"

	"github.com/parleyhq/parley/bots"
	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/web"
	"github.com/parleyhq/parley/engine"
	"github.com/parleyhq/parley/internal/apierr"
	"github.com/parleyhq/parley/internal/httpx"
	"github.com/parleyhq/parley/internal/rate"
	"github.com/parleyhq/parley/internal/ratelimit"
	"github.com/parleyhq/parley/internal/webchat"
	"github.com/parleyhq/parley/msg"
)

// The browser chat: user tokens, CORS, anonymous sessions, the live
// connection (WebSocket) and the widget of the web channel. The user manual
// is docs/channels/web.md.

// Outboxes keeps the web conversations' answers for live connections;
// *webchat.Outbox implements it.
type Outboxes interface {
	Append(ctx context.Context, bot, conversation string, answer []byte) (string, error)
	Follow(ctx context.Context, bot, conversation, after string) (*webchat.Follower, error)
}

// SessionLimiter bounds anonymous sessions per client address;
// *ratelimit.Limiter implements it.
type SessionLimiter interface {
	Allow(ctx context.Context, bot, conversation string, lim rate.Limits) ratelimit.Decision
}

// Defaults of the live connections.
const (
	DefaultLiveConnsPerBot          = 1000
	DefaultLiveConns                = 10000
	DefaultLiveConnsPerConversation = 8
	DefaultLiveHeartbeat            = 25 * time.Second
	// liveReadLimit bounds a client's frame: a message's text (4 KiB) or
	// postback (64 KiB) and the rest of the frame.
	liveReadLimit = 80 << 10
	// liveWriteTimeout bounds writing one frame to a client.
	liveWriteTimeout = 10 * time.Second
)

// Anonymous sessions a client address may open, per bot.
var (
	sessionsPerAddress = rate.Rate{Count: 10, Period: time.Minute}
	sessionsPerBot     = rate.Rate{Count: 600, Period: time.Minute}
)

// WebChatConfig configures the browser chat of the web channel.
type WebChatConfig struct {
	// Outboxes serves the live connections; nil leaves /hooks/{bot}/web/ws out.
	Outboxes Outboxes
	// Sessions bounds anonymous sessions per client address and per bot;
	// nil refuses anonymous sessions.
	Sessions SessionLimiter
	// MaxConnsPerBot bounds one bot's live connections on this server
	// (default 1000).
	MaxConnsPerBot int
	// MaxConns bounds all live connections on this server (default 10000).
	MaxConns int
	// MaxConnsPerConversation bounds one conversation's live connections on
	// this server (default 8).
	MaxConnsPerConversation int
	// Heartbeat is how often a silent connection is pinged (default 25s).
	Heartbeat time.Duration
}

// live tracks the open live connections and ends them at shutdown.
type live struct {
	mu     sync.Mutex
	total  int
	perBot map[string]int
	perKey map[string]int
	ctx    context.Context
	cancel context.CancelFunc
}

func newLive() *live {
	ctx, cancel := context.WithCancel(context.Background())
	return &live{perBot: map[string]int{}, perKey: map[string]int{}, ctx: ctx, cancel: cancel}
}

// acquire counts a connection of bot's conversation key, unless a bound
// is reached.
func (l *live) acquire(cfg WebChatConfig, bot, key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= cfg.MaxConns || l.perBot[bot] >= cfg.MaxConnsPerBot || l.perKey[key] >= cfg.MaxConnsPerConversation {
		return false
	}
	l.total++
	l.perBot[bot]++
	l.perKey[key]++
	return true
}

func (l *live) release(bot, key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.perBot[bot]--; l.perBot[bot] <= 0 {
		delete(l.perBot, bot)
	}
	if l.perKey[key]--; l.perKey[key] <= 0 {
		delete(l.perKey, key)
	}
}

// CloseLive ends every live connection, and every one opened after it:
// call it when the server starts shutting down (hijacked connections are
// not drained by http.Server.Shutdown). Clients reconnect to another
// replica, or to this one once it is back, and miss nothing the outbox keeps.
func (s *Server) CloseLive() { s.live.cancel() }

var (
	errForbiddenOrigin = apierr.New(http.StatusForbidden, "forbidden", "this origin is not among the web channel's allowed_origins")
	errTooManyLive     = &apierr.Error{Status: http.StatusTooManyRequests, Code: "too_many_connections",
		Message: "too many live connections; retry later", Retry: 5 * time.Second}
)

// webRoutes adds the browser chat's routes.
func (s *Server) webRoutes(r gin.IRouter) {
	r.OPTIONS("/hooks/:bot/web", s.handle(s.preflight))
	r.OPTIONS("/hooks/:bot/web/session", s.handle(s.preflight))
	r.POST("/hooks/:bot/web/session", s.handle(s.anonymousSession))
	r.POST("/v1/bots/:bot/channels/web/tokens", s.handle(s.mintToken))
	r.GET("/widget.js", s.widget)
	if s.cfg.WebChat.Outboxes != nil {
		r.GET("/hooks/:bot/web/ws", s.handle(s.liveConnection))
	}
}

// webAdapter is the web channel's adapter.
func (s *Server) webAdapter(*gin.Context) (*web.Adapter, bool) {
	a, ok := s.cfg.Channels.Get(web.Name)
	if !ok {
		return nil, false
	}
	wa, ok := a.(*web.Adapter)
	return wa, ok
}

// webSettings finds the bot's web channel settings; the refusal is the
// neutral one of webhooks.
func (s *Server) webSettings(c *gin.Context) (*web.Adapter, channels.Settings, error) {
	a, ok := s.webAdapter(c)
	if !ok {
		return nil, nil, s.refuseHook(c, apierr.New(http.StatusNotFound, "channel_not_found", "this route serves the web channel only"))
	}
	b, err := s.cfg.Catalog.Bot(c.Request.Context(), c.Param("bot"))
	if err != nil {
		if hookRefusal(err) {
			return nil, nil, s.refuseHook(c, err)
		}
		return nil, nil, err
	}
	settings, ok := b.Channels[web.Name]
	if !ok {
		return nil, nil, s.refuseHook(c, apierr.New(http.StatusNotFound, "channel_not_configured",
			fmt.Sprintf("channel web is not configured for bot %s", c.Param("bot"))))
	}
	return a, settings, nil
}

// originPolicy is an adapter that lets browsers of some origins call it.
type originPolicy interface {
	OriginAllowed(s channels.Settings, origin string) bool
}

// cors adds the CORS headers of an actual request: for an allowed origin
// only, and Vary: Origin always, as the answer depends on it.
func cors(c *gin.Context, adapter channels.Adapter, s channels.Settings) {
	p, ok := adapter.(originPolicy)
	if !ok {
		return
	}
	h := c.Writer.Header()
	h.Add("Vary", "Origin")
	if origin := c.GetHeader("Origin"); origin != "" && p.OriginAllowed(s, origin) {
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Expose-Headers", "Retry-After")
	}
}

// preflight answers a CORS preflight: 204, with the CORS headers only for
// an allowed origin of a bot's web channel. Anything else (another origin,
// channel or bot) gets the same bare 204, which tells nothing.
func (s *Server) preflight(c *gin.Context) error {
	h := c.Writer.Header()
	h.Add("Vary", "Origin")
	origin := c.GetHeader("Origin")
	if a, ok := s.webAdapter(c); ok && origin != "" {
		if b, err := s.cfg.Catalog.Bot(c.Request.Context(), c.Param("bot")); err == nil {
			if settings, ok := b.Channels[web.Name]; ok && a.OriginAllowed(settings, origin) {
				h.Set("Access-Control-Allow-Origin", origin)
				h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept")
				h.Set("Access-Control-Max-Age", "600")
			}
		}
	}
	c.Status(http.StatusNoContent)
	c.Writer.WriteHeaderNow()
	return nil
}

// tokenAnswer is the answer of the token routes.
type tokenAnswer struct {
	Token   string `json:"token"`
	User    string `json:"user"`
	Expires string `json:"expires"`
}

// mintToken serves POST /v1/bots/{bot}/channels/web/tokens: the admin key,
// or the web channel's token (a site's backend), mints a user token.
func (s *Server) mintToken(c *gin.Context) error {
	body, err := httpx.ReadBody(c.Writer, c.Request, 4<<10)
	if err != nil {
		return err
	}
	a, ok := s.webAdapter(c)
	admin := s.isAdmin(c)
	if !ok {
		if admin {
			return apierr.New(http.StatusNotFound, "not_found", "user tokens are minted for the web channel only")
		}
		return errUnauthorized
	}
	b, err := s.cfg.Catalog.Bot(c.Request.Context(), c.Param("bot"))
	if err != nil {
		if errors.Is(err, bots.ErrBotNotFound) && !admin {
			return errUnauthorized
		}
		return err
	}
	settings, ok := b.Channels[web.Name]
	if !ok {
		if admin {
			return apierr.New(http.StatusNotFound, "channel_not_configured", "the web channel is not configured for this bot")
		}
		return errUnauthorized
	}
	bearer, _ := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	if !admin && !web.IsChannelToken(settings, bearer) {
		return errUnauthorized
	}
	if a.Tokens() == nil {
		return apierr.New(http.StatusNotImplemented, "not_implemented", "user tokens are not enabled on this server")
	}
	var req struct {
		User       string `json:"user"`
		TTLSeconds int64  `json:"ttl_seconds"`
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return apierr.New(http.StatusBadRequest, "bad_request", "body is not {\"user\": \"...\", \"ttl_seconds\": n}: "+err.Error())
	}
	if !web.ValidUser(req.User) {
		return apierr.New(http.StatusBadRequest, "bad_request",
			fmt.Sprintf("\"user\" is 1 to %d letters, digits and ._@+- (no %q)", web.MaxUserLen, web.ConversationSep))
	}
	ttl, err := web.TokenTTL(req.TTLSeconds)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, s.issue(a, c.Param("bot"), settings, req.User, ttl))
	return nil
}

// issue mints a token for user.
func (s *Server) issue(a *web.Adapter, bot string, settings channels.Settings, user string, ttl time.Duration) tokenAnswer {
	expires := s.cfg.Now().Add(ttl).Truncate(time.Second).UTC()
	return tokenAnswer{Token: a.Tokens().Mint(bot, settings["token"], user, expires), User: user,
		Expires: expires.Format(time.RFC3339)}
}

// anonymousSession serves POST /hooks/{bot}/web/session: a browser of an
// allowed origin of a channel with allow_anonymous gets a token for a fresh
// user, at most a few per client address and minute.
func (s *Server) anonymousSession(c *gin.Context) error {
	if _, err := httpx.ReadBody(c.Writer, c.Request, 4<<10); err != nil {
		return err
	}
	a, settings, err := s.webSettings(c)
	if err != nil {
		return err
	}
	cors(c, a, settings)
	if !web.AllowsAnonymous(settings) || s.cfg.WebChat.Sessions == nil || a.Tokens() == nil {
		return apierr.New(http.StatusForbidden, "forbidden", "this bot's web channel does not allow anonymous sessions")
	}
	if !a.OriginAllowed(settings, c.GetHeader("Origin")) {
		return errForbiddenOrigin
	}
	bot := c.Param("bot")
	d := s.cfg.WebChat.Sessions.Allow(c.Request.Context(), "web-session:"+bot, "ip:"+c.ClientIP(),
		rate.Limits{Bot: sessionsPerBot, Conversation: sessionsPerAddress})
	if !d.Allowed {
		return &apierr.Error{Status: http.StatusTooManyRequests, Code: "rate_limited",
			Message: "too many anonymous sessions from this address; retry later", Retry: d.RetryAfter}
	}
	user, err := web.AnonymousUser()
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, s.issue(a, bot, settings, user, web.DefaultTokenTTL))
	return nil
}

// mirrorWeb appends the answers of a web request made with a user token to
// the conversation's outbox, so that the user's live connections show them
// too. A retry answered from memory was appended the first time.
func (s *Server) mirrorWeb(c *gin.Context, adapter channels.Adapter, req *channels.Request, results []*msg.TurnResult) {
	if s.cfg.WebChat.Outboxes == nil || adapter.Name() != web.Name {
		return
	}
	bearer, _ := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
	if web.IsChannelToken(req.Settings, bearer) {
		return // a backend's call: it has the answer, and no browser follows
	}
	for _, res := range results {
		if res.Duplicate {
			continue
		}
		if err := s.appendAnswer(c.Request.Context(), req.Bot, res); err != nil {
			s.log.WarnContext(c.Request.Context(), "web answer not added to the live outbox", "bot", req.Bot, "err", err)
		}
	}
}

func (s *Server) appendAnswer(ctx context.Context, bot string, res *msg.TurnResult) error {
	body, err := json.Marshal(web.NewAnswer(res))
	if err != nil {
		return err
	}
	_, err = s.cfg.WebChat.Outboxes.Append(ctx, bot, res.Conversation, body)
	return err
}

// clientFrame is what a live client sends: a message ("type": "message",
// the fields of a POSTed message) or "ping".
type clientFrame struct {
	Type string `json:"type"`
	web.Message
}

// liveFrame is what the server sends on a live connection.
type liveFrame struct {
	Type         string `json:"type"`
	ID           string `json:"id,omitempty"`
	Ref          string `json:"ref,omitempty"`
	Conversation string `json:"conversation,omitempty"`
	User         string `json:"user,omitempty"`
	Text         string `json:"text,omitempty"`
	Code         string `json:"code,omitempty"`
	Message      string `json:"message,omitempty"`
	// Answer is the stored answer of a "message" frame, spliced in.
	Answer json.RawMessage `json:"answer,omitempty"`
}

// liveConnection serves GET /hooks/{bot}/web/ws?token=...: a WebSocket of
// one user's conversation.
func (s *Server) liveConnection(c *gin.Context) error {
	a, settings, err := s.webSettings(c)
	if err != nil {
		return err
	}
	if origin := c.GetHeader("Origin"); origin != "" && !a.OriginAllowed(settings, origin) && !sameOrigin(c.Request, origin) {
		return errForbiddenOrigin
	}
	bot := c.Param("bot")
	user, _, err := a.Tokens().Verify(bot, settings["token"], c.Query("token"), s.cfg.Now())
	if err != nil {
		return s.refuseHook(c, channels.Unauthorized("missing or wrong user token (?token=) for the web channel's live connection"))
	}
	conv := c.DefaultQuery("conversation", user)
	if !web.OwnsConversation(user, conv) || len(conv) > 256 {
		return web.Forbidden("conversation %q is not one of user %q's", conv, user)
	}
	after := c.Query("after")
	if after != "" && after != "0" && !webchat.ValidID(after) {
		return apierr.New(http.StatusBadRequest, "bad_request", "\"after\" is the id of a message received, such as 1764104645120-0")
	}
	key := string(msg.KeyOf(web.Name, conv))
	if !s.live.acquire(s.cfg.WebChat, bot, bot+"\x00"+key) {
		return errTooManyLive
	}
	defer s.live.release(bot, bot+"\x00"+key)

	ctx, cancel := context.WithCancel(context.WithoutCancel(c.Request.Context()))
	defer cancel()
	stop := context.AfterFunc(s.live.ctx, cancel)
	defer stop()
	follower, err := s.cfg.WebChat.Outboxes.Follow(ctx, bot, conv, after)
	if err != nil {
		return err
	}
	defer follower.Close()

	// A connection outlives the server's read and write timeouts.
	rc := http.NewResponseController(c.Writer)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	// The origin was checked above, against the channel's allowed origins.
	conn, err := websocket.Accept(c.Writer, c.Request, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return nil // Accept answered the client
	}
	defer func() { _ = conn.CloseNow() }()
	conn.SetReadLimit(liveReadLimit)
	lc := &liveConn{s: s, conn: conn, bot: bot, user: user, conv: conv, settings: settings}
	if err := lc.write(ctx, liveFrame{Type: "ready", User: user, Conversation: conv, ID: follower.Last()}); err != nil {
		return nil
	}
	go func() {
		defer cancel()
		lc.readLoop(ctx)
	}()
	lc.writeLoop(ctx, follower)
	if s.live.ctx.Err() != nil {
		_ = conn.Close(websocket.StatusGoingAway, "server shutting down; reconnect")
	}
	return nil
}

// sameOrigin reports whether origin is the Parley server's own (a page it
// serves).
func sameOrigin(r *http.Request, origin string) bool {
	_, host, ok := strings.Cut(origin, "://")
	return ok && host == r.Host
}

// liveConn is one open live connection.
type liveConn struct {
	s        *Server
	conn     *websocket.Conn
	bot      string
	user     string
	conv     string
	settings channels.Settings
}

// write sends one frame.
func (lc *liveConn) write(ctx context.Context, f liveFrame) error {
	data, err := json.Marshal(f)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, liveWriteTimeout)
	defer cancel()
	return lc.conn.Write(ctx, websocket.MessageText, data)
}

// writeLoop sends the outbox's answers as they come, and pings a silent
// client every heartbeat; it ends when ctx does or the client is gone.
func (lc *liveConn) writeLoop(ctx context.Context, f *webchat.Follower) {
	for {
		wait, cancelWait := context.WithTimeout(ctx, lc.s.cfg.WebChat.Heartbeat)
		entries, err := f.Next(wait)
		cancelWait()
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, context.DeadlineExceeded):
			pctx, cancel := context.WithTimeout(ctx, liveWriteTimeout)
			err = lc.conn.Ping(pctx)
			cancel()
		case err != nil:
			lc.s.log.WarnContext(ctx, "live connection: outbox unavailable", "bot", lc.bot, "err", err)
			_ = lc.conn.Close(websocket.StatusTryAgainLater, "outbox unavailable; reconnect")
			return
		default:
			for _, e := range entries {
				if err = lc.write(ctx, liveFrame{Type: "message", ID: e.ID, Answer: e.Data}); err != nil {
					break
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// liveQueue bounds the messages a client may send ahead of its turns.
const liveQueue = 4

// readLoop reads the client's frames until it goes or ctx ends, and runs
// the turns of its messages one at a time, beside the reading (which must
// go on for pings to be answered while a turn runs).
func (lc *liveConn) readLoop(ctx context.Context) {
	queue := make(chan web.Message, liveQueue)
	done := make(chan struct{})
	defer func() { close(queue); <-done }()
	go func() {
		defer close(done)
		for m := range queue {
			lc.turn(ctx, m)
		}
	}()
	for {
		typ, data, err := lc.conn.Read(ctx)
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			_ = lc.write(ctx, liveFrame{Type: "error", Code: "bad_request", Message: "frames are JSON text"})
			continue
		}
		var f clientFrame
		dec := json.NewDecoder(strings.NewReader(string(data)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			_ = lc.write(ctx, liveFrame{Type: "error", Code: "bad_request", Message: "frame is not a valid message: " + err.Error()})
			continue
		}
		switch f.Type {
		case "ping":
			_ = lc.write(ctx, liveFrame{Type: "pong"})
		case "message":
			select {
			case queue <- f.Message:
			default:
				_ = lc.write(ctx, liveFrame{Type: "error", Ref: f.ID, Code: "too_many_requests",
					Message: "too many messages waiting for an answer; send again later"})
			}
		default:
			_ = lc.write(ctx, liveFrame{Type: "error", Code: "bad_request", Message: "unknown frame type " + strconv.Quote(f.Type)})
		}
	}
}

// turn runs one message's turn: "typing", the reply's text as the handler
// writes it ("delta"), then the answer, through the outbox, as "message".
func (lc *liveConn) turn(ctx context.Context, m web.Message) {
	if m.Conversation == "" {
		m.Conversation = lc.conv
	}
	ev, err := m.Event(lc.user)
	if err == nil && ev.Conversation != lc.conv {
		err = web.Forbidden("this connection is conversation %q's", lc.conv)
	}
	if err != nil {
		lc.fail(ctx, m.ID, err)
		return
	}
	ev.Bot, ev.Channel, ev.Timestamp = lc.bot, web.Name, lc.s.cfg.Now()
	_ = lc.write(ctx, liveFrame{Type: "typing", Ref: m.ID})
	t, err := lc.s.cfg.Dispatcher.Run(msg.WithStream(ctx, &deltaWriter{ctx: ctx, lc: lc, ref: m.ID}), ev)
	if err != nil {
		lc.fail(ctx, m.ID, err)
		return
	}
	if t.Duplicate {
		return // appended the first time
	}
	if err := lc.s.appendAnswer(ctx, lc.bot, &t.TurnResult); err != nil {
		lc.fail(ctx, m.ID, err)
	}
}

// fail sends a turn's error as an "error" frame.
func (lc *liveConn) fail(ctx context.Context, ref string, err error) {
	ans := apierr.Classify(err)
	var busy *engine.BusyError
	if errors.As(err, &busy) {
		ans.Message = busy.Reply
	}
	if ans.Status >= 500 {
		lc.s.log.WarnContext(ctx, "live connection: turn failed", "bot", lc.bot, "err", err)
	}
	_ = lc.write(ctx, liveFrame{Type: "error", Ref: ref, Code: ans.Code, Message: ans.Message})
}

// deltaWriter is a turn's msg.Stream on a live connection: "delta" frames.
type deltaWriter struct {
	ctx context.Context
	lc  *liveConn
	ref string
}

func (d *deltaWriter) Write(text string) {
	if text != "" {
		_ = d.lc.write(d.ctx, liveFrame{Type: "delta", Ref: d.ref, Text: text})
	}
}

// widget serves the embeddable chat widget.
func (s *Server) widget(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Cache-Control", "public, max-age=3600")
	h.Set("ETag", widgetETag)
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	h.Set("X-Content-Type-Options", "nosniff")
	if match := c.GetHeader("If-None-Match"); match != "" && strings.Contains(match, widgetETag) {
		c.Status(http.StatusNotModified)
		c.Writer.WriteHeaderNow()
		return
	}
	c.Data(http.StatusOK, "text/javascript; charset=utf-8", web.Widget)
}

var widgetETag = func() string {
	sum := sha256.Sum256(web.Widget)
	return `"` + hex.EncodeToString(sum[:8]) + `"`
}()
