package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/parleyhq/parley/bots"
	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/engine"
	"github.com/parleyhq/parley/internal/apierr"
	"github.com/parleyhq/parley/internal/httpx"
	"github.com/parleyhq/parley/internal/metrics"
	"github.com/parleyhq/parley/internal/tracing"
	"github.com/parleyhq/parley/msg"
)

// Dispatcher runs one conversation turn.
type Dispatcher interface {
	Run(ctx context.Context, ev *msg.Event) (*engine.Turn, error)
}

// Catalog finds bots; *bots.Catalog implements it.
type Catalog interface {
	Bot(ctx context.Context, name string) (*bots.Bot, error)
}

// Queue is the durable queue of asynchronous channels; *queue.Queue
// implements it.
type Queue interface {
	// Enqueue stores an event; false means the delivery was seen before.
	Enqueue(ctx context.Context, ev *msg.Event) (bool, error)
}

// Pinger reports whether the shared store is reachable.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Mounter adds routes to the router; *adminapi.API implements it.
type Mounter interface {
	Mount(r gin.IRouter)
}

// Config configures a [Server].
type Config struct {
	// AdminKey lets a caller see why a webhook or /readyz was refused, and
	// guards /metrics when MetricsRequireKey is set (required).
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

	// Catalog finds the bot of a webhook.
	Catalog Catalog
	// Dispatcher runs the turns of synchronous channels.
	Dispatcher Dispatcher
	// Channels are the channel adapters webhooks are addressed to.
	Channels *channels.Registry
	// Store answers /readyz.
	Store Pinger
	// Queue takes the events of asynchronous channels ([channels.Inbound].Async);
	// nil refuses such events.
	Queue Queue
	// Instruments receives stage timings and refused webhooks; nil records nothing.
	Instruments Instruments
	// Requests counts every HTTP request by route; nil counts none.
	Requests RequestObserver
	// Metrics serves GET /metrics (Prometheus text format); nil leaves the route out.
	Metrics http.Handler
	// MetricsRequireKey makes GET /metrics require the admin key.
	MetricsRequireKey bool
	// Pprof serves Go's runtime profiles (net/http/pprof) under
	// /debug/pprof/ to callers with the admin key; off leaves the routes out.
	Pprof bool
	// Admin adds the management API's routes (/v1, /console); nil leaves
	// them out.
	Admin Mounter
	// WebChat configures the web channel's browser chat (live connections,
	// anonymous sessions).
	WebChat WebChatConfig
}

// Server serves Parley's HTTP API. Create it with [New].
type Server struct {
	cfg    Config
	log    *slog.Logger
	engine *gin.Engine
	live   *live
}

// New builds the router.
func New(cfg Config) (*Server, error) {
	if cfg.AdminKey == "" {
		return nil, fmt.Errorf("gateway: an admin key is required")
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
	w := &cfg.WebChat
	if w.MaxConnsPerBot <= 0 {
		w.MaxConnsPerBot = DefaultLiveConnsPerBot
	}
	if w.MaxConns <= 0 {
		w.MaxConns = DefaultLiveConns
	}
	if w.MaxConnsPerConversation <= 0 {
		w.MaxConnsPerConversation = DefaultLiveConnsPerConversation
	}
	if w.Heartbeat <= 0 {
		w.Heartbeat = DefaultLiveHeartbeat
	}
	gin.SetMode(gin.ReleaseMode)
	s := &Server{cfg: cfg, log: log, engine: gin.New(), live: newLive()}
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
	r.NoRoute(s.handle(func(*gin.Context) error { return errNoRoute }))
	r.NoMethod(s.handle(func(*gin.Context) error { return errNoMethod }))

	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/readyz", s.ready)
	r.GET("/v1/openapi.json", s.handle(s.openAPI()))
	r.POST("/hooks/:bot/:channel", s.handle(s.hook))
	r.GET("/hooks/:bot/:channel", s.handle(s.hook))
	s.webRoutes(r)
	if s.cfg.Metrics != nil {
		metrics := gin.WrapH(s.cfg.Metrics)
		if s.cfg.MetricsRequireKey {
			r.GET("/metrics", s.handle(s.requireAdmin), metrics)
		} else {
			r.GET("/metrics", metrics)
		}
	}
	if s.cfg.Pprof {
		s.pprofRoutes(r)
	}
	if s.cfg.Admin != nil {
		s.cfg.Admin.Mount(r)
	}
}

// handlerFunc is a route's handler: it writes the answer, or returns the
// error that [Server.handle] writes.
type handlerFunc func(c *gin.Context) error

// handle adapts h to gin: an error it returns is the answer, and ends the
// handler chain.
func (s *Server) handle(h handlerFunc) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := h(c); err != nil {
			s.fail(c, err)
		}
	}
}

