package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/internal/apiclient"
	"github.com/spf13/cobra"
)

// logEntry is one recorded handler invocation as the API serves it.
type logEntry struct {
	ID           string    `json:"id"`
	Time         time.Time `json:"time"`
	Intent       string    `json:"intent"`
	Version      int       `json:"version"`
	Channel      string    `json:"channel"`
	Conversation string    `json:"conversation"`
	Outcome      string    `json:"outcome"`
	DurationMS   float64   `json:"duration_ms"`
	Error        string    `json:"error"`
	Logs         []string  `json:"logs"`
}

// logsOptions are the logs command's flags.
type logsOptions struct {
	follow                 bool
	intent, outcome, since string
	limit                  int
}

func newLogsCmd(c *cli) *cobra.Command {
	var o logsOptions
	cmd := &cobra.Command{
		Use:   "logs BOT",
		Short: "Print a bot's handler invocations, and follow new ones",
		Long: `Print a bot's recent handler invocations, oldest first: time, intent and
version, outcome, duration, conversation, the error and the handler's log lines.
With --follow, keep printing new invocations as they happen on any server of the
deployment, until interrupted; a dropped connection is resumed where it stopped.
With --json, each invocation is one JSON object per line.`,
		Example: `  parley logs pizzabot
  parley logs pizzabot --follow --outcome error
  parley logs pizzabot --intent OrderPizza --since 10m --json`,
		Args: argsBetween(1, 1, "one bot"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.limit < 1 || o.limit > 500 {
				return usageErrorf("--limit must be between 1 and 500")
			}
			if o.since != "" {
				if d, err := time.ParseDuration(o.since); err != nil || d <= 0 {
					if _, err := time.Parse(time.RFC3339, o.since); err != nil {
						return usageErrorf("--since takes a duration (10m, 2h) or an RFC 3339 time, not %q", o.since)
					}
				}
			}
			return logs(cmd.Context(), c, args[0], o)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.follow, "follow", "f", false, "keep printing new invocations")
	f.StringVar(&o.intent, "intent", "", "only this intent's invocations")
	f.StringVar(&o.outcome, "outcome", "", "only invocations with this outcome: ok, error, timeout, limit, rejected")
	f.StringVar(&o.since, "since", "", "only invocations since then: a duration back from now (10m) or an RFC 3339 time")
	f.IntVar(&o.limit, "limit", 50, "print at most this many of the recorded invocations (the newest)")
	c.addJSONFlag(cmd)
	return cmd
}

func logs(ctx context.Context, c *cli, bot string, o logsOptions) error {
	api, err := c.client()
	if err != nil {
		return err
	}
	q := url.Values{"limit": {strconv.Itoa(o.limit)}}
	for k, v := range map[string]string{"intent": o.intent, "outcome": o.outcome, "since": o.since} {
		if v != "" {
			q.Set(k, v)
		}
	}
	path := "/v1/bots/" + url.PathEscape(bot) + "/logs"
	var out struct {
		Invocations []json.RawMessage `json:"invocations"`
	}
	if err := api.do(ctx, "GET", path+"?"+q.Encode(), nil, &out); err != nil {
		return fmt.Errorf("%s: %w", bot, err)
	}
	slices.Reverse(out.Invocations) // oldest first
	last := ""
	for _, raw := range out.Invocations {
		var e logEntry
		if err := c.printLogEntry(raw, &e); err != nil {
			return err
		}
		if last == "" || e.ID != "" {
			last = e.ID
		}
	}
	if !o.follow {
		return nil
	}
	q.Del("limit")
	q.Del("since") // the listing covered it: the stream starts after its last entry
	return followLogs(ctx, c, api, path, q, last)
}

// printLogEntry prints one entry, as a JSON line or as text, and decodes it
// into e.
func (c *cli) printLogEntry(raw json.RawMessage, e *logEntry) error {
	if err := json.Unmarshal(raw, e); err != nil {
		return fmt.Errorf("decode an invocation: %w", err)
	}
	if c.json {
		var compact bytes.Buffer
		if err := json.Compact(&compact, raw); err != nil {
			return err
		}
		_, err := fmt.Fprintln(c.stdout, compact.String())
		return err
	}
	where := e.Conversation
	if e.Channel != "" {
		where = e.Channel + "/" + e.Conversation
	}
	fmt.Fprintf(c.stdout, "%s  %s v%d  %s  %.1fms  %s", e.Time.UTC().Format("2006-01-02 15:04:05.000"),
		orDash(e.Intent), e.Version, e.Outcome, e.DurationMS, orDash(where))
	if e.Error != "" {
		fmt.Fprintf(c.stdout, "  %s", e.Error)
	}
	fmt.Fprintln(c.stdout)
	for _, l := range e.Logs {
		fmt.Fprintf(c.stdout, "    %s\n", l)
	}
	return nil
}

// followLogs reads the bot's log stream and prints each entry, resuming
// after the last entry seen when the connection drops, until ctx ends.
func followLogs(ctx context.Context, c *cli, api *client, path string, q url.Values, last string) error {
	q.Set("follow", "true")
	if last != "" {
		q.Set("after", last)
	}
	stream := &http.Client{} // no timeout: the stream lasts until interrupted
	backoff := time.Second
	for {
		err := readLogStream(ctx, c, api, stream, path+"?"+q.Encode(), &last)
		if ctx.Err() != nil {
			return nil
		}
		var ae *apiError
		if errors.As(err, &ae) && ae.Status != http.StatusTooManyRequests && ae.Status < 500 {
			return err
		}
		if last != "" {
			q.Set("after", last)
		}
		if !c.json {
			fmt.Fprintf(c.stderr, "parley logs: %v; reconnecting in %s\n", err, backoff)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// readLogStream reads one connection of the log stream, updating last with
// each entry's id. It returns why the stream ended.
func readLogStream(ctx context.Context, c *cli, api *client, stream *http.Client, path string, last *string) error {
	req, err := api.NewRequest(ctx, "GET", path)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	if *last != "" {
		req.Header.Set("Last-Event-ID", *last)
	}
	resp, err := stream.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach parley at %s: %w", api.Base(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return apiclient.AnswerError("GET", path, resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var event, data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if event == "invocation" && data != "" {
				var e logEntry
				if err := c.printLogEntry(json.RawMessage(data), &e); err != nil {
					return err
				}
				if e.ID != "" {
					*last = e.ID
				}
			}
			if event == "error" {
				return fmt.Errorf("the server ended the stream: %s", data)
			}
			event, data = "", ""
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			data += strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("the stream broke: %w", err)
	}
	return io.ErrUnexpectedEOF
}
