package app

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/parleyhq/parley/internal/testredis"
)

// consoleShots is where the console's screenshots go:
// $PARLEY_TEST_OUTPUT_DIR/console when set, else a temporary directory.
func consoleShots(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if base := os.Getenv("PARLEY_TEST_OUTPUT_DIR"); base != "" {
		dir = filepath.Join(base, "console")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestConsoleViews drives the console's views as a person would, against a
// server with Redis and a Slack channel whose platform is faked: nothing
// shows before login, each view has a URL that back, forward and reload
// keep, the chart has axes, try it shows a reply's options, conversations
// are found by user and paged, the logs follow live, dead letters are
// replayed and deleted, a channel is connected through its form, and every
// view fits a 360 px wide screen. Each view is saved as a screenshot.
func TestConsoleViews(t *testing.T) {
	ctx := browser(t)
	ta := startChatApp(t, testredis.URL(t), testredis.Prefix(t), 0)
	fake := newFakePlatform(t)
	ta.setupChatBot(t, "shop", "slack", map[string]string{"signing_secret": slackSecret, "bot_token": slackToken,
		"api_base_url": fake.srv.URL + "/api"})
	hook := ta.URL + "/hooks/shop/slack"
	shots := consoleShots(t)

	step, value := browserSteps(t, ctx)
	shot := func(name string) {
		t.Helper()
		// Quality 100 makes a PNG (below it, a JPEG).
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	view := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Steps(eval(`location.hash = "#/shop/`+name+`"`),
			chromedp.WaitVisible(`section[data-view="`+name+`"]`))
	}
	// shown is a JavaScript test that the element sel is displayed: its
	// computed style and its box, not its attributes.
	shown := func(sel string) string {
		return fmt.Sprintf(`(()=>{const e = document.querySelector(%q); if (!e) return false; const s = getComputedStyle(e);
  return s.display !== "none" && s.visibility !== "hidden" && e.getBoundingClientRect().height > 0})()`, sel)
	}
	appInvisible := `getComputedStyle(document.querySelector("#app")).display === "none" &&
  [...document.querySelectorAll("#app *")].every((e) => e.getClientRects().length === 0)`

	// Before a valid key nothing of the app is displayed, whatever the URL.
	step("open a view's URL before login", chromedp.EmulateViewport(1280, 900), chromedp.Navigate(ta.URL+"/console/#/shop/overview"), chromedp.WaitVisible("#login"))
	if value(appInvisible) != true {
		t.Fatal("the app is displayed before login")
	}
	shot("login")
	step("a wrong key says so",
		chromedp.SendKeys("#key", "not-the-key"), chromedp.Click("#login button[type=submit]"),
		waitFor(textIncludes("#login-error", "wrong admin key")))
	if value(appInvisible) != true {
		t.Fatal("the app is displayed after a wrong key")
	}
	step("log in: the URL's view shows",
		chromedp.SendKeys("#key", adminKey), chromedp.Click("#login button[type=submit]"),
		waitFor(shown(`section[data-view="overview"]`)), waitFor(`getComputedStyle(document.querySelector("#login-view")).display === "none"`),
		waitFor(`document.querySelector("#bot-select").value === "shop"`),
		waitFor(`document.querySelector('nav a[aria-current="page"]')?.dataset.view === "overview"`))

	// Try it: the reply's options are shown and pressing one answers.
	step("try it shows the options", view("intents"),
		chromedp.SetValue("#try-text", "hi"), chromedp.Click("#try button[type=submit]"),
		waitFor(textIncludes("#try-result", "echo: hi #1")),
		waitFor(shown("#try-result button.option")))
	if got := value(`[...document.querySelectorAll("#try-result button.option")].filter((b) => getComputedStyle(b).display !== "none" && b.offsetWidth > 20).map((b) => b.textContent).join(",")`); got != "Yes,No" {
		t.Fatalf("the options shown: %v", got)
	}
	step("pressing an option sends it",
		chromedp.Click(`#try-result button.option`), waitFor(textIncludes("#try-result", "echo: Yes #2")))
	shot("intents")

	// Conversations: three Slack users and 26 users of the API.
	for i, u := range []string{"U1", "U2", "U3"} {
		postSlack(t, hook, "application/json", slackMessage(fmt.Sprintf("EvC%d", i), "D"+u, u, "hello from "+u), slackSecret, 0).must(t, 200)
	}
	fake.waitFor(t, 3)
	for i := range 26 {
		do(t, "POST", ta.URL+"/v1/bots/shop/invoke", adminKey, map[string]any{"user": fmt.Sprintf("p%02d", i), "text": "page me"}).must(t, http.StatusOK)
	}
	step("the overview counts the turns and draws axes", view("overview"),
		waitFor(`Number(document.querySelector('#stats [data-stat="turns"] dd')?.textContent) >= 31`),
		waitFor(`document.querySelectorAll("#chart rect.bar").length >= 24`))
	axes := value(`JSON.stringify({
  y: document.querySelectorAll("#chart .y-tick").length, x: document.querySelectorAll("#chart .x-tick").length,
  unit: document.querySelector("#chart .y-label")?.textContent, time: document.querySelector("#chart .x-label")?.textContent,
  latency: document.querySelector("#chart-latency .y-label")?.textContent, caption: document.querySelector("#chart-turns-title").textContent,
  height: document.querySelector("#chart svg").getBoundingClientRect().height})`).(string)
	if !strings.Contains(axes, `"unit":"turns"`) || !strings.Contains(axes, `"time":"time (local)"`) || !strings.Contains(axes, `"latency":"ms"`) ||
		!strings.Contains(axes, `"caption":"Turns per hour, last 24 h"`) || strings.Contains(axes, `"y":0,`) || strings.Contains(axes, `"y":1,`) ||
		strings.Contains(axes, `"x":0,`) || strings.Contains(axes, `"x":1,`) {
		t.Fatalf("the chart's axes: %s", axes)
	}
	shot("overview")
	step("a time range has its URL; back and forward follow it",
		eval(`document.querySelector('#range input[value="1h"]').click()`),
		waitFor(`location.hash === "#/shop/overview?range=1h"`),
		waitFor(textIncludes("#chart-turns-title", "per minute")),
		waitFor(`document.querySelectorAll("#chart rect.bar").length >= 60`),
		eval(`history.back()`), waitFor(`location.hash === "#/shop/overview"`),
		waitFor(textIncludes("#chart-turns-title", "per hour")),
		eval(`history.back()`), waitFor(`location.hash === "#/shop/intents"`), waitFor(shown(`section[data-view="intents"]`)),
		eval(`history.forward()`), waitFor(shown(`section[data-view="overview"]`)),
		eval(`history.forward()`), waitFor(textIncludes("#chart-turns-title", "per minute")),
		waitFor(`document.querySelector('#range input[value="1h"]').checked`))

	step("conversations come a page at a time", view("conversations"),
		waitFor(`document.querySelectorAll("#conversations tbody tr").length === 25`),
		waitFor(shown("#conv-more")), chromedp.Click("#conv-more"),
		waitFor(`document.querySelectorAll("#conversations tbody tr").length === 30`),
		waitFor(`document.querySelector("#conv-more").hidden`))
	if dup := value(`(()=>{const ids = [...document.querySelectorAll("#conversations tbody tr")].map((r) => r.dataset.conversation); return ids.length - new Set(ids).size})()`); dup != float64(0) {
		t.Fatalf("%v conversations listed twice", dup)
	}
	step("find a conversation by user and open its transcript",
		chromedp.SetValue("#conv-user", "U2"), chromedp.Click("#conv-search button[type=submit]"),
		waitFor(`location.hash === "#/shop/conversations?user=U2"`),
		waitFor(`document.querySelectorAll("#conversations tbody tr").length === 1`),
		waitFor(textIncludes("#conversations tbody", "U2")),
		chromedp.Click("#conversations tbody a"),
		waitFor(textIncludes("#transcript", "U2: hello from U2")),
		waitFor(textIncludes("#transcript", "bot: echo: hello from U2 #1")),
		// The reply's options, as the user saw them (not pressable here).
		waitFor(`[...document.querySelectorAll("#transcript button.option")].map((b) => b.textContent + b.disabled).join() === "Yestrue,Notrue"`),
		waitFor(shown("#transcript button.option")))
	shot("conversations")
	step("a reload keeps the view, the search and the transcript",
		chromedp.Reload(),
		waitFor(shown(`section[data-view="conversations"]`)),
		waitFor(`document.querySelector("#conv-user").value === "U2"`),
		waitFor(textIncludes("#transcript", "U2: hello from U2")))

	step("the logs follow live", view("logs"),
		waitFor(textIncludes("#log-state", "live")),
		waitFor(`document.querySelectorAll("#logs tbody tr").length >= 10`))
	do(t, "POST", ta.URL+"/v1/bots/shop/invoke", adminKey, map[string]any{"user": "live", "text": "streamed"}).must(t, http.StatusOK)
	step("a new invocation appears without a reload",
		waitFor(`document.querySelector("#logs tbody tr.fresh") !== null`))
	shot("logs")

	// Dead letters: a send the platform refuses for good.
	fake.fail(http.StatusOK, `{"ok":false,"error":"not_in_channel"}`)
	postSlack(t, hook, "application/json", slackMessage("EvD1", "D9", "U9", "lost message"), slackSecret, 0).must(t, 200)
	step("the dead letter is listed with its error", view("deadletters"),
		waitFor(textIncludes("#deadletters tbody", "not_in_channel")),
		waitFor(textIncludes("#deadletters tbody", "lost message")),
		waitFor(textIncludes("#dead-count", "1")))
	shot("deadletters")
	fake.fail(0, "")
	sent := len(fake.texts())
	step("replay it", eval(`window.confirm = () => true`),
		chromedp.Click(`#deadletters tbody button`), // Replay comes first
		waitFor(textIncludes("#deadletters tbody", "no dead letters")),
		waitFor(textIncludes("#status", "replayed")))
	if got := fake.waitFor(t, sent+1); got[len(got)-1] != "echo: lost message #1" {
		t.Fatalf("the replayed send: %q", got)
	}
	fake.fail(http.StatusOK, `{"ok":false,"error":"not_in_channel"}`)
	postSlack(t, hook, "application/json", slackMessage("EvD2", "D8", "U8", "lost again"), slackSecret, 0).must(t, 200)
	step("delete another",
		waitFor(textIncludes("#deadletters tbody", "lost again")),
		chromedp.Click(`#deadletters tbody button.danger`),
		waitFor(textIncludes("#deadletters tbody", "no dead letters")))
	fake.fail(0, "")
	if dl, _ := do(t, "GET", ta.URL+"/v1/bots/shop/deadletters", adminKey, nil).must(t, 200).Body["deadletters"].([]any); len(dl) != 0 {
		t.Fatalf("dead letters left: %v", dl)
	}

	// A channel connected through its form: secrets are password inputs,
	// the webhook URL to paste is shown, nothing secret is shown back.
	const tgToken, tgSecret = "123456:telegram-bot-token", "telegram-secret-token-1"
	step("the telegram form", view("channels"),
		waitFor(`document.querySelector('#connect-channel option[value="telegram"]') !== null`), chromedp.SetValue("#connect-channel", "telegram"), eval(`document.querySelector("#connect-channel").dispatchEvent(new Event("change"))`),
		waitFor(`document.querySelector("#cf-bot_token")?.type === "password" && document.querySelector("#cf-secret_token")?.type === "password"`),
		waitFor(textIncludes("#connect-webhook", ta.URL+"/hooks/shop/telegram")),
		waitFor(shown("#cf-bot_token")))
	step("connect it",
		chromedp.SendKeys("#cf-bot_token", tgToken), chromedp.SendKeys("#cf-secret_token", tgSecret),
		chromedp.Click("#connect button[type=submit]"),
		waitFor(textIncludes("#connect-result", "telegram connected")),
		waitFor(textIncludes(`#channels li[data-channel="telegram"]`, ta.URL+"/hooks/shop/telegram")))
	if r := do(t, "GET", ta.URL+"/v1/bots/shop/channels/telegram", adminKey, nil).must(t, 200); r.Body["settings"] == nil {
		t.Fatalf("the channel connected in the console: %v", r.Body)
	}
	step("edit it: no secret comes back",
		chromedp.Click(`#channels li[data-channel="telegram"] button`),
		waitFor(`document.querySelector("#cf-bot_token").placeholder.includes("stored")`))
	if v := value(`[...document.querySelectorAll("input")].some((i) => i.value.includes("telegram-")) || document.documentElement.outerHTML.includes("telegram-bot-token")`); v != false {
		t.Fatal("a channel secret is shown in the page")
	}
	shot("channels")

	step("the inbox lists the conversations waiting for an agent: none yet", view("inbox"),
		waitFor(textIncludes("#handoffs", "no conversation is waiting for an agent")))
	shot("inbox")
	for _, v := range []string{"schedules", "settings"} {
		step(v, view(v))
		shot(v)
	}

	// Keyboard and screen readers: a skip link, landmarks, labelled
	// controls.
	if v := value(`JSON.stringify({
  skip: document.querySelector("a.skip")?.getAttribute("href"),
  main: !!document.querySelector("main#content"), nav: document.querySelector("nav")?.getAttribute("aria-label"),
  live: !!document.querySelector("[aria-live]"),
  unlabelled: [...document.querySelectorAll("input:not([type=radio]):not([type=hidden]), select, textarea")].filter((e) =>
    !e.labels?.length && !e.getAttribute("aria-label")).map((e) => e.id)})`); v != `{"skip":"#content","main":true,"nav":"Views","live":true,"unlabelled":[]}` {
		t.Fatalf("accessibility: %v", v)
	}

	// A 360 px wide screen: no horizontal scroll in any view, the nav
	// collapses behind its button.
	step("a phone's width", chromedp.EmulateViewport(360, 740), view("overview"),
		waitFor(`getComputedStyle(document.querySelector("#nav")).display === "none"`),
		waitFor(shown("#nav-toggle")),
		chromedp.Click("#nav-toggle"), waitFor(shown("#nav")),
		chromedp.Click(`nav a[data-view="deadletters"]`), waitFor(shown(`section[data-view="deadletters"]`)),
		waitFor(`getComputedStyle(document.querySelector("#nav")).display === "none"`))
	for _, v := range []string{"overview", "intents", "conversations", "logs", "channels", "schedules", "settings", "deadletters", "inbox"} {
		step(v+" at 360 px", view(v), chromedp.Sleep(300))
		if w := value(`document.documentElement.scrollWidth`); w.(float64) > 360 {
			t.Errorf("%s at 360 px is %v px wide", v, w)
		}
		shot(v + "-360")
	}
	step("log out", chromedp.EmulateViewport(1280, 900), chromedp.Click("#logout"), waitFor(appInvisible))
}

// inboxHandler hands the conversation to the billing queue when the user
// asks for a human, and echoes otherwise.
const inboxHandler = `function handle(event, session)
  if string.find(event.text or "", "human", 1, true) then
    return {text = "Connecting you", handoff = {queue = "billing", reason = "asked for a person"}}
  end
  return "echo: " .. (event.text or "")
end`

// TestConsoleInbox drives the agent inbox against the real handoff routes
// on Redis, with a user on the web channel: the inbox is open before the
// user's message hands the conversation over, and it shows up by itself
// (its last message as text, not HTML); an agent takes it and replies,
// and the reply reaches the user's live connection; the user's next
// message runs no handler and shows in the agent's pane by itself; the
// release runs the handback handler, whose reply reaches the user, the
// conversation leaves the inbox, and the bot answers again.
func TestConsoleInbox(t *testing.T) {
	ctx := browser(t)
	ta := startRedisApp(t)
	ta.setupBot(t, "desk", nil, map[string]string{"fallback": inboxHandler, "handback": handbackHandler})
	ann := userToken(t, ta.mint(t, "desk", adminKey, "ann"))
	ws, _, err := dialLive(t, ta.URL, "desk", ann, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	// pushed waits for a message on ann's live connection whose reply is
	// want (the answers to her own posts come there too).
	pushed := func(want string) {
		t.Helper()
		var seen []string
		for {
			f := ws.message()
			if got := replyText(f); got == want {
				return
			} else if got != "" {
				seen = append(seen, got)
			}
			if len(seen) > 5 {
				t.Fatalf("ann's connection got %q, not %q", seen, want)
			}
		}
	}
	say := func(text string) response {
		t.Helper()
		return do(t, "POST", ta.URL+"/hooks/desk/web", ann, map[string]any{"text": text}).must(t, http.StatusOK)
	}
	step, value := browserSteps(t, ctx)
	row := `#handoffs tr[data-key="web/ann"]`
	step("log in to the inbox", chromedp.EmulateViewport(1280, 900), chromedp.Navigate(ta.URL+"/console/#/desk/inbox"),
		chromedp.WaitVisible("#login"),
		chromedp.SendKeys("#key", adminKey), chromedp.Click("#login button[type=submit]"),
		waitFor(textIncludes("#handoffs", "no conversation is waiting for an agent")),
		// Gone after a reload: the inbox must update without one.
		eval(`window.sameInboxPage = true`))

	if got := firstReply(t, say("I need a human")); got != "Connecting you" {
		t.Fatalf("the handing-off message was answered %q", got)
	}
	step("the handed-off conversation appears by itself",
		waitFor(textIncludes(row, "waiting")), waitFor(textIncludes(row, "billing")),
		waitFor(textIncludes(row, "asked for a person")),
		waitFor(textIncludes("#inbox-count", "1")),
		waitFor(textIncludes("#live", "waiting for an agent")))
	// Held for a person: no handler runs, and (without a handoff notice)
	// nothing answers; the inbox shows it as its last message, as text.
	if r := say("<b>my invoice is wrong</b>"); len(r.Body["replies"].([]any)) != 0 {
		t.Fatalf("a held message was answered: %s", r.Raw)
	}
	step("its last message shows by itself, as text",
		waitFor(textIncludes(row, "<b>my invoice is wrong</b>")))
	if n := value(`document.querySelectorAll("#handoffs b").length`); n != float64(0) {
		t.Fatal("the user's message was rendered as HTML")
	}
	if w := value(`getComputedStyle(document.querySelector('` + row + ` td:nth-child(4)')).fontWeight`); w != "400" {
		t.Fatalf("the last message is shown in weight %v, want plain text", w)
	}

	step("take it and reply",
		chromedp.SendKeys("#agent-name", "ana"),
		chromedp.Click(row+` button`),
		waitFor(textIncludes(row, "active (ana)")),
		chromedp.WaitVisible("#handoff-text"),
		waitFor(`getComputedStyle(document.querySelector("#handoff-panel")).display !== "none"`),
		waitFor(textIncludes("#handoff-panel", "ann: I need a human")),
		waitFor(textIncludes("#handoff-panel", "ann: <b>my invoice is wrong</b>")),
		chromedp.SendKeys("#handoff-text", "Hello Ann, this is Ana."), chromedp.Click("#handoff-reply button[type=submit]"),
		waitFor(textIncludes("#handoff-panel", "ana: Hello Ann, this is Ana.")),
		waitFor(textIncludes("#handoff-panel output", "sent")))
	pushed("Hello Ann, this is Ana.")
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(consoleShots(t), "inbox-active.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}

	// The user writes again: no handler runs, and the agent sees it.
	if r := say("are you a human?"); len(r.Body["replies"].([]any)) != 0 || r.Body["intent"] != nil && r.Body["intent"] != "" {
		t.Fatalf("a message to the agent was answered: %s", r.Raw)
	}
	step("the user's new message shows by itself",
		waitFor(textIncludes("#handoff-panel", "ann: are you a human?")),
		waitFor(textIncludes(row, "are you a human?")))
	if got := value(`[...document.querySelectorAll("#handoff-log .turn")].at(-1).textContent`).(string); !strings.Contains(got, "human") ||
		strings.Contains(got, "bot:") {
		t.Fatalf("the held message shows as %q", got)
	}

	step("release it",
		chromedp.Click("#handoff-panel p button"),
		waitFor(textIncludes("#status", "web:ann released to the bot; its handback reply was sent")),
		waitFor(textIncludes("#handoffs", "no conversation is waiting for an agent")),
		waitFor(`document.querySelector("#handoff-panel").textContent === ""`),
		waitFor(`document.querySelector("#inbox-count").textContent === ""`))
	pushed("I'm back")
	if got := firstReply(t, say("hello again")); got != "echo: hello again" {
		t.Fatalf("after the release the bot answered %q", got)
	}
	if value(`window.sameInboxPage === true`) != true {
		t.Fatal("the inbox page was reloaded")
	}
}
