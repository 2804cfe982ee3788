package iplimit

import (
	"net/netip"
	"sync/atomic"
	"testing"
)

// TestAdmitReleaseZeroAllocs pins that a connection's Admit and Release
// do not allocate once its address has an entry, nor a refusal.
func TestAdmitReleaseZeroAllocs(t *testing.T) {
	l := newLimiter(t, Config{MaxConnsPerIP: 1, Rate: 1e6})
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	l.Admit(b)
	if allocs := testing.AllocsPerRun(1000, func() {
		l.Admit(a)
		l.Admit(a)
		l.Release(a)
		l.Admit(b)
	}); allocs != 0 {
		t.Fatalf("%.1f allocations", allocs)
	}
}

// BenchmarkAdmitRelease is one connection's cost, opened and closed: one
// address, and many (each new to the table, then dropped by Release).
func BenchmarkAdmitRelease(b *testing.B) {
	b.Run("one address", func(b *testing.B) {
		l := newLimiter(b, Config{MaxConnsPerIP: 100, Rate: 1e9})
		a := netip.MustParseAddr("192.0.2.1")
		b.ReportAllocs()
		for b.Loop() {
			l.Admit(a)
			l.Release(a)
		}
	})
	b.Run("many addresses", func(b *testing.B) {
		l := newLimiter(b, Config{MaxConnsPerIP: 100})
		addrs := make([]netip.Addr, 4096)
		for i := range addrs {
			addrs[i] = sprayAddr(i)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			a := addrs[i%len(addrs)]
			l.Admit(a)
			l.Release(a)
			i++
		}
	})
}

// BenchmarkAdmitReleaseParallel is the same from many goroutines at
// once, each on addresses of its own: shards keep them apart.
func BenchmarkAdmitReleaseParallel(b *testing.B) {
	l := newLimiter(b, Config{MaxConnsPerIP: 100, Rate: 1e9})
	var next atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		base := int(next.Add(1)) << 16
		i := 0
		for pb.Next() {
			a := sprayAddr(base + i%64)
			l.Admit(a)
			l.Release(a)
			i++
		}
	})
}
