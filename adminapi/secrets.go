package adminapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/parleyhq/parley/bots"
	"github.com/parleyhq/parley/internal/apierr"
)

// Secrets stores bots' secrets; *bots.Catalog implements it. No method
// returns a secret's value: the API never shows one.
type Secrets interface {
	// PutSecret stores a secret; created is true for a new name.
	PutSecret(ctx context.Context, bot, name, value string) (created bool, err error)
	// ListSecrets lists a bot's secrets by name.
	ListSecrets(ctx context.Context, bot string) ([]bots.SecretInfo, error)
	// DeleteSecret removes a secret.
	DeleteSecret(ctx context.Context, bot, name string) error
	// MissingSecrets lists the names a bot has no secret of.
	MissingSecrets(ctx context.Context, bot string, names []string) ([]string, error)
}

// errNoSecrets answers the secret routes of an API without Secrets.
var errNoSecrets = apierr.New(http.StatusNotImplemented, "not_implemented", "this server does not store secrets")

// errSecretBody refuses a body that is not {"value": "..."}. It does not
// quote the body, or the JSON decoder's message, which may.
var errSecretBody = apierr.New(http.StatusBadRequest, "bad_json", `body must be a JSON object {"value": "..."} with the value as a string`)

// putSecret stores a secret: 201 for a new one, 200 for a replaced one.
// The answer never holds the value.
func (a *API) putSecret(c *gin.Context) error {
	if a.cfg.Secrets == nil {
		return errNoSecrets
	}
	body, err := a.body(c)
	if err != nil {
		return err
	}
	var in struct {
		Value *string `json:"value"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if dec.Decode(&in) != nil || dec.More() || in.Value == nil {
		return errSecretBody
	}
	created, err := a.cfg.Secrets.PutSecret(c, c.Param("bot"), c.Param("name"), *in.Value)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	c.JSON(status, gin.H{"name": c.Param("name"), "created": created})
	return nil
}

// listSecrets lists a bot's secrets, names and update times only.
func (a *API) listSecrets(c *gin.Context) error {
	if a.cfg.Secrets == nil {
		return errNoSecrets
	}
	list, err := a.cfg.Secrets.ListSecrets(c, c.Param("bot"))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"secrets": list})
	return nil
}

// deleteSecret removes a secret: 204, or 404 when there is none.
func (a *API) deleteSecret(c *gin.Context) error {
	if a.cfg.Secrets == nil {
		return errNoSecrets
	}
	if err := a.cfg.Secrets.DeleteSecret(c, c.Param("bot"), c.Param("name")); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}

// secretWarnings lists, as warnings for the answer of a settings change,
// the secrets the settings name (secrets, llm_api_key_secret) that the bot
// does not have.
func (a *API) secretWarnings(c *gin.Context, s bots.Settings) ([]string, error) {
	names := s.NeededSecrets()
	if a.cfg.Secrets == nil || len(names) == 0 {
		return nil, nil
	}
	missing, err := a.cfg.Secrets.MissingSecrets(c, c.Param("bot"), names)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(missing))
	for _, name := range missing {
		if name == s.LLMAPIKeySecret {
			out = append(out, fmt.Sprintf("secret %s (llm_api_key_secret) is not set: llm.chat returns nil, "+
				"\"no API key: secret %s is not set\" until it is (parley secret set %s %s)", name, name, c.Param("bot"), name))
			continue
		}
		out = append(out, fmt.Sprintf("secret %s is not set: handlers get nil from secret(%q) until it is "+
			"(parley secret set %s %s)", name, name, c.Param("bot"), name))
	}
	return out, nil
}
