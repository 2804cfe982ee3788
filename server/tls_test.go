package server

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/internal/conformance"
	"github.com/wsgate/wsgate/internal/testcert"
	"github.com/wsgate/wsgate/internal/testutil"
	"github.com/wsgate/wsgate/internal/tlsconf"
)

// TLS on the client listener: the RFC 6455 suite over TLS 1.2 and 1.3, the
// request arriving in the handshake's last flight, SNI, resumption, client
// certificates, reload without dropping a session, and hostile inputs
// (not TLS, a stalled hello, too many handshakes, bad and oversized
// records, close_notify mid-message). Outcomes only: the server stays up,
// each bad connection ends and is counted for its reason.

// tlsFixture is a CA, the files of a server certificate for 127.0.0.1
// and a.test and of one for b.test, and a client configuration trusting
// the CA.
type tlsFixture struct {
	ca             *testcert.CA
	dir            string
	certA, keyA    string
	certB, keyB    string
	caFile         string
	client         *tls.Config
	serverSettings *tlsconf.Server
}

func newTLSFixture(t testing.TB, opts tlsconf.ServerOptions) *tlsFixture {
	t.Helper()
	ca, err := testcert.NewCA("wsgate test CA")
	if err != nil {
		t.Fatal(err)
	}
	f := &tlsFixture{ca: ca, dir: t.TempDir()}
	a, err := ca.Server("127.0.0.1", "a.test")
	if err != nil {
		t.Fatal(err)
	}
	b, err := ca.Server("b.test")
	if err != nil {
		t.Fatal(err)
	}
	if f.certA, f.keyA, err = a.Write(f.dir, "a"); err != nil {
		t.Fatal(err)
	}
	if f.certB, f.keyB, err = b.Write(f.dir, "b"); err != nil {
		t.Fatal(err)
	}
	if f.caFile, err = ca.Write(f.dir, "ca"); err != nil {
		t.Fatal(err)
	}
	opts.CertFiles = []string{f.certA, f.certB}
	opts.KeyFiles = []string{f.keyA, f.keyB}
	if f.serverSettings, err = tlsconf.NewServer(opts); err != nil {
		t.Fatal(err)
	}
	f.client = &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"}
	return f
}

// startTLSServer starts a server with a plain and a TLS listener.
func startTLSServer(t testing.TB, cfg Config, f *tlsFixture) *Server {
	t.Helper()
	cfg.TLSAddr = "127.0.0.1:0"
	cfg.TLS = f.serverSettings.Config()
	return startTestServer(t, cfg)
}

// clientVersion is f's client configuration limited to one TLS version.
func (f *tlsFixture) clientVersion(v uint16) *tls.Config {
	c := f.client.Clone()
	c.MinVersion, c.MaxVersion = v, v
	return c
}

func TestConformanceOverTLS(t *testing.T) {
	t.Parallel()
	for _, v := range []struct {
		name    string
		version uint16
	}{{"tls12", tls.VersionTLS12}, {"tls13", tls.VersionTLS13}} {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			f := newTLSFixture(t, tlsconf.ServerOptions{})
			srv := startTLSServer(t, Config{}, f)
			target := confTarget(srv)
			target.Addr = srv.TLSAddr()
			target.TLS = f.clientVersion(v.version)
			conformance.Run(t, target)
			confIdle(t, srv)
			st := srv.Stats()
			if st.TLSHandshakes.Load() != st.Accepted.Load() {
				t.Errorf("%d accepted, %d TLS handshakes (%s)", st.Accepted.Load(), st.TLSHandshakes.Load(), confStats(st))
			}
			for r := range TLSFailureNames() {
				if n := st.TLSFailures(TLSFailure(r)); n != 0 {
					t.Errorf("%d handshakes failed as %s", n, TLSFailure(r))
				}
			}
		})
	}
}

// bufferedConn holds every write after the first until flush: the
// client's last handshake flight and its upgrade request reach the server
// in one segment, so the request is read with the handshake.
type bufferedConn struct {
	net.Conn
	writes int
	held   []byte
}

func (b *bufferedConn) Write(p []byte) (int, error) {
	b.writes++
	if b.writes == 1 {
		return b.Conn.Write(p)
	}
	b.held = append(b.held, p...)
	return len(p), nil
}

func (b *bufferedConn) flush() error {
	_, err := b.Conn.Write(b.held)
	b.held = nil
	return err
}

