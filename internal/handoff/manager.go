package handoff

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/parleyhq/parley/bots"
	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/engine"
	"github.com/parleyhq/parley/internal/apierr"
	"github.com/parleyhq/parley/msg"
)

// Limits of the management API's input.
const (
	// MaxAgentText bounds an agent's message, in characters.
	MaxAgentText = 4096
	// MaxAgentName bounds an agent's name, in characters.
	MaxAgentName = 64
	// HandbackIntent is the intent that runs, when the bot has a handler
	// for it, as a conversation goes back to the bot.
	HandbackIntent = "handback"
)

// Kinds of [Event].
const (
	EventHandoff = "handoff"
	EventRelease = "release"
	EventMessage = "message"
)

// Event is something that happened to a handed-off conversation: a
// handoff, a release, or an agent's message. The webhook posts handoffs and
// releases as JSON; the recorder sees all three.
type Event struct {
	Event        string    `json:"event"`
	Bot          string    `json:"bot"`
	Channel      string    `json:"channel"`
	Conversation string    `json:"conversation"`
	User         string    `json:"user"`
	Queue        string    `json:"queue"`
	Reason       string    `json:"reason"`
	Agent        string    `json:"agent"`
	Time         time.Time `json:"time"`
	// Intent is the intent whose handler handed over (not posted).
	Intent string `json:"-"`
	// Text is an agent's message (not posted).
	Text string `json:"-"`
	// Idle marks a release by the idle timeout (not posted).
	Idle bool `json:"-"`
}

// Recorder is told of every [Event] (analytics: counters, transcripts). It
// must not block.
type Recorder interface {
	RecordHandoff(ctx context.Context, e Event)
}

// BotSource resolves bots; *bots.Catalog implements it.
type BotSource interface {
	Bot(ctx context.Context, name string) (*bots.Bot, error)
}

// Runner runs the handback turn; *engine.Engine implements it.
type Runner interface {
	Run(ctx context.Context, ev *msg.Event) (*engine.Turn, error)
}

// Conversations tells whether a conversation exists; *sessions.Store
// implements it through the app.
type Conversations interface {
	Exists(ctx context.Context, bot string, conv msg.ConversationKey) (bool, error)
}

// Config configures a [Manager].
type Config struct {
	// Store keeps the state (required).
	Store *Store
	// Bots resolves bots and their channel settings (required).
	Bots BotSource
	// Runner runs the handback intent; nil runs none.
	Runner Runner
	// Channels are the adapters, whose channels.Sender pushes agents'
	// messages and handback replies (required).
	Channels *channels.Registry
	// Conversations tells whether a conversation the API hands off exists;
	// nil takes every one as existing.
	Conversations Conversations
	// Recorder, when set, is told of every event.
	Recorder Recorder
	// Webhook, when set, posts handoffs and releases to the bots' webhooks.
	Webhook *Webhook
	// Sweep is how often idle conversations are looked for (default 1s).
	Sweep time.Duration
	// SendBackoff is the first wait before a push the platform refused for
	// now is tried again (default 1s); each try waits twice as long.
	SendBackoff time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives failures off the request path; nil discards them.
	Logger *slog.Logger
}

// Manager hands conversations to people and back: the engine asks it
// whether a person owns a conversation, the management API lists, claims,
// writes and releases, and its Run releases idle ones. Create it with
// [New].
type Manager struct {
	cfg Config
	log *slog.Logger
}

