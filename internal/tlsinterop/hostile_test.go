package tlsinterop

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/conformance"
	"github.com/wsgate/wsgate/internal/testutil"
	"github.com/wsgate/wsgate/server"
)

// Hostile TLS clients, one scenario at a time (not in parallel: each
// compares the whole process's descriptors and goroutines with its
// baseline). For each: the connection ends, cleanly where TLS allows it,
// counted under its reason; afterwards nothing is left open (Stats.Open,
// descriptors, goroutines back to the baseline); and the canary, an
// honest session on the same server, kept echoing throughout.
//
// Two servers: one with a short handshake timeout for the handshakes that
// stall (TestHostileHandshakes), one with the default timeout for the
// rest (TestHostileSessions), whose honest handshakes must not race a
// short timeout on a loaded machine.

// hostileHandshakeTimeout is the first server's handshake timeout: short,
// so stalled handshakes end quickly.
const hostileHandshakeTimeout = 1500 * time.Millisecond

// hostileSlots is the servers' Config.TLSHandshakes.
const hostileSlots = 4

type hostile struct {
	t      *testing.T
	p      *pki
	srv    *server.Server
	addr   string
	canary *canary
	hello  map[uint16][]byte // a real ClientHello record per version
}

func newHostile(t *testing.T, cfg server.Config) *hostile {
	h := &hostile{t: t, p: newPKI(t)}
	cfg.TLSHandshakes = hostileSlots
	h.srv = startServer(t, cfg, h.p)
	h.addr = h.srv.TLSAddr()
	h.hello = map[uint16][]byte{tls.VersionTLS12: clientHello(t, h.p.client(tls.VersionTLS12)), tls.VersionTLS13: clientHello(t, h.p.client(tls.VersionTLS13))}
	h.canary = startCanary(t, h.addr, h.p.client(0))
	// The client has the 101 a moment before the server counts the
	// session: every scenario's counters start after that.
	st := h.srv.Stats()
	testutil.WaitFor(t, 5*time.Second, "the canary's session counted", func() bool { return st.Sessions.Load() == 1 })
	return h
}

// finish ends the canary and requires that nothing is left open.
func (h *hostile) finish() {
	h.canary.close(h.t)
	h.t.Logf("canary: %d round trips, the slowest %v", h.canary.rounds.Load(), time.Duration(h.canary.slow.Load()))
	st := h.srv.Stats()
	testutil.WaitFor(h.t, 5*time.Second, "no connection open", func() bool { return st.Open.Load() == 0 && st.Sessions.Load() == 0 })
}

// TestHostileHandshakes: clients that never complete a TLS handshake.
func TestHostileHandshakes(t *testing.T) {
	h := newHostile(t, server.Config{HandshakeTimeout: hostileHandshakeTimeout})
	defer h.finish()

	h.run("garbage/binary", counts{"accepted": 1, "tls_failed/not_tls": 1}, func(t *testing.T) {
		c := dialTCP(t, h.addr)
		_, _ = c.Write(bytes.Repeat([]byte{0x00, 0xff, 0x13, 0x37}, 64))
		expectClosed(t, c, 3*time.Second)
	})
	h.run("garbage/sslv2_hello", counts{"accepted": 1, "tls_failed/not_tls": 1}, func(t *testing.T) {
		c := dialTCP(t, h.addr)
		// An SSLv2-style ClientHello: no server speaks it any more.
		_, _ = c.Write([]byte{0x80, 0x2e, 0x01, 0x00, 0x02, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10})
		expectClosed(t, c, 3*time.Second)
	})
	h.run("garbage/plain_http", counts{"accepted": 1, "tls_failed/not_tls": 1}, func(t *testing.T) {
		c := dialTCP(t, h.addr)
		_, _ = c.Write(conformance.NewRequest(h.addr, "/").Bytes())
		got, _ := io.ReadAll(io.LimitReader(c, 4096))
		if !bytes.HasPrefix(got, []byte("HTTP/1.1 400 Bad Request\r\n")) {
			t.Errorf("plain HTTP on the TLS port: %q", got)
		}
	})
	h.run("truncated_hello", counts{"accepted": 1, "tls_failed/timeout": 1}, func(t *testing.T) {
		c := dialTCP(t, h.addr)
		hello := h.hello[tls.VersionTLS13]
		_, _ = c.Write(hello[:len(hello)/2]) // and never the rest
		start := time.Now()
		expectClosed(t, c, hostileHandshakeTimeout+3*time.Second)
		if d := time.Since(start); d < hostileHandshakeTimeout-200*time.Millisecond {
			t.Errorf("closed after %v, before the handshake timeout (%v)", d, hostileHandshakeTimeout)
		}
	})
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		// A whole ClientHello, then nothing: the server sends its flight
		// and waits for the client's, which never comes.
		h.run("hello_then_silence/"+tlsName(v), counts{"accepted": 1, "tls_failed/timeout": 1}, func(t *testing.T) {
			c := dialTCP(t, h.addr)
			_, _ = c.Write(h.hello[v])
			_ = c.SetReadDeadline(time.Now().Add(hostileHandshakeTimeout + 3*time.Second))
			flight, err := io.ReadAll(c)
			if len(flight) == 0 || flight[0] != 22 { // a handshake record: ServerHello
				t.Errorf("the server's flight: %d bytes (% x...)", len(flight), flight[:min(len(flight), 8)])
			}
			if conformance.IsTimeout(err) {
				t.Fatalf("still open after the handshake timeout: %v", err)
			}
		})
	}
}

