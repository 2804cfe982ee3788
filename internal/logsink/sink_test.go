package logsink

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/wsgate/wsgate/internal/testutil"
)

// Every test closes its Sinks and unblocks its outputs: no writer
// goroutine may outlive its test.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is an output that keeps everything written to it and notes
// any write that does not end at a line's end.
type recorder struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	split bool // some write did not end with '\n'
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(p) == 0 || p[len(p)-1] != '\n' {
		r.split = true
	}
	return r.buf.Write(p)
}

// lines returns the lines written so far and whether any write split one.
func (r *recorder) lines() ([]string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.SplitAfter(r.buf.String(), "\n")[:strings.Count(r.buf.String(), "\n")], r.split
}

func (r *recorder) has(line string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Contains(r.buf.String(), line)
}

// gate is an output whose Writes block until the test opens it: a stderr
// pipe nobody reads.
type gate struct {
	calls atomic.Int64 // Writes entered, blocked or not
	open  chan struct{}
	once  sync.Once
	recorder
}

func newGate() *gate { return &gate{open: make(chan struct{})} }

func (g *gate) Write(p []byte) (int, error) {
	g.calls.Add(1)
	<-g.open
	return g.recorder.Write(p)
}

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

// stuck returns a Sink over a gate; at cleanup the gate opens and the Sink
// closes, so its goroutine ends even when the test fails early.
func stuck(t testing.TB, capacity int) (*Sink, *gate) {
	g := newGate()
	s := New(g, capacity)
	t.Cleanup(func() { g.release(); _ = s.Close() })
	return s, g
}

// dropReports returns the drop counts of the report lines among lines.
func dropReports(t *testing.T, lines []string) []int64 {
	t.Helper()
	var counts []int64
	for _, l := range lines {
		if !strings.Contains(l, `"logger":"logsink"`) {
			continue
		}
		var r struct {
			Level   string `json:"level"`
			Dropped int64  `json:"dropped"`
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil || r.Level != "warn" {
			t.Fatalf("drop report %q is not a JSON warn line: %v", l, err)
		}
		counts = append(counts, r.Dropped)
	}
	return counts
}

func sum(counts []int64) (total int64) {
	for _, n := range counts {
		total += n
	}
	return total
}

// TestWritesNeverBlockOnStuckOutput is the reason for the package: an
// output that never takes a byte must not hold up a single Write, and the
// memory held stays within the capacity.
func TestWritesNeverBlockOnStuckOutput(t *testing.T) {
	const (
		capacity   = 4096
		goroutines = 8
		perG       = 12_500 // 100,000 Writes in all
	)
	s, g := stuck(t, capacity)
	line := []byte(strings.Repeat("x", 99) + "\n")
	var overCapacity atomic.Int64
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range perG {
				if n, err := s.Write(line); n != len(line) || err != nil {
					t.Errorf("Write = %d, %v; want %d, nil", n, err, len(line))
					return
				}
				if s.pending() > capacity {
					overCapacity.Add(1)
				}
			}
		})
	}
	allReturned := make(chan struct{})
	go func() { wg.Wait(); close(allReturned) }()
	select {
	case <-allReturned:
	case <-time.After(time.Minute): // a guard against hanging, not a speed limit
		t.Fatal("Writes blocked on an output that takes nothing")
	}

	if overCapacity.Load() != 0 {
		t.Fatalf("pending bytes went over the capacity %d times", overCapacity.Load())
	}
	s.mu.Lock()
	qcap, bcap := cap(s.queue), cap(s.batch)
	s.mu.Unlock()
	if qcap != capacity || bcap != capacity {
		t.Fatalf("buffers grew: queue cap %d, batch cap %d; want %d", qcap, bcap, capacity)
	}
	dropped := s.Dropped()
	if dropped == 0 {
		t.Fatal("nothing dropped, though the output took nothing")
	}
	if g.calls.Load() == 0 {
		t.Fatal("the writer never reached the output")
	}

	// Once the output moves, what was accepted comes out, and the gap is reported.
	g.release()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	lines, split := g.lines()
	reports := dropReports(t, lines)
	if split || len(lines)-len(reports) != goroutines*perG-int(dropped) {
		t.Fatalf("output: %d lines (%d reports), split %v; want %d accepted lines",
			len(lines), len(reports), split, goroutines*perG-int(dropped))
	}
	if sum(reports) != dropped {
		t.Fatalf("drop reports %v; want them to add up to %d", reports, dropped)
	}
}

func TestLineArrivesWithoutSync(t *testing.T) {
	var out recorder
	s := New(&out, 0)
	defer s.Close()
	for i := range 3 { // the first line and later ones, after the writer went idle
		line := fmt.Sprintf("line %d\n", i)
		_, _ = s.Write([]byte(line))
		testutil.WaitFor(t, 5*time.Second, "the line on the output", func() bool { return out.has(line) })
	}
}

