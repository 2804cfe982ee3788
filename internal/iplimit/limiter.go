package iplimit

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Config is what a Limiter enforces. Limits are per client address (see
// the package doc for what one address is).
type Config struct {
	MaxConnsPerIP int              // connections one address may hold open at once; 0: no limit
	Rate          float64          // sessions one address may open per second, on average; 0: no limit
	Burst         int              // sessions one address may open at once before Rate paces it; 0: max(1, ceil(Rate))
	MaxEntries    int              // addresses tracked at most; 0: DefaultMaxEntries
	Now           func() time.Time // the clock; nil: time.Now
}

// DefaultMaxEntries bounds the table when Config.MaxEntries is 0. A full
// table of that many takes about 80 MiB, and a Sweep of it about 100ms
// (some 2ms per shard, the longest any lock is held).
const DefaultMaxEntries = 1 << 20

// Reason says how Admit decided: a metric label.
type Reason uint8

const (
	Admitted  Reason = iota // admitted and counted: Release it when it closes
	Untracked               // admitted uncounted: the table is full, or there is no address
	Conns                   // refused: MaxConnsPerIP open already from this address
	Rate                    // refused: the address spent its Burst, and Rate has not refilled it
	numReasons
)

var reasonNames = [numReasons]string{"admitted", "untracked", "conns", "rate"}

func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return fmt.Sprintf("Reason(%d)", uint8(r))
}

// numShards splits the table; each shard has its own lock and counters.
const numShards = 64

// Limiter counts connections and paces sessions per client address. Safe
// for concurrent use. With both limits off it admits everything and
// tracks and counts nothing, and so does a nil *Limiter.
type Limiter struct {
	maxConns    int32            // Config.MaxConnsPerIP; 0: no limit
	interval    int64            // ns between two tokens (1/Rate); 0: no rate limit
	burstWindow int64            // Burst*interval, ns: how far ahead of now an address may have spent
	limiting    bool             // a limit is on: without one, nothing is tracked
	now         func() time.Time // Config.Now
	epoch       time.Time        // the clock's reading at New: entry times are ns since it
	seed        maphash.Seed     // of the shard hash: no client can aim its addresses at one shard
	shards      [numShards]shard
}

// key is the address one entry stands for: an IPv4 address as
// v4-mapped, or an IPv6 /64 with its low 64 bits zero. The two never
// meet. No pointers, so the garbage collector does not scan the table.
type key [16]byte

// entry is one address's state.
type entry struct {
	open int32 // connections admitted and not released yet
	// tat is when the address's bucket is full again, in ns since epoch
	// (the "theoretical arrival time" of GCRA): each session admitted
	// pushes it interval later, and a session is refused if that would
	// put it more than burstWindow past now. The bucket is full when
	// tat <= now.
	tat int64
}

// shard is a part of the table with its lock and counters. Its entries
// are touched only with mu held; the counters are written with mu held
// and read by Stats without it.
type shard struct {
	mu      sync.Mutex
	entries map[key]entry
	quota   int // entries this shard may hold: its part of MaxEntries
	peak    int // most entries since the map was last made, to shrink it after a flood

	admitted, untracked, refusedConns, refusedRate atomic.Int64 // Admit's decisions, all time
	open, tracked                                  atomic.Int64 // connections counted open; entries

	_ [64]byte // keeps neighbouring shards' locks off one cache line
}