// TestHostileSessions: connections past the handshake slots, and
// sessions that misbehave after their handshake.
func TestHostileSessions(t *testing.T) {
	h := newHostile(t, server.Config{})
	defer h.finish()

	h.run("too_many_handshakes", counts{"accepted": hostileSlots + 1, "tls_failed/closed": hostileSlots,
		"tls_handshakes": 1, "upgraded": 1, "closed/connection_lost": 1}, func(t *testing.T) {
		// Take every handshake slot with a stalled hello...
		var stalled []net.Conn
		for range hostileSlots {
			c := dialTCP(t, h.addr)
			_, _ = c.Write(h.hello[tls.VersionTLS13][:20])
			stalled = append(stalled, c)
		}
		testutil.WaitFor(t, 5*time.Second, "every handshake slot taken", func() bool { return h.srv.TLSHandshakesRunning() == hostileSlots })
		// ...then a client past them waits in the listen queue, neither
		// closed nor served, until a slot frees.
		waits := h.srv.Stats().TLSHandshakeWaits.Load()
		type result struct {
			s   *rawSession
			err error
		}
		opened := make(chan result, 1)
		go func() {
			s, err := handshakeRaw(h.addr, h.p.client(tls.VersionTLS13))
			if err == nil {
				if err = s.upgrade(h.addr); err != nil {
					_ = s.nc.Close()
				}
			}
			opened <- result{s, err}
		}()
		testutil.WaitFor(t, 5*time.Second, "the listener waiting for a slot", func() bool { return h.srv.Stats().TLSHandshakeWaits.Load() > waits })
		select {
		case r := <-opened:
			t.Fatalf("served or refused while every slot was taken: %v", r.err)
		case <-time.After(500 * time.Millisecond):
		}
		for _, c := range stalled { // the stalled clients give up
			_ = c.Close()
		}
		r := <-opened
		if r.err != nil {
			t.Fatalf("the client that waited: %v", r.err)
		}
		defer r.s.nc.Close()
		r.s.echo(t, []byte("waited for a slot"))
	})

	// After the handshake: records a TLS stack must refuse.
	for _, tc := range []struct {
		name    string
		version uint16
		length  uint16
	}{
		{"tls13_2^14+256+1", tls.VersionTLS13, 1<<14 + 256 + 1}, // RFC 8446 5.2: TLSCiphertext.length past 2^14 + 256
		{"tls13_65535", tls.VersionTLS13, 0xffff},
		{"tls12_2^14+2048+1", tls.VersionTLS12, 1<<14 + 2048 + 1}, // RFC 5246 6.2.3
	} {
		h.run("oversized_record/"+tc.name, sessionCounts("tls_read_errors", "closed/connection_lost"), func(t *testing.T) {
			s := openRaw(t, h.addr, h.p.client(tc.version))
			s.echo(t, []byte("before"))
			hdr := []byte{23, 3, 3, 0, 0}
			binary.BigEndian.PutUint16(hdr[3:], tc.length)
			// The header and a little of the body: refused from the header.
			_, _ = s.nc.Write(append(hdr, make([]byte, 512)...))
			err := s.expectEnd(t)
			if err == nil || !strings.Contains(err.Error(), "record overflow") {
				t.Errorf("want the record_overflow alert, got %v", err)
			}
		})
	}

	h.run("renegotiation_tls12", sessionCounts("tls_read_errors", "closed/connection_lost"), func(t *testing.T) {
		// openssl s_client's R command: a ClientHello inside the session.
		// crypto/tls servers never renegotiate: the answer is a fatal
		// unexpected_message alert and the end of the connection.
		bin := needOpenSSL(t)
		sc := sClient(t, bin, h.p, h.addr, "-tls1_2", "-msg")
		off := wsUpgrade(t, sc, h.addr)
		wsEcho(t, sc, off, conformance.OpText, []byte("before renegotiation"))
		sc.send(t, []byte("R\n"))
		sc.waitOut(t, off, []byte("Alert [length 0002], fatal unexpected_message"), 5*time.Second)
		if err := sc.exit(t, 5*time.Second); err == nil {
			t.Errorf("s_client exited 0 after a refused renegotiation")
		}
		if !strings.Contains(sc.err.String(), "RENEGOTIATING") {
			t.Errorf("s_client did not renegotiate:\n%s", sc.describe())
		}
	})

	h.run("key_update_tls13", sessionCounts("closed/client_close"), func(t *testing.T) {
		// openssl s_client's k and K commands: a KeyUpdate, then one that
		// asks the server to update its own keys too. Legitimate in TLS
		// 1.3: the session must go on, and the server must answer K with a
		// KeyUpdate of its own. (Go's crypto/tls client cannot send one on
		// demand: openssl is the peer that can.)
		bin := needOpenSSL(t)
		sc := sClient(t, bin, h.p, h.addr, "-tls1_3", "-msg")
		off := wsUpgrade(t, sc, h.addr)
		off = wsEcho(t, sc, off, conformance.OpText, []byte("before any key update"))
		// s_client takes a line that starts with a command letter whole:
		// what follows the command waits until it was seen.
		sc.send(t, []byte("k\n"))
		errOff := sc.waitErr(t, 0, []byte("KEYUPDATE\n"), 5*time.Second)
		off = wsEcho(t, sc, off, conformance.OpBinary, []byte("after k"))
		sc.send(t, []byte("K\n"))
		sc.waitErr(t, errOff, []byte("KEYUPDATE\n"), 5*time.Second)
		next := wsEcho(t, sc, off, conformance.OpText, []byte("after K"))
		if !bytes.Contains(sc.out.Bytes()[off:next], []byte("<<< TLS 1.3, Handshake [length 0005], KeyUpdate")) {
			t.Errorf("the server did not answer the requested key update with its own\n%s", sc.describe())
		}
		off = wsEcho(t, sc, next, conformance.OpText, []byte("after both"))
		wsClose(t, sc, off)
		_ = sc.exit(t, 5*time.Second)
	})

	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		h.run("close_notify_mid_message/"+tlsName(v), sessionCounts("closed/connection_lost"), func(t *testing.T) {
			s := openRaw(t, h.addr, h.p.client(v))
			s.echo(t, []byte("before"))
			// The header of a 1000-byte frame and 10 bytes of it, then
			// close_notify: a clean TLS end in the middle of a message.
			mask := conformance.RandomMask()
			_, _ = s.tc.Write(append(conformance.AppendHeader(nil, conformance.OpBinary, true, 0, true, mask, 1000), make([]byte, 10)...))
			if err := s.tc.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if err := s.expectEnd(t); !errors.Is(err, io.EOF) {
				t.Errorf("want the server's close_notify (EOF), got %v", err)
			}
			if !s.tap.endsWithAlert(v) {
				t.Errorf("the server's last record is not an alert (close_notify): %v", s.tap.records())
			}
		})
	}
}

