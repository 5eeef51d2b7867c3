package convtest

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/parleyhq/parley/internal/apiclient"
	"github.com/parleyhq/parley/msg"
)

// transcript is the part of a conversation's management API answer
// (GET /v1/bots/{bot}/conversations/{channel}/{id}) that Record reads.
type transcript struct {
	Summary *struct {
		Turns int64 `json:"turns"`
	} `json:"summary"`
	Transcript []struct {
		Time       time.Time `json:"t"`
		User       string    `json:"user"`
		Channel    string    `json:"channel"`
		Text       string    `json:"text"`
		Reply      string    `json:"reply"`
		Sensitive  bool      `json:"sensitive"`
		Intent     string    `json:"intent"`
		Outcome    string    `json:"outcome"`
		NewSession bool      `json:"new_conversation"`
		EndSession bool      `json:"end_conversation"`
	} `json:"transcript"`
}

// The test file Record writes, in the order of its keys.
type recordedFile struct {
	Tests []recordedTest `yaml:"tests"`
}

type recordedTest struct {
	Name    string         `yaml:"name"`
	User    string         `yaml:"user,omitempty"`
	Channel string         `yaml:"channel,omitempty"`
	Now     string         `yaml:"now,omitempty"`
	Turns   []recordedTurn `yaml:"turns"`
}

type recordedTurn struct {
	Say             string  `yaml:"say"`
	Intent          *string `yaml:"intent,omitempty"`
	Reply           string  `yaml:"reply"`
	EndConversation bool    `yaml:"end_conversation,omitempty"`
	Outcome         string  `yaml:"outcome,omitempty"`
}

// Record writes a test file from a conversation's stored transcript on a
// running Parley: each recorded turn becomes a turn that says its text and
// checks its intent, its reply and whether it ended the conversation; the
// clock is frozen at the first turn's time. conversation is the
// conversation's key, "channel:id", or an id of the web channel. Turns
// marked sensitive keep no text, so a transcript with one cannot be
// replayed.
func Record(ctx context.Context, c *apiclient.Client, bot, conversation string) ([]byte, error) {
	channel, id, ok := msg.ConversationKey(conversation).Split()
	if !ok {
		channel, id = "web", conversation
	}
	var tr transcript
	path := "/v1/bots/" + url.PathEscape(bot) + "/conversations/" + url.PathEscape(channel) + "/" + url.PathEscape(id)
	if err := c.Do(ctx, "GET", path, nil, &tr); err != nil {
		return nil, err
	}
	if len(tr.Transcript) == 0 {
		return nil, fmt.Errorf("conversation %s:%s of %s has no recorded turns (transcripts are kept for transcript_retention; see docs/analytics.md)", channel, id, bot)
	}
	first := tr.Transcript[0]
	t := recordedTest{Name: fmt.Sprintf("recorded %s:%s", channel, id), User: first.User, Now: first.Time.UTC().Format(time.RFC3339)}
	if channel != "web" {
		t.Channel = channel
	}
	var notes []string
	if tr.Summary != nil && tr.Summary.Turns > int64(len(tr.Transcript)) {
		notes = append(notes, fmt.Sprintf("the transcript keeps the last %d of %d turns: the conversation's start is missing", len(tr.Transcript), tr.Summary.Turns))
	}
	for i, e := range tr.Transcript {
		if e.Sensitive {
			return nil, fmt.Errorf("turn %d (%s) is marked sensitive: its text is not kept, so the conversation cannot be replayed", i+1, e.Time.UTC().Format(time.RFC3339))
		}
		if i > 0 && e.NewSession && !tr.Transcript[i-1].EndSession {
			notes = append(notes, fmt.Sprintf("the session expired before turn %d; the test replays it without the pause", i+1))
		}
		if e.User != "" && e.User != t.User {
			notes = append(notes, fmt.Sprintf("turn %d is from user %s; the test sends every turn as %s", i+1, e.User, t.User))
		}
		turn := recordedTurn{Say: e.Text, Reply: e.Reply, EndConversation: e.EndSession}
		intent := e.Intent
		turn.Intent = &intent
		if e.Outcome == "error" || e.Outcome == "timeout" {
			turn.Outcome = e.Outcome
		}
		t.Turns = append(t.Turns, turn)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Recorded by parley test --record from conversation %s:%s of %s (%d turns, %s to %s).\n",
		channel, id, bot, len(tr.Transcript), first.Time.UTC().Format(time.RFC3339),
		tr.Transcript[len(tr.Transcript)-1].Time.UTC().Format(time.RFC3339))
	b.WriteString("# The clock is frozen at the first turn. Check each reply before the test guards it;\n")
	b.WriteString("# the transcript keeps no options, session or slots, and no mocks: add them as needed.\n")
	for _, n := range notes {
		fmt.Fprintf(&b, "# Note: %s.\n", n)
	}
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(recordedFile{Tests: []recordedTest{t}}); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
