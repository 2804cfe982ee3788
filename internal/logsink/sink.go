package logsink

import (
	"errors"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultCapacity is the queue size New uses when given none: some
// thousands of lines, seconds of logging at a busy gateway's rate.
const DefaultCapacity = 1 << 20

// FlushTimeout bounds Sync and Close, so a stuck output cannot hang
// shutdown.
const FlushTimeout = 2 * time.Second

// ErrFlushTimeout is what Sync and Close return when the output did not
// take the queued lines within FlushTimeout.
var ErrFlushTimeout = errors.New("logsink: flush timed out: the output is not taking writes")

// Sink queues lines in memory for its writer goroutine, which copies them
// to the output. Write and Dropped are safe for concurrent use and never
// block on the output; Sync and Close wait for it, within FlushTimeout.
type Sink struct {
	out          io.Writer     // the real output; written only by the writer goroutine
	capacity     int           // most bytes accepted and not yet written (queued plus in flight)
	flushTimeout time.Duration // FlushTimeout; a field so tests can shorten it

	// mu guards the fields below it, up to the blank line. It is held
	// only for in-memory work, never across a write to out.
	mu       sync.Mutex
	queue    []byte // accepted lines, whole and in order; cap is capacity, so appends never reallocate
	lines    int    // lines in queue
	inFlight int    // bytes of the batch the writer is writing now; they still count against capacity
	closed   bool   // set by Close; later Writes are dropped

	batch    []byte // the buffer being written; swapped with queue at each batch. Writer-only.
	report   []byte // scratch for the drop report line. Writer-only.
	reported int64  // dropped count at the last report. Writer-only.

	dropped atomic.Int64 // lines that never reached out, since New

	wake   chan struct{}      // capacity 1: there is something to write or report
	flush  chan chan struct{} // Sync's requests; the writer closes each once the queue it saw is written
	stop   chan struct{}      // closed by Close
	exited chan struct{}      // closed when the writer goroutine returns
}

// New returns a Sink writing to out, holding at most capacityBytes of
// lines not yet written (DefaultCapacity if capacityBytes <= 0), and
// starts its writer goroutine; Close ends it. A line longer than the
// capacity is always dropped. New allocates two buffers of that size (the
// queue and the batch being written) and nothing per line afterwards.
func New(out io.Writer, capacityBytes int) *Sink {
	if capacityBytes <= 0 {
		capacityBytes = DefaultCapacity
	}
	s := &Sink{
		out:          out,
		capacity:     capacityBytes,
		flushTimeout: FlushTimeout,
		queue:        make([]byte, 0, capacityBytes),
		batch:        make([]byte, 0, capacityBytes),
		wake:         make(chan struct{}, 1),
		flush:        make(chan chan struct{}),
		stop:         make(chan struct{}),
		exited:       make(chan struct{}),
	}
	go s.writeLoop()
	return s
}

// Write queues a copy of p, one whole line, and returns at once; if the
// queue has no room for all of p, or the Sink is closed, p is dropped and
// counted instead. It never returns an error: zap reports a core's write
// error on its ErrorOutput, which by default is stderr, written inline,
// the very wait this package exists to avoid. Safe for concurrent use.
func (s *Sink) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.mu.Lock()
	if s.closed || len(s.queue)+s.inFlight+len(p) > s.capacity {
		s.dropped.Add(1) // under mu, so a take sees the drops before it and none after
		s.mu.Unlock()
		s.signal() // so the drop is reported even if no other line follows
		return len(p), nil
	}
	wasEmpty := len(s.queue) == 0
	s.queue = append(s.queue, p...)
	s.lines++
	s.mu.Unlock()
	// Only the line that makes the queue non-empty wakes the writer: one
	// take empties the whole queue, and a take after it finds the queue
	// empty again, so the next line signals anew.
	if wasEmpty {
		s.signal()
	}
	return len(p), nil
}

// signal wakes the writer without waiting: one pending wake is enough.
func (s *Sink) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Dropped is the number of lines that never reached the output since New:
// refused because the queue was full or the Sink closed, or lost with a
// write to the output that failed or panicked. Safe for concurrent use.
func (s *Sink) Dropped() int64 { return s.dropped.Load() }