// New returns a Limiter enforcing cfg, or an error if cfg is invalid.
func New(cfg Config) (*Limiter, error) {
	switch {
	case cfg.MaxConnsPerIP < 0:
		return nil, fmt.Errorf("iplimit: MaxConnsPerIP %d < 0", cfg.MaxConnsPerIP)
	case cfg.Rate < 0 || math.IsNaN(cfg.Rate) || math.IsInf(cfg.Rate, 0):
		return nil, fmt.Errorf("iplimit: Rate %v is not a rate", cfg.Rate)
	case cfg.Burst < 0:
		return nil, fmt.Errorf("iplimit: Burst %d < 0", cfg.Burst)
	case cfg.MaxEntries < 0 || (cfg.MaxEntries > 0 && cfg.MaxEntries < numShards):
		// Below one entry a shard, addresses hashing to an empty shard
		// would never be tracked: silently unlimited.
		return nil, fmt.Errorf("iplimit: MaxEntries %d: 0 (the default) or at least %d", cfg.MaxEntries, numShards)
	}
	l := &Limiter{
		maxConns: int32(min(cfg.MaxConnsPerIP, math.MaxInt32)),
		now:      cfg.Now,
		seed:     maphash.MakeSeed(),
	}
	if l.now == nil {
		l.now = time.Now
	}
	l.epoch = l.now()
	if cfg.Rate > 0 {
		burst := cfg.Burst
		if burst == 0 {
			burst = max(1, int(math.Ceil(min(cfg.Rate, math.MaxInt32))))
		}
		interval := math.Round(float64(time.Second) / cfg.Rate)
		// tat reaches burstWindow past now: keep it well within int64.
		if window := float64(burst) * max(interval, 1); window > 1<<61 {
			return nil, errors.New("iplimit: Burst/Rate too long a window")
		}
		l.interval = max(int64(interval), 1)
		l.burstWindow = int64(burst) * l.interval
	}
	l.limiting = l.maxConns > 0 || l.interval > 0
	maxEntries := cfg.MaxEntries
	if maxEntries == 0 {
		maxEntries = DefaultMaxEntries
	}
	for i := range l.shards {
		s := &l.shards[i]
		s.entries = make(map[key]entry)
		s.quota = maxEntries / numShards
		if i < maxEntries%numShards {
			s.quota++
		}
	}
	return l, nil
}

// keyOf is the entry key of ip, false if ip is not an address.
func keyOf(ip netip.Addr) (key, bool) {
	if !ip.IsValid() {
		return key{}, false
	}
	ip = ip.Unmap()
	k := key(ip.As16())
	if ip.Is6() {
		clear(k[8:])
	}
	return k, true
}

func (l *Limiter) shardOf(k key) *shard {
	return &l.shards[maphash.Bytes(l.seed, k[:])%numShards]
}

// nanotime is the clock's reading in ns since epoch. Without a rate limit
// time plays no part (every tat stays 0, every bucket full), and the
// clock is not read: it is 0.
func (l *Limiter) nanotime() int64 {
	if l.interval == 0 {
		return 0
	}
	return int64(l.now().Sub(l.epoch))
}

