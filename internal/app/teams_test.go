package app

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels/teams/teamstest"
	"github.com/parleyhq/parley/internal/testredis"
)

const (
	teamsAppID    = "c9e8c047-2a74-40a2-b28a-b162d5f5327c"
	teamsPassword = "teams-client-secret-0123"
	teamsConv     = "a:17I0kl8EkpE1O9PH5TWrzrLqw8ugLX8kdv-WpXWh2YxTLnX29_O5Wz6WAhiJeZlRfFkZu_N6M8EL2B_KpJRT1Rj2fH9fBCBhC_pY3N6yx-cP2Hk-b-sRfJdT8ff7k4LGT"
	// teamsHandler answers a message with a button, and a press with its
	// payload.
	teamsHandler = `function handle(event, session)
  session.n = (session.n or 0) + 1
  if event.postback then
    return {text = "pressed " .. event.postback .. " (" .. event.text .. ") #" .. session.n}
  end
  return {text = "heard " .. event.text .. " #" .. session.n,
    buttons = {{title = "Order", payload = "order:margherita"}, {title = "Menu", url = "https://example.com/menu"}}}
end`
)

// teamsActivity is a message activity as Teams posts it, from serviceURL;
// value, when set, is an Adaptive Card's Action.Submit data.
func teamsActivity(id, serviceURL, text string, value any) []byte {
	act := map[string]any{
		"type": "message", "id": id, "timestamp": "2026-03-02T10:15:04.112Z", "channelId": "msteams",
		"serviceUrl": serviceURL,
		"from": map[string]any{"id": "29:1XJKJMvc5GBtc2JwZq0oj8tHZmzrQgFmB39ATiQWA85gQtHieVkKilBZ9XHoq9j7Zaqt7CZ-NJWi7me2kHTL3Bw",
			"name": "Megan Bowen", "aadObjectId": "7faf80fa-1a98-4d25-b62f-a3e9a6e08bca"},
		"conversation": map[string]any{"conversationType": "personal", "id": teamsConv, "tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"recipient":    map[string]any{"id": "28:" + teamsAppID, "name": "Pizza Bot"},
		"text":         text, "locale": "en-US",
	}
	if value != nil {
		act["value"] = value
	}
	b, _ := json.Marshal(act)
	return b
}

func postTeams(t *testing.T, target, token string, body []byte) response {
	t.Helper()
	h := http.Header{"Content-Type": {"application/json"}}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return chatPost(t, http.MethodPost, target, h, body)
}

// TestTeamsEndToEnd: a message activity with the connector's token runs the
// Lua handler from the queue and its reply, with a button, arrives at the
// connector as an Adaptive Card, with a token of the bot's credentials; the
// button's press (Action.Submit) comes back as a postback; a redelivered
// activity runs once; tokens the connector did not sign get a 401; the
// app password is never shown; a schedule pushes to the conversation.
func TestTeamsEndToEnd(t *testing.T) {
	auth := teamstest.NewAuthority(t)
	conn := teamstest.NewConnector(t, auth)
	cfg := testConfig(t, appOptions{redisURL: testredis.URL(t), prefix: testredis.Prefix(t)})
	cfg.QueueLease, cfg.QueuePoll, cfg.QueuePartitions = 400*time.Millisecond, 10*time.Millisecond, 4
	cfg.TeamsOpenIDMetadataURL, cfg.TeamsTokenURL, cfg.TeamsServiceURL = auth.MetadataURL(), auth.TokenURL(), conn.URL+"/teams/"
	ta := serveApp(t, cfg, testLogger(t))
	ta.setupBot(t, "pizzabot", nil, map[string]string{"fallback": teamsHandler})
	ta.connectChat(t, "pizzabot", "teams", map[string]string{"app_id": teamsAppID, "app_password": teamsPassword})
	target := ta.URL + "/hooks/pizzabot/teams"
	service := conn.URL + "/amer/"

	msg := teamsActivity("1485983408511", service, "Hello World", nil)
	postTeams(t, target, "", msg).must(t, http.StatusUnauthorized)
	forged := teamstest.Sign(t, teamstest.NewKey(t, "key-1", "msteams"), teamstest.ConnectorClaims(teamsAppID, service, time.Now()))
	postTeams(t, target, forged, msg).must(t, http.StatusUnauthorized)
	// A genuine token for another serviceUrl cannot redirect the reply.
	postTeams(t, target, auth.Token(teamsAppID, service), teamsActivity("1485983408599", "https://attacker.example/", "hi", nil)).
		must(t, http.StatusUnauthorized)

	for range 3 { // the connector's retries
		postTeams(t, target, auth.Token(teamsAppID, service), msg).must(t, http.StatusOK)
	}
	p := conn.Wait(t, 1)[0]
	if want := "/amer/v3/conversations/" + url.PathEscape(teamsConv) + "/activities/1485983408511"; p.Path != want || p.ClientID != teamsAppID {
		t.Fatalf("reply posted to %s as %q, want %s", p.Path, p.ClientID, want)
	}
	var reply struct {
		ReplyToID   string `json:"replyToId"`
		Attachments []struct {
			ContentType string `json:"contentType"`
			Content     struct {
				Type string `json:"type"`
				Body []struct {
					Type    string `json:"type"`
					Text    string `json:"text"`
					Actions []struct {
						Type  string         `json:"type"`
						Title string         `json:"title"`
						Data  map[string]any `json:"data"`
						URL   string         `json:"url"`
					} `json:"actions"`
				} `json:"body"`
			} `json:"content"`
		} `json:"attachments"`
	}
	if err := json.Unmarshal(p.Body, &reply); err != nil || len(reply.Attachments) != 1 {
		t.Fatalf("reply %s", p.Body)
	}
	card := reply.Attachments[0]
	if card.ContentType != "application/vnd.microsoft.card.adaptive" || card.Content.Type != "AdaptiveCard" ||
		len(card.Content.Body) != 2 || card.Content.Body[0].Text != "heard Hello World #1" {
		t.Fatalf("card %s", p.Body)
	}
	actions := card.Content.Body[1].Actions
	if len(actions) != 2 || actions[0].Type != "Action.Submit" || actions[1].Type != "Action.OpenUrl" || actions[1].URL != "https://example.com/menu" {
		t.Fatalf("actions %s", p.Body)
	}

	// The user presses Order: Teams posts the action's data as the value.
	press := teamsActivity("f:4b0fd3a1-0c8b-2d3b-9a2a-5ad6b8f1c6f0", service, "", actions[0].Data)
	postTeams(t, target, auth.Token(teamsAppID, service), press).must(t, http.StatusOK)
	posts := conn.Wait(t, 2)
	if !strings.Contains(string(posts[1].Body), `"text":"pressed order:margherita (Order) #2"`) {
		t.Fatalf("press answered %s", posts[1].Body)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(conn.Posts()); n != 2 {
		t.Fatalf("%d replies, want 2 (a redelivered activity runs once)", n)
	}
	if n := auth.TokenRequests(); n != 1 {
		t.Errorf("%d token requests for 2 replies, want 1", n)
	}

	info := do(t, "GET", ta.URL+"/v1/bots/pizzabot/channels/teams", adminKey, nil).must(t, http.StatusOK)
	if strings.Contains(info.Raw, teamsPassword) {
		t.Fatalf("the API shows the app password: %s", info.Raw)
	}

	// A schedule pushes to the conversation through the configured service URL.
	do(t, "PUT", ta.URL+"/v1/bots/pizzabot/intents/Remind", adminKey, `function handle(e, s)
  return {text = "Standup in 5 minutes"}
end`).must(t, http.StatusCreated)
	do(t, "PUT", ta.URL+"/v1/bots/pizzabot/schedules/standup", adminKey, map[string]any{"cron": "@every 1s", "intent": "Remind",
		"targets": []map[string]string{{"channel": "teams", "conversation": teamsConv}}}).must(t, http.StatusOK)
	defer do(t, "DELETE", ta.URL+"/v1/bots/pizzabot/schedules/standup", adminKey, nil)
	push := conn.Wait(t, 3)[2]
	if want := "/teams/v3/conversations/" + url.PathEscape(teamsConv) + "/activities"; push.Path != want ||
		push.Activity["text"] != "Standup in 5 minutes" || push.Activity["replyToId"] != nil {
		t.Fatalf("pushed %s to %s, want %s", push.Body, push.Path, want)
	}
}
