package tlsinterop

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/conformance"
	"github.com/wsgate/wsgate/server"
)

// TestCloseNotifyBeforeTCPClose: however a session over TLS ends, the
// server sends close_notify before it closes TCP (RFC 8446 6.1: "Each
// party MUST send a close_notify alert before closing its write side of
// the connection, unless it has already sent some error alert"; RFC 5246
// 7.2.1 alike). Without it a client cannot tell the end from a
// truncation: OpenSSL 3 reports "unexpected eof while reading" (s_client
// exits 1) unless told to ignore it, as Python's ssl module does.
//
// looptls.Conn.Close sends it, and the ends that call it pass (the
// handshake timeout's 408, the control here; close_notify from the
// client, TestHostileSessions). But a session that ends by returning
// gnet.Close from its traffic callback (server/session.go: the client's
// close frame, or the reply to ours, in onCloseFrame; a protocol error in
// failProtocol when the handler fails at once, as Echo does; an HTTP
// refusal in refuse) has gnet close the raw connection it handed the
// callback, and looptls never hears of it: no close_notify is written.
func TestCloseNotifyBeforeTCPClose(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	srv := startServer(t, server.Config{}, p)
	addr := srv.TLSAddr()
	timeoutAddr := startServer(t, server.Config{HandshakeTimeout: 300 * time.Millisecond}, p).TLSAddr()
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tlsName(v), func(t *testing.T) {
			t.Run("control_handshake_timeout_408", func(t *testing.T) {
				// An end that goes through looptls.Conn.Close: the
				// request does not come in time, the server answers 408
				// and closes. It passes: the check can see close_notify.
				s := dialRaw(t, timeoutAddr, p.client(v))
				status, err := s.r.ReadString('\n')
				if err != nil || !strings.HasPrefix(status, "HTTP/1.1 408 ") {
					t.Fatalf("want 408: %q %v", status, err)
				}
				_, _ = io.Copy(io.Discard, s.r)
				s.expectCloseNotify(t, v)
			})
			t.Run("client_close_1000", func(t *testing.T) {
				s := openRaw(t, addr, p.client(v))
				s.echo(t, []byte("hi"))
				s.send(t, conformance.Masked(conformance.OpClose, true, conformance.ClosePayload(conformance.CloseNormal, "")))
				s.expectFrame(t, conformance.AppendFrame(nil, conformance.OpClose, true, 0, false, conformance.ClosePayload(conformance.CloseNormal, "")))
				s.expectCloseNotify(t, v)
			})
			t.Run("client_close_1000_through_gateway", func(t *testing.T) {
				gw, _ := startGateway(t, p)
				s := openRaw(t, gw.Server.TLSAddr(), p.client(v))
				s.echo(t, []byte("hi"))
				s.send(t, conformance.Masked(conformance.OpClose, true, conformance.ClosePayload(conformance.CloseNormal, "")))
				if f := s.readFrame(t); f[0] != 0x88 || len(f) < 4 || f[2] != 0x03 || f[3] != 0xe8 {
					t.Fatalf("want close 1000, got % x", f)
				}
				s.expectCloseNotify(t, v)
			})
			t.Run("protocol_error_1002", func(t *testing.T) {
				s := openRaw(t, addr, p.client(v))
				s.send(t, conformance.AppendFrame(nil, conformance.OpText, true, 0, false, []byte("unmasked")))
				if f := s.readFrame(t); f[0] != 0x88 || len(f) < 4 || f[2] != 0x03 || f[3] != 0xea {
					t.Fatalf("want close 1002, got % x", f)
				}
				s.expectCloseNotify(t, v)
			})
			t.Run("server_close_1001", func(t *testing.T) {
				// The server starts the close (shutting down); the client
				// answers; the server ends TLS.
				own := startServer(t, server.Config{}, p)
				s := openRaw(t, own.TLSAddr(), p.client(v))
				s.echo(t, []byte("hi"))
				go func() { _ = own.Shutdown(context.Background()) }()
				if f := s.readFrame(t); f[0] != 0x88 || len(f) < 4 || f[2] != 0x03 || f[3] != 0xe9 {
					t.Fatalf("want close 1001, got % x", f)
				}
				s.send(t, conformance.Masked(conformance.OpClose, true, conformance.ClosePayload(1001, "")))
				s.expectCloseNotify(t, v)
			})
			t.Run("refused_upgrade_405", func(t *testing.T) {
				s := dialRaw(t, addr, p.client(v))
				req := conformance.NewRequest(addr, "/")
				req.Method = "POST"
				// The end of the request comes later, once the session is
				// on its loop. (A request that arrives with the
				// handshake's last flight is read as the loop takes the
				// connection, and that path closes through looptls.)
				b := req.Bytes()
				s.send(t, b[:10])
				time.Sleep(100 * time.Millisecond)
				s.send(t, b[10:])
				status, err := s.r.ReadString('\n')
				if err != nil || !strings.HasPrefix(status, "HTTP/1.1 405 ") {
					t.Fatalf("want 405: %q %v", status, err)
				}
				for line := ""; line != "\r\n"; {
					if line, err = s.r.ReadString('\n'); err != nil {
						t.Fatal(err)
					}
				}
				_, _ = io.Copy(io.Discard, s.r) // the body, and the end
				s.expectCloseNotify(t, v)
			})
		})
	}
	// What an OpenSSL client makes of it, after a close handshake that
	// went right: it must read close_notify, not an unexpected EOF.
	bin := needOpenSSL(t)
	for _, v := range sslVersions {
		t.Run("openssl_"+v.name, func(t *testing.T) {
			sc := sClient(t, bin, p, addr, v.flag, "-msg")
			off := wsUpgrade(t, sc, addr)
			off = wsEcho(t, sc, off, conformance.OpText, []byte("hello"))
			wsClose(t, sc, off)
			exitErr := sc.exit(t, 5*time.Second)
			stderr := sc.err.String()
			// -msg prints a received alert as "<<< TLS 1.3, Alert [length 0002], warning close_notify".
			want := "<<< " + strings.Replace(v.name, "TLSv", "TLS ", 1) + ", Alert [length 0002], warning close_notify"
			if !strings.Contains(sc.out.String(), want) {
				t.Errorf("s_client read no close_notify after the close handshake (exit %v); its stderr:\n%s", exitErr, tail(stderr, 5))
			}
			if strings.Contains(stderr, "unexpected eof while reading") {
				t.Errorf("s_client: unexpected eof while reading: the server closed TCP without close_notify")
			}
		})
	}
}

