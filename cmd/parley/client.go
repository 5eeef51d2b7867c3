package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// client calls the management API.
type client struct {
	base string
	key  string
	http *http.Client
}

// clientFlags pulls --url and --key (and any other --name value pairs listed
// in names) out of args, wherever they are, and returns the rest.
func parseFlags(args []string, names ...string) (flags map[string]string, rest []string, err error) {
	flags = make(map[string]string)
	known := map[string]bool{"url": true, "key": true}
	for _, n := range names {
		known[n] = true
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "--") {
			rest = append(rest, a)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !known[name] {
			return nil, nil, usageError{fmt.Sprintf("unknown flag --%s", name)}
		}
		if !hasValue {
			if i+1 >= len(args) {
				return nil, nil, usageError{fmt.Sprintf("flag --%s needs a value", name)}
			}
			i++
			value = args[i]
		}
		flags[name] = value
	}
	return flags, rest, nil
}

func newClient(flags map[string]string, environ []string) (*client, error) {
	env := make(map[string]string)
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	base := firstNonEmpty(flags["url"], env["PARLEY_URL"], "http://localhost:8080")
	key := firstNonEmpty(flags["key"], env["PARLEY_ADMIN_KEY"])
	if key == "" {
		return nil, fmt.Errorf("no admin key: set PARLEY_ADMIN_KEY or pass --key (parley serve prints a generated key at first start and keeps it in its data dir, file admin.key)")
	}
	return &client{base: strings.TrimRight(base, "/"), key: key, http: &http.Client{Timeout: 60 * time.Second}}, nil
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// apiError is the management API's error body.
type apiError struct {
	Status  int
	Code    string `json:"code"`
	Message string `json:"message"`
	Line    int    `json:"line"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s (HTTP %d, %s)", e.Message, e.Status, e.Code)
}

// do sends body (JSON-encoded unless it is a string or nil) and decodes the
// answer into out.
func (c *client) do(method, path string, body, out any) error {
	var rd io.Reader
	contentType := "application/json"
	switch b := body.(type) {
	case nil:
	case string:
		rd, contentType = strings.NewReader(b), "text/plain; charset=utf-8"
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if rd != nil {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach parley at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("read answer of %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var wrapped struct {
			Error apiError `json:"error"`
		}
		if json.Unmarshal(raw, &wrapped) != nil || wrapped.Error.Code == "" {
			return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, strings.TrimSpace(string(raw)))
		}
		wrapped.Error.Status = resp.StatusCode
		return &wrapped.Error
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("decode answer of %s %s: %w", method, path, err)
		}
	}
	return nil
}
