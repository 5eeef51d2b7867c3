package queue

import (
	"context"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/msg"
)

// runStreamed is runTurn with the turn's reply stream, when the event's
// channel can show a reply while it is written ([channels.Streamer]). The
// stream is returned for the send; a turn that failed stops it, leaving
// what it showed.
func (q *Queue) runStreamed(ctx context.Context, ev *msg.Event, tried int) (*msg.TurnResult, channels.ReplyStream, int, error) {
	rs := q.openStream(ctx, ev)
	runCtx := ctx
	if rs != nil {
		runCtx = msg.WithStream(ctx, rs)
	}
	res, attempts, err := q.runTurn(runCtx, ev, tried)
	if err != nil {
		stopStream(ctx, rs)
		return nil, nil, attempts, err
	}
	return res, rs, attempts, nil
}

// openStream opens the reply stream of ev's turn, or returns nil.
func (q *Queue) openStream(ctx context.Context, ev *msg.Event) channels.ReplyStream {
	sender, ok := q.cfg.Sender(ev.Channel)
	if !ok {
		return nil
	}
	st, ok := sender.(channels.Streamer)
	if !ok {
		return nil
	}
	settings, err := q.cfg.Settings(ctx, ev.Bot, ev.Channel)
	if err != nil {
		return nil
	}
	return st.Stream(ctx, settings, ev)
}

// stopStream ends a stream whose turn has no result to show.
func stopStream(ctx context.Context, rs channels.ReplyStream) {
	if rs != nil {
		_, _ = rs.Finish(ctx, nil)
	}
}

// finishOrSend delivers res: through its stream when the stream delivers
// it, else with the adapter's Send.
func finishOrSend(ctx context.Context, sender channels.Sender, s channels.Settings, res *msg.TurnResult,
	rs channels.ReplyStream) error {
	if rs != nil {
		sent, err := rs.Finish(ctx, res)
		if sent || err != nil {
			return err
		}
	}
	return sender.Send(ctx, s, res)
}
