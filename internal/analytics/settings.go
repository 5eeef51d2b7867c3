package analytics

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Limits of [Settings].
const (
	maxTranscriptRetention = 400 * 24 * time.Hour
	maxTranscriptTurns     = 10000
)

// Settings are a bot's own analytics settings; zero fields take the
// server's defaults.
type Settings struct {
	// TranscriptRetention is how long a conversation's transcript is kept
	// after its last turn: a duration such as "72h" or "30d", "0" to keep no
	// transcripts, "" for the server default.
	TranscriptRetention string `json:"transcript_retention,omitempty"`
	// TranscriptMaxTurns bounds a transcript to its latest turns (1 to
	// 10000); 0 means the server default.
	TranscriptMaxTurns int `json:"transcript_max_turns,omitempty"`
}

// Validate checks the fields' syntax and ranges.
func (st Settings) Validate() error {
	if st.TranscriptRetention != "" {
		if _, err := parseRetention(st.TranscriptRetention); err != nil {
			return err
		}
	}
	if st.TranscriptMaxTurns < 0 || st.TranscriptMaxTurns > maxTranscriptTurns {
		return fmt.Errorf("transcript_max_turns must be between 1 and %d", maxTranscriptTurns)
	}
	return nil
}

func parseRetention(s string) (time.Duration, error) {
	if s == "0" || s == "off" {
		return 0, nil
	}
	d, err := ParseDuration(s)
	if err != nil || d <= 0 || d > maxTranscriptRetention {
		return 0, fmt.Errorf("transcript_retention must be a duration up to 400d (like \"72h\" or \"30d\"), or \"0\" for none; got %q", s)
	}
	return d, nil
}

// SettingsView is a bot's settings and the values in effect.
type SettingsView struct {
	// Settings are what the bot set.
	Settings Settings `json:"settings"`
	// Effective are the values in use, defaults filled in.
	Effective Settings `json:"effective"`
}

type resolvedSettings struct {
	retention time.Duration // 0: no transcripts
	maxTurns  int
}

type cachedSettings struct {
	stored   Settings
	resolved resolvedSettings
	fetched  time.Time
}

func (s *Service) resolve(st Settings) resolvedSettings {
	r := resolvedSettings{retention: max(s.cfg.TranscriptRetention, 0), maxTurns: s.cfg.TranscriptMaxTurns}
	if st.TranscriptRetention != "" {
		if d, err := parseRetention(st.TranscriptRetention); err == nil {
			r.retention = d
		}
	}
	if st.TranscriptMaxTurns > 0 {
		r.maxTurns = st.TranscriptMaxTurns
	}
	return r
}

func settingsFrom(h map[string]string) Settings {
	n, _ := strconv.Atoi(h["transcript_max_turns"])
	return Settings{TranscriptRetention: h["transcript_retention"], TranscriptMaxTurns: n}
}

// Settings returns a bot's analytics settings.
func (s *Service) Settings(ctx context.Context, bot string) (*SettingsView, error) {
	h, err := s.rdb.HGetAll(ctx, s.keys.settings(bot)).Result()
	if err != nil {
		return nil, fmt.Errorf("read analytics settings: %w", err)
	}
	st := settingsFrom(h)
	s.remember(bot, st)
	r := s.resolve(st)
	eff := Settings{TranscriptRetention: formatDuration(r.retention), TranscriptMaxTurns: r.maxTurns}
	return &SettingsView{Settings: st, Effective: eff}, nil
}

// PutSettings replaces a bot's analytics settings. Other replicas apply
// them within seconds; a new transcript retention applies to each
// conversation from its next turn on.
func (s *Service) PutSettings(ctx context.Context, bot string, st Settings) error {
	if err := st.Validate(); err != nil {
		return err
	}
	key := s.keys.settings(bot)
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, key)
		if st.TranscriptRetention != "" {
			p.HSet(ctx, key, "transcript_retention", st.TranscriptRetention)
		}
		if st.TranscriptMaxTurns != 0 {
			p.HSet(ctx, key, "transcript_max_turns", st.TranscriptMaxTurns)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save analytics settings: %w", err)
	}
	s.remember(bot, st)
	return nil
}

func (s *Service) remember(bot string, st Settings) {
	s.settingsMu.Lock()
	s.settings[bot] = cachedSettings{stored: st, resolved: s.resolve(st), fetched: time.Now()}
	s.settingsMu.Unlock()
}

// botSettings returns the settings of every bot of turns, reading those not
// cached recently in one round trip. On a read failure it uses what it has.
func (s *Service) botSettings(ctx context.Context, turns []Turn) map[string]resolvedSettings {
	out := make(map[string]resolvedSettings)
	var stale []string
	s.settingsMu.Lock()
	for i := range turns {
		bot := turns[i].Bot
		if _, ok := out[bot]; ok {
			continue
		}
		c, ok := s.settings[bot]
		out[bot] = s.resolve(c.stored)
		if !ok || time.Since(c.fetched) > settingsTTL {
			stale = append(stale, bot)
		}
	}
	s.settingsMu.Unlock()
	if len(stale) == 0 {
		return out
	}
	cmds := make([]*redis.MapStringStringCmd, len(stale))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, bot := range stale {
			cmds[i] = p.HGetAll(ctx, s.keys.settings(bot))
		}
		return nil
	})
	if err != nil {
		return out
	}
	for i, bot := range stale {
		st := settingsFrom(cmds[i].Val())
		s.remember(bot, st)
		out[bot] = s.resolve(st)
	}
	return out
}

// ParseDuration reads a Go duration ("90m", "36h") or a number of days or
// weeks ("30d", "2w").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if num, ok := strings.CutSuffix(s, suffix); ok {
			n, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, fmt.Errorf("bad duration %q", s)
			}
			return time.Duration(n * float64(unit)), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("bad duration %q: want a duration like 90m, 36h, 30d or 2w", s)
	}
	return d, nil
}

// formatDuration writes whole days as "7d" and other durations as Go does;
// 0 is "0".
func formatDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0"
	case d%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}
