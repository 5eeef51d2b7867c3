package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/parleyhq/parley/internal/apiclient"
)

// client calls the management API.
type client struct{ *apiclient.Client }

// newClient returns a client of the API at base with the admin key.
func newClient(base, key string) (*client, error) {
	if key == "" {
		return nil, fmt.Errorf("no admin key: set PARLEY_ADMIN_KEY or pass --key (parley serve prints a generated key at first start and keeps it in its data dir, file admin.key)")
	}
	return &client{apiclient.New(base, key)}, nil
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// do sends body (JSON-encoded unless it is a string or nil) and decodes the
// answer into out.
func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	return c.Do(ctx, method, path, body, out)
}
