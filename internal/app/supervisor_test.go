package app

import (
	"context"
	"errors"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// blocking is a service that runs until its context ends and then takes
// drain to return; stopped counts its returns.
func blocking(name string, drain time.Duration, stopped *atomic.Int32) service {
	return service{name, func(ctx context.Context) error {
		<-ctx.Done()
		time.Sleep(drain)
		stopped.Add(1)
		return nil
	}}
}

func TestSupervisorFailureStopsTheOthers(t *testing.T) {
	boom := errors.New("boom")
	var stopped atomic.Int32
	g := newSupervisor(context.Background())
	g.goRun(blocking("a", 0, &stopped))
	g.goRun(blocking("b", 50*time.Millisecond, &stopped))
	g.goRun(service{"failing", func(context.Context) error { return boom }})
	select {
	case <-g.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("a failed service did not stop the others")
	}
	err := g.wait(30 * time.Second)
	if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "failing: ") {
		t.Fatalf("wait returned %v, want the failing service's error under its name", err)
	}
	if n := stopped.Load(); n != 2 {
		t.Fatalf("%d of 2 services returned before wait did", n)
	}
}

func TestSupervisorEarlyReturnIsAFailure(t *testing.T) {
	var stopped atomic.Int32
	g := newSupervisor(context.Background())
	g.goRun(blocking("a", 0, &stopped))
	g.goRun(service{"quitter", func(context.Context) error { return nil }})
	err := g.wait(30 * time.Second)
	if err == nil || !strings.Contains(err.Error(), "quitter: stopped before shutdown") {
		t.Fatalf("wait returned %v, want quitter's early stop", err)
	}
	if stopped.Load() != 1 {
		t.Fatal("the other service was not stopped")
	}
}

func TestSupervisorWaitNamesServicesStillRunning(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	var stopped atomic.Int32
	g := newSupervisor(context.Background())
	g.goRun(blocking("quick", 0, &stopped))
	g.goRun(service{"stuck", func(ctx context.Context) error {
		<-ctx.Done()
		<-release
		return nil
	}})
	g.stop()
	err := g.wait(200 * time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "stuck still running") || strings.Contains(err.Error(), "quick") {
		t.Fatalf("wait returned %v, want only stuck named as still running", err)
	}
}

// TestServiceFailureStopsTheApp runs the app's own services beside one that
// fails: the HTTP server and every service stop, and the failure is what
// ServeListener returns.
func TestServiceFailureStopsTheApp(t *testing.T) {
	a, err := New(context.Background(), testConfig(t, appOptions{}), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	boom := errors.New("disk on fire")
	fail := make(chan struct{})
	services := append(a.services(), service{"failing", func(ctx context.Context) error {
		select {
		case <-fail:
			return boom
		case <-ctx.Done():
			return nil
		}
	}})
	served := make(chan error, 1)
	go func() { served <- a.serveWith(context.Background(), ln, services) }()
	waitHealthy(t, url)
	close(fail)

	select {
	case err := <-served:
		if !errors.Is(err, boom) {
			t.Fatalf("serve returned %v, want the failed service's error", err)
		}
		if strings.Count(err.Error(), "\n") != 0 {
			t.Fatalf("serve returned more than the failure: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the app kept running after a service failed")
	}
	if resp, err := http.Get(url + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatal("server still accepts connections after a service failed")
	}
}

// TestShutdownWaitsForDrainingServices stops the app while a service still
// has work to write: ServeListener returns only after it is done.
func TestShutdownWaitsForDrainingServices(t *testing.T) {
	a, err := New(context.Background(), testConfig(t, appOptions{}), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var stopped atomic.Int32
	services := append(a.services(), blocking("slow", 500*time.Millisecond, &stopped))
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- a.serveWith(ctx, ln, services) }()
	waitHealthy(t, "http://"+ln.Addr().String())
	cancel()
	if err := <-served; err != nil {
		t.Fatalf("serve returned %v", err)
	}
	if stopped.Load() != 1 {
		t.Fatal("serve returned before a service finished draining")
	}
}

// TestServeLeavesNoGoroutines starts and stops a whole app: afterwards the
// process has as many goroutines as before, give or take a few of the
// runtime's and the HTTP client's.
func TestServeLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	cfg := testConfig(t, appOptions{})
	a, err := New(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- a.ServeListener(ctx, ln) }()
	url := "http://" + ln.Addr().String()
	waitHealthy(t, url)
	ta := &testApp{URL: url}
	ta.setupBot(t, "b", map[string]any{"min_vms": 1}, map[string]string{"Hello": `function handle() return "hi" end`})
	if r := ta.say(t, "b", map[string]any{"user": "u", "intent": "Hello"}); r.Status != http.StatusOK {
		t.Fatalf("turn: %d %s", r.Status, r.Raw)
	}
	during := runtime.NumGoroutine()
	cancel()
	if err := <-served; err != nil {
		t.Fatalf("serve returned %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	http.DefaultClient.CloseIdleConnections()

	const margin = 3
	deadline := time.Now().Add(20 * time.Second)
	for {
		after := runtime.NumGoroutine()
		if after <= before+margin {
			t.Logf("goroutines: %d before, %d while serving, %d after", before, during, after)
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after stopping:\n%s", before, after, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitHealthy waits until url answers /healthz.
func waitHealthy(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never became healthy: %v", url, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