// New returns a Manager.
func New(cfg Config) *Manager {
	if cfg.Sweep <= 0 {
		cfg.Sweep = time.Second
	}
	if cfg.SendBackoff <= 0 {
		cfg.SendBackoff = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{cfg: cfg, log: log}
}

// Errors of the management API.
var (
	// ErrNotHandedOff answers an agent's message, claim or release of a
	// conversation no person owns.
	ErrNotHandedOff = apierr.New(http.StatusConflict, "not_handed_off",
		"the conversation is not handed off; hand it off first (POST .../handoff)")
	// ErrUnknownConversation answers a handoff of a conversation that has no session.
	ErrUnknownConversation = apierr.New(http.StatusNotFound, "conversation_not_found",
		"unknown conversation: it has no session (it never started, or it expired)")
	// ErrHandedOff answers a handoff of a conversation a person owns already.
	ErrHandedOff = apierr.New(http.StatusConflict, "handed_off", "the conversation is handed off already")
)

func invalid(format string, args ...any) error {
	return apierr.New(http.StatusBadRequest, "invalid", fmt.Sprintf(format, args...))
}

// scheduledEventPrefix starts the ids of the events of schedule runs
// (internal/scheduler).
const scheduledEventPrefix = "schedule:"

// Hold returns the check that records a user's message in a conversation
// a person owns (the engine's turn then runs no handler) and says whether
// it is the first since the handoff. The engine sends it in the round trip
// that begins the turn.
func (m *Manager) Hold(bot *bots.Bot, ev *msg.Event) engine.HoldCheck {
	if strings.HasPrefix(ev.ID, scheduledEventPrefix) {
		// A schedule's run is no message of the user: it is held back,
		// but neither recorded nor keeping the conversation from idling.
		return m.cfg.Store.PeekCheck(bot.Name, ev.Key())
	}
	now := m.cfg.Now()
	return m.cfg.Store.HoldCheck(bot.Name, ev.Key(), ev.User, ev.Text, now, now.Add(bot.Settings.HandoffIdle()))
}

// Start hands a conversation to a person at a handler's request; a
// conversation a person owns already stays as it is.
func (m *Manager) Start(ctx context.Context, bot *bots.Bot, ev *msg.Event, intent string, h msg.Handoff) error {
	st := &State{Channel: ev.Channel, Conversation: ev.Conversation, User: ev.User, Queue: h.Queue, Reason: h.Reason,
		Intent: intent}
	_, err := m.start(ctx, bot, st)
	return err
}

func (m *Manager) start(ctx context.Context, bot *bots.Bot, st *State) (bool, error) {
	now := m.cfg.Now()
	st.Since = now.UTC().Truncate(time.Millisecond)
	started, err := m.cfg.Store.Start(ctx, bot.Name, st, now.Add(bot.Settings.HandoffIdle()))
	if err != nil || !started {
		return started, err
	}
	m.emit(ctx, bot, Event{Event: EventHandoff, Bot: bot.Name, Channel: st.Channel, Conversation: st.Conversation,
		User: st.User, Queue: st.Queue, Reason: st.Reason, Intent: st.Intent, Time: st.Since})
	return true, nil
}

// emit tells the recorder and the webhook.
func (m *Manager) emit(ctx context.Context, bot *bots.Bot, e Event) {
	if m.cfg.Recorder != nil {
		m.cfg.Recorder.RecordHandoff(ctx, e)
	}
	if m.cfg.Webhook != nil && e.Event != EventMessage {
		m.cfg.Webhook.Post(bot, e)
	}
}

// Handoff hands a conversation to a person at the management API's
// request. The channel must be connected to the bot and the conversation
// must have a session.
func (m *Manager) Handoff(ctx context.Context, botName string, conv msg.ConversationKey, user, queue, reason string) (*State, error) {
	if queue == "" {
		queue = msg.DefaultHandoffQueue
	}
	switch {
	case !msg.ValidHandoffQueue(queue):
		return nil, invalid("queue must be 1-64 lowercase letters, digits, '_' or '-'")
	case utf8.RuneCountInString(reason) > msg.MaxHandoffReason:
		return nil, invalid("reason is longer than %d characters", msg.MaxHandoffReason)
	}
	bot, err := m.connected(ctx, botName, conv)
	if err != nil {
		return nil, err
	}
	if m.cfg.Conversations != nil {
		ok, err := m.cfg.Conversations.Exists(ctx, botName, conv)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, ErrUnknownConversation
		}
	}
	channel, id, _ := conv.Split()
	st := &State{Channel: channel, Conversation: id, User: user, Queue: queue, Reason: reason}
	started, err := m.start(ctx, bot, st)
	if err != nil {
		return nil, err
	}
	if !started {
		return nil, ErrHandedOff
	}
	st.Status = StatusWaiting
	return st, nil
}

