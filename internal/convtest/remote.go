package convtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/parleyhq/parley/bots"
	"github.com/parleyhq/parley/internal/apiclient"
	"github.com/parleyhq/parley/internal/botdir"
)

// RemoteOptions configures RunAgainst.
type RemoteOptions struct {
	RunOptions
	// Canary puts every test's conversation in the canary of each intent
	// that has one, so that the canaries answer every turn they can.
	// Without it, a test's conversation is a new one like any other, and
	// gets the canaries of its buckets.
	Canary bool
}

// RunAgainst runs the suite's tests on a running Parley, through its
// management API's invoke endpoint: the bot's serving versions (stable,
// and canaries) answer, as they answer the web channel. What only an
// in-process run controls does not apply there, and each test's notes say
// so: mocks (handlers make their real requests), a frozen clock, channels
// other than web, and resetting the bot's store between tests. Each test
// runs in a new conversation of its user.
func RunAgainst(ctx context.Context, c *apiclient.Client, s *Suite, opts RemoteOptions) (*Report, error) {
	id := make([]byte, 4)
	_, _ = rand.Read(id)
	r := &remote{c: c, opts: opts, run: hex.EncodeToString(id)}
	if opts.Canary {
		if err := r.loadCanaries(ctx, s.Bot.Name); err != nil {
			return nil, err
		}
	}
	return run(ctx, r, s, opts.RunOptions)
}

type remote struct {
	c    *apiclient.Client
	opts RemoteOptions
	run  string // this run's id, in its conversations' ids
	n    int    // tests begun
	// canaries are the bot's canaries, by intent, with opts.Canary.
	canaries map[string]bots.Canary
}

func (r *remote) name() string { return r.c.Base() }

// loadCanaries reads the bot's canaries.
func (r *remote) loadCanaries(ctx context.Context, bot string) error {
	var list struct {
		Intents []bots.HandlerInfo `json:"intents"`
	}
	if err := r.c.Do(ctx, "GET", "/v1/bots/"+url.PathEscape(bot)+"/intents", nil, &list); err != nil {
		return &SetupError{Err: fmt.Errorf("list the intents of %s: %w", bot, err)}
	}
	r.canaries = make(map[string]bots.Canary)
	for _, h := range list.Intents {
		if h.Canary != nil {
			if h.Canary.Percent == 0 {
				return setupErrorf("--canary: the canary of %s (version %d) is at 0%%: no conversation reaches it", h.Intent, h.Canary.Version)
			}
			r.canaries[h.Intent] = *h.Canary
		}
	}
	if len(r.canaries) == 0 {
		return setupErrorf("--canary: %s has no canary", bot)
	}
	return nil
}

// maxCanaryTries bounds the search for a conversation id in every canary.
const maxCanaryTries = 1 << 22

// canaryConversation finds a conversation id that every canary's bucket
// holds (see bots.Bucket).
func (r *remote) canaryConversation(base string) (string, error) {
	for i := range maxCanaryTries {
		conv := base + "-" + strconv.Itoa(i)
		in := true
		for intent, c := range r.canaries {
			if bots.Bucket(intent, conv) >= c.Percent {
				in = false
				break
			}
		}
		if in {
			return conv, nil
		}
	}
	return "", fmt.Errorf("found no conversation id in the buckets of every canary; test fewer canaries at a time")
}

func (r *remote) begin(_ context.Context, _ *botdir.Bot, t *Test) (string, []string, error) {
	r.n++
	var notes []string
	if len(t.HTTP) > 0 {
		notes = append(notes, "mocks do not apply against a server: handlers make their real http requests")
	}
	if !t.Now.IsZero() {
		notes = append(notes, "now does not apply against a server: handlers read the real time")
	}
	if t.Channel != "web" {
		notes = append(notes, fmt.Sprintf("channel %s does not apply against a server: turns run as web-channel turns", t.Channel))
	}
	if hasPostback(t) {
		notes = append(notes, "postback turns are sent as the web message's postback field (servers from before postbacks refuse them)")
	}
	conv := fmt.Sprintf("parley-test-%s-%d", r.run, r.n)
	if r.canaries != nil {
		var err error
		if conv, err = r.canaryConversation(conv); err != nil {
			return "", nil, err
		}
		var in []string
		for intent, c := range r.canaries {
			in = append(in, fmt.Sprintf("%s v%d", intent, c.Version))
		}
		slices.Sort(in)
		notes = append(notes, "in the canaries of "+strings.Join(in, ", "))
	}
	return conv, notes, nil
}

// invokeAnswer is the invoke endpoint's answer.
type invokeAnswer struct {
	Answer struct {
		Intent  string `json:"intent"`
		Replies []struct {
			Text    string   `json:"text"`
			Options []string `json:"options"`
		} `json:"replies"`
		EndConversation bool `json:"end_conversation"`
	} `json:"answer"`
	Decision struct {
		Intent string `json:"intent"`
	} `json:"decision"`
	Slots   map[string]string `json:"slots"`
	Outcome string            `json:"outcome"`
	Error   *struct {
		Message string `json:"message"`
	} `json:"error"`
}

func (r *remote) turn(ctx context.Context, bot *botdir.Bot, t *Test, conv string, turn *Turn) (*observed, error) {
	base := "/v1/bots/" + url.PathEscape(bot.Name)
	body := map[string]string{"id": uuid.NewString(), "user": t.User, "conversation": conv}
	if turn.Postback != "" {
		body["postback"] = turn.Postback
	} else {
		body["text"] = turn.Say
	}
	if t.Locale != "" {
		body["locale"] = t.Locale
	}
	var ans invokeAnswer
	if err := r.c.Do(ctx, "POST", base+"/invoke", body, &ans); err != nil {
		return nil, err
	}
	o := &observed{intent: ans.Decision.Intent, end: ans.Answer.EndConversation, outcome: ans.Outcome, slots: ans.Slots}
	if ans.Error != nil {
		o.err = ans.Error.Message
	}
	for _, rep := range ans.Answer.Replies {
		if rep.Text != "" {
			o.texts = append(o.texts, rep.Text)
		}
		o.options = append(o.options, rep.Options...)
	}
	if turn.Session != nil {
		var c struct {
			Active bool `json:"active"`
			State  struct {
				Data map[string]any `json:"data"`
			} `json:"state"`
		}
		if err := r.c.Do(ctx, "GET", base+"/conversations/web/"+url.PathEscape(conv), nil, &c); err != nil {
			return nil, fmt.Errorf("read the session: %w", err)
		}
		if c.Active {
			o.session = c.State.Data
		}
	}
	return o, nil
}
