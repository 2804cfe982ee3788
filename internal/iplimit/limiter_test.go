package iplimit

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newLimiter(t testing.TB, cfg Config) *Limiter {
	t.Helper()
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

var ip = netip.MustParseAddr

// expectAdmit checks one Admit's answer.
func expectAdmit(t *testing.T, l *Limiter, addr string, wantOK bool, wantReason Reason, wantRetry time.Duration) {
	t.Helper()
	ok, reason, retry := l.Admit(ip(addr))
	if ok != wantOK || reason != wantReason || retry != wantRetry {
		t.Fatalf("Admit(%s) = %v, %v, %v; want %v, %v, %v", addr, ok, reason, retry, wantOK, wantReason, wantRetry)
	}
}

func expectStats(t *testing.T, l *Limiter, want Stats) {
	t.Helper()
	if got := l.Stats(); got != want {
		t.Fatalf("Stats() = %+v; want %+v", got, want)
	}
}

func TestConnsLimitAndRelease(t *testing.T) {
	l := newLimiter(t, Config{MaxConnsPerIP: 2})
	expectAdmit(t, l, "192.0.2.1", true, Admitted, 0)
	expectAdmit(t, l, "192.0.2.1", true, Admitted, 0)
	expectAdmit(t, l, "192.0.2.1", false, Conns, time.Second)
	expectAdmit(t, l, "192.0.2.2", true, Admitted, 0)
	expectStats(t, l, Stats{Admitted: 3, RefusedConns: 1, Open: 3, Entries: 2})

	l.Release(ip("192.0.2.1"))
	expectAdmit(t, l, "192.0.2.1", true, Admitted, 0)
	expectAdmit(t, l, "192.0.2.1", false, Conns, time.Second)

	for _, a := range []string{"192.0.2.1", "192.0.2.1", "192.0.2.2"} {
		l.Release(ip(a))
	}
	// Without a rate, an address with nothing open holds nothing: its
	// entry goes at its last Release.
	expectStats(t, l, Stats{Admitted: 4, RefusedConns: 2, Open: 0, Entries: 0})
}

func TestRateBurstAndRefill(t *testing.T) {
	clock := newFakeClock()
	l := newLimiter(t, Config{Rate: 2, Burst: 3, Now: clock.Now})
	for range 3 {
		expectAdmit(t, l, "192.0.2.1", true, Admitted, 0)
	}
	// The next token is due in 500ms: Retry-After says 1s.
	expectAdmit(t, l, "192.0.2.1", false, Rate, time.Second)
	expectAdmit(t, l, "192.0.2.2", true, Admitted, 0)
	clock.Advance(499 * time.Millisecond)
	expectAdmit(t, l, "192.0.2.1", false, Rate, time.Second)
	clock.Advance(time.Millisecond)
	expectAdmit(t, l, "192.0.2.1", true, Admitted, 0)
	expectAdmit(t, l, "192.0.2.1", false, Rate, time.Second)

	// A long pause refills the bucket up to Burst, not beyond.
	clock.Advance(time.Hour)
	for range 3 {
		expectAdmit(t, l, "192.0.2.1", true, Admitted, 0)
	}
	expectAdmit(t, l, "192.0.2.1", false, Rate, time.Second)
	expectStats(t, l, Stats{Admitted: 8, RefusedRate: 4, Open: 8, Entries: 2})
}

func TestRateRetryAfterRoundsUp(t *testing.T) {
	clock := newFakeClock()
	l := newLimiter(t, Config{Rate: 0.1, Now: clock.Now}) // one session per 10s, Burst 1
	expectAdmit(t, l, "2001:db8::1", true, Admitted, 0)
	expectAdmit(t, l, "2001:db8::1", false, Rate, 10*time.Second)
	clock.Advance(2500 * time.Millisecond)
	expectAdmit(t, l, "2001:db8::1", false, Rate, 8*time.Second) // 7.5s
	clock.Advance(7499 * time.Millisecond)
	expectAdmit(t, l, "2001:db8::1", false, Rate, time.Second) // 1ms
	clock.Advance(time.Millisecond)
	expectAdmit(t, l, "2001:db8::1", true, Admitted, 0)
}

func TestDefaultBurst(t *testing.T) {
	for _, tc := range []struct {
		rate  float64
		burst int
	}{{0.5, 1}, {1, 1}, {2.5, 3}, {10, 10}} {
		l := newLimiter(t, Config{Rate: tc.rate, Now: newFakeClock().Now})
		n := 0
		for {
			if ok, _, _ := l.Admit(ip("192.0.2.1")); !ok {
				break
			}
			n++
		}
		if n != tc.burst {
			t.Errorf("Rate %v: %d sessions at once; want %d", tc.rate, n, tc.burst)
		}
	}
}

// TestConnsBeforeRate pins that a connection refused for Conns takes no
// token: it did not open a session.
func TestConnsBeforeRate(t *testing.T) {
	clock := newFakeClock()
	l := newLimiter(t, Config{MaxConnsPerIP: 1, Rate: 1, Burst: 2, Now: clock.Now})
	expectAdmit(t, l, "192.0.2.1", true, Admitted, 0)
	for range 5 {
		expectAdmit(t, l, "192.0.2.1", false, Conns, time.Second)
	}
	l.Release(ip("192.0.2.1"))
	expectAdmit(t, l, "192.0.2.1", true, Admitted, 0)
	l.Release(ip("192.0.2.1"))
	expectAdmit(t, l, "192.0.2.1", false, Rate, time.Second)
}

func TestIPv6GroupedBy64(t *testing.T) {
	l := newLimiter(t, Config{MaxConnsPerIP: 1})
	expectAdmit(t, l, "2001:db8:1:2::1", true, Admitted, 0)
	expectAdmit(t, l, "2001:db8:1:2:ffff:ffff:ffff:ffff", false, Conns, time.Second)
	expectAdmit(t, l, "2001:db8:1:2:abcd::%eth0", false, Conns, time.Second)
	expectAdmit(t, l, "2001:db8:1:3::1", true, Admitted, 0)
	expectAdmit(t, l, "2001:db8:1:1::1", true, Admitted, 0)
	// Another address of the /64 releases the /64's connection.
	l.Release(ip("2001:db8:1:2::9"))
	expectAdmit(t, l, "2001:db8:1:2::5", true, Admitted, 0)
	// ::/64 is not IPv4.
	expectAdmit(t, l, "::1", true, Admitted, 0)
	expectAdmit(t, l, "::2", false, Conns, time.Second)
	expectAdmit(t, l, "0.0.0.1", true, Admitted, 0)
	expectStats(t, l, Stats{Admitted: 6, RefusedConns: 3, Open: 5, Entries: 5})
}

func TestIPv4MappedIsIPv4(t *testing.T) {
	l := newLimiter(t, Config{MaxConnsPerIP: 1})
	expectAdmit(t, l, "192.0.2.1", true, Admitted, 0)
	expectAdmit(t, l, "::ffff:192.0.2.1", false, Conns, time.Second)
	// IPv4 addresses are not grouped.
	expectAdmit(t, l, "::ffff:192.0.2.2", true, Admitted, 0)
	expectAdmit(t, l, "192.0.2.2", false, Conns, time.Second)
	l.Release(ip("::ffff:192.0.2.1"))
	expectAdmit(t, l, "192.0.2.1", true, Admitted, 0)
}

func TestReleaseWithoutAdmitIsIgnored(t *testing.T) {
	l := newLimiter(t, Config{MaxConnsPerIP: 1})
	l.Release(ip("192.0.2.1"))
	l.Release(netip.Addr{})
	expectStats(t, l, Stats{})
	expectAdmit(t, l, "192.0.2.1", true, Admitted, 0)
	l.Release(ip("192.0.2.1"))
	l.Release(ip("192.0.2.1"))
	expectStats(t, l, Stats{Admitted: 1})
	expectAdmit(t, l, "192.0.2.1", true, Admitted, 0)
	expectAdmit(t, l, "192.0.2.1", false, Conns, time.Second)
	expectStats(t, l, Stats{Admitted: 2, RefusedConns: 1, Open: 1, Entries: 1})
}

func TestNoAddressIsUntracked(t *testing.T) {
	l := newLimiter(t, Config{MaxConnsPerIP: 1})
	for range 3 {
		if ok, reason, _ := l.Admit(netip.Addr{}); !ok || reason != Untracked {
			t.Fatalf("Admit(no address) = %v, %v", ok, reason)
		}
	}
	expectStats(t, l, Stats{Untracked: 3})
}

func TestNilAndNoLimits(t *testing.T) {
	var none *Limiter
	off := newLimiter(t, Config{})
	for _, l := range []*Limiter{none, off} {
		for range 3 {
			if ok, reason, retry := l.Admit(ip("192.0.2.1")); !ok || reason != Admitted || retry != 0 {
				t.Fatalf("Admit = %v, %v, %v", ok, reason, retry)
			}
		}
		l.Release(ip("192.0.2.1"))
		if l.Sweep() != 0 || l.Stats() != (Stats{}) {
			t.Fatalf("a Limiter without limits counted: %+v", l.Stats())
		}
	}
}

func TestNewRejects(t *testing.T) {
	for _, cfg := range []Config{
		{MaxConnsPerIP: -1},
		{Rate: -1},
		{Rate: posInf()},
		{Rate: nan()},
		{Rate: 1, Burst: -1},
		{MaxEntries: -1},
		{MaxConnsPerIP: 1, MaxEntries: 1}, // shards with no room: untracked, unlimited
		{Rate: 1e-12},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted it", cfg)
		}
	}
	if _, err := New(Config{Rate: 1e12}); err != nil {
		t.Errorf("a very high rate: %v", err)
	}
}