// sessionCounts are the counters of one connection that completed its
// handshake and upgrade, and ended as the outcomes say.
func sessionCounts(outcomes ...string) counts {
	c := counts{"accepted": 1, "tls_handshakes": 1, "upgraded": 1}
	for _, o := range outcomes {
		c[o]++
	}
	return c
}

// run is one scenario: it must move the server's counters by exactly
// want, give back every descriptor and goroutine, and leave the canary
// working.
func (h *hostile) run(name string, want counts, scenario func(t *testing.T)) {
	h.t.Run(name, func(t *testing.T) {
		base := takeResources(t)
		// Registered first, so it runs last: after the cleanups that close
		// the scenario's own sockets and end its peer processes.
		t.Cleanup(func() { waitResources(t, base) })
		before := readCounts(h.srv.Stats())
		rounds := h.canary.rounds.Load()
		scenario(t)
		waitCounts(t, h.srv.Stats(), before, want)
		h.canary.check(t, rounds, 3)
	})
}

func tlsName(v uint16) string {
	return strings.ReplaceAll(strings.ToLower(tls.VersionName(v)), " ", "")
}

func dialTCP(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// expectClosed requires the server to end c within: whatever it sends
// first (an alert), then EOF or a reset.
func expectClosed(t testing.TB, c net.Conn, within time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(within))
	_, err := io.Copy(io.Discard, c)
	if conformance.IsTimeout(err) {
		t.Fatalf("the connection is still open after %v", within)
	}
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("waiting for the end: %v", err)
	}
}

