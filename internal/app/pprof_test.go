package app

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestPprofOffByDefault: without PARLEY_PPROF the profiles are not served,
// not even to the admin.
func TestPprofOffByDefault(t *testing.T) {
	ta := startApp(t, appOptions{})
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/profile?seconds=1"} {
		do(t, "GET", ta.URL+path, adminKey, nil).must(t, http.StatusNotFound)
	}
}

// TestPprofBehindAdminKey: with PARLEY_PPROF=on the admin gets the index
// and real profiles; anyone else gets 401 and no profile.
func TestPprofBehindAdminKey(t *testing.T) {
	cfg := testConfig(t, appOptions{})
	cfg.Pprof = true
	ta := serveApp(t, cfg, testLogger(t))

	index := do(t, "GET", ta.URL+"/debug/pprof/", adminKey, nil).must(t, http.StatusOK)
	for _, name := range []string{"heap", "allocs", "goroutine", "mutex", "block"} {
		if !strings.Contains(index.Raw, name) {
			t.Errorf("the index does not list %s: %.300s", name, index.Raw)
		}
	}
	for _, path := range []string{"/debug/pprof/heap", "/debug/pprof/mutex", "/debug/pprof/profile?seconds=1"} {
		r := do(t, "GET", ta.URL+path, adminKey, nil).must(t, http.StatusOK)
		// A profile is gzipped protocol buffers.
		zr, err := gzip.NewReader(bytes.NewReader([]byte(r.Raw)))
		if err != nil {
			t.Fatalf("%s: not a gzipped profile: %v (%.100q)", path, err, r.Raw)
		}
		if raw, err := io.ReadAll(zr); err != nil || len(raw) == 0 {
			t.Errorf("%s: profile of %d bytes, %v", path, len(raw), err)
		}
	}
	do(t, "GET", ta.URL+"/debug/pprof/goroutine?debug=1", adminKey, nil).must(t, http.StatusOK)
	do(t, "GET", ta.URL+"/debug/pprof/cmdline", adminKey, nil).must(t, http.StatusOK)

	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/profile?seconds=1", "/debug/pprof/cmdline"} {
		do(t, "GET", ta.URL+path, "", nil).must(t, http.StatusUnauthorized)
		do(t, "GET", ta.URL+path, "wrong-key-0123456789", nil).must(t, http.StatusUnauthorized)
	}
	do(t, "POST", ta.URL+"/debug/pprof/symbol", "", "0x1").must(t, http.StatusUnauthorized)
}
