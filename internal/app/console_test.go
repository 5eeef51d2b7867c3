package app

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium returns the path of a Chromium or Chrome binary:
// PARLEY_TEST_CHROMIUM, or the first one on PATH. Without one the test is
// skipped, unless PARLEY_TEST_REQUIRE_BROWSER is set (the test command
// installs Chromium and sets it), when it fails.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PARLEY_TEST_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("PARLEY_TEST_REQUIRE_BROWSER") != "" {
		t.Fatal("no Chromium found: install it (Debian: apt-get install chromium) or set PARLEY_TEST_CHROMIUM")
	}
	t.Skip("no Chromium found (set PARLEY_TEST_REQUIRE_BROWSER=1 to make this a failure)")
	return ""
}

// browserSteps returns the two ways a browser test drives its tab:
// step runs actions and, when one fails, stops the test with what the page
// showed; value evaluates a JavaScript expression.
func browserSteps(t *testing.T, ctx context.Context) (step func(what string, actions ...chromedp.Action[chromedp.Void]), value func(js string) any) {
	step = func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			page, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
			t.Fatalf("%s: %v\npage text:\n%s", what, err, page)
		}
	}
	value = func(js string) any {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[any](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return v
	}
	return step, value
}

// browser starts a headless Chromium for the test.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, // tests may run as root
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelBrowser := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelBrowser(); cancelAlloc() })
	return ctx
}

// waitFor waits until the JavaScript expression js is true.
func waitFor(js string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Poll[bool](js, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second))(ctx, t)
		return err
	})
}

// eval runs the JavaScript expression js, ignoring its value.
func eval(js string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[any](js)(ctx, t)
		return err
	})
}

// textIncludes is a JavaScript test that the element sel's text holds s.
func textIncludes(sel, s string) string {
	q, _ := json.Marshal(sel)
	v, _ := json.Marshal(s)
	return `(document.querySelector(` + string(q) + `)?.textContent || "").includes(` + string(v) + `)`
}

