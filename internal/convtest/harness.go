package convtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/google/uuid"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/alexa"
	"github.com/parleyhq/parley/channels/dialogflow"
	"github.com/parleyhq/parley/channels/dialogflowcx"
	"github.com/parleyhq/parley/channels/lex"
	"github.com/parleyhq/parley/channels/twiliovoice"
	"github.com/parleyhq/parley/channels/voice"
	"github.com/parleyhq/parley/internal/apiclient"
	"github.com/parleyhq/parley/internal/app"
	"github.com/parleyhq/parley/internal/botdir"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/msg"
)

// HarnessOptions configures NewHarness.
type HarnessOptions struct {
	// Logger receives the in-process Parley's logs; nil discards them.
	Logger *slog.Logger
}

// Harness is a Parley running in this process for tests: the server's own
// engine, sandbox, catalog and channel adapters, on an embedded store in a
// temporary directory, with the handlers' clock and http module under the
// tests' control. Nothing it does reaches the network. A Harness runs one
// suite at a time.
type Harness struct {
	app  *app.App
	api  *apiclient.Client
	dir  string
	stop context.CancelFunc
	wait func() error

	// deployed is the bot as last deployed, so that a redeploy sends only
	// what changed.
	deployed *botdir.Bot
}

// NewHarness starts a Parley in this process. Close stops it and removes
// its data.
func NewHarness(ctx context.Context, opts HarnessOptions) (*Harness, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir, err := os.MkdirTemp("", "parley-test-")
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	// A configuration of its own: none of the process's PARLEY_* or
	// REDIS_URL variables reach it, so tests never touch a real store.
	cfg, err := config.Load([]string{"PARLEY_ADMIN_KEY=pk_test_" + hex.EncodeToString(key), "PARLEY_DATA_DIR=" + dir,
		"PARLEY_SNAPSHOT_INTERVAL=1h"})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	a, err := app.NewWithHooks(ctx, cfg, log, app.Hooks{Clock: clock{}, HTTP: mockHTTP{},
		SendClient: &http.Client{Transport: sendCapture{}, Timeout: 10 * time.Second}})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	h := &Harness{app: a, api: apiclient.InProcess(a.Handler(), a.AdminKey()), dir: dir, stop: stop}
	h.wait = a.StartBackground(bg)
	return h, nil
}

// Close stops the Parley and removes its data.
func (h *Harness) Close() error {
	h.stop()
	err := h.wait()
	err = errors.Join(err, h.app.Close())
	return errors.Join(err, os.RemoveAll(h.dir))
}

// Deploy deploys the bot (without its channels: turns run without
// webhooks). After a first deploy, only what changed is sent again.
func (h *Harness) Deploy(ctx context.Context, b *botdir.Bot) error {
	_, err := botdir.Deploy(ctx, h.api, b, botdir.DeployOptions{SkipChannels: true, Previous: h.deployed})
	if err != nil {
		h.deployed = nil // what was sent before the failure is unknown: send everything next time
		return &SetupError{Err: fmt.Errorf("deploy %s: %w", b.Dir, err)}
	}
	h.deployed = b
	return nil
}

// Run deploys the suite's bot and runs its tests.
func (h *Harness) Run(ctx context.Context, s *Suite, opts RunOptions) (*Report, error) {
	if err := h.Deploy(ctx, s.Bot); err != nil {
		return nil, err
	}
	return run(ctx, &inProcess{h: h}, s, opts)
}

// inProcess runs turns on a Harness.
type inProcess struct {
	h   *Harness
	env *testEnv // the running test's
}

func (*inProcess) name() string { return "in-process" }

func (p *inProcess) begin(ctx context.Context, bot *botdir.Bot, t *Test) (string, []string, error) {
	// Every test meets the bot as deployed: no session, no stored values.
	if err := p.h.app.ResetBot(ctx, bot.Name); err != nil {
		return "", nil, err
	}
	p.env = &testEnv{now: t.Now, mocks: t.HTTP}
	return t.User, nil, nil
}

// voiceChannels are the channel kinds whose adapters mark events as spoken.
var voiceChannels = map[string]bool{alexa.Name: true, twiliovoice.Name: true, dialogflow.Name: true, dialogflowcx.Name: true,
	lex.Name: true}

func (p *inProcess) turn(ctx context.Context, bot *botdir.Bot, t *Test, conv string, turn *Turn) (*observed, error) {
	env := p.env
	ctx = withEnv(ctx, env)
	ts := env.now
	if ts.IsZero() {
		ts = time.Now().UTC()
	}
	ev := &msg.Event{ID: uuid.NewString(), Bot: bot.Name, Channel: t.Channel, User: t.User, Conversation: conv,
		Text: turn.Say, Postback: turn.Postback, Locale: t.Locale, Voice: voiceChannels[t.Channel], Timestamp: ts}
	tr, err := p.h.app.Run(ctx, ev)
	if err != nil {
		return nil, err
	}
	o := &observed{intent: tr.Decision.Intent, end: tr.EndConversation, outcome: string(tr.Outcome), slots: ev.Slots}
	if tr.Err != nil {
		o.err = tr.Err.Error()
	}
	for _, r := range tr.Replies {
		if r.Text != "" {
			o.texts = append(o.texts, r.Text)
		}
		o.options = append(o.options, r.Options...)
	}
	if err := p.render(ctx, bot, t, &tr.TurnResult); err != nil {
		o.render = err.Error()
	}
	o.unmocked = env.takeUnmocked()
	data, ok, err := p.h.app.Session(ctx, bot.Name, ev.Key())
	if err != nil {
		return nil, err
	}
	if ok {
		o.session = data
	}
	return o, nil
}

// render has the test's channel adapter render the turn's result: in its
// answer to the webhook, or through its platform's send API, whose
// requests the harness keeps instead of sending.
func (p *inProcess) render(ctx context.Context, bot *botdir.Bot, t *Test, res *msg.TurnResult) error {
	a, ok := p.h.app.Channel(t.Channel)
	if !ok {
		return fmt.Errorf("no channel %q", t.Channel)
	}
	settings := channels.Settings(bot.Channels[t.Channel])
	if voiceChannels[t.Channel] {
		// A voice adapter speaks the text of a reply whose SSML it refuses;
		// a test says so instead of hearing the fallback.
		if errs := voice.NewAnswer(res).SSMLErrors; len(errs) > 0 {
			return fmt.Errorf("ssml refused, the text is spoken instead: %w", errors.Join(errs...))
		}
	}
	if s, ok := a.(channels.Sender); ok {
		return s.Send(ctx, settings, res)
	}
	u, _ := url.Parse("http://parley.in-process/hooks/" + bot.Name + "/" + t.Channel)
	req := &channels.Request{Bot: bot.Name, Method: http.MethodPost, URL: u, Header: http.Header{},
		Settings: settings, Now: res.Event.Timestamp}
	_, err := a.Render(req, []*msg.TurnResult{res})
	return err
}

func hasPostback(t *Test) bool {
	for _, turn := range t.Turns {
		if turn.Postback != "" {
			return true
		}
	}
	return false
}
