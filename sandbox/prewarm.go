package sandbox

// Prewarm gives key's pool minVMs ready VMs before any call needs one,
// built in the background, with maxVMs as its bound (zero means the
// Runtime's). The reaper keeps them; the bounds of later calls replace
// these. A minVMs of zero does nothing.
func (r *Runtime) Prewarm(key PoolKey, minVMs, maxVMs int) {
	if minVMs <= 0 || r.closed.Load() {
		return
	}
	p, err := r.pool(key)
	if err != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dropped {
		return
	}
	p.setBoundsLocked(minVMs, maxVMs)
	p.lastUsed = r.now()
	p.fillLocked()
}

// IdleVMs is the number of ready VMs in key's pool.
func (r *Runtime) IdleVMs(key PoolKey) int {
	p, ok := r.pools.Load(key)
	if !ok {
		return 0
	}
	pl := p.(*pool)
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return len(pl.idle)
}
