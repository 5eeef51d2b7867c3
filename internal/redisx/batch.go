package redisx

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parleyhq/parley/internal/tracing"
)

// Batcher sends the commands of concurrent callers to Redis together: what
// callers queue while a round trip is under way leaves in the next one, as
// one pipeline. A turn's round trip is two system calls in Parley and two
// in Redis (a write and a read each side); under load, a batch of n turns
// pays them once instead of n times, on both sides. A lone caller waits
// for nothing: its commands leave at once.
//
// Callers always wait for their commands' answers (bounded by their
// context's deadline, or the client's timeouts), so that a caller never
// returns while a command it sent may still change something. Commands
// whose context has ended before their batch leaves are not sent; those
// whose caller left while they ran fail with the context's error, as a
// lost answer does. While tracing is on, commands go alone, under
// their caller's context, so that each Redis span has its turn as parent.
//
// The zero Batcher is not usable; create one with [NewBatcher]. It holds
// no goroutine while idle and needs no closing.
type Batcher struct {
	rdb   redis.UniversalClient
	calls sync.Pool       // *batchCall
	pipes sync.Pool       // redis.Pipeliner, for callers to queue on
	out   redis.Pipeliner // the worker's, reused

	mu      sync.Mutex
	pending []*batchCall
	spare   []*batchCall
	running bool
}

// batchCall is one caller's commands and the signal that they are
// answered, reused from call to call.
type batchCall struct {
	ctx  context.Context
	cmds []redis.Cmder
	done chan struct{} // one value when answered
}

// maxBatch bounds the commands of one pipeline; the rest wait for the next.
const maxBatch = 512

// NewBatcher returns a Batcher over rdb.
func NewBatcher(rdb redis.UniversalClient) *Batcher {
	b := &Batcher{rdb: rdb}
	b.calls.New = func() any { return &batchCall{done: make(chan struct{}, 1)} }
	b.pipes.New = func() any { return rdb.Pipeline() }
	return b
}

// Client is the client the batcher sends through.
func (b *Batcher) Client() redis.UniversalClient { return b.rdb }

// Pipelined runs fn on a pipeline and sends what it queued in the next
// batch. It returns the first failed command's error, like
// [redis.Pipeliner.Exec] (redis.Nil included); every command holds its own
// answer.
func (b *Batcher) Pipelined(ctx context.Context, fn func(redis.Pipeliner)) error {
	p := b.pipes.Get().(redis.Pipeliner)
	fn(p)
	err := b.Do(ctx, p.Cmds()...)
	p.Discard()
	b.pipes.Put(p)
	return err
}

// Do sends cmds in the next batch and waits for their answers. It returns
// the first failed command's error.
func (b *Batcher) Do(ctx context.Context, cmds ...redis.Cmder) error {
	if len(cmds) == 0 {
		return nil
	}
	if tracing.Enabled() {
		_, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, c := range cmds {
				_ = p.Process(ctx, c) // queues; the answer is the command's
			}
			return nil
		})
		return err
	}
	c := b.calls.Get().(*batchCall)
	c.ctx, c.cmds = ctx, cmds
	b.mu.Lock()
	b.pending = append(b.pending, c)
	start := !b.running
	b.running = true
	b.mu.Unlock()
	if start {
		go b.work()
	}
	<-c.done
	c.ctx, c.cmds = nil, nil
	b.calls.Put(c)
	if err := ctx.Err(); err != nil {
		// The caller left: as when an answer is lost on the way, it cannot
		// know what its commands did.
		for _, cmd := range cmds {
			if cmd.Err() == nil {
				cmd.SetErr(err)
			}
		}
	}
	return firstErr(cmds)
}

// work sends batches until none is waiting.
func (b *Batcher) work() {
	for {
		b.mu.Lock()
		batch := b.pending
		if len(batch) == 0 {
			b.running = false
			b.mu.Unlock()
			return
		}
		n, size := 0, 0
		for n < len(batch) && (n == 0 || size+len(batch[n].cmds) <= maxBatch) {
			size += len(batch[n].cmds)
			n++
		}
		// The calls not taken stay pending; the slice taken is handed back
		// as spare storage once sent.
		rest := append(b.spare[:0], batch[n:]...)
		b.pending, b.spare = rest, nil
		b.mu.Unlock()

		b.send(batch[:n])
		for _, c := range batch[:n] {
			c.done <- struct{}{}
		}
		clear(batch)
		b.mu.Lock()
		if b.spare == nil {
			b.spare = batch[:0]
		}
		b.mu.Unlock()
	}
}

// send runs one batch as a pipeline: a lone call under its caller's
// context (its deadline, and what hooks read of it, such as the request id
// of the log), several under the latest deadline of their callers (none
// when one of them has none: then the client's timeouts bound it).
func (b *Batcher) send(batch []*batchCall) {
	var deadline time.Time
	unbounded := false
	if b.out == nil {
		b.out = b.rdb.Pipeline()
	}
	p := b.out
	for _, c := range batch {
		if err := c.ctx.Err(); err != nil {
			for _, cmd := range c.cmds {
				cmd.SetErr(err)
			}
			continue
		}
		if d, ok := c.ctx.Deadline(); !ok {
			unbounded = true
		} else if d.After(deadline) {
			deadline = d
		}
		for _, cmd := range c.cmds {
			_ = p.Process(c.ctx, cmd) // queues; the answer is the command's
		}
	}
	if p.Len() == 0 {
		return
	}
	ctx := context.Background()
	if len(batch) == 1 {
		ctx = batch[0].ctx
	} else if !unbounded {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	_, _ = p.Exec(ctx) // every command holds its answer or error
}

// firstErr is the first error among cmds' answers.
func firstErr(cmds []redis.Cmder) error {
	for _, c := range cmds {
		if err := c.Err(); err != nil {
			return err
		}
	}
	return nil
}

// Do runs the script through b with EVALSHA and, when Redis answers
// NOSCRIPT, alone with EVAL.
func (s *Script) Do(ctx context.Context, b *Batcher, keys []string, args ...any) *redis.Cmd {
	cmdArgs := make([]any, 0, 3+len(keys)+len(args))
	cmdArgs = append(cmdArgs, "evalsha", s.Hash(), len(keys))
	for _, k := range keys {
		cmdArgs = append(cmdArgs, k)
	}
	cmdArgs = append(cmdArgs, args...)
	cmd := redis.NewCmd(ctx, cmdArgs...)
	if len(keys) > 0 {
		cmd.SetFirstKeyPos(3)
	}
	if err := b.Do(ctx, cmd); IsNoScript(err) {
		return s.rs.Eval(ctx, b.rdb, keys, args...)
	}
	return cmd
}