func posInf() float64 { return 1 / zero }
func nan() float64    { return zero / zero }

var zero float64

func TestReasonString(t *testing.T) {
	for r, want := range map[Reason]string{Admitted: "admitted", Untracked: "untracked", Conns: "conns", Rate: "rate", 9: "Reason(9)"} {
		if r.String() != want {
			t.Errorf("%d: %q", r, r.String())
		}
	}
	st := Stats{RefusedConns: 2, RefusedRate: 3}
	if st.Refused(Conns) != 2 || st.Refused(Rate) != 3 || st.Refused(Admitted) != 0 {
		t.Error(st)
	}
}

// sprayAddr is the i-th of distinct /64s an attacker could spray from.
func sprayAddr(i int) netip.Addr {
	return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i), 15: 1})
}

// TestSprayIsBounded sprays far more addresses than the table holds: the
// table stays within MaxEntries, the addresses past it are admitted
// untracked, an address tracked before stays limited, and once the spray
// has closed and its buckets refilled a Sweep empties the table.
func TestSprayIsBounded(t *testing.T) {
	clock := newFakeClock()
	const maxEntries = 640
	l := newLimiter(t, Config{MaxConnsPerIP: 1, Rate: 1, MaxEntries: maxEntries, Now: clock.Now})
	expectAdmit(t, l, "192.0.2.1", true, Admitted, 0)
	const spray = 20000
	admitted := 1
	for i := range spray {
		ok, reason, _ := l.Admit(sprayAddr(i))
		if !ok {
			t.Fatalf("spray address %d refused: %v", i, reason)
		}
		if reason == Admitted {
			admitted++
		}
	}
	st := l.Stats()
	if st.Entries > maxEntries || st.Entries != int64(admitted) || st.Admitted != int64(admitted) || st.Untracked != int64(spray+1-admitted) {
		t.Fatalf("after the spray: %+v, %d admitted tracked", st, admitted)
	}
	if admitted < maxEntries*9/10 {
		t.Errorf("only %d of %d entries used: shards fill unevenly", admitted, maxEntries)
	}
	t.Logf("%d of %d entries used", admitted, maxEntries)
	expectAdmit(t, l, "192.0.2.1", false, Conns, time.Second)

	for i := range spray {
		l.Release(sprayAddr(i))
	}
	l.Release(ip("192.0.2.1"))
	if st := l.Stats(); st.Open != 0 || st.Entries != int64(admitted) {
		t.Fatalf("released, buckets not yet full: %+v", st)
	}
	clock.Advance(time.Second)
	if dropped := l.Sweep(); dropped != admitted {
		t.Fatalf("Sweep dropped %d; want %d", dropped, admitted)
	}
	expectStats(t, l, Stats{Admitted: int64(admitted), Untracked: int64(spray + 1 - admitted), RefusedConns: 1})
}

