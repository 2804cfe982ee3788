package looptls

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/wsgate/wsgate/internal/testcert"
)

// fakeLoopConn is the part of a gnet.Conn that Conn and Shim use: an
// inbound buffer the test fills, and the writes Conn made.
type fakeLoopConn struct {
	gnet.Conn
	in     []byte
	writes [][]byte
	closed bool
}

func (f *fakeLoopConn) Peek(n int) ([]byte, error) {
	if n <= 0 || n > len(f.in) {
		return f.in, nil
	}
	return f.in[:n], nil
}

func (f *fakeLoopConn) Discard(n int) (int, error) {
	n = min(n, len(f.in))
	f.in = f.in[n:]
	return n, nil
}

func (f *fakeLoopConn) InboundBuffered() int  { return len(f.in) }
func (f *fakeLoopConn) OutboundBuffered() int { return 0 }
func (f *fakeLoopConn) Close() error          { f.closed = true; return nil }
func (f *fakeLoopConn) Write(p []byte) (int, error) {
	f.writes = append(f.writes, bytes.Clone(p))
	return len(p), nil
}

// capture is the client's transport: during the handshake a pipe to the
// server; after it, writes are kept (the records the test feeds the loop
// connection) and reads come from what the test hands it.
type capture struct {
	net.Conn
	mu       sync.Mutex
	attached bool
	out      bytes.Buffer
	in       bytes.Buffer
}

func (c *capture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.attached {
		return c.out.Write(p)
	}
	return c.Conn.Write(p)
}

func (c *capture) Read(p []byte) (int, error) {
	c.mu.Lock()
	attached := c.attached
	c.mu.Unlock()
	if attached {
		return c.in.Read(p)
	}
	return c.Conn.Read(p)
}

func (c *capture) take() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := bytes.Clone(c.out.Bytes())
	c.out.Reset()
	return b
}

// pair handshakes a client with a server over a pipe, then attaches the
// server's side to a fake loop connection.
func pair(t *testing.T, version uint16) (*Conn, *fakeLoopConn, *tls.Conn, *capture, *[]error) {
	t.Helper()
	ca, err := testcert.NewCA("looptls test")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Server("example.test")
	if err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	_ = a.SetDeadline(time.Now().Add(5 * time.Second))
	_ = b.SetDeadline(time.Now().Add(5 * time.Second))
	capt := &capture{Conn: a}
	client := tls.Client(capt, &tls.Config{RootCAs: ca.Pool(), ServerName: "example.test", MinVersion: version, MaxVersion: version})
	shim := NewShim(b)
	server := tls.Server(shim, &tls.Config{Certificates: []tls.Certificate{leaf.TLS}})
	done := make(chan error, 1)
	go func() { done <- server.Handshake() }()
	if err := client.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if version == tls.VersionTLS13 {
		// The server's session tickets follow its handshake: let the
		// client read them now, over the pipe, so they are not mistaken
		// for the records under test.
		_ = a.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		_, _ = client.Read(make([]byte, 1))
		_ = a.SetReadDeadline(time.Time{})
	}
	capt.mu.Lock()
	capt.attached = true
	capt.mu.Unlock()
	fake := &fakeLoopConn{}
	var errs []error
	conn := (&Handshaken{TLS: server, Shim: shim}).Attach(fake, func(err error) { errs = append(errs, err) })
	return conn, fake, client, capt, &errs
}

func TestPlaintextIsHeldOnlyWhileUnread(t *testing.T) {
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		conn, fake, client, capt, _ := pair(t, v)
		_, _ = client.Write([]byte("hello "))
		_, _ = client.Write([]byte("world"))
		records := capt.take()
		// Half of it first: a partial record yields nothing and no error.
		fake.in = append(fake.in, records[:len(records)-3]...)
		got, _ := conn.Peek(-1)
		if string(got) != "hello " || conn.ReadErr() != nil {
			t.Fatalf("%x: after a record and a half: %q %v", v, got, conn.ReadErr())
		}
		fake.in = append(fake.in, records[len(records)-3:]...)
		got, _ = conn.Peek(-1)
		if string(got) != "hello world" {
			t.Fatalf("%x: %q", v, got)
		}
		if _, err := conn.Discard(6); err != nil {
			t.Fatal(err)
		}
		if got, _ := conn.Peek(5); string(got) != "world" {
			t.Fatalf("%x: after discarding 6: %q", v, got)
		}
		if _, err := conn.Peek(6); !errors.Is(err, io.ErrShortBuffer) {
			t.Fatalf("%x: peek past the end: %v", v, err)
		}
		_, _ = conn.Discard(-1)
		if conn.held != nil || conn.InboundBuffered() != 0 {
			t.Fatalf("%x: a buffer is held with nothing unread", v)
		}
	}
}