// Sync waits until every line queued before the call has been written to
// the output, at most FlushTimeout (then ErrFlushTimeout). It does not
// call the output's own Sync: the Sink's job ends when Write returns, and
// on a pipe or terminal, stderr's Sync only fails. Once Close has
// returned nil, Sync returns nil at once. Safe for concurrent use; it
// waits, so not on an event loop.
func (s *Sink) Sync() error {
	done := make(chan struct{})
	timeout := time.NewTimer(s.flushTimeout)
	defer timeout.Stop()
	select {
	case s.flush <- done:
	case <-s.exited:
		return nil // Close wrote what was queued
	case <-timeout.C:
		return ErrFlushTimeout
	}
	select {
	case <-done:
		return nil
	case <-timeout.C:
		return ErrFlushTimeout
	}
}

// Close refuses further lines, waits (at most FlushTimeout) until those
// already queued are written, and ends the writer goroutine. If the output
// is stuck, Close returns ErrFlushTimeout and the goroutine ends once the
// output's Write returns. Writes after Close are dropped and counted.
// Calling it again waits again. Safe for concurrent use.
func (s *Sink) Close() error {
	s.mu.Lock()
	first := !s.closed
	s.closed = true
	s.mu.Unlock()
	if first {
		close(s.stop)
	}
	timeout := time.NewTimer(s.flushTimeout)
	defer timeout.Stop()
	select {
	case <-s.exited:
		return nil
	case <-timeout.C:
		return ErrFlushTimeout
	}
}

// writeLoop is the Sink's one goroutine, started by New and ended by
// Close: it writes each batch as soon as there is one, and reports drops
// after it. Its recover is in writeOut, around the one call that is not
// this package's code.
func (s *Sink) writeLoop() {
	defer close(s.exited)
	for {
		select {
		case <-s.wake:
			s.writeQueued()
		case done := <-s.flush:
			// No batch is in flight while the loop is here, so this
			// take holds everything queued before Sync was called.
			s.writeQueued()
			close(done)
		case <-s.stop:
			s.writeQueued() // closed: nothing more can be queued
			return
		}
	}
}

// writeQueued takes everything queued, writes it in one write, then
// reports the drops not yet reported. The report comes after every line
// accepted before the take and before every line accepted after it, so it
// sits at or after the gap, never before lines that preceded it.
// Writer-only.
func (s *Sink) writeQueued() {
	s.mu.Lock()
	lines := s.lines
	droppedBefore := s.dropped.Load()
	s.queue, s.batch = s.batch[:0], s.queue
	s.lines = 0
	s.inFlight = len(s.batch)
	s.mu.Unlock()

	var lost int64
	if len(s.batch) > 0 {
		if !s.writeOut(s.batch) {
			// The output may have taken part of the batch; which part is
			// unknown, so all of it counts as dropped.
			lost = int64(lines)
			s.dropped.Add(lost)
		}
		s.mu.Lock()
		s.inFlight = 0
		s.mu.Unlock()
	}
	if n := droppedBefore + lost; n > s.reported {
		s.report = appendDropReport(s.report[:0], time.Now(), n-s.reported)
		s.reported = n
		s.writeOut(s.report)
	}
}

// writeOut hands p to the output and says whether the output took it.
// Nothing is retried: an output that fails once may fail forever, and the
// loop moves on to the next batch. A panicking output counts as a failed
// write; the recover does nothing else, because logging the panic would
// come back into this Sink and writing it to the output may be what
// panicked. Writer-only.
func (s *Sink) writeOut(p []byte) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	_, err := s.out.Write(p)
	return err == nil
}

// appendDropReport appends the line that marks a gap in the log: JSON with
// zap's production keys, so JSON log readers parse it and people read it.
func appendDropReport(b []byte, now time.Time, n int64) []byte {
	b = append(b, `{"level":"warn","ts":"`...)
	b = now.AppendFormat(b, "2006-01-02T15:04:05.000Z0700") // zapcore.ISO8601TimeEncoder's layout
	b = append(b, `","logger":"logsink","msg":"log lines dropped","dropped":`...)
	b = strconv.AppendInt(b, n, 10)
	return append(b, "}\n"...)
}

// pending is how many bytes are accepted and not yet written. Tests use it.
func (s *Sink) pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) + s.inFlight
}