// TestFullShardReclaims pins that an Admit finding its shard full drops
// an entry that holds nothing any more, rather than leave the new address
// untracked until the next Sweep.
func TestFullShardReclaims(t *testing.T) {
	clock := newFakeClock()
	l := newLimiter(t, Config{MaxConnsPerIP: 1, Rate: 1, MaxEntries: numShards, Now: clock.Now}) // one entry a shard
	first := sprayAddr(0)
	k, _ := keyOf(first)
	var second netip.Addr
	for i := 1; ; i++ {
		if k2, _ := keyOf(sprayAddr(i)); l.shardOf(k2) == l.shardOf(k) {
			second = sprayAddr(i)
			break
		}
	}
	if ok, reason, _ := l.Admit(first); reason != Admitted {
		t.Fatal(ok, reason)
	}
	l.Release(first)
	if ok, reason, _ := l.Admit(second); reason != Untracked {
		t.Fatalf("shard full of a refilling bucket: %v, %v", ok, reason)
	}
	clock.Advance(time.Second)
	if ok, reason, _ := l.Admit(second); reason != Admitted {
		t.Fatalf("shard full of an entry holding nothing: %v, %v", ok, reason)
	}
	if st := l.Stats(); st.Entries != 1 || st.Open != 1 {
		t.Fatal(st)
	}
}

