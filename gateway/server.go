package gateway

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/parleyhq/parley/analytics"
	"github.com/parleyhq/parley/bots"
	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/console"
	"github.com/parleyhq/parley/engine"
	"github.com/parleyhq/parley/intents"
)

// Dispatcher runs one conversation turn.
type Dispatcher interface {
	Run(ctx context.Context, ev *intents.Event) (*engine.Turn, error)
}

// Catalog stores bots; *bots.Catalog implements it.
type Catalog interface {
	Bot(ctx context.Context, name string) (*bots.Bot, error)
	PutBot(ctx context.Context, name string, s bots.Settings) (bool, error)
	GetBot(ctx context.Context, name string) (*bots.BotInfo, error)
	ListBots(ctx context.Context) ([]string, error)
	PutChannel(ctx context.Context, bot, channel string, settings map[string]string) error
	ChannelSettings(ctx context.Context, bot, channel string) (map[string]string, error)
	DeleteChannel(ctx context.Context, bot, channel string) error
	PutHandler(ctx context.Context, bot, intent, source string) (bots.Version, bool, error)
	ListHandlers(ctx context.Context, bot string) ([]bots.HandlerInfo, error)
	GetHandler(ctx context.Context, bot, intent string) (*bots.HandlerInfo, error)
	Rollback(ctx context.Context, bot, intent string, version int) error
	PutCanary(ctx context.Context, bot, intent, source string, percent int) (bots.CanaryUpload, error)
	SetCanaryPercent(ctx context.Context, bot, intent string, percent int) error
	PromoteCanary(ctx context.Context, bot, intent string) (int, error)
	AbortCanary(ctx context.Context, bot, intent string) (int, error)
	DeleteHandler(ctx context.Context, bot, intent string) error
	PutNLU(ctx context.Context, bot string, n bots.NLU) error
	GetNLU(ctx context.Context, bot string) (bots.NLU, error)
}

// Deletions deletes bots: a bot is gone at once, and everything it owns is
// removed in the background, its name staying taken until then.
type Deletions interface {
	// Delete starts deleting a bot (or returns its deletion under way).
	Delete(ctx context.Context, bot string) (*bots.Deletion, error)
	// Status returns a bot's deletion under way, or nil.
	Status(ctx context.Context, bot string) (*bots.Deletion, error)
}

// Conversations reads conversation state for the management API.
type Conversations interface {
	Describe(ctx context.Context, bot string, conv intents.ConversationKey) (any, error)
}

// Pinger reports whether the shared store is reachable.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Config configures a [Server].
type Config struct {
	// AdminKey authenticates the management API (required).
	AdminKey string
	// MaxBodyBytes bounds request bodies (default 1 MiB); larger ones get 413.
	MaxBodyBytes int64
	// TrustedProxies are the networks of the reverse proxies whose
	// X-Forwarded-Proto and X-Forwarded-Host are believed when a webhook's
	// public URL is rebuilt (Twilio signs it); from anyone else they are
	// ignored. Empty trusts no one.
	TrustedProxies []netip.Prefix
	// Logger receives request failures; nil discards them.
	Logger *slog.Logger
	// Now is the clock handed to channel adapters (default time.Now).
	Now func() time.Time

	Catalog Catalog
	// Deletions serves DELETE /v1/bots/{bot} (required).
	Deletions     Deletions
	Dispatcher    Dispatcher
	Channels      *channels.Registry
	Store         Pinger
	Conversations Conversations
	// Queue takes the events of asynchronous channels ([channels.Inbound].Async)
	// and keeps their dead letters; nil refuses such events.
	Queue     Queue
	Schedules Schedules
	// Invocations serves GET /v1/bots/{bot}/logs and /usage; nil answers 501.
	Invocations Invocations
	// Analytics serves the analytics, conversation list and erasure routes;
	// nil answers them with 404.
	Analytics Analytics
	// Instruments receives stage timings and refused webhooks; nil records nothing.
	Instruments Instruments
	// Metrics serves GET /metrics (Prometheus text format); nil leaves the route out.
	Metrics http.Handler
	// MetricsRequireKey makes GET /metrics require the admin key.
	MetricsRequireKey bool
}

// Server serves Parley's HTTP API. Create it with [New].
type Server struct {
	cfg    Config
	log    *slog.Logger
	engine *gin.Engine
}

