package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/testredis"
)

// liveServer is an app serving a fixed address, which a test can stop and
// start again (same address, same Redis), as a restarted server.
type liveServer struct {
	t      *testing.T
	cfg    config.Config
	addr   string
	app    *App
	cancel context.CancelFunc
	done   chan error
}

func startLiveServer(t *testing.T, cfg config.Config) *liveServer {
	t.Helper()
	ls := &liveServer{t: t, cfg: cfg, addr: "127.0.0.1:0"}
	ls.start()
	t.Cleanup(ls.stop)
	return ls
}

func (ls *liveServer) URL() string { return "http://" + ls.addr }

func (ls *liveServer) start() {
	ls.t.Helper()
	a, err := New(context.Background(), ls.cfg, testLogger(ls.t))
	if err != nil {
		ls.t.Fatal(err)
	}
	var ln net.Listener
	for try := 0; ; try++ { // the old socket may linger a moment
		if ln, err = net.Listen("tcp", ls.addr); err == nil || try == 50 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		ls.t.Fatal(err)
	}
	ls.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	ls.app, ls.cancel, ls.done = a, cancel, make(chan error, 1)
	go func() { ls.done <- a.ServeListener(ctx, ln) }()
}

func (ls *liveServer) stop() {
	if ls.app == nil {
		return
	}
	ls.cancel()
	if err := <-ls.done; err != nil {
		ls.t.Errorf("serve: %v", err)
	}
	if err := ls.app.Close(); err != nil {
		ls.t.Errorf("close: %v", err)
	}
	ls.app = nil
}

// widgetHandler echoes the text (whatever it holds) with a button, and
// again as a card's title.
const widgetHandler = `function handle(event, session)
  local said = event.text or ""
  if event.postback then said = "pressed " .. event.postback end
  return {text = "echo: " .. said, buttons = {{title = "More", payload = "More"}},
    cards = {{title = "Card " .. said, subtitle = said}}}
end`

// TestWidgetInBrowser drives the widget in a headless Chromium on a page of
// another origin whose backend mints the user's token: send and receive,
// press a button, a pushed message, an XSS attempt shown as text, and a
// reconnect after the server restarts that misses nothing and shows
// nothing twice.
func TestWidgetInBrowser(t *testing.T) {
	ctx := browser(t)
	redisURL, prefix := testredis.URL(t), testredis.Prefix(t)
	srv := startLiveServer(t, testConfig(t, appOptions{redisURL: redisURL, prefix: prefix}))
	other := startApp(t, appOptions{redisURL: redisURL, prefix: prefix}) // a second replica

	// The shop's site: its page embeds the widget, its backend mints tokens.
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, `<!doctype html><html lang="en"><head><title>Shop</title></head><body><h1>Shop</h1>
<script src="%s/widget.js" data-bot="shop" data-token-url="/token" data-title="Shop chat" data-open="true"></script></body></html>`, srv.URL())
		case "/token":
			req, _ := http.NewRequestWithContext(r.Context(), "POST", srv.URL()+"/v1/bots/shop/channels/web/tokens",
				strings.NewReader(`{"user": "alice"}`))
			req.Header.Set("Authorization", "Bearer "+webToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			defer resp.Body.Close()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(resp.StatusCode)
			_, _ = io.Copy(w, resp.Body)
		default:
			http.NotFound(w, r)
		}
	}))
	defer site.Close()

	base := srv.URL()
	do(t, "PUT", base+"/v1/bots/shop", adminKey, map[string]any{}).must(t, http.StatusCreated)
	do(t, "PUT", base+"/v1/bots/shop/channels/web", adminKey, map[string]any{"token": webToken, "allowed_origins": site.URL}).
		must(t, http.StatusOK)
	do(t, "PUT", base+"/v1/bots/shop/intents/fallback", adminKey, widgetHandler).must(t, http.StatusCreated)

	step, value := browserSteps(t, ctx)
	say := func(text string) chromedp.Action[chromedp.Void] {
		return chromedp.Steps(chromedp.SetValue("#parley-input", text), chromedp.Click(".parley-form button[type=submit]"))
	}
	connected := `(document.querySelector(".parley-panel [role=status]")?.textContent || "") === "Connected"`
	logHas := func(s string) string { return textIncludes(".parley-log", s) }
	count := func(s string) float64 {
		q, _ := json.Marshal(s)
		v, _ := value(`[...document.querySelectorAll(".parley-log .parley-bot")].filter(e => e.textContent.includes(` + string(q) + `)).length`).(float64)
		return v
	}

	step("open the page; the widget connects", chromedp.Navigate(site.URL), chromedp.WaitVisible("#parley-input"), waitFor(connected))
	if value(`document.querySelector(".parley-log").getAttribute("aria-live")`) != "polite" ||
		value(`document.querySelector("label[for=parley-input]").textContent`) != "Message" {
		t.Fatal("the log is not announced or the input is not labelled")
	}
	step("send and receive", say("hello"), waitFor(logHas("echo: hello")))
	step("press a button", eval(`[...document.querySelectorAll(".parley-log .parley-acts button")].find(b => b.textContent === "More").click()`),
		waitFor(logHas("echo: pressed More")))
	push(t, other, "shop", "alice", "your order shipped")
	step("a pushed message appears", waitFor(logHas("your order shipped")))

	xss := `<img src=x onerror="window.__xss=1">`
	step("an XSS attempt is text", say(xss), waitFor(logHas("echo: "+xss)))
	step("the card shows it as text too", waitFor(logHas("Card "+xss)))
	if value(`window.__xss === undefined`) != true || value(`document.querySelectorAll(".parley-log img").length`) != float64(0) {
		t.Fatalf("bot text ran as HTML: __xss=%v, images %v", value(`window.__xss`), value(`document.querySelectorAll(".parley-log img").length`))
	}

	// The server restarts; meanwhile the other replica pushes. The widget
	// reconnects with the last id it saw.
	srv.stop()
	step("the widget notices", waitFor(`(document.querySelector(".parley-panel [role=status]")?.textContent || "") === "Reconnecting"`))
	push(t, other, "shop", "alice", "sent while you were away")
	srv.start()
	step("reconnect after the restart", waitFor(connected), waitFor(logHas("sent while you were away")))
	step("send after the restart", say("back"), waitFor(logHas("echo: back")))
	for _, s := range []string{"echo: hello", "your order shipped", "sent while you were away", "echo: back"} {
		if n := count(s); n != 1 {
			t.Errorf("%q shown %v times, want once", s, n)
		}
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("the browser timed out")
	}
}

func TestWidgetServed(t *testing.T) {
	ta := startApp(t, appOptions{})
	r := do(t, "GET", ta.URL+"/widget.js", "", nil).must(t, http.StatusOK)
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/javascript") || r.Header.Get("Cache-Control") != "public, max-age=3600" ||
		r.Header.Get("ETag") == "" || !strings.Contains(r.Raw, "data-token-url") {
		t.Fatalf("widget answer headers %v", r.Header)
	}
	do(t, "GET", ta.URL+"/widget.js", "", nil, "If-None-Match", r.Header.Get("ETag")).must(t, http.StatusNotModified)
}
