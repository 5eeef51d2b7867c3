package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/internal/apierr"
	"github.com/parleyhq/parley/msg"
	"github.com/redis/go-redis/v9"
)

// ErrDeadLetterNotFound is returned for an unknown dead letter id.
var ErrDeadLetterNotFound error = &apierr.Error{Status: http.StatusNotFound, Code: "dead_letter_not_found",
	Message: "unknown dead letter", Err: errors.New("dead letter not found")}

// DeadLetter is an event whose turn or reply failed for good.
type DeadLetter struct {
	// ID identifies the dead letter within its bot.
	ID string `json:"id"`
	// Event is the event as it was enqueued.
	Event *msg.Event `json:"event"`
	// Stage is "turn" or "send": what failed.
	Stage string `json:"stage"`
	// Error is the last failure.
	Error string `json:"error"`
	// Attempts is how often it was tried.
	Attempts int `json:"attempts"`
	// FailedAt is when it was given up.
	FailedAt time.Time `json:"failed_at"`
}

func (q *Queue) deadLetter(ctx context.Context, ev *msg.Event, stage string, attempts int, cause error) error {
	raw, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	return q.rdb.XAdd(ctx, &redis.XAddArgs{
		Stream: q.deadKey(ev.Bot),
		MaxLen: q.cfg.DeadLetterMax,
		Approx: true,
		Values: []any{"event", raw, "stage", stage, "error", cause.Error(),
			"attempts", attempts, "failed_at", time.Now().UTC().Format(time.RFC3339Nano)},
	}).Err()
}

// DeadLetters lists up to limit of a bot's dead letters, oldest first.
func (q *Queue) DeadLetters(ctx context.Context, bot string, limit int64) ([]DeadLetter, error) {
	msgs, err := q.rdb.XRangeN(ctx, q.deadKey(bot), "-", "+", limit).Result()
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	out := make([]DeadLetter, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, decodeDeadLetter(m))
	}
	return out, nil
}

func decodeDeadLetter(m redis.XMessage) DeadLetter {
	str := func(k string) string { s, _ := m.Values[k].(string); return s }
	d := DeadLetter{ID: m.ID, Stage: str("stage"), Error: str("error")}
	d.Attempts, _ = strconv.Atoi(str("attempts"))
	d.FailedAt, _ = time.Parse(time.RFC3339Nano, str("failed_at"))
	ev := &msg.Event{}
	if json.Unmarshal([]byte(str("event")), ev) == nil {
		d.Event = ev
	}
	return d
}

func (q *Queue) deadLetterByID(ctx context.Context, bot, id string) (DeadLetter, error) {
	msgs, err := q.rdb.XRangeN(ctx, q.deadKey(bot), id, id, 1).Result()
	if err != nil {
		if isBadID(err) {
			return DeadLetter{}, ErrDeadLetterNotFound
		}
		return DeadLetter{}, fmt.Errorf("read dead letter: %w", err)
	}
	if len(msgs) == 0 {
		return DeadLetter{}, ErrDeadLetterNotFound
	}
	return decodeDeadLetter(msgs[0]), nil
}

// Replay enqueues a dead letter's event again (bypassing the delivery
// de-duplication) and removes the dead letter.
func (q *Queue) Replay(ctx context.Context, bot, id string) error {
	d, err := q.deadLetterByID(ctx, bot, id)
	if err != nil {
		return err
	}
	if d.Event == nil {
		return fmt.Errorf("dead letter %s has no readable event", id)
	}
	d.Event.Received = time.Now().UTC() // received again, by this replay
	if _, err := q.enqueue(ctx, d.Event, 0); err != nil {
		return err
	}
	return q.rdb.XDel(ctx, q.deadKey(bot), id).Err()
}

// DeleteDeadLetter removes a dead letter.
func (q *Queue) DeleteDeadLetter(ctx context.Context, bot, id string) error {
	n, err := q.rdb.XDel(ctx, q.deadKey(bot), id).Result()
	if err != nil {
		if isBadID(err) {
			return ErrDeadLetterNotFound
		}
		return fmt.Errorf("delete dead letter: %w", err)
	}
	if n == 0 {
		return ErrDeadLetterNotFound
	}
	return nil
}

// isBadID reports Redis refusing a malformed stream id.
func isBadID(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && !errors.Is(err, redis.Nil) &&
		strings.Contains(strings.ToLower(re.Error()), "invalid stream id")
}
