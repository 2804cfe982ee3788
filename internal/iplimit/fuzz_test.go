package iplimit

import (
	"net/netip"
	"testing"
	"time"
)

// Seed corpora beyond the f.Add calls live in testdata/fuzz/FuzzLimiter/.

// modelAddrs are the addresses FuzzLimiter's operations name, and
// modelGroup which of them are one client (by hand, not by keyOf).
var (
	modelAddrs = []netip.Addr{
		netip.MustParseAddr("192.0.2.1"),
		netip.MustParseAddr("::ffff:192.0.2.1"),
		netip.MustParseAddr("192.0.2.2"),
		netip.MustParseAddr("2001:db8::1"),
		netip.MustParseAddr("2001:db8::ffff:2"),
		netip.MustParseAddr("2001:db8:0:1::1"),
		netip.MustParseAddr("fe80::1%eth0"),
		netip.MustParseAddr("fe80::2"),
	}
	modelGroup = []int{0, 0, 1, 2, 2, 3, 4, 4}
)

const (
	modelMaxConns = 3
	modelBurst    = 3
	modelInterval = 500 * time.Millisecond // Rate 2
)

// modelClient is one client in the reference model: a plain token bucket
// counted in nanoseconds of refill, with no table, shards or bound.
type modelClient struct {
	open   int
	tokens time.Duration // of refill time banked, at most modelBurst*modelInterval
	at     time.Duration // when tokens was last brought up to date
}

// FuzzLimiter runs a sequence of operations (each byte one: Admit or
// Release of one of modelAddrs, a step of the clock, a Sweep) on a
// Limiter and on the reference model, and wants the same answers and
// counts.
func FuzzLimiter(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 1, 0, 2, 0})
	f.Add([]byte{0x0c, 0x0c, 0x0c, 0x0c, 0x0d, 0x0d, 0x0d, 0xfe, 0x0c, 0x03})
	f.Add([]byte{0x10, 0x14, 0x18, 0x1c, 0x11, 0x15, 0x06, 0x03, 0x10})
	f.Fuzz(func(t *testing.T, ops []byte) {
		clock := newFakeClock()
		l := newLimiter(t, Config{MaxConnsPerIP: modelMaxConns, Rate: 2, Burst: modelBurst, Now: clock.Now})
		var (
			model [5]modelClient
			now   time.Duration
		)
		for i := range model {
			model[i].tokens = modelBurst * modelInterval
		}
		for step, op := range ops {
			arg := int(op >> 2)
			switch op & 3 {
			case 0: // Admit
				a := modelAddrs[arg%len(modelAddrs)]
				c := &model[modelGroup[arg%len(modelAddrs)]]
				c.tokens = min(c.tokens+now-c.at, modelBurst*modelInterval)
				c.at = now
				wantOK, wantReason, wantRetry := true, Admitted, time.Duration(0)
				switch {
				case c.open >= modelMaxConns:
					wantOK, wantReason, wantRetry = false, Conns, time.Second
				case c.tokens < modelInterval:
					wait := modelInterval - c.tokens
					wantOK, wantReason, wantRetry = false, Rate, (wait+time.Second-1)/time.Second*time.Second
				default:
					c.tokens -= modelInterval
					c.open++
				}
				ok, reason, retry := l.Admit(a)
				if ok != wantOK || reason != wantReason || retry != wantRetry {
					t.Fatalf("step %d: Admit(%v) = %v, %v, %v; model: %v, %v, %v", step, a, ok, reason, retry, wantOK, wantReason, wantRetry)
				}
			case 1: // Release
				a := modelAddrs[arg%len(modelAddrs)]
				if c := &model[modelGroup[arg%len(modelAddrs)]]; c.open > 0 {
					c.open--
				}
				l.Release(a)
			case 2: // the clock moves 0 to 3.15s
				d := time.Duration(arg) * 50 * time.Millisecond
				clock.Advance(d)
				now += d
			case 3:
				l.Sweep()
			}
			open, holding := 0, 0
			for _, c := range model {
				open += c.open
				if c.open > 0 || min(c.tokens+now-c.at, modelBurst*modelInterval) < modelBurst*modelInterval {
					holding++
				}
			}
			st := l.Stats()
			if st.Open != int64(open) || st.Entries < int64(holding) || st.Entries > int64(len(model)) {
				t.Fatalf("step %d: Stats() = %+v; model: %d open, %d clients holding something", step, st, open, holding)
			}
		}
		clock.Advance(time.Hour)
		now += time.Hour
		l.Sweep()
		holding := 0
		for _, c := range model {
			if c.open > 0 {
				holding++
			}
		}
		if st := l.Stats(); st.Entries != int64(holding) {
			t.Fatalf("after a Sweep: %d entries; model: %d clients with connections open", st.Entries, holding)
		}
	})
}
