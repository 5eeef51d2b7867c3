package twilio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/msg"
)

// DefaultAPIBaseURL is Twilio's REST API.
const DefaultAPIBaseURL = "https://api.twilio.com"

// validatePush checks the settings of pushed messages: a sender (a number
// or a messaging service, not both) needs the account SID to send with.
func validatePush(s channels.Settings) error {
	from, service := s[SettingFrom], s[SettingMessagingServiceSID]
	switch {
	case from != "" && service != "":
		return channels.BadRequest("the twilio channel takes \"from\" or \"messaging_service_sid\", not both")
	case (from != "" || service != "") && s[SettingAccountSID] == "":
		return channels.BadRequest("pushing messages needs the account's \"account_sid\"")
	case service != "" && (!strings.HasPrefix(service, "MG") || len(service) != 34):
		return channels.BadRequest("\"messaging_service_sid\" is MG followed by 32 characters")
	case from != "" && (len(from) > maxAddress || strings.ContainsAny(from, "\r\n")):
		return channels.BadRequest("\"from\" is the bot's number, e.g. +14155550100 or whatsapp:+14155550100")
	}
	if raw := s[SettingAPIBaseURL]; raw != "" {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return channels.BadRequest("\"api_base_url\" must be an http(s) URL")
		}
	}
	return nil
}

// Send implements [channels.Sender]: each reply becomes a message (more
// for a long one, or one with many media; see [messages]) to the
// conversation (the user's number, or whatsapp:+number) through the
// Messages API, from the configured number or messaging service, with its
// media as MediaUrl parameters.
func (a *Adapter) Send(ctx context.Context, s channels.Settings, res *msg.TurnResult) error {
	form, err := pushForm(s, res.Conversation)
	if err != nil {
		return &channels.SendError{Err: err}
	}
	base := strings.TrimRight(s[SettingAPIBaseURL], "/")
	if base == "" {
		base = DefaultAPIBaseURL
	}
	endpoint := base + "/2010-04-01/Accounts/" + url.PathEscape(s[SettingAccountSID]) + "/Messages.json"
	for _, m := range messages(s, res.Conversation, res.Replies) {
		form.Del("Body")
		form.Del("MediaUrl")
		if m.Body != "" {
			form.Set("Body", m.Body)
		}
		for _, u := range m.Media {
			form.Add("MediaUrl", u)
		}
		if err := a.post(ctx, endpoint, s, form); err != nil {
			return err
		}
	}
	return nil
}

// pushForm is the Messages API form without the body.
func pushForm(s channels.Settings, to string) (url.Values, error) {
	if s[SettingAccountSID] == "" || (s[SettingFrom] == "" && s[SettingMessagingServiceSID] == "") {
		return nil, errors.New("the twilio channel needs \"account_sid\" and \"from\" or \"messaging_service_sid\" to push messages")
	}
	form := url.Values{"To": {to}}
	if service := s[SettingMessagingServiceSID]; service != "" {
		form.Set("MessagingServiceSid", service)
		return form, nil
	}
	from := s[SettingFrom]
	// A WhatsApp conversation is sent from the number's WhatsApp sender.
	if strings.HasPrefix(to, "whatsapp:") && !strings.HasPrefix(from, "whatsapp:") {
		from = "whatsapp:" + from
	}
	form.Set("From", from)
	return form, nil
}

// apiError is the REST API's error answer.
type apiError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (a *Adapter) post(ctx context.Context, endpoint string, s channels.Settings, form url.Values) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return &channels.SendError{Err: fmt.Errorf("build request: %w", err)}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(s[SettingAccountSID], s[SettingAuthToken])
	resp, err := a.client.Do(req)
	if err != nil {
		return &channels.SendError{Retryable: true, Err: err}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusOK {
		return nil
	}
	var ae apiError
	_ = json.Unmarshal(raw, &ae)
	cause := fmt.Errorf("messages API: HTTP %d", resp.StatusCode)
	if ae.Message != "" {
		cause = fmt.Errorf("messages API: HTTP %d: %d %s", resp.StatusCode, ae.Code, ae.Message)
	}
	return channels.StatusError(resp, cause)
}