// dialRaw is openRaw without the upgrade: a TLS connection ready for a
// request, closed when t ends.
func dialRaw(t testing.TB, addr string, cfg *tls.Config) *rawSession {
	t.Helper()
	s, err := handshakeRaw(addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.nc.Close() })
	return s
}

func (s *rawSession) send(t testing.TB, b []byte) {
	t.Helper()
	if _, err := s.tc.Write(b); err != nil {
		t.Fatal(err)
	}
}

// readFrame reads one frame the server sent (payload under 126 bytes).
func (s *rawSession) readFrame(t testing.TB) []byte {
	t.Helper()
	_ = s.tc.SetReadDeadline(time.Now().Add(5 * time.Second))
	f := make([]byte, 2)
	if _, err := io.ReadFull(s.r, f); err != nil {
		t.Fatalf("read a frame: %v", err)
	}
	f = append(f, make([]byte, f[1]&0x7f)...)
	if _, err := io.ReadFull(s.r, f[2:]); err != nil {
		t.Fatalf("read a frame: %v", err)
	}
	return f
}

func (s *rawSession) expectFrame(t testing.TB, want []byte) {
	t.Helper()
	if got := s.readFrame(t); string(got) != string(want) {
		t.Fatalf("got frame % x, want % x", got, want)
	}
}

// expectCloseNotify requires the session to end with the server's
// close_notify: the last record it sent is an alert, and reading ends in
// a clean EOF.
func (s *rawSession) expectCloseNotify(t testing.TB, v uint16) {
	t.Helper()
	err := s.expectEnd(t)
	if !errors.Is(err, io.EOF) {
		t.Errorf("the session ended with %v, not close_notify", err)
	}
	if !s.tap.endsWithAlert(v) {
		t.Errorf("TCP closed without close_notify: the server's last records %v are no alert", lastRecords(s.tap.records(), 3))
	}
}

func lastRecords(recs []record, n int) []record {
	return recs[max(0, len(recs)-n):]
}
