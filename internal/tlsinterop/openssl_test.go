package tlsinterop

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/conformance"
	"github.com/wsgate/wsgate/internal/testutil"
	"github.com/wsgate/wsgate/server"
)

// openssl s_client, driven through its stdin and stdout: the upgrade
// request and masked frames are written by hand, the 101 and the echoed
// frames read back from what it prints.

// sslVersions are s_client's version flags and how it names them.
var sslVersions = []struct{ flag, name string }{{"-tls1_2", "TLSv1.2"}, {"-tls1_3", "TLSv1.3"}}

func needOpenSSL(t testing.TB) string {
	t.Helper()
	bin, err := lookTool("WSGATE_INTEROP_OPENSSL", "openssl")
	need(t, "the openssl command", err)
	return bin
}

// sClient starts `openssl s_client` to addr, verifying the server's
// certificate against the test CA and its IP address, with extra flags
// (-tls1_2, -sess_out FILE, -msg, ...), and waits for its handshake.
func sClient(t testing.TB, bin string, p *pki, addr string, extra ...string) *peer {
	t.Helper()
	args := append([]string{"s_client", "-connect", addr, "-CAfile", p.caFile, "-verify_return_error",
		"-verify_ip", "127.0.0.1"}, extra...)
	sc := startPeer(t, 20*time.Second, nil, bin, args...)
	sc.waitOut(t, 0, []byte("Verify return code: 0 (ok)"), 10*time.Second)
	return sc
}

// wsUpgrade sends a hand-written upgrade request through sc and waits for
// the 101; it returns the stdout offset past it.
func wsUpgrade(t testing.TB, sc *peer, addr string) int {
	t.Helper()
	req := conformance.NewRequest(addr, "/openssl")
	sc.send(t, req.Bytes())
	off := sc.waitOut(t, 0, []byte("HTTP/1.1 101 Switching Protocols\r\n"), 5*time.Second)
	return sc.waitOut(t, off, []byte("Sec-WebSocket-Accept: "+conformance.AcceptFor(req.Get("Sec-WebSocket-Key"))+"\r\n\r\n"), time.Second)
}

// wsEcho sends one masked frame through sc and waits for its unmasked
// echo after off; it returns the offset past the echo.
func wsEcho(t testing.TB, sc *peer, off int, op conformance.Opcode, payload []byte) int {
	t.Helper()
	sc.send(t, conformance.Masked(op, true, payload))
	return sc.waitOut(t, off, conformance.AppendFrame(nil, op, true, 0, false, payload), 5*time.Second)
}

// wsClose sends close 1000 through sc and waits for the server's 1000.
func wsClose(t testing.TB, sc *peer, off int) int {
	t.Helper()
	sc.send(t, conformance.Masked(conformance.OpClose, true, conformance.ClosePayload(conformance.CloseNormal, "")))
	return sc.waitOut(t, off, conformance.AppendFrame(nil, conformance.OpClose, true, 0, false, conformance.ClosePayload(conformance.CloseNormal, "")), 5*time.Second)
}

// TestOpenSSLClient: openssl s_client over TLS 1.2 and 1.3, a new session
// saved with -sess_out, then resumed with -sess_in ("Reused"); each
// exchanges a text and a binary message and closes 1000.
func TestOpenSSLClient(t *testing.T) {
	t.Parallel()
	bin := needOpenSSL(t)
	p := newPKI(t)
	srv := startServer(t, server.Config{}, p)
	addr := srv.TLSAddr()
	for _, v := range sslVersions {
		sess := filepath.Join(t.TempDir(), "session.pem")
		for round, flags := range [][]string{{"-sess_out", sess}, {"-sess_in", sess}} {
			sc := sClient(t, bin, p, addr, append([]string{v.flag}, flags...)...)
			want := "New, " + v.name
			if round == 1 {
				want = "Reused, " + v.name
			}
			sc.waitOut(t, 0, []byte("\n"+want+", Cipher is "), time.Second)
			off := wsUpgrade(t, sc, addr)
			off = wsEcho(t, sc, off, conformance.OpText, []byte("hello from openssl"))
			off = wsEcho(t, sc, off, conformance.OpBinary, []byte{0, 0xff, 0x80, 1})
			if round == 0 {
				// The session (a TLS 1.3 ticket arrives after the
				// handshake) must be saved before it is used.
				testutil.WaitFor(t, 5*time.Second, "the session saved to "+sess, func() bool {
					st, err := os.Stat(sess)
					return err == nil && st.Size() > 0
				})
			}
			wsClose(t, sc, off)
			// Its exit status is not checked here: s_client exits 1 when the
			// server closes TCP without close_notify, as it does after a close
			// handshake (TestCloseNotifyBeforeTCPClose).
			_ = sc.exit(t, 5*time.Second)
		}
	}
	waitCounts(t, srv.Stats(), nil, counts{
		"accepted": 4, "tls_handshakes": 4, "upgraded": 4, "closed/client_close": 4,
		"frames_in": 12, "frames_out": 12,
	})
}
