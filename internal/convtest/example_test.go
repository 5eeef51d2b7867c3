package convtest

import (
	"bytes"
	"context"
	"testing"
)

// TestExampleBot runs the example bot's tests, which must pass.
func TestExampleBot(t *testing.T) {
	s, err := Load("../../examples/pizzabot", LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t)
	r, err := h.Run(context.Background(), s, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := WriteText(&out, r, true); err != nil {
		t.Fatal(err)
	}
	if r.Failed != 0 || r.Passed != s.Tests() || r.Passed < 5 {
		t.Errorf("%d passed, %d failed of %d:\n%s", r.Passed, r.Failed, s.Tests(), out.String())
	}
	t.Log("\n" + out.String())
}

func newHarness(t *testing.T) *Harness {
	t.Helper()
	h, err := NewHarness(context.Background(), HarnessOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("close harness: %v", err)
		}
	})
	return h
}
