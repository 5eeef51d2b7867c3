package bots

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/parleyhq/parley/intents/nlu"
)

// Training a bot's classifier: at once for small data (in the caller's
// context), in the background for large data, under a context the Catalog
// owns and ends on Close.

// train trains and serializes a model, within NLUTrainTimeout.
func (c *Catalog) train(ctx context.Context, bot string, n NLU) (*nlu.Model, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.NLUTrainTimeout)
	defer cancel()
	if c.cfg.OnTrainStart != nil {
		c.cfg.OnTrainStart(ctx, bot, n.Examples())
	}
	start := time.Now()
	m, err := nlu.Train(ctx, n, nlu.Options{})
	var raw []byte
	if err == nil {
		raw, err = m.MarshalBinary()
	}
	if c.cfg.OnTrain != nil {
		c.cfg.OnTrain(bot, n.Examples(), time.Since(start), err)
	}
	if err != nil {
		if errors.Is(err, nlu.ErrNoData) {
			return nil, nil, nil
		}
		return nil, nil, fmt.Errorf("train nlu of %s: %w", bot, err)
	}
	c.log.Info("trained classifier", "bot", bot, "examples", n.Examples(), "took", time.Since(start),
		"model_bytes", len(raw))
	return m, raw, nil
}

// trainInBackground trains a model for data with checksum sum and stores it
// unless the data has changed by then. A newer upload to this replica
// cancels an older training of the same bot. The training outlives the
// request that started it: it runs under the Catalog's trainers, bounded by
// NLUTrainTimeout and cancelled by Close.
func (c *Catalog) trainInBackground(bot string, n NLU, sum string) {
	started := c.trainers.start(bot, func(ctx context.Context) {
		m, raw, err := c.train(ctx, bot, n)
		if err != nil || m == nil {
			if err != nil && ctx.Err() == nil {
				c.log.Error("background training failed; the previous model keeps serving", "bot", bot, "err", err)
			}
			return
		}
		if err := c.storeModel(ctx, bot, sum, m, raw); err != nil && ctx.Err() == nil {
			c.log.Error("store trained model", "bot", bot, "err", err)
		}
	})
	if !started {
		c.log.Info("closing: training left to the replica that loads the bot next", "bot", bot)
	}
}

// trainers runs the background trainings of one Catalog, at most one per
// bot, under a context that close cancels, and waits for them on close.
type trainers struct {
	ctx  context.Context // ends on close
	stop context.CancelFunc
	wg   sync.WaitGroup // the running trainings

	mu      sync.Mutex
	running map[string]*training // by bot
	closed  bool
}

// training is one background training.
type training struct{ cancel context.CancelFunc }

func newTrainers() *trainers {
	ctx, stop := context.WithCancel(context.Background())
	return &trainers{ctx: ctx, stop: stop, running: make(map[string]*training)}
}

// start runs fn in a goroutine as bot's training, cancelling the bot's
// earlier one. It reports false, and runs nothing, once closed.
func (t *trainers) start(bot string, fn func(ctx context.Context)) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	ctx, cancel := context.WithCancel(t.ctx)
	tr := &training{cancel: cancel}
	if prev := t.running[bot]; prev != nil {
		prev.cancel()
	}
	t.running[bot] = tr
	t.wg.Go(func() {
		defer t.done(bot, tr)
		fn(ctx)
	})
	return true
}

// done ends tr, bot's training.
func (t *trainers) done(bot string, tr *training) {
	tr.cancel()
	t.mu.Lock()
	if t.running[bot] == tr {
		delete(t.running, bot)
	}
	t.mu.Unlock()
}

// cancel cancels bot's training, if one runs.
func (t *trainers) cancel(bot string) {
	t.mu.Lock()
	if tr := t.running[bot]; tr != nil {
		tr.cancel()
	}
	t.mu.Unlock()
}

// busy reports whether bot has a training running.
func (t *trainers) busy(bot string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.running[bot] != nil
}

// close cancels every training, refuses new ones and waits for the running
// ones to return.
func (t *trainers) close() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.stop()
	t.wg.Wait()
}