// TestConsole drives the web console in a real headless Chromium: log in,
// create a bot, deploy a broken and a working handler, try it, see its
// invocation and the turn count, roll back, run and promote a canary, and
// check that a reply is shown as text, not HTML.
func TestConsole(t *testing.T) {
	ctx := browser(t)
	ta := startApp(t, appOptions{})
	step, value := browserSteps(t, ctx)
	deploy := func(source string) chromedp.Action[chromedp.Void] {
		return chromedp.Steps(
			chromedp.SetValue("#deploy-intent", "fallback"),
			chromedp.SetValue("#deploy-source", source),
			eval(`document.querySelector("#deploy-result").textContent = ""`),
			chromedp.Click("#deploy button[type=submit]"),
		)
	}
	try := func(text string) chromedp.Action[chromedp.Void] {
		return chromedp.Steps(
			eval(`document.querySelector("#try-result").replaceChildren()`),
			chromedp.SetValue("#try-text", text),
			chromedp.Click("#try button[type=submit]"),
		)
	}

	view := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Steps(eval(`location.hash = "#/demo/`+name+`"`),
			chromedp.WaitVisible(`section[data-view="`+name+`"]`))
	}

	step("open the console", chromedp.Navigate(ta.URL+"/console"), chromedp.WaitVisible("#login"))
	step("a wrong key is refused",
		chromedp.SendKeys("#key", "not-the-key"), chromedp.Click("#login button[type=submit]"),
		waitFor(textIncludes("#login-error", "wrong admin key")))
	if value(`getComputedStyle(document.querySelector("#app")).display`) != "none" {
		t.Fatal("the console shows the app after a wrong key")
	}
	step("log in",
		chromedp.SendKeys("#key", adminKey), chromedp.Click("#login button[type=submit]"),
		chromedp.WaitVisible("#app"), waitFor(textIncludes("#bots", "no bots yet")))
	step("create a bot",
		chromedp.SendKeys("#new-bot-name", "demo"), chromedp.Click("#new-bot button[type=submit]"),
		waitFor(`location.hash === "#/demo/overview"`), waitFor(textIncludes("#bot-select", "demo")),
		view("intents"), waitFor(textIncludes("#intents", "no handlers deployed")))

	step("a broken handler is refused with its line",
		deploy("function handle(e, s)\n  return x +\nend"),
		waitFor(textIncludes("#deploy-result", "syntax error")), waitFor(textIncludes("#deploy-result", "line 3")))
	step("deploy a handler",
		deploy(`function handle(e, s) log.info("seen " .. e.text) return "Hi " .. e.text end`),
		waitFor(textIncludes("#deploy-result", "deployed v1")),
		waitFor(textIncludes(`#intents tr[data-intent="fallback"]`, "v1")))
	step("try it",
		try("hello"),
		waitFor(textIncludes("#try-result", "Hi hello")), waitFor(textIncludes("#try-result pre", "seen hello")),
		waitFor(textIncludes("#try-result", "outcome fallback")))
	step("the invocation is listed", view("logs"), waitFor(textIncludes("#logs tbody", "seen hello")))
	step("the turn is counted", view("overview"),
		waitFor(`(()=>{const d = document.querySelector('#stats [data-stat="turns"] dd'); return d && Number(d.textContent) >= 1})()`))
	step("turns by intent, and per hour",
		waitFor(textIncludes(`#by-intent tr[data-intent="fallback"]`, "100.0 %")),
		waitFor(`document.querySelectorAll("#chart rect.bar").length >= 24`))
	step("the compute is metered",
		waitFor(`(()=>{const d = document.querySelector('#usage [data-stat="invocations"] dd'); return d && Number(d.textContent) >= 1})()`))
	step("the conversation and its transcript", view("conversations"),
		waitFor(textIncludes("#conversations tbody", "console")),
		chromedp.Click(`#conversations tbody a`),
		waitFor(textIncludes("#transcript", "Conversation console")),
		waitFor(textIncludes("#transcript", "console: hello")), waitFor(textIncludes("#transcript", "bot: Hi hello")))
	step("no channel yet", view("channels"), waitFor(textIncludes("#channels", "no channel connected")))
	step("bad channel settings are refused",
		waitFor(`document.querySelector('#connect-channel option[value="web"]') !== null`), chromedp.SetValue("#connect-channel", "web"), eval(`document.querySelector("#connect-channel").dispatchEvent(new Event("change"))`),
		chromedp.SetValue("#cf-token", "x"),
		chromedp.Click("#connect button[type=submit]"),
		waitFor(`document.querySelector("#connect-result").className === "error"`))
	step("connect the web channel",
		chromedp.SetValue("#cf-token", webToken),
		chromedp.Click("#connect button[type=submit]"),
		waitFor(textIncludes("#connect-result", "web connected")),
		waitFor(textIncludes("#channels", ta.URL+"/hooks/demo/web")))
	if r := ta.say(t, "demo", map[string]any{"user": "ann", "text": "over the webhook"}); firstReply(t, r) != "Hi over the webhook" {
		t.Fatalf("the channel connected in the console answers %v", r.Body)
	}
	step("disconnect it",
		eval(`window.confirm = () => true`),
		chromedp.Click(`#channels li[data-channel="web"] button.danger`),
		waitFor(textIncludes("#channels", "no channel connected")))
	step("a bad schedule is refused", view("schedules"),
		chromedp.SetValue("#schedule-name", "daily"), chromedp.SetValue("#schedule-cron", "every day"),
		chromedp.SetValue("#schedule-intent", "fallback"), chromedp.Click("#schedule button[type=submit]"),
		waitFor(`document.querySelector("#schedule-result").className === "error"`))
	step("add a schedule",
		chromedp.SetValue("#schedule-cron", "@daily"), chromedp.SetValue("#schedule-timezone", "Europe/Berlin"),
		chromedp.SetValue("#schedule-targets", "web ann"),
		chromedp.Click("#schedule button[type=submit]"),
		waitFor(textIncludes("#schedule-result", "daily saved")),
		waitFor(textIncludes(`#schedules tr[data-schedule="daily"]`, "@daily (Europe/Berlin)")),
		waitFor(textIncludes(`#schedules tr[data-schedule="daily"]`, "web:ann")))
	r := do(t, "GET", ta.URL+"/v1/bots/demo/schedules/daily", adminKey, nil).must(t, http.StatusOK)
	if sc, _ := r.Body["schedule"].(map[string]any); sc["intent"] != "fallback" || sc["timezone"] != "Europe/Berlin" {
		t.Fatalf("the schedule saved from the console is %v", r.Body)
	}
	next, _ := r.Body["schedule"].(map[string]any)["next_run"].(string)
	if _, err := time.Parse(time.RFC3339, next); err != nil {
		t.Fatalf("next_run of the schedule = %q: %v", next, err)
	}
	step("the list shows its next run",
		waitFor(`document.querySelector('#schedules tr[data-schedule="daily"] td[title="`+next+`"]') !== null`))
	step("delete it",
		eval(`window.confirm = () => true`),
		chromedp.Click(`#schedules tr[data-schedule="daily"] button`),
		waitFor(textIncludes("#schedules", "no schedules")))
	step("bad settings are refused", view("settings"), chromedp.WaitVisible("#sf-busy_reply"),
		eval(`document.querySelector("#settings-json").closest("details").open = true`),
		chromedp.SetValue("#settings-json", `{"timeout_ms": `), chromedp.Click("#settings-json-save"),
		waitFor(textIncludes("#settings-result", "not valid JSON")),
		chromedp.SetValue("#sf-rate_limit_per_user", "lots"), chromedp.Click("#settings-form button[type=submit]"),
		waitFor(`document.querySelector("#settings-result").className === "error"`))
	step("save settings",
		eval(`document.querySelector("#sf-rate_limit_per_user").value = ""`),
		chromedp.SetValue("#sf-busy_reply", "One moment, please."), chromedp.Click("#settings-form button[type=submit]"),
		waitFor(textIncludes("#settings-result", "settings saved")))
	if r := do(t, "GET", ta.URL+"/v1/bots/demo", adminKey, nil).must(t, http.StatusOK); r.Body["settings"].(map[string]any)["busy_reply"] != "One moment, please." {
		t.Fatalf("settings saved from the console: %v", r.Body["settings"])
	}
	step("train the classifier, reload: the view stays",
		chromedp.SetValue("#nlu-json", `{"intents": {"Greet": ["hello", "hi there", "good morning"], "Order": ["i want a pizza", "order a pizza", "a pizza please"]}}`),
		chromedp.Click("#nlu button[type=submit]"),
		waitFor(textIncludes("#nlu-result", "trained on 6 examples of 2 intents")),
		chromedp.Reload(),
		waitFor(`location.hash === "#/demo/settings"`),
		waitFor(`document.querySelector("#nlu-json").value.includes("good morning")`),
		waitFor(`document.querySelector("#sf-busy_reply").value.includes("One moment")`))

	step("back to the intents", view("intents"), waitFor(textIncludes(`#intents tr[data-intent="fallback"]`, "v1")))
	step("deploy a second version",
		deploy(`function handle(e, s) return "v2: " .. e.text end`),
		waitFor(textIncludes("#deploy-result", "deployed v2")),
		waitFor(textIncludes(`#intents tr[data-intent="fallback"]`, "v2")))
	step("roll back to the first",
		chromedp.Click(`#intents tr[data-intent="fallback"] td.actions button`),
		chromedp.WaitVisible(`#intents tr[data-intent="fallback"] select`),
		waitFor(`document.querySelector("#deploy-source").value.includes("v2: ")`),
		chromedp.SetValue(`#intents tr[data-intent="fallback"] select`, "1"),
		chromedp.Click(`#intents tr[data-intent="fallback"] td.versions button`),
		waitFor(textIncludes("#status", "rolled back to v1")),
		waitFor(`document.querySelector('#intents tr[data-intent="fallback"] td[data-version]')?.dataset.version === "1"`),
		try("again"), waitFor(textIncludes("#try-result", "Hi again")))

	step("deploy a canary and promote it",
		chromedp.Click("#deploy-canary"), chromedp.SetValue("#deploy-percent", "50"),
		deploy(`function handle(e, s) return "canary: " .. e.text end`),
		waitFor(textIncludes("#deploy-result", "v3 is a canary for 50 %")),
		waitFor(textIncludes(`#intents tr[data-intent="fallback"]`, "v3 for 50 %")),
		chromedp.Click("#deploy-canary"),
		chromedp.Click(`#intents tr[data-intent="fallback"] td.actions button:nth-of-type(2)`),
		waitFor(textIncludes("#status", "canary promoted")),
		waitFor(`document.querySelector('#intents tr[data-intent="fallback"] td[data-version]')?.dataset.version === "3"`),
		// The console's conversation stays on the version it began with;
		// a new one gets the promoted version.
		try("now"), waitFor(textIncludes("#try-result", "version 1")),
		chromedp.SetValue("#try-user", "someone-new"),
		try("now"), waitFor(textIncludes("#try-result", "canary: now")))

	const markup = `<img src=x onerror="document.title='owned'">`
	step("a reply is shown as text",
		deploy(`function handle(e, s) return [[`+markup+`]] end`),
		waitFor(textIncludes("#deploy-result", "deployed v4")),
		try("x"), waitFor(textIncludes("#try-result", markup)))
	if imgs, title := value(`document.querySelectorAll("#try-result img").length`), value(`document.title`); imgs != float64(0) || title == "owned" {
		t.Fatalf("the reply was rendered as HTML: %v images, title %q", imgs, title)
	}

	// A rich reply: buttons, a card with an image, media; a press sends
	// the payload back. Every text, markup included, is shown as text.
	image := ta.URL + "/healthz" // a local URL: the test fetches nothing from outside
	step("a rich reply shows buttons, cards and images",
		deploy(`function handle(e, s)
  if e.postback then return "pressed " .. e.postback .. " (" .. e.text .. ")" end
  return {text = "Our menu",
    buttons = {{title = "Order", payload = "OrderPizza"}, {title = "Website", url = "https://example.com/"}},
    cards = {{title = "<b>Margherita</b>", subtitle = "Tomato & mozzarella", image = "`+image+`",
              buttons = {{title = "Add", payload = "add:margherita"}}}},
    media = {{type = "image", url = "`+image+`", caption = "The menu"},
             {type = "file", url = "https://example.com/menu.pdf", caption = "Menu (PDF)"}}}
end`),
		waitFor(textIncludes("#deploy-result", "deployed v5")),
		try("menu"), waitFor(textIncludes("#try-result", "Our menu")),
		waitFor(textIncludes("#try-result .card", "<b>Margherita</b>")),
		waitFor(textIncludes("#try-result .card", "Tomato & mozzarella")),
		waitFor(textIncludes("#try-result figcaption", "The menu")))
	seen := value(`JSON.stringify({
  buttons: [...document.querySelectorAll("#try-result button.postback")].map((b) => b.textContent),
  links: [...document.querySelectorAll("#try-result a")].map((a) => a.textContent + " " + a.getAttribute("href")),
  images: [...document.querySelectorAll("#try-result img")].map((i) => i.getAttribute("src")),
  bold: document.querySelectorAll("#try-result b").length,
})`)
	want := `{"buttons":["Order","Add"],"links":["Website https://example.com/","Menu (PDF) https://example.com/menu.pdf"],` +
		`"images":["` + image + `","` + image + `"],"bold":0}`
	if seen != want {
		t.Fatalf("the rich reply shows %v\nwant %s", seen, want)
	}
	step("pressing a button sends its payload",
		chromedp.Click(`#try-result .card button.postback`),
		waitFor(textIncludes("#try-result", "pressed add:margherita (Add)")))

	if v := value(`document.querySelector("#status").className`); v == "error" {
		t.Fatalf("the console reports an error: %v", value(`document.querySelector("#status").textContent`))
	}
	if path := os.Getenv("PARLEY_TEST_SCREENSHOT"); path != "" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	step("log out", chromedp.Click("#logout"), waitFor(`getComputedStyle(document.querySelector("#app")).display === "none"`),
		waitFor(`sessionStorage.getItem("parley.adminKey") === null`))
	if value(`document.documentElement.outerHTML.includes(`+strings.ReplaceAll(`"KEY"`, "KEY", adminKey)+`)`) != false {
		t.Fatal("the admin key is in the page")
	}
}