func TestTLSRequestInTheHandshakeFlight(t *testing.T) {
	t.Parallel()
	f := newTLSFixture(t, tlsconf.ServerOptions{})
	srv := startTLSServer(t, Config{}, f)
	nc, err := net.Dial("tcp", srv.TLSAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	bc := &bufferedConn{Conn: nc}
	tc := tls.Client(bc, f.clientVersion(tls.VersionTLS13))
	if err := tc.Handshake(); err != nil { // 1.3: the client's Finished needs no answer
		t.Fatal(err)
	}
	req := conformance.NewRequest(srv.TLSAddr(), "/")
	frame := conformance.Masked(conformance.OpText, true, []byte("hello"))
	if _, err := tc.Write(append(req.Bytes(), frame...)); err != nil {
		t.Fatal(err)
	}
	if err := bc.flush(); err != nil { // Finished, request and frame in one segment
		t.Fatal(err)
	}
	got, err := io.ReadAll(io.LimitReader(tc, 4096))
	if err == nil && !bytes.Contains(got, []byte("hello")) {
		// ReadAll stops at the limit or the deadline; the echo is what counts.
		t.Fatalf("no echo of the frame sent with the handshake: %q", got)
	}
	if !bytes.Contains(got, []byte("101 Switching Protocols")) || !bytes.Contains(got, []byte("hello")) {
		t.Fatalf("want the upgrade and the echo; got %q (%v)", got, err)
	}
}

func TestTLSNamesAndResumption(t *testing.T) {
	t.Parallel()
	f := newTLSFixture(t, tlsconf.ServerOptions{})
	srv := startTLSServer(t, Config{}, f)
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		cfg := f.clientVersion(v)
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
		cfg.NextProtos = []string{"http/1.1"}
		for _, name := range []string{"a.test", "b.test"} {
			cfg.ServerName = name
			for round := range 2 {
				state := tlsEcho(t, srv.TLSAddr(), cfg)
				if got := state.PeerCertificates[0].DNSNames; len(got) == 0 || !contains(got, name) {
					t.Errorf("%x %s: certificate for %v", v, name, got)
				}
				if round == 1 && !state.DidResume {
					t.Errorf("%x %s: second connection did not resume", v, name)
				}
				if state.NegotiatedProtocol != "http/1.1" {
					t.Errorf("ALPN: %q", state.NegotiatedProtocol)
				}
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// tlsEcho opens a session over TLS with cfg, echoes one message, closes
// 1000 and returns the connection's TLS state.
func tlsEcho(t testing.TB, addr string, cfg *tls.Config) tls.ConnectionState {
	t.Helper()
	d := websocket.Dialer{TLSClientConfig: cfg, HandshakeTimeout: 5 * time.Second}
	c, _, err := d.Dial("wss://"+addr+"/", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := c.WriteMessage(websocket.TextMessage, []byte("ping over tls")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "ping over tls" {
		t.Fatalf("echo: %q %v", msg, err)
	}
	_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
	if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, 1000) {
		t.Fatalf("close: %v", err)
	}
	return c.UnderlyingConn().(*tls.Conn).ConnectionState()
}

func TestTLSClientCertificates(t *testing.T) {
	t.Parallel()
	ca, err := testcert.NewCA("client CA")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caFile, err := ca.Write(dir, "client-ca")
	if err != nil {
		t.Fatal(err)
	}
	f := newTLSFixture(t, tlsconf.ServerOptions{ClientCA: caFile})
	srv := startTLSServer(t, Config{}, f)
	good, err := ca.Client("alice")
	if err != nil {
		t.Fatal(err)
	}
	other, err := testcert.NewCA("someone else")
	if err != nil {
		t.Fatal(err)
	}
	bad, err := other.Client("mallory")
	if err != nil {
		t.Fatal(err)
	}
	cfg := f.clientVersion(tls.VersionTLS13)
	cfg.Certificates = []tls.Certificate{good.TLS}
	tlsEcho(t, srv.TLSAddr(), cfg)

	for name, certs := range map[string][]tls.Certificate{"none": nil, "unknown CA": {bad.TLS}} {
		cfg := f.clientVersion(tls.VersionTLS13)
		cfg.Certificates = certs
		d := websocket.Dialer{TLSClientConfig: cfg, HandshakeTimeout: 5 * time.Second}
		// In 1.3 the client finishes first; the refusal comes as an
		// alert on its first read.
		if c, _, err := d.Dial("wss://"+srv.TLSAddr()+"/", nil); err == nil {
			c.Close()
			t.Errorf("%s: session opened without a valid client certificate", name)
		}
	}
	st := srv.Stats()
	testutil.CheckFor(t, 5*time.Second, func() error {
		if n := st.TLSFailures(TLSClientCert); n != 2 {
			return fmt.Errorf("%d client_cert failures, want 2 (%s)", n, tlsFailureCounts(st))
		}
		return nil
	})
	if st.Upgraded.Load() != 1 {
		t.Fatalf("%d sessions upgraded, want 1", st.Upgraded.Load())
	}
}

func TestTLSReloadKeepsSessions(t *testing.T) {
	t.Parallel()
	f := newTLSFixture(t, tlsconf.ServerOptions{})
	srv := startTLSServer(t, Config{}, f)
	d := websocket.Dialer{TLSClientConfig: f.client, HandshakeTimeout: 5 * time.Second}
	old, _, err := d.Dial("wss://"+srv.TLSAddr()+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	oldSerial := old.UnderlyingConn().(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber

	// A new certificate for the same names, then one file that does not
	// load: the first is in force after Reload, the second is refused and
	// changes nothing.
	leaf, err := f.ca.Server("127.0.0.1", "a.test")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.certA, leaf.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.keyA, leaf.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.serverSettings.Reload(); err != nil {
		t.Fatal(err)
	}
	newSerial := tlsEcho(t, srv.TLSAddr(), f.client).PeerCertificates[0].SerialNumber
	if newSerial.Cmp(oldSerial) == 0 || newSerial.Cmp(leaf.TLS.Leaf.SerialNumber) != 0 {
		t.Fatalf("after reload: serial %v (old %v, new %v)", newSerial, oldSerial, leaf.TLS.Leaf.SerialNumber)
	}
	if err := os.WriteFile(f.keyA, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.serverSettings.Reload(); err == nil {
		t.Fatal("a broken key file was accepted")
	}
	tlsEcho(t, srv.TLSAddr(), f.client)

	// The session opened before both reloads still echoes.
	_ = old.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := old.WriteMessage(websocket.BinaryMessage, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := old.ReadMessage(); err != nil || string(msg) != "still here" {
		t.Fatalf("old session after reload: %q %v", msg, err)
	}
}

func TestTLSHostileClients(t *testing.T) {
	t.Parallel()
	f := newTLSFixture(t, tlsconf.ServerOptions{})
	srv := startTLSServer(t, Config{HandshakeTimeout: 500 * time.Millisecond, TLSHandshakes: 4}, f)
	st := srv.Stats()
	addr := srv.TLSAddr()

	t.Run("not_tls", func(t *testing.T) {
		c := conformance.Dial(t, addr, 5*time.Second)
		c.Write(conformance.NewRequest(addr, "/").Bytes())
		// crypto/tls answers an HTTP request with a 400 of its own.
		got, _ := io.ReadAll(io.LimitReader(c.Conn, 4096))
		if !strings.Contains(string(got), "400") {
			t.Errorf("plain HTTP on the TLS port: %q", got)
		}
		testutil.WaitFor(t, 5*time.Second, "a not_tls failure", func() bool { return st.TLSFailures(TLSNotTLS) >= 1 })
	})

	t.Run("stalled_hello", func(t *testing.T) {
		c := conformance.Dial(t, addr, 5*time.Second)
		// A record header announcing a ClientHello that never comes.
		c.Write([]byte{22, 3, 1, 0x02, 0x00, 1, 0, 1})
		c.ExpectTCPClosed(3 * time.Second)
		testutil.WaitFor(t, 5*time.Second, "a timeout failure", func() bool { return st.TLSFailures(TLSTimeout) >= 1 })
	})

	// Sessions that go bad after the handshake.
	open := func(t *testing.T) (*tls.Conn, net.Conn) {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = nc.Close() })
		tc := tls.Client(nc, f.clientVersion(tls.VersionTLS13))
		_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := tc.Write(conformance.NewRequest(addr, "/").Bytes()); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4096)
		if n, err := tc.Read(buf); err != nil || !bytes.Contains(buf[:n], []byte(" 101 ")) {
			t.Fatalf("upgrade: %q %v", buf[:n], err)
		}
		return tc, nc
	}
	expectEnd := func(t *testing.T, tc *tls.Conn) {
		t.Helper()
		_ = tc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.Copy(io.Discard, tc); err != nil && isTimeout(err) {
			t.Fatal("the session was not closed")
		}
	}

	t.Run("bad_record", func(t *testing.T) {
		tc, nc := open(t)
		before := st.TLSReadErrors.Load()
		// An application-data record whose MAC cannot verify.
		_, _ = nc.Write(append([]byte{23, 3, 3, 0, 40}, bytes.Repeat([]byte{0xAB}, 40)...))
		expectEnd(t, tc)
		testutil.WaitFor(t, 5*time.Second, "a TLS read error", func() bool { return st.TLSReadErrors.Load() > before })
	})

	t.Run("oversized_record", func(t *testing.T) {
		tc, nc := open(t)
		before := st.TLSReadErrors.Load()
		// A record header announcing 1 MiB: refused from the header, never buffered.
		hdr := []byte{23, 3, 3, 0, 0}
		binary.BigEndian.PutUint16(hdr[3:], 0xFFFF)
		_, _ = nc.Write(append(hdr, make([]byte, 1024)...))
		expectEnd(t, tc)
		testutil.WaitFor(t, 5*time.Second, "a TLS read error", func() bool { return st.TLSReadErrors.Load() > before })
	})

	t.Run("close_notify_mid_message", func(t *testing.T) {
		tc, _ := open(t)
		mask := conformance.RandomMask()
		// The header of a 1000-byte frame and 10 bytes of it, then close_notify.
		_, _ = tc.Write(append(conformance.AppendHeader(nil, conformance.OpBinary, true, 0, true, mask, 1000), make([]byte, 10)...))
		_ = tc.CloseWrite()
		expectEnd(t, tc)
	})

	// Through all of it the server kept serving, and every connection ended.
	tlsEcho(t, addr, f.client)
	testutil.WaitFor(t, 10*time.Second, "every connection closed", func() bool { return st.Open.Load() == 0 && st.Sessions.Load() == 0 })
}

// The endpoint echoes 16 MiB over TLS to a client that reads it: the flow
// window holds TLS's queue too (ciphertext gathered and in gnet's buffer).
func TestTLSEchoesSixteenMiB(t *testing.T) {
	t.Parallel()
	const size = 16 << 20
	f := newTLSFixture(t, tlsconf.ServerOptions{})
	srv := startTLSServer(t, Config{MaxMessageBytes: size}, f)
	d := websocket.Dialer{TLSClientConfig: f.client, HandshakeTimeout: 5 * time.Second}
	c, _, err := d.Dial("wss://"+srv.TLSAddr()+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadLimit(size)
	msg := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	done := make(chan error, 1)
	go func() { done <- c.WriteMessage(websocket.BinaryMessage, msg) }()
	_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
	_, got, err := c.ReadMessage()
	if werr := <-done; werr != nil || err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("16 MiB echo over TLS: write %v, read %v, %d bytes", werr, err, len(got))
	}
	if srv.Stats().Pauses.Load() == 0 {
		t.Errorf("16 MiB passed without one pause: the window does not see TLS's queue")
	}
}

func tlsFailureCounts(st *Stats) string {
	var parts []string
	for i, name := range TLSFailureNames() {
		parts = append(parts, fmt.Sprintf("%s=%d", name, st.TLSFailures(TLSFailure(i))))
	}
	return strings.Join(parts, " ")
}

// TestTLSBurstWaitsForHandshakeSlot: while -tls-handshakes handshakes run,
// a new client is not closed: it waits in the listen queue and is served
// once a slot frees (a burst of clients gets slower, not refused).
func TestTLSBurstWaitsForHandshakeSlot(t *testing.T) {
	t.Parallel()
	f := newTLSFixture(t, tlsconf.ServerOptions{})
	srv := startTLSServer(t, Config{HandshakeTimeout: 10 * time.Second, TLSHandshakes: 4}, f)
	st := srv.Stats()
	addr := srv.TLSAddr()
	// Four stalled handshakes take every slot: the next client waits in
	// the listen queue (not closed) and is served once one ends.
	var stalled []net.Conn
	defer func() {
		for _, c := range stalled {
			_ = c.Close()
		}
	}()
	for range 4 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		stalled = append(stalled, c)
	}
	testutil.WaitFor(t, 5*time.Second, "four handshakes running", func() bool { return srv.TLSHandshakesRunning() == 4 })
	waits := st.TLSHandshakeWaits.Load()
	served := make(chan error, 1)
	go func() {
		c, _, err := (&websocket.Dialer{TLSClientConfig: f.client, HandshakeTimeout: 10 * time.Second}).Dial("wss://"+addr+"/", nil)
		if err == nil {
			err = c.WriteMessage(websocket.TextMessage, []byte("waited"))
			if err == nil {
				_, _, err = c.ReadMessage()
			}
			_ = c.Close()
		}
		served <- err
	}()
	testutil.WaitFor(t, 5*time.Second, "the acceptor waiting for a slot", func() bool { return st.TLSHandshakeWaits.Load() > waits })
	for _, c := range stalled {
		_ = c.Close() // the stalled handshakes end: a slot frees
	}
	if err := <-served; err != nil {
		t.Fatalf("the client that waited for a slot: %v", err)
	}
	testutil.WaitFor(t, 5*time.Second, "every connection ended", func() bool { return st.Open.Load() == 0 })
}
