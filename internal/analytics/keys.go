package analytics

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"
)

// Step is the width of a time bucket: minute, hour or day. Buckets are
// aligned to UTC.
type Step string

// Steps, finest first.
const (
	Minute Step = "minute"
	Hour   Step = "hour"
	Day    Step = "day"
)

var steps = []Step{Minute, Hour, Day}

// ParseStep reads "minute", "hour" or "day" (also "m", "h", "d").
func ParseStep(s string) (Step, error) {
	switch s {
	case "minute", "m", "1m":
		return Minute, nil
	case "hour", "h", "1h":
		return Hour, nil
	case "day", "d", "1d":
		return Day, nil
	}
	return "", fmt.Errorf("step must be minute, hour or day, not %q", s)
}

// Duration is the bucket width.
func (s Step) Duration() time.Duration {
	switch s {
	case Minute:
		return time.Minute
	case Hour:
		return time.Hour
	}
	return 24 * time.Hour
}

// Floor is the start of the bucket holding t.
func (s Step) Floor(t time.Time) time.Time { return t.UTC().Truncate(s.Duration()) }

// Ceil is the end of the bucket holding t, or t itself when t starts a bucket.
func (s Step) Ceil(t time.Time) time.Time {
	f := s.Floor(t)
	if f.Equal(t) {
		return f
	}
	return f.Add(s.Duration())
}

// stamp names the bucket starting at t in keys: 202611251407, 2026112514, 20261125.
func (s Step) stamp(t time.Time) string {
	t = t.UTC()
	switch s {
	case Minute:
		return t.Format("200601021504")
	case Hour:
		return t.Format("2006010215")
	}
	return t.Format("20060102")
}

func (s Step) code() string { return string(s[:1]) }

// keys names every Redis key analytics uses. Bucket, fallback and index
// keys carry no hash tag, so one bot's data spreads over a cluster. The
// unique-user HyperLogLogs of a bot share the tag {bot} because one
// PFCOUNT unions them. Users and conversations are split in 16 shards per
// bot, each with its own tag ({bot:u3}, {bot:c3}), so that one script call
// per shard writes all of a flush's users or transcripts of that shard.
type keys struct{ prefix string }

// shards is the number of user and conversation shards per bot.
const shards = 16

// shardOf names the shard of a user or conversation id in its keys.
func shardOf(id string) string {
	return shardNames[shardNum(id)]
}

// shardNum picks the shard of a user or conversation id (FNV-1a).
func shardNum(id string) int {
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= 16777619
	}
	return int(h % shards)
}

// shardNames are the shards' names in keys: hexadecimal digits.
var shardNames = func() (names [shards]string) {
	for i := range names {
		names[i] = strconv.FormatUint(uint64(i), 16)
	}
	return names
}()

// counters is the hash of a bucket's totals.
func (k keys) counters(bot string, s Step, start time.Time) string {
	return k.prefix + "an:" + bot + ":" + s.code() + ":" + s.stamp(start)
}

// cube is the hash of a bucket's counts by channel, intent, source and outcome.
func (k keys) cube(bot string, s Step, start time.Time) string {
	return k.counters(bot, s, start) + ":x"
}

// users is the HyperLogLog of a bucket's users, of one channel when channel is set.
func (k keys) users(bot string, s Step, start time.Time, channel string) string {
	key := k.prefix + "an:{" + bot + "}:u:" + s.code() + ":" + s.stamp(start)
	if channel != "" {
		key += ":" + channel
	}
	return key
}

// fallbacks is the sorted set of one day's unmatched utterances by count.
func (k keys) fallbacks(bot string, day time.Time) string {
	return k.prefix + "an:" + bot + ":fb:" + Day.stamp(day)
}

// conversationShard is the hash-tagged start of the keys of a conversation's shard.
func (k keys) conversationShard(bot, conversation string) string {
	return k.prefix + "an:{" + bot + ":c" + shardOf(conversation) + "}:"
}

// transcript is the list of a conversation's recorded turns, oldest first.
func (k keys) transcript(bot, conversation string) string {
	return k.conversationShard(bot, conversation) + "tr:" + conversation
}

// conversation is the hash describing a recorded conversation.
func (k keys) conversation(bot, conversation string) string {
	return k.conversationShard(bot, conversation) + "cv:" + conversation
}

// conversationIndex is the sorted set of conversations active on a day,
// scored by their last turn (Unix milliseconds).
func (k keys) conversationIndex(bot string, day time.Time) string {
	return k.prefix + "an:" + bot + ":cl:" + Day.stamp(day)
}

// settings is the hash of a bot's analytics settings.
func (k keys) settings(bot string) string { return k.prefix + "an:" + bot + ":settings" }

// botPrefixes are the prefixes of every analytics key of bot: untagged
// buckets, fallbacks, conversation indexes and settings ("an:bot:"), the
// unique-user estimates and scratch keys ("an:{bot}:"), and the user and
// conversation shards ("an:{bot:"). A bot name holds no ":", "{" or "}", so
// no other bot's key starts with one of them.
func (k keys) botPrefixes(bot string) []string {
	return []string{k.prefix + "an:" + bot + ":", k.prefix + "an:{" + bot + "}:", k.prefix + "an:{" + bot + ":"}
}

// userKeys are one user's keys, all in the user's shard. They hold a hash
// of the user id, never the id.
type userKeys struct {
	shard                                  string // the hash-tagged start of the shard's keys
	info, conversations, fallbacks, erased string
}

func (k keys) user(bot, user string) userKeys {
	h := userHash(bot, user)
	base := k.prefix + "an:{" + bot + ":u" + shardOf(h) + "}:"
	return userKeys{shard: base, info: base + "user:" + h, conversations: base + "convs:" + h,
		fallbacks: base + "fb:" + h, erased: base + "erased:" + h}
}

func (u userKeys) list() []string { return []string{u.info, u.conversations, u.fallbacks, u.erased} }

// userHash is a stable pseudonym of a user of a bot.
func userHash(bot, user string) string {
	sum := sha256.Sum256([]byte(bot + "\x00" + user))
	return hex.EncodeToString(sum[:16])
}
