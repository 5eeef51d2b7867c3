package adminapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/parleyhq/parley/bots"
	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/console"
	"github.com/parleyhq/parley/engine"
	"github.com/parleyhq/parley/internal/analytics"
	"github.com/parleyhq/parley/internal/apierr"
	"github.com/parleyhq/parley/internal/httpx"
	"github.com/parleyhq/parley/msg"
)

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

// Dispatcher runs one conversation turn, for POST /v1/bots/{bot}/invoke.
type Dispatcher interface {
	Run(ctx context.Context, ev *msg.Event) (*engine.Turn, error)
}

// Conversations reads conversation state.
type Conversations interface {
	Describe(ctx context.Context, bot string, conv msg.ConversationKey) (any, error)
}

// Config configures an [API].
type Config struct {
	// AdminKey authenticates every route (required).
	AdminKey string
	// MaxBodyBytes bounds request bodies (default 1 MiB); larger ones get 413.
	MaxBodyBytes int64
	// Logger receives request failures; nil discards them.
	Logger *slog.Logger
	// Now is the clock of invocations and usage ranges (default time.Now).
	Now func() time.Time

	// Catalog stores the bots (required).
	Catalog Catalog
	// Deletions serves DELETE /v1/bots/{bot} (required).
	Deletions Deletions
	// Dispatcher runs the turns of POST /v1/bots/{bot}/invoke.
	Dispatcher Dispatcher
	// Channels are the channel adapters a bot can connect.
	Channels *channels.Registry
	// Conversations serves a conversation's session and transcript.
	Conversations Conversations
	// Queue keeps the dead letters and parked conversations; nil answers
	// them with 404.
	Queue Queue
	// Schedules stores the bots' cron schedules.
	Schedules Schedules
	// Secrets stores the bots' secrets; nil answers their routes with 501.
	Secrets Secrets
	// Invocations serves GET /v1/bots/{bot}/logs and /usage; nil answers 501.
	Invocations Invocations
	// MaxFollowers bounds the open log streams of one bot on this server
	// (default DefaultMaxFollowers); one more is answered 429.
	MaxFollowers int
	// Heartbeat is how often a silent log stream sends a comment line
	// (default DefaultHeartbeat).
	Heartbeat time.Duration
	// Analytics serves the analytics, conversation list and erasure routes;
	// nil answers them with 404.
	Analytics Analytics
	// Handoffs serves the human handoff routes; nil answers them with 501.
	Handoffs Handoffs
}

// API is the management API. Create it with [New] and add its routes to a
// router with [API.Mount].
type API struct {
	cfg     Config
	log     *slog.Logger
	streams *streams
}