// connected returns the bot, after checking that the conversation's
// channel is connected to it.
func (m *Manager) connected(ctx context.Context, botName string, conv msg.ConversationKey) (*bots.Bot, error) {
	bot, err := m.cfg.Bots.Bot(ctx, botName)
	if err != nil {
		return nil, err
	}
	channel, _, _ := conv.Split()
	if _, ok := bot.Channels[channel]; !ok {
		return nil, apierr.New(http.StatusNotFound, "channel_not_found",
			fmt.Sprintf("channel %s is not connected to bot %s", channel, botName))
	}
	return bot, nil
}

// validAgent checks an agent's name: 1 to 64 printable characters.
func validAgent(agent string) error {
	if agent == "" || utf8.RuneCountInString(agent) > MaxAgentName || !utf8.ValidString(agent) {
		return invalid("agent must be 1-%d printable characters", MaxAgentName)
	}
	for _, r := range agent {
		if !unicode.IsPrint(r) {
			return invalid("agent must be 1-%d printable characters", MaxAgentName)
		}
	}
	return nil
}

// Claim makes agent the owner of a handed-off conversation (taking it over
// from another agent).
func (m *Manager) Claim(ctx context.Context, botName string, conv msg.ConversationKey, agent string) (*State, error) {
	if err := validAgent(agent); err != nil {
		return nil, err
	}
	bot, err := m.connected(ctx, botName, conv)
	if err != nil {
		return nil, err
	}
	now := m.cfg.Now()
	if _, err := m.cfg.Store.Agent(ctx, botName, conv, agent, false, "", now, now.Add(bot.Settings.HandoffIdle())); err != nil {
		return nil, m.agentError(err)
	}
	st, ok, err := m.cfg.Store.Get(ctx, botName, conv)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrNotHandedOff
	}
	return st, nil
}

func (m *Manager) agentError(err error) error {
	var owned *OwnedError
	switch {
	case errors.Is(err, errNotOwned):
		return ErrNotHandedOff
	case errors.As(err, &owned):
		return apierr.New(http.StatusConflict, "claimed", fmt.Sprintf("agent %s owns the conversation; claim it to take it over", owned.Agent))
	}
	return err
}

// Send pushes an agent's message to the user through the channel's send
// API, records it in the transcript and makes the agent the owner of the
// conversation. The conversation must be handed off; a channel that cannot
// push messages (a synchronous voice channel) is refused with 409.
func (m *Manager) Send(ctx context.Context, botName string, conv msg.ConversationKey, agent, text string) (*State, error) {
	if err := validAgent(agent); err != nil {
		return nil, err
	}
	switch n := utf8.RuneCountInString(text); {
	case n == 0 || !utf8.ValidString(text):
		return nil, invalid("text is required (UTF-8)")
	case n > MaxAgentText:
		return nil, invalid("text is longer than %d characters", MaxAgentText)
	}
	bot, err := m.connected(ctx, botName, conv)
	if err != nil {
		return nil, err
	}
	channel, id, _ := conv.Split()
	sender, err := m.sender(channel)
	if err != nil {
		return nil, err
	}
	st, ok, err := m.cfg.Store.Get(ctx, botName, conv)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrNotHandedOff
	}
	now := m.cfg.Now()
	if _, err := m.cfg.Store.Agent(ctx, botName, conv, agent, true, text, now, now.Add(bot.Settings.HandoffIdle())); err != nil {
		return nil, m.agentError(err)
	}
	res := &msg.TurnResult{Event: &msg.Event{Bot: botName, Channel: channel, Conversation: id, User: st.User, Timestamp: now.UTC()},
		Conversation: id, Replies: []msg.Reply{{Text: text}}, Outcome: msg.OutcomeHandled}
	if err := m.push(ctx, sender, bot.Channels[channel], res); err != nil {
		return nil, &apierr.Error{Status: http.StatusBadGateway, Code: "send_failed",
			Message: "the platform did not take the message: " + err.Error(), Err: err}
	}
	m.emit(ctx, bot, Event{Event: EventMessage, Bot: botName, Channel: channel, Conversation: id, User: st.User,
		Queue: st.Queue, Agent: agent, Text: text, Time: now.UTC()})
	st.Status, st.Agent = StatusActive, agent
	st.LastMessage = &Message{Text: text, Time: now.UTC().Truncate(time.Millisecond), From: "agent"}
	return st, nil
}

