package convtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley/internal/egress"
	"github.com/parleyhq/parley/sandbox"
)

// testEnv is what one test controls while its turns run: the handlers'
// clock and the answers of their http module. It travels in the turn's
// context, through the engine and the sandbox, to the hooks below, so that
// no other turn can see it.
type testEnv struct {
	now   time.Time // zero: the real time
	mocks []*HTTPMock

	mu       sync.Mutex
	unmocked []string // requests no mock answered, this turn
}

type envKey struct{}

func withEnv(ctx context.Context, env *testEnv) context.Context {
	return context.WithValue(ctx, envKey{}, env)
}

func envOf(ctx context.Context) *testEnv {
	env, _ := ctx.Value(envKey{}).(*testEnv)
	return env
}

// takeUnmocked returns and clears the requests no mock answered.
func (env *testEnv) takeUnmocked() []string {
	env.mu.Lock()
	defer env.mu.Unlock()
	unmocked := env.unmocked
	env.unmocked = nil
	return unmocked
}

// clock is the handlers' clock: the test's frozen time, or the real one.
type clock struct{}

func (clock) Now(ctx context.Context) time.Time {
	if env := envOf(ctx); env != nil && !env.now.IsZero() {
		return env.now
	}
	return time.Now()
}

// mockHTTP answers the http module from the test's mocks. A request the
// bot's allow-list refuses fails as it would in production; an allowed one
// that no mock answers fails too, and is reported as a test failure.
type mockHTTP struct{}

var _ sandbox.HTTPClient = mockHTTP{}

func (mockHTTP) Do(ctx context.Context, req *sandbox.HTTPRequest) (*sandbox.HTTPResponse, error) {
	if err := egress.CheckURL(req.Allow, req.URL); err != nil {
		return nil, err
	}
	env := envOf(ctx)
	if env == nil {
		return nil, fmt.Errorf("no mock for %s %s", req.Method, req.URL)
	}
	for _, m := range env.mocks {
		if m.Method != req.Method || m.URL != req.URL {
			continue
		}
		resp := &sandbox.HTTPResponse{Status: m.Status, Header: make(map[string]string, len(m.Headers)), Body: []byte(m.Body)}
		size := len(resp.Body)
		for k, v := range m.Headers {
			resp.Header[strings.ToLower(k)] = v
			size += len(k) + len(v)
		}
		if req.MaxResponseBytes > 0 && size > req.MaxResponseBytes {
			return nil, fmt.Errorf("response is larger than %d bytes (headers included)", req.MaxResponseBytes)
		}
		return resp, nil
	}
	env.mu.Lock()
	env.unmocked = append(env.unmocked, req.Method+" "+req.URL)
	env.mu.Unlock()
	return nil, fmt.Errorf("no mock for %s %s (parley test answers only the requests a test mocks)", req.Method, req.URL)
}

// sendCapture is the transport of the channels that send replies through
// their platform's API: it reads what they send and answers like a
// platform that accepted it. Nothing leaves the process.
type sendCapture struct{}

// acceptedBody is the answer of every platform call: enough for each
// adapter to take it as a success.
const acceptedBody = `{"ok":true,"result":{"message_id":1},"message_id":"1","messages":[{"id":"1"}],"sid":"SM1","id":"1"}`

func (sendCapture) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, err := io.Copy(io.Discard, req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	return &http.Response{
		StatusCode:    http.StatusOK,
		Status:        "200 OK",
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(bytes.NewReader([]byte(acceptedBody))),
		ContentLength: int64(len(acceptedBody)),
		Request:       req,
	}, nil
}
