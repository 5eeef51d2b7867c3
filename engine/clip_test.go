package engine

import (
	"context"
	"testing"
	"time"
)

func TestClipKeepsMarginBeforeCallerDeadline(t *testing.T) {
	if got := clip(context.Background(), time.Second); got != time.Second {
		t.Errorf("no deadline: %v, want the bot's timeout", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if got := clip(ctx, 5*time.Second); got > 2*time.Second-renderMargin || got < time.Second {
		t.Errorf("2s deadline, 5s timeout: %v, want about %v", got, 2*time.Second-renderMargin)
	}
	if got := clip(ctx, 100*time.Millisecond); got != 100*time.Millisecond {
		t.Errorf("short timeout clipped to %v", got)
	}
	tight, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if got := clip(tight, time.Second); got != minHandlerTime {
		t.Errorf("deadline inside the margin: %v, want the minimum %v", got, minHandlerTime)
	}
}