// recover turns a panic into a 500 JSON answer and logs it.
func (s *Server) recover(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler { //nolint:errorlint // a recovered panic value, not a returned error: net/http panics with this exact value
				panic(v)
			}
			s.log.Error("panic serving request", "path", c.Request.URL.Path, "panic", v)
			s.fail(c, fmt.Errorf("panic: %v", v))
		}
	}()
	c.Next()
}

// requireAdmin lets a request with the admin key through.
func (s *Server) requireAdmin(c *gin.Context) error {
	if !s.isAdmin(c) {
		return errUnauthorized
	}
	c.Next()
	return nil
}

// isAdmin reports whether the request carries the admin key.
func (s *Server) isAdmin(c *gin.Context) bool {
	return httpx.Authorized(c.Request, s.cfg.AdminKey)
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

// hook serves platform webhooks. A refusal before the turn (unknown bot or
// channel, failed verification) is the neutral one of [Server.refuseHook].
func (s *Server) hook(c *gin.Context) error {
	botName, channel := c.Param("bot"), c.Param("channel")
	adapter, ok := s.cfg.Channels.Get(channel)
	if !ok {
		return s.refuseHook(c, apierr.New(http.StatusNotFound, "channel_not_found", fmt.Sprintf("unknown channel %q", channel)))
	}
	body, err := httpx.ReadBody(c.Writer, c.Request, s.cfg.MaxBodyBytes)
	if err != nil {
		return err
	}
	// The turn runs on the request's own context: gin's answers every
	// Deadline, Done and Value through its request, and the engine and the
	// Redis client ask those often.
	rctx := c.Request.Context()
	bot, err := s.cfg.Catalog.Bot(rctx, botName)
	if err != nil {
		if hookRefusal(err) {
			return s.refuseHook(c, err)
		}
		return err
	}
	settings, ok := bot.Channels[channel]
	if !ok {
		return s.refuseHook(c, apierr.New(http.StatusNotFound, "channel_not_configured",
			fmt.Sprintf("channel %s is not configured for bot %s", channel, botName)))
	}
	c.Set(ctxHookTarget, true)
	cors(c, adapter, settings)
	req := &channels.Request{Bot: botName, Method: c.Request.Method, URL: s.publicURL(c.Request),
		Header: c.Request.Header, Body: body, Settings: settings, Now: s.cfg.Now()}
	parseStart := time.Now()
	_, span := tracing.StartNamed(rctx, "adapter parse ", channel)
	in, err := adapter.Parse(req)
	endAdapterSpan(span, botName, channel, err)
	s.stage(metrics.StageAdapter, parseStart)
	if err != nil {
		if hookRefusal(err) {
			return s.refuseHook(c, err)
		}
		return err
	}
	if in.Response != nil && len(in.Events) == 0 {
		write(c, in.Response)
		return nil
	}
	if in.Async {
		return s.enqueue(c, in)
	}
	ctx := rctx
	if b, ok := adapter.(channels.Budgeter); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.Budget())
		defer cancel()
	}
	streams := s.openStreams(c, adapter, req)
	results := make([]*msg.TurnResult, 0, len(in.Events))
	for _, ev := range in.Events {
		res, err := streams.run(ctx, s.cfg.Dispatcher, adapter, req, ev)
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
				c.Set(ctxTurnFailed, apierr.Classify(err).Status)
				write(c, er.RenderError(req, err))
				return nil
			}
			return streams.fail(c, err)
		}
		results = append(results, res)
	}
	renderStart := time.Now()
	_, span = tracing.StartNamed(rctx, "adapter render ", channel)
	resp, err := adapter.Render(req, results)
	endAdapterSpan(span, botName, channel, err)
	s.stage(metrics.StageAdapter, renderStart)
	if err != nil {
		return streams.fail(c, err)
	}
	s.mirrorWeb(c, adapter, req, results)
	sendStart := time.Now()
	if streams.events != nil {
		streams.events.reply(resp)
	} else {
		write(c, resp)
	}
	s.stage(metrics.StageSend, sendStart)
	return nil
}

// enqueue stores the events of an asynchronous channel and acknowledges the
// webhook at once. A delivery seen before is acknowledged without being
// stored again; a store failure answers 503 so the platform retries.
func (s *Server) enqueue(c *gin.Context, in *channels.Inbound) error {
	if s.cfg.Queue == nil {
		return errors.New("gateway: an asynchronous channel needs the queue")
	}
	for _, ev := range in.Events {
		if _, err := s.cfg.Queue.Enqueue(c, ev); err != nil {
			return err
		}
	}
	resp := in.Response
	if resp == nil {
		resp = &channels.Response{Status: http.StatusOK}
	}
	write(c, resp)
	return nil
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
