package loadtest

import (
	"math/rand/v2"
	"testing"
	"time"
)

// drive runs schedules on a virtual clock advanced by random steps up to
// maxStep until end, and returns the send times of each session.
func drive(t *testing.T, interval time.Duration, senders, total int, end, maxStep time.Duration, seed uint64) [][]time.Duration {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, seed))
	sends := make([][]time.Duration, total)
	for k := 0; k < senders; k++ {
		sch := newSchedule(interval, k, senders, total)
		var now time.Duration
		for {
			next := sch.take(now, func(slot int) {
				s := slotSession(slot, k, senders)
				sends[s] = append(sends[s], now)
			})
			if next <= now {
				t.Fatalf("next due %v is not after now %v", next, now)
			}
			if now == end {
				break
			}
			// A sender sleeps until next (at least a tick) and wakes late.
			now = min(max(next, now+senderTick)+time.Duration(r.Int64N(int64(maxStep))), end)
		}
		if sch.skipped != 0 {
			t.Fatalf("sender %d skipped %d slots while never more than %v late", k, sch.skipped, maxStep+senderTick)
		}
	}
	return sends
}

func TestScheduleRate(t *testing.T) {
	const (
		total    = 3000
		senders  = 3
		interval = time.Second / 3 // 3 msg/s per session
		end      = 10 * time.Second
	)
	sends := drive(t, interval, senders, total, end, 2*time.Millisecond, 1)
	for i, s := range sends {
		// Session i's k-th message is due at k*interval + phase(i); by time end
		// it has sent every slot due at or before end: 30 or 31.
		phase := time.Duration(int64(interval) * int64(i) / total)
		want := int((end-phase)/interval) + 1
		if len(s) != want {
			t.Fatalf("session %d sent %d messages by %v, want %d", i, len(s), end, want)
		}
		for k := 1; k < len(s); k++ {
			// Spacing stays near the interval: lateness does not accumulate.
			if gap := s[k] - s[k-1]; gap < interval-4*time.Millisecond || gap > interval+4*time.Millisecond {
				t.Fatalf("session %d: gap %v between messages %d and %d, want %v ± 4ms", i, gap, k-1, k, interval)
			}
		}
	}
}

// TestScheduleSpreadsLoad checks that the total load is smooth: in every
// 100 ms the senders send close to rate*100ms, not bursts per interval.
func TestScheduleSpreadsLoad(t *testing.T) {
	const (
		total    = 3000
		interval = time.Second / 3
		end      = 5 * time.Second
		bucket   = 100 * time.Millisecond
	)
	sends := drive(t, interval, 2, total, end, time.Millisecond, 2)
	counts := make([]int, end/bucket+1)
	for _, s := range sends {
		for _, at := range s {
			counts[at/bucket]++
		}
	}
	want := float64(total) / interval.Seconds() * bucket.Seconds() // 900
	for b, n := range counts[:len(counts)-1] {
		if float64(n) < 0.9*want || float64(n) > 1.1*want {
			t.Errorf("%v..%v: %d sends, want %.0f ± 10%%", time.Duration(b)*bucket, time.Duration(b+1)*bucket, n, want)
		}
	}
}

// TestScheduleSkipsWhenBehind models a sender stalled for 2.5 intervals:
// the missed whole rounds are skipped and counted, not sent in a burst.
func TestScheduleSkipsWhenBehind(t *testing.T) {
	const n = 10
	sch := newSchedule(100*time.Millisecond, 0, 1, n)
	sent := 0
	count := func(int) { sent++ }
	sch.take(0, count) // slot 0 is due at 0
	if sent != 1 {
		t.Fatalf("sent %d at t=0, want 1", sent)
	}
	sch.take(250*time.Millisecond, count)
	// 26 slots are due by 250 ms (two rounds of 10, then 200..250 ms). The
	// cursor, due at 10 ms, was 240 ms late: two whole intervals, so the 20
	// slots from 10 ms to 200 ms are skipped and the 5 from 210 ms sent.
	if got := sch.sent + sch.skipped; got != 26 {
		t.Errorf("sent %d + skipped %d = %d slots accounted by 250 ms, want 26 (every slot due, plus none twice)", sch.sent, sch.skipped, got)
	}
	if sch.skipped != 2*n {
		t.Errorf("skipped %d, want %d (two whole rounds)", sch.skipped, 2*n)
	}
	if burst := sent - 1; burst > n {
		t.Errorf("catch-up burst of %d sends, more than one round (%d)", burst, n)
	}
	if sch.due() <= 250*time.Millisecond {
		t.Errorf("next due %v is not after now", sch.due())
	}
}

func TestScheduleEmpty(t *testing.T) {
	// More senders than sessions: some own nothing and must never fire.
	sch := newSchedule(time.Second, 5, 8, 3)
	if next := sch.take(time.Hour, func(int) { t.Fatal("sent from an empty schedule") }); next < time.Hour {
		t.Fatalf("empty schedule due at %v", next)
	}
}
