package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
)

type invokeAnswer struct {
	Answer struct {
		Conversation string `json:"conversation"`
		Intent       string `json:"intent"`
		Replies      []struct {
			Text    string   `json:"text"`
			Options []string `json:"options"`
		} `json:"replies"`
		EndConversation bool `json:"end_conversation"`
	} `json:"answer"`
	Outcome string   `json:"outcome"`
	Version int      `json:"version"`
	Logs    []string `json:"logs"`
	Error   *struct {
		Message string `json:"message"`
	} `json:"error"`
}

func invoke(args, environ []string, stdout io.Writer) error {
	flags, rest, err := parseFlags(args, "user", "conversation")
	if err != nil {
		return err
	}
	if len(rest) < 2 {
		return usageError{"invoke takes a bot and the text to send"}
	}
	c, err := newClient(flags, environ)
	if err != nil {
		return err
	}
	user := firstNonEmpty(flags["user"], "cli-user")
	body := map[string]string{"user": user, "text": strings.Join(rest[1:], " ")}
	if conv := flags["conversation"]; conv != "" {
		body["conversation"] = conv
	}
	var out invokeAnswer
	if err := c.do("POST", "/v1/bots/"+url.PathEscape(rest[0])+"/invoke", body, &out); err != nil {
		return err
	}
	for _, r := range out.Answer.Replies {
		fmt.Fprintln(stdout, r.Text)
		if len(r.Options) > 0 {
			fmt.Fprintf(stdout, "  options: %s\n", strings.Join(r.Options, " | "))
		}
	}
	for _, l := range out.Logs {
		fmt.Fprintf(stdout, "  log: %s\n", l)
	}
	meta := fmt.Sprintf("[intent %s, version %d, %s", orDash(out.Answer.Intent), out.Version, out.Outcome)
	if out.Answer.EndConversation {
		meta += ", conversation ended"
	}
	fmt.Fprintln(stdout, meta+"]")
	if out.Error != nil {
		return fmt.Errorf("handler failed: %s", out.Error.Message)
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// remarshal converts between two shapes through JSON; unknown fields are errors.
func remarshal(in, out any) error {
	raw, err := json.Marshal(in)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(out)
}