func TestSyncAndCloseWriteEverythingInOrder(t *testing.T) {
	const n = 10_000
	var out recorder
	s := New(&out, 0)
	var want []string
	write := func(from, to int) {
		for i := from; i < to; i++ {
			line := fmt.Sprintf("line %06d\n", i)
			want = append(want, line)
			_, _ = s.Write([]byte(line))
		}
	}
	check := func(after string) {
		t.Helper()
		got, split := out.lines()
		if split || len(got) != len(want) {
			t.Fatalf("after %s: %d lines (split %v); want %d", after, len(got), split, len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("after %s: line %d is %q; want %q", after, i, got[i], want[i])
			}
		}
	}
	write(0, n)
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	check("Sync")
	write(n, 2*n)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check("Close")
	if s.Dropped() != 0 {
		t.Fatalf("Dropped = %d with room for every line", s.Dropped())
	}
}

func TestDropReport(t *testing.T) {
	s, g := stuck(t, 64)
	_, _ = s.Write([]byte("first\n"))
	testutil.WaitFor(t, 5*time.Second, "the writer to block on the output", func() bool { return g.calls.Load() > 0 })
	for i := range 20 { // 58 bytes of room left: 5 of these fit
		_, _ = s.Write(fmt.Appendf(nil, "line %04d\n", i))
	}
	if s.Dropped() != 15 {
		t.Fatalf("Dropped = %d; want 15", s.Dropped())
	}
	g.release()
	testutil.WaitFor(t, 5*time.Second, "the drop report", func() bool { return g.has(`"dropped":15}`) })
	lines, _ := g.lines()
	want := []string{"first\n", "line 0000\n", "line 0001\n", "line 0002\n", "line 0003\n", "line 0004\n"}
	if len(lines) != len(want)+1 || strings.Join(lines[:len(want)], "") != strings.Join(want, "") {
		t.Fatalf("output %q; want %q then the report", lines, want)
	}

	// A report counts the drops since the one before, not since New.
	_, _ = s.Write(bytes.Repeat([]byte("y"), 65)) // longer than the capacity: always dropped
	testutil.WaitFor(t, 5*time.Second, "the second drop report", func() bool {
		lines, _ := g.lines()
		return len(dropReports(t, lines)) == 2
	})
	lines, _ = g.lines()
	if r := dropReports(t, lines); r[1] != 1 {
		t.Fatalf("second report says %d dropped; want 1", r[1])
	}
}