func TestWritevIsOneRecordInOneWrite(t *testing.T) {
	conn, fake, client, capt, _ := pair(t, tls.VersionTLS13)
	if _, err := conn.Writev([][]byte{[]byte("frame header "), []byte("and "), []byte("payload")}); err != nil {
		t.Fatal(err)
	}
	if len(fake.writes) != 1 {
		t.Fatalf("%d writes to the loop connection, want 1", len(fake.writes))
	}
	rec := fake.writes[0]
	if n := int(rec[3])<<8 | int(rec[4]); 5+n != len(rec) {
		t.Fatalf("want one record: first record %d bytes of %d written", 5+n, len(rec))
	}
	capt.mu.Lock()
	capt.in.Write(rec)
	capt.mu.Unlock()
	buf := make([]byte, 64)
	n, err := client.Read(buf)
	if err != nil || string(buf[:n]) != "frame header and payload" {
		t.Fatalf("client read %q %v", buf[:n], err)
	}
}

func TestCloseNotifyEndsReading(t *testing.T) {
	conn, fake, client, capt, errs := pair(t, tls.VersionTLS13)
	_, _ = client.Write([]byte("last words"))
	_ = client.CloseWrite()
	fake.in = capt.take()
	got, _ := conn.Peek(-1)
	if string(got) != "last words" {
		t.Fatalf("data before close_notify: %q", got)
	}
	if !errors.Is(conn.ReadErr(), io.EOF) || len(*errs) != 1 || !fake.closed {
		t.Fatalf("after close_notify: err %v, told %v, closed %v", conn.ReadErr(), *errs, fake.closed)
	}
	// The owner answers what came before the end (a close frame) first,
	// then says goodbye: the answer must still go out.
	if _, err := conn.Write([]byte("close reply")); err != nil {
		t.Fatalf("a write after the peer's close_notify, before ours: %v", err)
	}
	conn.CloseNotify()
	if len(fake.writes) < 2 {
		t.Fatalf("%d writes: want the answer, then close_notify in answer", len(fake.writes))
	}
	_, _ = conn.Peek(-1) // told once only
	if len(*errs) != 1 {
		t.Fatalf("told %d times", len(*errs))
	}
}

func TestBadRecordEndsReading(t *testing.T) {
	conn, fake, _, _, errs := pair(t, tls.VersionTLS12)
	fake.in = append([]byte{23, 3, 3, 0, 40}, bytes.Repeat([]byte{0xAB}, 40)...)
	if got, _ := conn.Peek(-1); len(got) != 0 {
		t.Fatalf("a forged record decrypted to %q", got)
	}
	if conn.ReadErr() == nil || errors.Is(conn.ReadErr(), io.EOF) || len(*errs) != 1 || !fake.closed {
		t.Fatalf("after a bad record: err %v, closed %v", conn.ReadErr(), fake.closed)
	}
	if len(fake.writes) == 0 {
		t.Fatal("no alert sent")
	}
	conn.Gone()
	if _, err := conn.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after Gone: %v", err)
	}
}

// TestReadingARecordMakesLittleGarbage: a record read and discarded puts
// its plaintext buffer back where the next record finds it. (bytebufferpool
// dropped every 16 KiB buffer holding a 1 KiB message: 16 KiB of garbage
// per record, which showed as garbage collection in wss:// profiles.)
func TestReadingARecordMakesLittleGarbage(t *testing.T) {
	conn, fake, client, capt, _ := pair(t, tls.VersionTLS13)
	// More records than bytebufferpool's calibration threshold (42,000
	// calls) before the measured ones: past it, it drops what it deems
	// oversized.
	const warm, n = 43000, 500
	msg := bytes.Repeat([]byte("m"), 1024)
	read := func(records [][]byte) {
		for _, rec := range records {
			fake.in = rec
			if got, _ := conn.Peek(-1); len(got) != len(msg) {
				t.Fatalf("read %d bytes, want %d", len(got), len(msg))
			}
			_, _ = conn.Discard(-1)
		}
	}
	records := make([][]byte, warm+n)
	for i := range records {
		_, _ = client.Write(msg)
		records[i] = capt.take()
	}
	read(records[:warm])
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	read(records[warm:])
	runtime.ReadMemStats(&after)
	// Under -race, sync.Pool drops a quarter of what is put back.
	if per := (after.TotalAlloc - before.TotalAlloc) / n; per > 8<<10 {
		t.Fatalf("%d bytes allocated per 1 KiB record read", per)
	}
}

// TestEndHeardByAnOwnerThatCloses: the owner told of the end closes the
// connection at once (as a pool connection does): fill must not touch the
// buffers Close gave back. (It dereferenced them: a wss:// backend sending
// close_notify right after its 101 crashed the process.)
func TestEndHeardByAnOwnerThatCloses(t *testing.T) {
	conn, fake, client, capt, _ := pair(t, tls.VersionTLS13)
	conn.onError = func(error) { _ = conn.Close() }
	_, _ = client.Write([]byte("last words"))
	_ = client.CloseWrite()
	fake.in = capt.take()
	got, _ := conn.Peek(-1)
	if len(got) != 0 || !errors.Is(conn.ReadErr(), io.EOF) && !errors.Is(conn.ReadErr(), net.ErrClosed) {
		t.Fatalf("after an end its owner closed on: %q, %v", got, conn.ReadErr())
	}
	if !fake.closed {
		t.Fatal("not closed")
	}
}