// New builds the router.
func New(cfg Config) (*Server, error) {
	if cfg.AdminKey == "" {
		return nil, fmt.Errorf("gateway: an admin key is required")
	}
	if cfg.Deletions == nil {
		return nil, fmt.Errorf("gateway: Deletions is required")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	gin.SetMode(gin.ReleaseMode)
	s := &Server{cfg: cfg, log: log, engine: gin.New()}
	proxies := make([]string, len(cfg.TrustedProxies))
	for i, p := range cfg.TrustedProxies {
		proxies[i] = p.String()
	}
	if err := s.engine.SetTrustedProxies(proxies); err != nil { // gin's ClientIP believes the same proxies
		return nil, fmt.Errorf("gateway: trusted proxies: %w", err)
	}
	s.routes()
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.engine.ServeHTTP(w, r) }

func (s *Server) routes() {
	r := s.engine
	r.HandleMethodNotAllowed = true
	r.ContextWithFallback = true
	// Paths are taken as sent: no cleaning, no redirects to another path
	// (which would address another user or conversation), and every id can
	// be written percent-encoded ("a%2Fb" is the id "a/b").
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.RemoveExtraSlash = false
	r.UseRawPath = true
	r.UnescapePathValues = true
	r.Use(s.trace)
	r.Use(s.recover)
	r.NoRoute(func(c *gin.Context) { s.fail(c, newError(http.StatusNotFound, "not_found", "no such route")) })
	r.NoMethod(func(c *gin.Context) {
		s.fail(c, newError(http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed on this route"))
	})

	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/console", func(c *gin.Context) { c.Redirect(http.StatusMovedPermanently, "/console/") })
	r.GET("/console/*file", gin.WrapH(http.StripPrefix("/console", console.Handler())))
	r.GET("/readyz", s.ready)
	r.GET("/v1/openapi.json", s.openAPI())
	r.POST("/hooks/:bot/:channel", s.hook)
	r.GET("/hooks/:bot/:channel", s.hook)

	v1 := r.Group("/v1", s.requireAdmin)
	v1.GET("/bots", s.listBots)
	v1.PUT("/bots/:bot", s.putBot)
	v1.GET("/bots/:bot", s.getBot)
	v1.DELETE("/bots/:bot", s.deleteBot)
	v1.GET("/bots/:bot/channels", s.listChannels)
	v1.PUT("/bots/:bot/channels/:channel", s.putChannel)
	v1.GET("/bots/:bot/channels/:channel", s.getChannel)
	v1.DELETE("/bots/:bot/channels/:channel", s.deleteChannel)
	v1.GET("/bots/:bot/intents", s.listIntents)
	v1.PUT("/bots/:bot/intents/:intent", s.putIntent)
	v1.GET("/bots/:bot/intents/:intent", s.getIntent)
	v1.DELETE("/bots/:bot/intents/:intent", s.deleteIntent)
	v1.POST("/bots/:bot/intents/:intent/rollback", s.rollback)
	v1.PUT("/bots/:bot/intents/:intent/canary", s.setCanary)
	v1.POST("/bots/:bot/intents/:intent/canary/promote", s.promoteCanary)
	v1.POST("/bots/:bot/intents/:intent/canary/abort", s.abortCanary)
	v1.PUT("/bots/:bot/nlu", s.putNLU)
	v1.GET("/bots/:bot/nlu", s.getNLU)
	v1.POST("/bots/:bot/invoke", s.invoke)
	v1.GET("/bots/:bot/conversations/:channel/:conversation", s.getConversation)
	v1.GET("/bots/:bot/conversations/:channel", s.conversationNeedsChannel)
	s.deadLetterRoutes(v1)
	s.scheduleRoutes(v1)
	s.invocationRoutes(v1)
	s.analyticsRoutes(r, v1)
}

// recover turns a panic into a 500 JSON answer and logs it.
func (s *Server) recover(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("panic serving request", "path", c.Request.URL.Path, "panic", v)
			s.fail(c, fmt.Errorf("panic: %v", v))
		}
	}()
	c.Next()
}

func (s *Server) requireAdmin(c *gin.Context) {
	if !s.isAdmin(c) {
		s.fail(c, errUnauthorized)
		return
	}
	c.Next()
}

// isAdmin reports whether the request carries the admin key.
func (s *Server) isAdmin(c *gin.Context) bool {
	got, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.AdminKey)) == 1
}

// ready answers whether the store is reachable. Why it is not (an address,
// a driver message) is logged, and shown only to a caller with the admin key.
func (s *Server) ready(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	if err := s.cfg.Store.Ping(ctx); err != nil {
		s.log.WarnContext(c, "not ready: the store does not answer", "err", err)
		body := gin.H{"status": "unavailable"}
		if s.isAdmin(c) {
			body["error"] = err.Error()
		}
		c.JSON(http.StatusServiceUnavailable, body)
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}

// body reads the request body within the size limit. A body that stops
// coming (the server's read timeout, a dropped connection) is the client's
// failure, not the store's.
func (s *Server) body(c *gin.Context) ([]byte, error) {
	if c.Request.ContentLength > s.cfg.MaxBodyBytes {
		s.drain(c)
		return nil, errBodyTooLarge
	}
	b, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, s.cfg.MaxBodyBytes))
	var mbe *http.MaxBytesError
	var ne net.Error
	switch {
	case err == nil:
		return b, nil
	case errors.As(err, &mbe):
		s.drain(c)
		return nil, err
	case errors.As(err, &ne) && ne.Timeout():
		return nil, newError(http.StatusRequestTimeout, "body_timeout", "the request body was not received in time")
	default:
		return nil, newError(http.StatusBadRequest, "bad_request", "the request body could not be read")
	}
}

// drainFactor bounds what is read and discarded of a body over the limit:
// drainFactor times the limit.
const drainFactor = 4

