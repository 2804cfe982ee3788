package loadtest

import "time"

// schedule is the sending plan of one sender goroutine. Every session it
// owns is due once per interval, at a fixed phase inside the interval; the
// phases of all sessions are spread evenly over the interval, so the total
// load is smooth rather than C messages at the top of each period. Because
// the phases are sorted, the due times form one ascending sequence
// (round 0 slot 0, round 0 slot 1, ..., round 1 slot 0, ...) and a cursor
// walks it: O(1) per message, no timer or heap entry per session. This is
// a time wheel with one spoke per session.
//
// A schedule is a pure function of the time it is given, so tests drive it
// with a virtual clock. Owned by one sender goroutine.
type schedule struct {
	interval time.Duration   // time between two messages of one session
	phases   []time.Duration // per slot, ascending, each in [0, interval)
	round    int64           // current round (interval number)
	pos      int             // next slot in the current round
	sent     int64           // slots handed to send
	skipped  int64           // slots dropped because the sender fell behind
}

// newSchedule plans n slots. Slot j of sender k among senders is session
// k + j*senders, whose phase is its share of the interval among total
// sessions: session i is due at i*interval/total within each round.
func newSchedule(interval time.Duration, sender, senders, total int) *schedule {
	s := &schedule{interval: interval}
	for i := sender; i < total; i += senders {
		s.phases = append(s.phases, time.Duration(int64(interval)*int64(i)/int64(total)))
	}
	return s
}

// slotSession maps slot j of this sender back to its session index.
func slotSession(slot, sender, senders int) int { return sender + slot*senders }

// due is when the next slot is due, counted from the start of the schedule.
func (s *schedule) due() time.Duration {
	return time.Duration(s.round)*s.interval + s.phases[s.pos]
}

// take calls send for every slot due at or before now, in due order, and
// returns when the next slot is due. A sender that fell more than a whole
// interval behind (a stalled write, a starved CPU) skips the whole rounds
// it missed and counts them: an open-loop generator that cannot keep up
// must show a lower achieved rate, not hammer the proxy with a catch-up
// burst that hides the stall.
func (s *schedule) take(now time.Duration, send func(slot int)) (next time.Duration) {
	if len(s.phases) == 0 {
		return 1<<63 - 1
	}
	if lag := now - s.due(); lag > s.interval {
		rounds := int64(lag / s.interval)
		s.round += rounds
		s.skipped += rounds * int64(len(s.phases))
	}
	for s.due() <= now {
		send(s.pos)
		s.sent++
		if s.pos++; s.pos == len(s.phases) {
			s.pos = 0
			s.round++
		}
	}
	return s.due()
}
