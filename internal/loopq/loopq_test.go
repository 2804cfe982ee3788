package loopq

import (
	"reflect"
	"testing"
)

func TestDeferredWorkRunsAfterTheOutermostCallback(t *testing.T) {
	var q Queue
	var log []string
	q.Enter() // OnTraffic of connection A
	q.Defer(func() { log = append(log, "release A") })
	q.Enter() // OnClose of B, inside a write that failed
	q.Defer(func() { log = append(log, "close B's session") })
	log = append(log, "B closed")
	q.Leave()
	if len(log) != 1 {
		t.Fatalf("deferred work ran inside the outer callback: %q", log)
	}
	log = append(log, "A's frame loop ends")
	q.Leave()
	want := []string{"B closed", "A's frame loop ends", "release A", "close B's session"}
	if !reflect.DeepEqual(log, want) {
		t.Fatalf("order %q, want %q", log, want)
	}
	if q.Pending() != 0 || q.depth != 0 {
		t.Fatalf("queue left with %d items at depth %d", q.Pending(), q.depth)
	}
}

func TestWorkDeferredByDeferredWorkRunsInTheSameLeave(t *testing.T) {
	var q Queue
	var log []string
	q.Enter()
	q.Defer(func() {
		log = append(log, "grant")
		q.Defer(func() { log = append(log, "resume the granted session") })
		log = append(log, "grant done")
	})
	q.Defer(func() { log = append(log, "second") })
	q.Leave()
	want := []string{"grant", "grant done", "second", "resume the granted session"}
	if !reflect.DeepEqual(log, want) {
		t.Fatalf("order %q, want %q", log, want)
	}
}

func TestDeferOutsideACallbackRunsAtOnce(t *testing.T) {
	var q Queue
	ran := false
	q.Defer(func() { ran = true })
	if !ran || q.depth != 0 {
		t.Fatalf("ran %v, depth %d", ran, q.depth)
	}
}

func TestQueueReusesItsArray(t *testing.T) {
	var q Queue
	fn := func() {}
	allocs := testing.AllocsPerRun(100, func() {
		q.Enter()
		q.Defer(fn)
		q.Defer(fn)
		q.Leave()
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per callback with deferred work", allocs)
	}
}

// TestPanicEndsOnlyItsItem: with OnPanic set, a panicking item is told of
// and the rest of the queue runs; the queue is usable after.
func TestPanicEndsOnlyItsItem(t *testing.T) {
	var q Queue
	var told []any
	q.OnPanic = func(r any) { told = append(told, r) }
	ran := 0
	q.Enter()
	q.Defer(func() { panic("boom") })
	q.Defer(func() { ran++ })
	q.Leave()
	if len(told) != 1 || told[0] != "boom" || ran != 1 {
		t.Fatalf("told %v, the next item ran %d times", told, ran)
	}
	q.Enter()
	q.Defer(func() { ran++ })
	q.Leave()
	if ran != 2 || q.Pending() != 0 {
		t.Fatalf("after a panic: ran %d, pending %d", ran, q.Pending())
	}
}