// New checks the configuration and returns the API.
func New(cfg Config) (*API, error) {
	if cfg.AdminKey == "" {
		return nil, errors.New("adminapi: an admin key is required")
	}
	if cfg.Catalog == nil {
		return nil, errors.New("adminapi: Catalog is required")
	}
	if cfg.Deletions == nil {
		return nil, errors.New("adminapi: Deletions is required")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxFollowers <= 0 {
		cfg.MaxFollowers = DefaultMaxFollowers
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &API{cfg: cfg, log: log, streams: newStreams()}, nil
}

// errUnauthorized answers a request without the admin key.
var errUnauthorized = apierr.New(http.StatusUnauthorized, "unauthorized", "missing or wrong bearer token")

// Mount adds the routes: /v1/... behind the admin key, and the console's
// static files under /console/.
func (a *API) Mount(r gin.IRouter) {
	r.GET("/console", func(c *gin.Context) { c.Redirect(http.StatusMovedPermanently, "/console/") })
	r.GET("/console/*file", gin.WrapH(http.StripPrefix("/console", console.Handler())))

	v1 := r.Group("/v1", a.handle(a.requireAdmin))
	v1.GET("/bots", a.handle(a.listBots))
	v1.PUT("/bots/:bot", a.handle(a.putBot))
	v1.GET("/bots/:bot", a.handle(a.getBot))
	v1.DELETE("/bots/:bot", a.handle(a.deleteBot))
	v1.GET("/bots/:bot/channels", a.handle(a.listChannels))
	v1.PUT("/bots/:bot/channels/:channel", a.handle(a.putChannel))
	v1.GET("/bots/:bot/channels/:channel", a.handle(a.getChannel))
	v1.DELETE("/bots/:bot/channels/:channel", a.handle(a.deleteChannel))
	v1.GET("/bots/:bot/intents", a.handle(a.listIntents))
	v1.PUT("/bots/:bot/intents/:intent", a.handle(a.putIntent))
	v1.GET("/bots/:bot/intents/:intent", a.handle(a.getIntent))
	v1.DELETE("/bots/:bot/intents/:intent", a.handle(a.deleteIntent))
	v1.POST("/bots/:bot/intents/:intent/rollback", a.handle(a.rollback))
	v1.PUT("/bots/:bot/intents/:intent/canary", a.handle(a.setCanary))
	v1.POST("/bots/:bot/intents/:intent/canary/promote", a.handle(a.promoteCanary))
	v1.POST("/bots/:bot/intents/:intent/canary/abort", a.handle(a.abortCanary))
	v1.PUT("/bots/:bot/nlu", a.handle(a.putNLU))
	v1.GET("/bots/:bot/nlu", a.handle(a.getNLU))
	v1.POST("/bots/:bot/invoke", a.handle(a.invoke))
	v1.GET("/bots/:bot/conversations/:channel/:conversation", a.handle(a.getConversation))
	v1.GET("/bots/:bot/conversations/:channel", a.handle(conversationNeedsChannel))

	v1.GET("/bots/:bot/deadletters", a.handle(a.listDeadLetters))
	v1.POST("/bots/:bot/deadletters/:id/replay", a.handle(a.replayDeadLetter))
	v1.DELETE("/bots/:bot/deadletters/:id", a.handle(a.deleteDeadLetter))
	v1.GET("/bots/:bot/parked", a.handle(a.listParked))

	v1.GET("/bots/:bot/schedules", a.handle(a.listSchedules))
	v1.PUT("/bots/:bot/schedules/:name", a.handle(a.putSchedule))
	v1.GET("/bots/:bot/schedules/:name", a.handle(a.getSchedule))
	v1.DELETE("/bots/:bot/schedules/:name", a.handle(a.deleteSchedule))

	v1.GET("/bots/:bot/secrets", a.handle(a.listSecrets))
	v1.PUT("/bots/:bot/secrets/:name", a.handle(a.putSecret))
	v1.DELETE("/bots/:bot/secrets/:name", a.handle(a.deleteSecret))

	v1.GET("/bots/:bot/logs", a.handle(a.invocationLogs))
	v1.GET("/bots/:bot/usage", a.handle(a.usage))

	v1.GET("/bots/:bot/analytics", a.handle(analyticsRoute(a, analytics.ParseQuery, Analytics.Query)))
	v1.GET("/bots/:bot/analytics/fallbacks", a.handle(analyticsRoute(a, analytics.ParseFallbackQuery, Analytics.Fallbacks)))
	v1.GET("/bots/:bot/analytics/settings", a.handle(a.getAnalyticsSettings))
	v1.PUT("/bots/:bot/analytics/settings", a.handle(a.putAnalyticsSettings))
	v1.GET("/bots/:bot/conversations", a.handle(analyticsRoute(a, analytics.ParseConversationQuery, Analytics.Conversations)))
	v1.DELETE("/bots/:bot/users/:user", a.handle(a.eraseUser))

	v1.GET("/bots/:bot/handoffs", a.handle(a.listHandoffs))
	conv := "/bots/:bot/channels/:channel/conversations/:conversation"
	v1.POST(conv+"/handoff", a.handle(a.startHandoff))
	v1.POST(conv+"/claim", a.handle(a.claimHandoff))
	v1.POST(conv+"/messages", a.handle(a.agentMessage))
	v1.POST(conv+"/release", a.handle(a.releaseHandoff))
}

// handlerFunc is a route's handler: it writes the answer, or returns the
// error that [API.handle] writes.
type handlerFunc func(c *gin.Context) error

// handle adapts h to gin: an error it returns is the answer, through
// apierr.Write, and ends the handler chain.
func (a *API) handle(h handlerFunc) gin.HandlerFunc {
	return func(c *gin.Context) {
		err := h(c)
		if err == nil {
			return
		}
		ans := apierr.Write(c.Writer, err)
		c.Abort()
		if ans.Status >= 500 {
			a.log.ErrorContext(c, "request failed", "method", c.Request.Method, "path", c.FullPath(),
				"status", ans.Status, "err", err)
		}
	}
}

// requireAdmin lets a request with the admin key through.
func (a *API) requireAdmin(c *gin.Context) error {
	if !httpx.Authorized(c.Request, a.cfg.AdminKey) {
		return errUnauthorized
	}
	c.Next()
	return nil
}

// body reads the request body within the size limit.
func (a *API) body(c *gin.Context) ([]byte, error) {
	return httpx.ReadBody(c.Writer, c.Request, a.cfg.MaxBodyBytes)
}

// requireBot returns an error unless the bot exists.
func (a *API) requireBot(c *gin.Context) error {
	_, err := a.cfg.Catalog.Bot(c, c.Param("bot"))
	return err
}