// TestSweepGivesMemoryBack pins that a shard's map is made anew once a
// flood has left it.
func TestSweepGivesMemoryBack(t *testing.T) {
	clock := newFakeClock()
	l := newLimiter(t, Config{Rate: 1, Now: clock.Now})
	for i := range numShards * shrinkFloor * 2 {
		l.Admit(sprayAddr(i))
		l.Release(sprayAddr(i))
	}
	expectAdmit(t, l, "192.0.2.1", true, Admitted, 0) // stays: connection open
	clock.Advance(time.Second)
	l.Sweep()
	for i := range l.shards {
		s := &l.shards[i]
		if s.peak > 1 || len(s.entries) > 1 {
			t.Fatalf("shard %d: peak %d, %d entries", i, s.peak, len(s.entries))
		}
	}
	expectAdmit(t, l, "192.0.2.1", true, Admitted, 0)
	if st := l.Stats(); st.Entries != 1 || st.Open != 2 {
		t.Fatal(st)
	}
}

// TestConcurrentAdmitRelease runs acceptors and loops at once on a few
// addresses: no address ever holds more than its limit, and the counts
// are exact at the end.
func TestConcurrentAdmitRelease(t *testing.T) {
	const (
		workers  = 16
		rounds   = 5000
		addrs    = 40
		maxConns = 3
	)
	l := newLimiter(t, Config{MaxConnsPerIP: maxConns})
	pool := make([]netip.Addr, addrs)
	for i := range pool {
		if i%2 == 0 {
			pool[i] = netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})
		} else {
			pool[i] = sprayAddr(i)
		}
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		admitted int64
		refused  int64
		held     = make([][]netip.Addr, workers) // each worker's connections, its own
	)
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for range rounds {
				if len(held[w]) > 0 && rng.IntN(2) == 0 {
					i := rng.IntN(len(held[w]))
					l.Release(held[w][i])
					held[w] = append(held[w][:i], held[w][i+1:]...)
					continue
				}
				a := pool[rng.IntN(addrs)]
				ok, reason, _ := l.Admit(a)
				mu.Lock()
				if ok {
					admitted++
					held[w] = append(held[w], a)
				} else {
					refused++
					if reason != Conns {
						t.Errorf("refused for %v", reason)
					}
				}
				mu.Unlock()
			}
		})
	}
	// Meanwhile: an admin scrape and a sweeper, and a check that no
	// address is counted past its limit.
	stop := make(chan struct{})
	var side sync.WaitGroup
	side.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = l.Stats()
			l.Sweep()
			for _, a := range pool {
				k, _ := keyOf(a)
				s := l.shardOf(k)
				s.mu.Lock()
				n := s.entries[k].open
				s.mu.Unlock()
				if n > maxConns {
					t.Errorf("%v counted %d open", a, n)
				}
			}
		}
	})
	wg.Wait()
	close(stop)
	side.Wait()

	stillHeld := 0
	for _, h := range held {
		stillHeld += len(h)
	}
	st := l.Stats()
	if st.Admitted != admitted || st.RefusedConns != refused || st.Open != int64(stillHeld) {
		t.Fatalf("Stats() = %+v; admitted %d, refused %d, held %d", st, admitted, refused, stillHeld)
	}
	for _, h := range held {
		for _, a := range h {
			l.Release(a)
		}
	}
	if st := l.Stats(); st.Open != 0 || st.Entries != 0 {
		t.Fatalf("all released: %+v", st)
	}
	t.Logf("%d admitted, %d refused", admitted, refused)
}

func TestKeyOf(t *testing.T) {
	for _, tc := range []struct{ a, b string }{
		{"192.0.2.1", "::ffff:192.0.2.1"},
		{"2001:db8::1", "2001:db8::ffff:ffff:ffff:ffff"},
		{"fe80::1%eth0", "fe80::2"},
	} {
		ka, _ := keyOf(ip(tc.a))
		kb, _ := keyOf(ip(tc.b))
		if ka != kb {
			t.Errorf("%s and %s differ: %x, %x", tc.a, tc.b, ka, kb)
		}
	}
	for _, tc := range []struct{ a, b string }{
		{"192.0.2.1", "192.0.2.2"},
		{"2001:db8::1", "2001:db8:0:1::1"},
		{"::", "0.0.0.0"},
		{"::ffff:0:0", "::"},
	} {
		ka, _ := keyOf(ip(tc.a))
		kb, _ := keyOf(ip(tc.b))
		if ka == kb {
			t.Errorf("%s and %s share key %x", tc.a, tc.b, ka)
		}
	}
	if _, ok := keyOf(netip.Addr{}); ok {
		t.Error("a key for no address")
	}
}
