package server

// timerWheel is a hashed timing wheel: one list of timers per slot, one slot
// visited per tick. A timer whose deadline lies beyond one revolution stays
// in its slot and is looked at once per revolution until it is due. Adding,
// moving and stopping a timer are O(1) and allocation-free (timers are
// embedded in their owners). Owned by one shard: Loop-only.
type timerWheel struct {
	slots     []timer // sentinel head of each slot's circular list
	tick      int64   // nanoseconds per slot
	cursor    int64   // index (unbounded) of the next slot to visit
	now       int64   // coarse clock: time of the last advance, in ns
	firing    []*timer
	scheduled int // timers currently in the wheel
}

// timer is one deadline of one owner. The zero value is stopped.
type timer struct {
	prev, next *timer
	when       int64      // deadline, ns on the shard clock
	owner      timerOwner // called when the deadline passes
}

// timerOwner is whatever embeds a timer: a session, later a backend conn.
type timerOwner interface {
	onTimer(now int64)
}

func newTimerWheel(slots int, tick, now int64) *timerWheel {
	w := &timerWheel{slots: make([]timer, slots), tick: tick, now: now, cursor: now / tick}
	for i := range w.slots {
		w.slots[i].prev, w.slots[i].next = &w.slots[i], &w.slots[i]
	}
	return w
}

// schedule (re)arms t for deadline when. Loop-only.
func (w *timerWheel) schedule(t *timer, when int64) {
	w.stop(t)
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
	w.scheduled++
}

// stop disarms t if it is armed. Loop-only.
func (w *timerWheel) stop(t *timer) {
	if t.next == nil {
		return
	}
	t.prev.next, t.next.prev = t.next, t.prev
	t.prev, t.next = nil, nil
	w.scheduled--
}

// armed reports whether t is in the wheel.
func (t *timer) armed() bool { return t.next != nil }

// advance moves the clock to now and fires every timer that is due, in
// slot order. A fired timer is disarmed before its callback runs, so the
// callback may re-arm it. Loop-only.
func (w *timerWheel) advance(now int64) {
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
			if t.armed() && t.when <= now {
				w.stop(t)
				t.owner.onTimer(now)
			}
		}
		w.firing = w.firing[:0]
	}
}