// sender returns the channel's push API, or the 409 of a channel without one.
func (m *Manager) sender(channel string) (channels.Sender, error) {
	a, ok := m.cfg.Channels.Get(channel)
	if !ok {
		return nil, apierr.New(http.StatusNotFound, "channel_not_found", "unknown channel "+channel)
	}
	s, ok := a.(channels.Sender)
	if !ok {
		return nil, apierr.New(http.StatusConflict, "cannot_push",
			fmt.Sprintf("channel %s cannot push messages (it only answers the user's requests), so agents cannot write in it", channel))
	}
	return s, nil
}

// sendTries is how often a push is tried in all.
const sendTries = 3

// push sends res, trying again when the platform refuses it for now.
func (m *Manager) push(ctx context.Context, sender channels.Sender, settings channels.Settings, res *msg.TurnResult) error {
	for try := 1; ; try++ {
		err := sender.Send(ctx, settings, res)
		var se *channels.SendError
		if err == nil || !errors.As(err, &se) || !se.Retryable || try == sendTries {
			return err
		}
		wait := min(max(se.RetryAfter, m.cfg.SendBackoff<<(try-1)), 30*time.Second)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// Handback says what the release of a conversation did with its handback
// intent.
type Handback string

// What a release did with the handback intent.
const (
	HandbackNone   Handback = "none"   // the bot has no handback handler
	HandbackRan    Handback = "ran"    // it ran; there was nothing to push, or the channel cannot push
	HandbackSent   Handback = "sent"   // it ran and its reply was pushed
	HandbackFailed Handback = "failed" // it failed, or its reply could not be pushed
)

// Released is the answer to a release.
type Released struct {
	*State
	// Handback says what the handback intent did.
	Handback Handback `json:"handback"`
}

// Release gives a handed-off conversation back to the bot, then runs the
// bot's handback intent, if it has a handler for it, and pushes its reply.
func (m *Manager) Release(ctx context.Context, botName string, conv msg.ConversationKey) (*Released, error) {
	bot, err := m.connected(ctx, botName, conv)
	if err != nil {
		return nil, err
	}
	st, ok, err := m.cfg.Store.Release(ctx, botName, conv, time.Time{})
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrNotHandedOff
	}
	return m.released(ctx, bot, st, false), nil
}

// released reports a release and runs the handback intent.
func (m *Manager) released(ctx context.Context, bot *bots.Bot, st *State, idle bool) *Released {
	now := m.cfg.Now().UTC()
	m.emit(ctx, bot, Event{Event: EventRelease, Bot: bot.Name, Channel: st.Channel, Conversation: st.Conversation,
		User: st.User, Queue: st.Queue, Reason: st.Reason, Agent: st.Agent, Intent: st.Intent, Time: now, Idle: idle})
	out := &Released{State: st, Handback: HandbackNone}
	if m.cfg.Runner == nil || !bot.Has(HandbackIntent) {
		return out
	}
	out.Handback = m.handback(ctx, bot, st, now)
	return out
}

// handback runs the handback intent in the released conversation and
// pushes its reply, as a schedule's.
func (m *Manager) handback(ctx context.Context, bot *bots.Bot, st *State, now time.Time) Handback {
	ev := &msg.Event{ID: "handback:" + strconv.FormatInt(st.Since.UnixMilli(), 10), Bot: bot.Name, Channel: st.Channel,
		User: st.User, Conversation: st.Conversation, Intent: HandbackIntent, Confidence: 1, Timestamp: now}
	t, err := m.cfg.Runner.Run(ctx, ev)
	if err == nil && t.Err != nil {
		err = t.Err
	}
	if err != nil {
		m.log.WarnContext(ctx, "handback intent failed", "bot", bot.Name, "channel", st.Channel, "err", err)
		return HandbackFailed
	}
	if len(t.Replies) == 0 || (len(t.Replies) == 1 && t.Replies[0].Text == "" && t.Replies[0].SSML == "" && !t.Replies[0].Rich()) {
		return HandbackRan
	}
	sender, err := m.sender(st.Channel)
	if err != nil {
		return HandbackRan
	}
	if err := m.push(ctx, sender, bot.Channels[st.Channel], &t.TurnResult); err != nil {
		m.log.WarnContext(ctx, "push the handback reply", "bot", bot.Name, "channel", st.Channel, "err", err)
		return HandbackFailed
	}
	return HandbackSent
}

// List returns a bot's handed-off conversations, of one queue when queue
// is set, longest waiting first.
func (m *Manager) List(ctx context.Context, botName, queue string, offset, limit int64) (*Page, error) {
	if queue != "" && !msg.ValidHandoffQueue(queue) {
		return nil, invalid("queue must be 1-64 lowercase letters, digits, '_' or '-'")
	}
	if _, err := m.cfg.Bots.Bot(ctx, botName); err != nil {
		return nil, err
	}
	return m.cfg.Store.List(ctx, botName, queue, offset, limit)
}

// Run releases idle conversations every Sweep until ctx ends, then gives
// the webhook posts under way a few seconds to finish. Every replica runs it: each idle
// conversation is released by exactly one.
func (m *Manager) Run(ctx context.Context) error {
	t := time.NewTicker(m.cfg.Sweep)
	defer t.Stop()
	for {
		if err := m.SweepIdle(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("release idle handoffs", "err", err)
		}
		select {
		case <-ctx.Done():
			if m.cfg.Webhook != nil {
				m.cfg.Webhook.Stop(webhookGrace)
			}
			return nil
		case <-t.C:
		}
	}
}

// webhookGrace is how long a shutdown waits for the webhook posts under way.
const webhookGrace = 3 * time.Second

// sweepBatch bounds the idle conversations of one bot released per sweep.
const sweepBatch = 100

// SweepIdle releases the conversations whose idle deadline has passed,
// running their handback intents.
func (m *Manager) SweepIdle(ctx context.Context) error {
	names, err := m.cfg.Store.Bots(ctx)
	if err != nil {
		return err
	}
	now := m.cfg.Now()
	for _, name := range names {
		convs, err := m.cfg.Store.Idle(ctx, name, now, sweepBatch)
		if err != nil {
			return err
		}
		if len(convs) == 0 {
			continue
		}
		bot, err := m.cfg.Bots.Bot(ctx, name)
		if errors.Is(err, bots.ErrBotNotFound) {
			continue // its keys are being purged
		}
		if err != nil {
			return err
		}
		for _, conv := range convs {
			st, ok, err := m.cfg.Store.Release(ctx, name, conv, now)
			if err != nil {
				return err
			}
			if ok {
				m.log.InfoContext(ctx, "released an idle handoff", "bot", name, "channel", st.Channel, "queue", st.Queue)
				m.released(ctx, bot, st, true)
			}
		}
	}
	return nil
}
