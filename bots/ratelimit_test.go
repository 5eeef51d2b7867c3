package bots

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/rate"
)

func TestRateLimitSettings(t *testing.T) {
	if lim := (Settings{}).RateLimits(); !lim.Bot.IsZero() || !lim.Conversation.IsZero() {
		t.Errorf("default rate limits %+v; want none", lim)
	}
	s := Settings{RateLimitPerBot: "6000/m", RateLimitPerUser: "2/s"}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	want := rate.Limits{Bot: rate.Rate{Count: 6000, Period: time.Minute},
		Conversation: rate.Rate{Count: 2, Period: time.Second}}
	if got := s.RateLimits(); got != want {
		t.Errorf("RateLimits() = %+v; want %+v", got, want)
	}
	for _, bad := range []struct {
		s    Settings
		want string
	}{
		{Settings{RateLimitPerBot: "100"}, `rate_limit_per_bot: rate "100" must be a count per unit`},
		{Settings{RateLimitPerUser: "0/s"}, `rate_limit_per_user: rate "0/s": the count must be a whole number`},
		{Settings{RateLimitPerUser: "5/week"}, `rate_limit_per_user: rate "5/week" must be a count per unit`},
	} {
		err := bad.s.Validate()
		var ve *ValidationError
		if !errors.As(err, &ve) || !strings.HasPrefix(ve.Msg, bad.want) {
			t.Errorf("%+v: %v; want a validation error starting %q", bad.s, err, bad.want)
		}
	}
}