// TestConcurrentWriters: with many writers and a queue that fills, every
// line not counted as dropped comes out exactly once, whole, and in its
// writer's order, and the reports account for every drop.
func TestConcurrentWriters(t *testing.T) {
	const (
		goroutines = 16
		perG       = 2000
	)
	var out recorder
	s := New(&out, 2048)
	var wg sync.WaitGroup
	for w := range goroutines {
		wg.Go(func() {
			var line []byte // reused, as zap reuses its buffer
			for i := range perG {
				line = fmt.Appendf(line[:0], "w%02d %06d %s\n", w, i, strings.Repeat("p", i%50))
				_, _ = s.Write(line)
			}
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	lines, split := out.lines()
	if split {
		t.Fatal("a write split a line")
	}
	last := make([]int, goroutines)
	for i := range last {
		last[i] = -1
	}
	seen := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "{") {
			continue // a drop report, checked below
		}
		var w, i int
		if _, err := fmt.Sscanf(l, "w%d %d", &w, &i); err != nil || w < 0 || w >= goroutines ||
			l != fmt.Sprintf("w%02d %06d %s\n", w, i, strings.Repeat("p", i%50)) {
			t.Fatalf("mangled line %q (%v)", l, err)
		}
		if i <= last[w] {
			t.Fatalf("writer %d: line %d after line %d (a repeat or out of order)", w, i, last[w])
		}
		last[w] = i
		seen++
	}
	if seen+int(s.Dropped()) != goroutines*perG {
		t.Fatalf("%d lines out + %d dropped; want %d", seen, s.Dropped(), goroutines*perG)
	}
	if reported := sum(dropReports(t, lines)); reported != s.Dropped() {
		t.Fatalf("reports add up to %d; Dropped = %d", reported, s.Dropped())
	}
	t.Logf("%d lines out, %d dropped", seen, s.Dropped())
}

func TestSyncAndCloseGiveUpOnStuckOutput(t *testing.T) {
	s, g := stuck(t, 0)
	s.flushTimeout = 20 * time.Millisecond
	_, _ = s.Write([]byte("line\n"))
	testutil.WaitFor(t, 5*time.Second, "the writer to block on the output", func() bool { return g.calls.Load() > 0 })
	if err := s.Sync(); !errors.Is(err, ErrFlushTimeout) {
		t.Fatalf("Sync = %v; want ErrFlushTimeout", err)
	}
	if err := s.Close(); !errors.Is(err, ErrFlushTimeout) {
		t.Fatalf("Close = %v; want ErrFlushTimeout", err)
	}
	g.release() // the goroutine ends once the output returns
	testutil.WaitFor(t, 5*time.Second, "the writer goroutine to end", func() bool {
		select {
		case <-s.exited:
			return true
		default:
			return false
		}
	})
	if !g.has("line\n") {
		t.Fatal("the line in flight was lost")
	}
}

func TestWriteAfterClose(t *testing.T) {
	var out recorder
	s := New(&out, 0)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Write([]byte("late\n")); n != 5 || err != nil {
		t.Fatalf("Write after Close = %d, %v; want 5, nil", n, err)
	}
	if s.Dropped() != 1 {
		t.Fatalf("Dropped = %d; want 1", s.Dropped())
	}
	if err := s.Sync(); err != nil {
		t.Fatalf("Sync after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if out.has("late") {
		t.Fatal("a line written after Close reached the output")
	}
}

// panicOnce panics on its first Write and records the rest.
type panicOnce struct {
	panicked atomic.Bool
	recorder
}

func (p *panicOnce) Write(b []byte) (int, error) {
	if p.panicked.CompareAndSwap(false, true) {
		panic("output broke")
	}
	return p.recorder.Write(b)
}

func TestPanickingOutputLosesOnlyItsBatch(t *testing.T) {
	var out panicOnce
	s := New(&out, 0)
	defer s.Close()
	_, _ = s.Write([]byte("lost\n"))
	testutil.WaitFor(t, 5*time.Second, "the panicking batch to count as dropped", func() bool { return s.Dropped() == 1 })
	_, _ = s.Write([]byte("after\n"))
	testutil.WaitFor(t, 5*time.Second, "the next line", func() bool { return out.has("after\n") })
	lines, _ := out.lines()
	if r := dropReports(t, lines); len(r) != 1 || r[0] != 1 {
		t.Fatalf("drop reports %v; want one of 1", r)
	}
}

func TestDefaultCapacity(t *testing.T) {
	s := New(io.Discard, 0)
	defer s.Close()
	if s.capacity != DefaultCapacity || cap(s.queue) != DefaultCapacity {
		t.Fatalf("capacity %d, queue cap %d; want %d", s.capacity, cap(s.queue), DefaultCapacity)
	}
}

var benchLine = []byte(`{"level":"info","ts":"2026-01-02T15:04:05.000Z","msg":"session closed","conn":123456,"reason":"client_close","bytes_in":4096}` + "\n")

// BenchmarkWrite is what a log call pays the Sink, the output keeping up.
func BenchmarkWrite(b *testing.B) {
	s := New(io.Discard, 0)
	defer s.Close()
	b.ReportAllocs()
	b.SetBytes(int64(len(benchLine)))
	for b.Loop() {
		_, _ = s.Write(benchLine)
	}
	b.ReportMetric(float64(s.Dropped())/float64(b.N), "dropped/op")
}

// BenchmarkWriteParallel: every P logging at once, as the event loops do.
func BenchmarkWriteParallel(b *testing.B) {
	s := New(io.Discard, 0)
	defer s.Close()
	b.ReportAllocs()
	b.SetBytes(int64(len(benchLine)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, _ = s.Write(benchLine)
		}
	})
	b.ReportMetric(float64(s.Dropped())/float64(b.N), "dropped/op")
}

// BenchmarkWriteStuck is what a log call pays once the output has stopped
// and the queue is full: every line dropped.
func BenchmarkWriteStuck(b *testing.B) {
	s, _ := stuck(b, 0)
	b.ReportAllocs()
	b.SetBytes(int64(len(benchLine)))
	for b.Loop() {
		_, _ = s.Write(benchLine)
	}
}

// BenchmarkZapInfo is a whole log call through zap, on the Sink and on
// the BufferedWriteSyncer it replaces, both over an output that keeps up.
func BenchmarkZapInfo(b *testing.B) {
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	run := func(b *testing.B, ws zapcore.WriteSyncer) {
		log := zap.New(zapcore.NewCore(enc, ws, zapcore.InfoLevel))
		b.ReportAllocs()
		for b.Loop() {
			log.Info("session closed", zap.Int64("conn", 123456), zap.String("reason", "client_close"), zap.Int("bytes_in", 4096))
		}
	}
	b.Run("logsink", func(b *testing.B) {
		s := New(io.Discard, 0)
		defer s.Close()
		run(b, s)
	})
	b.Run("BufferedWriteSyncer", func(b *testing.B) {
		ws := &zapcore.BufferedWriteSyncer{WS: zapcore.AddSync(io.Discard), FlushInterval: time.Second}
		defer ws.Stop()
		run(b, ws)
	})
}
