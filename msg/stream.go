package msg

import "context"

// Stream receives the text of a turn's reply while a handler is still
// writing it (a model's answer, as the model generates it), so that a
// channel can show it at once. The reply the handler returns is the final
// one; what was streamed is a preview of it.
type Stream interface {
	// Write adds text to what was streamed so far. It is called on the
	// handler's goroutine and must not block: a stream that sends over the
	// network does so on a goroutine of its own.
	Write(text string)
}

type streamKey struct{}

// WithStream returns ctx carrying s, the stream of the turn run under ctx.
func WithStream(ctx context.Context, s Stream) context.Context {
	return context.WithValue(ctx, streamKey{}, s)
}

// StreamOf returns the stream ctx carries, or nil.
func StreamOf(ctx context.Context) Stream {
	if ctx == nil {
		return nil
	}
	s, _ := ctx.Value(streamKey{}).(Stream)
	return s
}
