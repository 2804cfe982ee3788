// Package wheel is a hashed timing wheel: many deadlines on one clock,
// advanced by one owner (a shard's event loop), with O(1), allocation-free
// arming and stopping. Nothing in it is safe for concurrent use.
package wheel

// Wheel is a hashed timing wheel: one list of timers per slot, one slot
// visited per tick. A timer whose deadline lies beyond one revolution stays
// in its slot and is looked at once per revolution until it is due. Adding,
// moving and stopping a timer are O(1) and allocation-free (timers are
// embedded in their owners). Owned by one shard: Loop-only.
type Wheel struct {
	slots  []Timer // sentinel head of each slot's circular list
	tick   int64   // nanoseconds per slot
	cursor int64   // index (unbounded) of the next slot to visit
	now    int64   // coarse clock: time of the last Advance, in ns
	firing []*Timer
}

// Timer is one deadline of one owner. The zero value is stopped.
type Timer struct {
	prev, next *Timer
	when       int64 // deadline, ns on the shard clock
	Owner      Owner // called when the deadline passes; set before arming
}

// Owner is whatever embeds a Timer: a client session, a backend connection.
type Owner interface {
	OnTimer(now int64)
}

// New returns a wheel of slots slots of tick ns each, its clock at now.
func New(slots int, tick, now int64) *Wheel {
	w := &Wheel{slots: make([]Timer, slots), tick: tick, now: now, cursor: now / tick}
	for i := range w.slots {
		w.slots[i].prev, w.slots[i].next = &w.slots[i], &w.slots[i]
	}
	return w
}

// Schedule (re)arms t for deadline when. Loop-only.
func (w *Wheel) Schedule(t *Timer, when int64) {
	w.Stop(t)
	t.when = when
	// The first slot whose visit time is at or after the deadline, so a
	// visited slot never holds a timer of this revolution that is not due.
	slot := (when + w.tick - 1) / w.tick
	if slot < w.cursor {
		slot = w.cursor // already due: fire on the next advance
	}
	head := &w.slots[slot%int64(len(w.slots))]
	t.prev, t.next = head.prev, head
	head.prev.next = t
	head.prev = t
}

// Stop disarms t if it is armed. Loop-only.
func (w *Wheel) Stop(t *Timer) {
	if t.next == nil {
		return
	}
	t.prev.next, t.next.prev = t.next, t.prev
	t.prev, t.next = nil, nil
}

// Armed reports whether t is in the wheel.
func (t *Timer) Armed() bool { return t.next != nil }

// Advance moves the clock to now and fires every timer that is due, in
// slot order. A fired timer is disarmed before its callback runs, so the
// callback may re-arm it. Loop-only.
func (w *Wheel) Advance(now int64) {
	w.now = now
	last := now / w.tick
	// Never walk more than one revolution: after that every slot was seen.
	if last-w.cursor >= int64(len(w.slots)) {
		w.cursor = last - int64(len(w.slots)) + 1
	}
	for w.cursor <= last {
		head := &w.slots[w.cursor%int64(len(w.slots))]
		// Advance first: a callback that re-arms a due timer puts it in the
		// next slot to visit, not back into this one.
		w.cursor++
		for t := head.next; t != head; t = t.next {
			if t.when <= now {
				w.firing = append(w.firing, t)
			}
		}
		for i, t := range w.firing {
			w.firing[i] = nil
			// An earlier callback in this batch may have stopped or moved t.
			if t.Armed() && t.when <= now {
				w.Stop(t)
				t.Owner.OnTimer(now)
			}
		}
		w.firing = w.firing[:0]
	}
}

// Now is the wheel's coarse clock: the time given to the last Advance.
func (w *Wheel) Now() int64 { return w.now }