// clientHello is the first record a crypto/tls client with cfg sends: its
// ClientHello, whole.
func clientHello(t testing.TB, cfg *tls.Config) []byte {
	t.Helper()
	a, b := net.Pipe()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = tls.Client(a, cfg).Handshake() }()
	defer func() { _ = a.Close(); _ = b.Close(); wg.Wait() }()
	_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
	rec := make([]byte, 5)
	if _, err := io.ReadFull(b, rec); err != nil {
		t.Fatal(err)
	}
	rec = append(rec, make([]byte, binary.BigEndian.Uint16(rec[3:]))...)
	if _, err := io.ReadFull(b, rec[5:]); err != nil {
		t.Fatal(err)
	}
	return rec
}

// rawSession is a session over a crypto/tls client with the TCP
// connection and a record of every byte the server sent at hand, for
// writing what crypto/tls would never write and seeing how TLS ended.
type rawSession struct {
	nc  net.Conn
	tap *tap
	tc  *tls.Conn
	r   *bufio.Reader // over tc
}

func openRaw(t testing.TB, addr string, cfg *tls.Config) *rawSession {
	t.Helper()
	s := dialRaw(t, addr, cfg)
	if err := s.upgrade(addr); err != nil {
		t.Fatal(err)
	}
	return s
}

// handshakeRaw dials addr and makes the TLS handshake: a connection ready
// for a request, or the error (usable from any goroutine). The caller
// closes s.nc.
func handshakeRaw(addr string, cfg *tls.Config) (*rawSession, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	s := &rawSession{nc: nc, tap: &tap{Conn: nc}}
	s.tc = tls.Client(s.tap, cfg)
	_ = s.tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := s.tc.Handshake(); err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("handshake: %w", err)
	}
	s.r = bufio.NewReader(s.tc)
	return s, nil
}

// upgrade sends the upgrade request and reads the 101 up to the blank line.
func (s *rawSession) upgrade(addr string) error {
	req := conformance.NewRequest(addr, "/hostile")
	if _, err := s.tc.Write(req.Bytes()); err != nil {
		return fmt.Errorf("upgrade request: %w", err)
	}
	status, err := s.r.ReadString('\n')
	if err != nil || !strings.Contains(status, " 101 ") {
		return fmt.Errorf("upgrade: %q %v", status, err)
	}
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("upgrade response: %w", err)
		}
		if line == "\r\n" {
			return nil
		}
	}
}

// echo sends payload in a masked binary frame and requires its echo.
func (s *rawSession) echo(t testing.TB, payload []byte) {
	t.Helper()
	if _, err := s.tc.Write(conformance.Masked(conformance.OpBinary, true, payload)); err != nil {
		t.Fatal(err)
	}
	want := conformance.AppendFrame(nil, conformance.OpBinary, true, 0, false, payload)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(s.r, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("echo: % x, %v", got, err)
	}
}

// expectEnd reads until the server ends the session, within 5 s, and
// returns how it ended: io.EOF for close_notify (or TCP's end at a record
// boundary), the alert the server sent, or a reset.
func (s *rawSession) expectEnd(t testing.TB) error {
	t.Helper()
	_ = s.tc.SetReadDeadline(time.Now().Add(5 * time.Second))
	rest, err := io.ReadAll(s.r)
	if conformance.IsTimeout(err) {
		t.Fatalf("the session is still open (read %d bytes)", len(rest))
	}
	if len(rest) > 0 {
		t.Errorf("the server sent %d bytes before the end: % x", len(rest), rest[:min(len(rest), 32)])
	}
	if err == nil {
		err = io.EOF
	}
	return err
}

// tap is a net.Conn that keeps every byte read from it.
type tap struct {
	net.Conn
	mu   sync.Mutex
	read []byte
}

func (c *tap) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.read = append(c.read, p[:n]...)
	c.mu.Unlock()
	return n, err
}

// record is a TLS record's outer type and length.
type record struct {
	Type   byte
	Length int
}

// records splits what was read into records.
func (c *tap) records() []record {
	c.mu.Lock()
	defer c.mu.Unlock()
	var recs []record
	for b := c.read; len(b) >= 5; {
		n := int(binary.BigEndian.Uint16(b[3:5]))
		recs = append(recs, record{b[0], n})
		if len(b) < 5+n {
			break
		}
		b = b[5+n:]
	}
	return recs
}

// endsWithAlert reports whether the last record the server sent is an
// alert. In TLS 1.2 an alert record says so in its header (type 21); in
// 1.3 every record is application_data outside, and an alert is the one
// whose plaintext is 2 bytes: 19 = 2 + its inner type + a 16-byte AEAD
// tag (every TLS 1.3 suite has one). A WebSocket frame is never 2 bytes
// here (the scenarios that use this send none that short).
func (c *tap) endsWithAlert(version uint16) bool {
	recs := c.records()
	if len(recs) == 0 {
		return false
	}
	last := recs[len(recs)-1]
	if version == tls.VersionTLS12 {
		return last.Type == 21
	}
	return last.Type == 23 && last.Length == 2+1+16
}
