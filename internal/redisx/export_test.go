package redisx

// PendingCalls is how many calls wait for b's next batch, for tests.
func PendingCalls(b *Batcher) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pending)
}
