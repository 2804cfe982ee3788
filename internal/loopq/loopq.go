// Package loopq is the work one event loop runs after the callback it is
// in returns: how a connection's callback triggers work on another
// connection of the same loop without re-entering it.
//
// A release inside one backend connection's OnTraffic grants a waiting
// session, which then writes to another connection: done inside the
// first callback, the second connection's handler would run in the middle
// of the first one's frame loop, and either could close the other under
// it. nats-server defers such cross-client work to the end of its read
// loop; here every loop callback (gnet's OnOpen, OnTraffic, OnClose, the
// tasks run through Execute) runs between Enter and Leave, and work
// deferred inside runs when the outermost callback leaves.
//
// A Queue belongs to one event loop and is touched only on it. Callbacks
// nest (gnet runs OnClose inside a write that fails), so Enter and Leave
// count depth; only the outermost Leave runs the queue.
package loopq

// Queue is one loop's deferred work. The zero value is ready. Loop-only.
type Queue struct {
	depth int
	work  []func()
	// OnPanic, if set, hears a panic of a queued item, which ends that
	// item only: the rest of the queue still runs. Unset, the panic goes
	// on up.
	OnPanic func(r any)
}

// Enter marks the start of a loop callback.
func (q *Queue) Enter() { q.depth++ }

// Leave marks its end. Leaving the outermost callback runs the queued
// work in order, each item as a callback of its own: what it defers runs
// after it, in the same Leave.
func (q *Queue) Leave() {
	if q.depth > 1 {
		q.depth--
		return
	}
	for i := 0; i < len(q.work); i++ {
		fn := q.work[i]
		q.work[i] = nil
		q.run(fn) // depth is still 1: its deferrals append to q.work
	}
	q.work = q.work[:0]
	q.depth = 0
}

func (q *Queue) run(fn func()) {
	if q.OnPanic != nil {
		defer func() {
			if r := recover(); r != nil {
				q.OnPanic(r)
			}
		}()
	}
	fn()
}

// Defer queues fn to run after the current callback. Outside any
// callback (depth 0) it runs fn at once.
func (q *Queue) Defer(fn func()) {
	if q.depth == 0 {
		q.Enter()
		fn()
		q.Leave()
		return
	}
	q.work = append(q.work, fn)
}

// Outermost reports whether the current callback is not nested in another.
func (q *Queue) Outermost() bool { return q.depth <= 1 }

// Pending is the number of items waiting to run.
func (q *Queue) Pending() int { return len(q.work) }