// Admit decides whether a connection accepted from ip may stay. If ok,
// with reason Admitted, the connection is counted open (call Release when
// it closes) and one session taken from the address's bucket; with
// reason Untracked (the table is full, or ip is not an address), nothing
// is counted, and a Release for it is not needed (harmless, but it may
// then end the count of another connection from ip). If not ok, reason
// is Conns or Rate, and retryAfter (at least 1s, a whole number of
// seconds, for a Retry-After header) is when to try again: 1s for Conns,
// when the next session is due for Rate; nothing is counted. Safe for
// concurrent use.
func (l *Limiter) Admit(ip netip.Addr) (ok bool, reason Reason, retryAfter time.Duration) {
	if l == nil || !l.limiting {
		return true, Admitted, 0
	}
	k, valid := keyOf(ip)
	if !valid {
		l.shards[0].untracked.Add(1)
		return true, Untracked, 0
	}
	now := l.nanotime()
	s := l.shardOf(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, found := s.entries[k]
	if !found {
		if len(s.entries) >= s.quota && !s.reclaimSome(now) {
			s.untracked.Add(1)
			return true, Untracked, 0
		}
		e.tat = now
	}
	if l.maxConns > 0 && e.open >= l.maxConns {
		s.refusedConns.Add(1)
		return false, Conns, time.Second
	}
	if l.interval > 0 {
		tat := max(e.tat, now) + l.interval
		if wait := tat - now - l.burstWindow; wait > 0 {
			s.refusedRate.Add(1)
			return false, Rate, wholeSeconds(wait)
		}
		e.tat = tat
	}
	e.open++
	s.entries[k] = e
	if !found {
		s.tracked.Add(1)
		s.peak = max(s.peak, len(s.entries))
	}
	s.open.Add(1)
	s.admitted.Add(1)
	return true, Admitted, 0
}

// Release ends the count of one connection from ip that Admit admitted
// (reason Admitted), when it closes. A Release with no connection counted
// for ip (not admitted, untracked, or released already) is ignored: no
// count goes below zero. Safe for concurrent use.
func (l *Limiter) Release(ip netip.Addr) {
	if l == nil || !l.limiting {
		return
	}
	k, valid := keyOf(ip)
	if !valid {
		return
	}
	now := l.nanotime()
	s := l.shardOf(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, found := s.entries[k]
	if !found || e.open == 0 {
		return
	}
	e.open--
	s.open.Add(-1)
	if e.reclaimable(now) {
		delete(s.entries, k)
		s.tracked.Add(-1)
		return
	}
	s.entries[k] = e
}

// reclaimable reports whether e holds nothing: no connection open and a
// full bucket, the same as no entry.
func (e entry) reclaimable(now int64) bool { return e.open == 0 && e.tat <= now }

// reclaimProbes is how many entries an Admit that finds its shard full
// looks at for one to drop: a few, so that Admit stays cheap however
// full the table.
const reclaimProbes = 8

// reclaimSome drops the reclaimable entries among a few of s's, taken
// where the map's iteration happens to start (a random place), and
// reports whether it dropped any. s.mu is held.
func (s *shard) reclaimSome(now int64) bool {
	dropped, probed := 0, 0
	for k, e := range s.entries {
		if e.reclaimable(now) {
			delete(s.entries, k)
			dropped++
		}
		if probed++; probed == reclaimProbes {
			break
		}
	}
	s.tracked.Add(int64(-dropped))
	return dropped > 0
}

// shrinkFloor is the smallest peak after which Sweep remakes a map that
// has emptied: Go maps keep their size once grown.
const shrinkFloor = 1024

// Sweep drops every entry that holds nothing (no connection open, a full
// bucket) and returns how many. The owner calls it every few seconds: it
// locks one shard at a time, for a pass over that shard's entries. A map
// that has shrunk to a quarter of its peak is made anew, so that memory
// taken by a flood of addresses is given back. Safe for concurrent use.
func (l *Limiter) Sweep() (dropped int) {
	if l == nil || !l.limiting {
		return 0
	}
	now := l.nanotime()
	for i := range l.shards {
		dropped += l.shards[i].sweep(now)
	}
	return dropped
}

func (s *shard) sweep(now int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	dropped := 0
	for k, e := range s.entries {
		if e.reclaimable(now) {
			delete(s.entries, k)
			dropped++
		}
	}
	s.tracked.Add(int64(-dropped))
	if s.peak >= shrinkFloor && len(s.entries) < s.peak/4 {
		entries := make(map[key]entry, len(s.entries))
		for k, e := range s.entries {
			entries[k] = e
		}
		s.entries = entries
		s.peak = len(entries)
	}
	return dropped
}

// wholeSeconds is ns > 0 nanoseconds rounded up to whole seconds.
func wholeSeconds(ns int64) time.Duration {
	return time.Duration((ns + int64(time.Second) - 1) / int64(time.Second) * int64(time.Second))
}

// Stats is a snapshot of a Limiter's counters, for metrics.
type Stats struct {
	Admitted     int64 // connections admitted and counted, all time
	Untracked    int64 // connections admitted uncounted (table full, or no address), all time
	RefusedConns int64 // connections refused for MaxConnsPerIP, all time
	RefusedRate  int64 // connections refused for Rate, all time
	Open         int64 // connections counted open now
	Entries      int64 // addresses tracked now
}

// Stats returns the counters, summed over the shards without locking
// them: each is exact, but they may be read at slightly different
// moments. Safe for concurrent use.
func (l *Limiter) Stats() Stats {
	var st Stats
	if l == nil {
		return st
	}
	for i := range l.shards {
		s := &l.shards[i]
		st.Admitted += s.admitted.Load()
		st.Untracked += s.untracked.Load()
		st.RefusedConns += s.refusedConns.Load()
		st.RefusedRate += s.refusedRate.Load()
		st.Open += s.open.Load()
		st.Entries += s.tracked.Load()
	}
	return st
}

// Refused returns how many connections were refused for r (Conns or
// Rate), all time. Safe for concurrent use.
func (st Stats) Refused(r Reason) int64 {
	switch r {
	case Conns:
		return st.RefusedConns
	case Rate:
		return st.RefusedRate
	}
	return 0
}
