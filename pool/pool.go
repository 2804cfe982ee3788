package pool

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Config sizes a Pool.
type Config struct {
	Shards          int   // one per server event loop
	MaxFrameBytes   int64 // a backend frame above this is a protocol error (default MaxMessageBytes)
	MaxMessageBytes int64 // a backend message above this is a protocol error (default 1 MiB)
	// QueueLimit caps bytes queued toward a backend connection the pool
	// holds (idle, releasing): a backend that pings and never reads its
	// pongs is closed past it (default 256 KiB). While leased, the relay's
	// flow control bounds the queue.
	QueueLimit int
}

// Pool is the set of backends and one ShardPool per event loop.
type Pool struct {
	cfg      Config
	shards   []*ShardPool
	backends atomic.Pointer[[]*Backend] // configured backends, and removed ones until their connections are gone
	// mu serialises the writers of the backend list (SetBackends, Prune:
	// the configuration applier and the reconcile workers), never readers.
	mu        sync.Mutex
	byURL     map[string]*Backend                 // the backends in the list, by URL; guarded by mu
	nextID    int                                 // guarded by mu
	balancers atomic.Pointer[map[string]Balancer] // per group; a group not in it uses LeastLeased
	epoch     time.Time                           // the shards' precise clocks count from here
}

// New returns a pool with cfg.Shards shards, none attached to a loop yet.
func New(cfg Config) *Pool {
	if cfg.QueueLimit <= 0 {
		cfg.QueueLimit = 256 << 10
	}
	// A backend is a peer like any client: its frames always have a limit.
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if cfg.MaxFrameBytes <= 0 || cfg.MaxFrameBytes > cfg.MaxMessageBytes {
		cfg.MaxFrameBytes = cfg.MaxMessageBytes
	}
	p := &Pool{cfg: cfg, byURL: make(map[string]*Backend), epoch: time.Now()}
	for i := 0; i < cfg.Shards; i++ {
		p.shards = append(p.shards, newShardPool(p, i))
	}
	empty := []*Backend{}
	p.backends.Store(&empty)
	return p
}

// Shards returns every shard's pool. Safe for concurrent use.
func (p *Pool) Shards() []*ShardPool { return p.shards }

// Shard returns shard i's pool. Safe for concurrent use.
func (p *Pool) Shard(i int) *ShardPool { return p.shards[i] }

// SetBalancers installs the balancing policy of each group (a group left
// out uses LeastLeased). Safe for concurrent use.
func (p *Pool) SetBalancers(m map[string]Balancer) { p.balancers.Store(&m) }

func (p *Pool) balancer(group string) Balancer {
	if m := p.balancers.Load(); m != nil {
		if b, ok := (*m)[group]; ok {
			return b
		}
	}
	return LeastLeased{}
}

// DefaultMaxMessageBytes is the backend message limit when Config gives none.
const DefaultMaxMessageBytes = 1 << 20

// Backends returns the configured backends, and removed ones (see
// Backend.Removed) until their last connection is gone, in the order they
// were added. Safe for concurrent use; do not modify.
func (p *Pool) Backends() []*Backend { return *p.backends.Load() }

// SetBackends makes list the configured backends: new URLs are added,
// known ones get their new settings, and the ones left out are marked
// removed (no new leases; their connections close as sessions end).
// Every entry must already be Normalize'd. Call it from one goroutine at a
// time (the configuration applier); readers are never blocked.
func (p *Pool) SetBackends(list []Settings) error {
	seen := make(map[string]bool, len(list))
	for i := range list {
		s := list[i]
		if seen[s.URL] {
			return fmt.Errorf("%w: duplicate backend %s", ErrSettings, s.URL)
		}
		seen[s.URL] = true
		if _, err := parseBackendURL(s.URL); err != nil {
			return fmt.Errorf("%w: url %q: %v", ErrSettings, s.URL, err)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	all := append([]*Backend(nil), p.Backends()...)
	for i := range list {
		s := list[i]
		if b, ok := p.byURL[s.URL]; ok {
			b.SetSettings(&s)
			b.removed.Store(false)
			continue
		}
		a, _ := parseBackendURL(s.URL)
		b := &Backend{ID: p.nextID, Addr: a.addr, Host: a.host, URI: a.uri, TLS: a.tls, ServerName: a.serverName}
		p.nextID++
		b.SetSettings(&s)
		b.healthy.Store(true) // optimistic until a dial says otherwise
		b.backoff = newDialBackoff()
		for j := range p.shards {
			b.shards = append(b.shards, newShardBackend(b, j))
		}
		p.byURL[s.URL] = b
		all = append(all, b)
	}
	now := time.Now().UnixNano()
	for url, b := range p.byURL {
		if !seen[url] {
			b.removed.Store(true)
		}
		leaving := b.removed.Load() || b.Settings().Draining
		switch {
		case leaving && b.leavingSince.Load() == 0:
			b.leavingSince.Store(now)
		case !leaving:
			b.leavingSince.Store(0)
		}
	}
	p.backends.Store(&all)
	p.pruneLocked()
	for _, sh := range p.shards {
		sh.Signal()
	}
	return nil
}

// Prune drops removed backends whose last connection is gone: from the
// list every upgrade and sweep reads, the metrics and the views. Safe for
// concurrent use; not on a loop (it may wait for the configuration
// applier).
func (p *Pool) Prune() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pruneLocked()
}

func (p *Pool) pruneLocked() {
	cur := p.Backends()
	kept := make([]*Backend, 0, len(cur))
	for _, b := range cur {
		// Total counts every connection in any state, dials included; a
		// removed backend is never dialed again, so zero stays zero.
		if b.removed.Load() && b.Total.Load() == 0 {
			delete(p.byURL, b.Settings().URL)
			continue
		}
		kept = append(kept, b)
	}
	if len(kept) != len(cur) {
		p.backends.Store(&kept)
	}
}

// Share is shard i's part of a backend-wide number n split over shards.
func Share(n, shards, i int) int {
	q, r := n/shards, n%shards
	if i < r {
		return q + 1
	}
	return q
}
