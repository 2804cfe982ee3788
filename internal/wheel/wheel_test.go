package wheel

import (
	"math/rand"
	"testing"
)

type fakeOwner struct {
	fired []int64 // times (wheel clock) at which the timer fired
	rearm func(now int64)
}

func (o *fakeOwner) OnTimer(now int64) {
	o.fired = append(o.fired, now)
	if o.rearm != nil {
		o.rearm(now)
	}
}

func TestTimerWheelFiresOnceWhenDue(t *testing.T) {
	const tick = 10
	w := New(8, tick, 0)
	cases := []struct {
		name  string
		when  int64
		fires int64 // first advance time (multiple of tick) at which it fires
	}{
		{"next slot", 10, 10},
		{"same slot later", 15, 20},
		{"already due", -5, 10},
		{"beyond one revolution", 8*tick*3 + 5, 8*tick*3 + 10},
	}
	owners := make([]*fakeOwner, len(cases))
	timers := make([]Timer, len(cases))
	for i, c := range cases {
		owners[i] = &fakeOwner{}
		timers[i].Owner = owners[i]
		w.Schedule(&timers[i], c.when)
	}
	for now := int64(tick); now <= 8*tick*4; now += tick {
		w.Advance(now)
	}
	for i, c := range cases {
		if got := owners[i].fired; len(got) != 1 || got[0] != c.fires {
			t.Errorf("%s: fired at %v, want once at %d", c.name, got, c.fires)
		}
		if timers[i].Armed() {
			t.Errorf("%s: still armed after firing", c.name)
		}
	}
	for i := range w.slots {
		if head := &w.slots[i]; head.next != head || head.prev != head {
			t.Errorf("slot %d still holds a timer after all fired", i)
		}
	}
}

func TestTimerWheelStopAndRearm(t *testing.T) {
	w := New(4, 10, 0)
	stopped, moved, chained := &fakeOwner{}, &fakeOwner{}, &fakeOwner{}
	var ts, tm, tc Timer
	ts.Owner, tm.Owner, tc.Owner = stopped, moved, chained
	w.Schedule(&ts, 20)
	w.Schedule(&tm, 20)
	w.Schedule(&tc, 20)
	w.Stop(&ts)
	w.Stop(&ts) // stopping twice is harmless
	w.Schedule(&tm, 50)
	chained.rearm = func(now int64) {
		if len(chained.fired) < 3 {
			w.Schedule(&tc, now) // due at once: must fire on the next advance, not loop
		}
	}
	for now := int64(10); now <= 100; now += 10 {
		w.Advance(now)
	}
	if len(stopped.fired) != 0 {
		t.Errorf("stopped timer fired at %v", stopped.fired)
	}
	if len(moved.fired) != 1 || moved.fired[0] != 50 {
		t.Errorf("moved timer fired at %v, want [50]", moved.fired)
	}
	if want := []int64{20, 30, 40}; len(chained.fired) != 3 || chained.fired[0] != want[0] || chained.fired[2] != want[2] {
		t.Errorf("re-armed timer fired at %v, want %v", chained.fired, want)
	}
}

// TestTimerWheelRandom checks against a model: every timer fires exactly
// once, at the first advance that reaches the tick boundary at or after its
// deadline (at most one tick late), whatever the clock jumps (a loop that
// was busy skips ticks).
func TestTimerWheelRandom(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	const tick = 7
	w := New(16, tick, 0)
	n := 2000
	owners := make([]fakeOwner, n)
	timers := make([]Timer, n)
	deadlines := make([]int64, n)
	for i := range timers {
		timers[i].Owner = &owners[i]
		deadlines[i] = rng.Int63n(16 * tick * 5)
		w.Schedule(&timers[i], deadlines[i])
	}
	var now int64
	var advances []int64
	for now < 16*tick*6 {
		now += 1 + rng.Int63n(3*tick) // sometimes several slots at once
		w.Advance(now)
		advances = append(advances, now)
	}
	for i := range owners {
		want := int64(-1)
		for _, a := range advances {
			if a/tick >= (deadlines[i]+tick-1)/tick {
				want = a
				break
			}
		}
		if got := owners[i].fired; len(got) != 1 || got[0] != want {
			t.Fatalf("timer %d (deadline %d) fired at %v, want once at %d", i, deadlines[i], got, want)
		}
	}
}
