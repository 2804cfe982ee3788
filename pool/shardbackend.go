package pool

// shardBackend is one backend's part in one shard: its counters (atomics,
// read by reconcile and the admin views), the ring of idle connections and
// the set of all its connections in that shard. The ring and set are
// Loop-only.
type shardBackend struct {
	backend *Backend
	shard   int
	Counters

	ring  Conn               // sentinel of the circular idle list; most recently idle first
	idleN int                // connections in the ring (Loop-only mirror of Counters.Idle)
	conns map[*Conn]struct{} // every enrolled connection of this backend in the shard, any state
}

func newShardBackend(b *Backend, shard int) *shardBackend {
	s := &shardBackend{backend: b, shard: shard, conns: make(map[*Conn]struct{})}
	s.ring.prev, s.ring.next = &s.ring, &s.ring
	return s
}

// pushIdle puts c at the front of the ring: leases take the most recently
// used connection (LIFO, like PgBouncer), so a surplus ages at the back
// and IdleTimeout can retire it.
func (s *shardBackend) pushIdle(c *Conn) {
	c.prev, c.next = &s.ring, s.ring.next
	s.ring.next.prev = c
	s.ring.next = c
	s.idleN++
}

// popIdle takes the front connection; the ring must not be empty.
func (s *shardBackend) popIdle() *Conn {
	c := s.ring.next
	s.unlink(c)
	return c
}

// unlink removes c from the ring if it is in it. O(1).
func (s *shardBackend) unlink(c *Conn) {
	if c.next == nil {
		return
	}
	c.prev.next, c.next.prev = c.next, c.prev
	c.prev, c.next = nil, nil
	s.idleN--
}

// eachIdle visits the ring from least to most recently used.
func (s *shardBackend) eachIdle(fn func(*Conn)) {
	for c := s.ring.prev; c != &s.ring; {
		prev := c.prev
		fn(c)
		c = prev
	}
}

// closeIdle closes the idle connections pick selects, least recently used
// first, and returns how many. (A closing connection has left the ring.)
func (s *shardBackend) closeIdle(pick func(*Conn) bool) int {
	n := 0
	s.eachIdle(func(c *Conn) {
		if pick(c) {
			c.close()
			n++
		}
	})
	return n
}