// drain reads and discards the rest of a body over the limit, up to
// drainFactor times the limit, before the 413 is sent. A server that closes
// the connection while the client is still sending resets it, and most
// clients then report the reset instead of the answer. The server's read
// timeout bounds how long this takes; a larger body is cut off.
func (s *Server) drain(c *gin.Context) {
	_, _ = io.CopyN(io.Discard, c.Request.Body, drainFactor*s.cfg.MaxBodyBytes)
}

// hook serves platform webhooks.
func (s *Server) hook(c *gin.Context) {
	botName, channel := c.Param("bot"), c.Param("channel")
	adapter, ok := s.cfg.Channels.Get(channel)
	if !ok {
		s.refuseHook(c, newError(http.StatusNotFound, "channel_not_found", fmt.Sprintf("unknown channel %q", channel)))
		return
	}
	body, err := s.body(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	bot, err := s.cfg.Catalog.Bot(c, botName)
	if err != nil {
		if hookRefusal(err) {
			s.refuseHook(c, err)
			return
		}
		s.fail(c, err)
		return
	}
	settings, ok := bot.Channels[channel]
	if !ok {
		s.refuseHook(c, newError(http.StatusNotFound, "channel_not_configured",
			fmt.Sprintf("channel %s is not configured for bot %s", channel, botName)))
		return
	}
	c.Set(ctxHookTarget, true)
	req := &channels.Request{Bot: botName, Method: c.Request.Method, URL: s.publicURL(c.Request),
		Header: c.Request.Header, Body: body, Settings: settings, Now: s.cfg.Now()}
	parseStart := time.Now()
	in, err := adapter.Parse(req)
	s.stage(analytics.StageAdapter, parseStart)
	if err != nil {
		if hookRefusal(err) {
			s.refuseHook(c, err)
			return
		}
		s.fail(c, err)
		return
	}
	if in.Response != nil && len(in.Events) == 0 {
		write(c, in.Response)
		return
	}
	if in.Async {
		s.enqueue(c, in)
		return
	}
	ctx := context.Context(c)
	if b, ok := adapter.(channels.Budgeter); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.Budget())
		defer cancel()
	}
	results := make([]*intents.TurnResult, 0, len(in.Events))
	for _, ev := range in.Events {
		t, err := s.cfg.Dispatcher.Run(ctx, ev)
		if err != nil {
			if busy := busyAnswer(adapter, ev, err); busy != nil {
				// Over a limit: the bot's busy reply, as an answer in the channel's
				// own format, after the answers of the events before.
				c.Set(ctxTurnFailed, http.StatusTooManyRequests)
				results = append(results, busy)
				break
			}
			if er, ok := adapter.(channels.ErrorRenderer); ok {
				s.log.WarnContext(c, "turn could not run; answering with the channel's apology", "bot", botName,
					"channel", channel, "err", err)
				c.Set(ctxTurnFailed, classify(err).Status)
				write(c, er.RenderError(req, err))
				return
			}
			s.fail(c, err)
			return
		}
		results = append(results, &t.TurnResult)
	}
	renderStart := time.Now()
	resp, err := adapter.Render(req, results)
	s.stage(analytics.StageAdapter, renderStart)
	if err != nil {
		s.fail(c, err)
		return
	}
	sendStart := time.Now()
	write(c, resp)
	s.stage(analytics.StageSend, sendStart)
}

func write(c *gin.Context, r *channels.Response) {
	status := r.Status
	if status == 0 {
		status = http.StatusOK
	}
	if r.ContentType == "" {
		c.Status(status)
		c.Writer.WriteHeaderNow()
		return
	}
	c.Data(status, r.ContentType, r.Body)
}

// publicURL is the request's URL with the scheme and host the platform
// called: a server request carries only the path, and adapters that sign
// over the full URL (Twilio) need them. They are the request's own (https
// over TLS, else none), or what a trusted proxy reports in X-Forwarded-Proto
// and X-Forwarded-Host; from any other peer those headers are ignored, since
// whoever sets them chooses the URL a signature is checked against.
func (s *Server) publicURL(r *http.Request) *url.URL {
	u := *r.URL
	if u.Host == "" {
		u.Host = r.Host
	}
	if u.Scheme == "" && r.TLS != nil {
		u.Scheme = "https"
	}
	if !s.fromTrustedProxy(r) {
		return &u
	}
	if host := lastForwarded(r.Header, "X-Forwarded-Host"); host != "" {
		u.Host = host
	}
	switch proto := strings.ToLower(lastForwarded(r.Header, "X-Forwarded-Proto")); proto {
	case "http", "https":
		u.Scheme = proto
	}
	return &u
}

// fromTrustedProxy reports whether the request's peer is a trusted proxy.
func (s *Server) fromTrustedProxy(r *http.Request) bool {
	if len(s.cfg.TrustedProxies) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// lastForwarded is the last value of a forwarded header: the one the
// nearest proxy, the trusted one, added.
func lastForwarded(h http.Header, name string) string {
	vals := h.Values(name)
	if len(vals) == 0 {
		return ""
	}
	last := vals[len(vals)-1]
	if i := strings.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	return strings.TrimSpace(last)
}
