package tlsinterop

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/internal/testutil"
	"github.com/wsgate/wsgate/server"
)

// wssSession opens a session with cfg, checks the echo of a text and a
// binary message, closes 1000 (the server's close must echo 1000) and
// returns the connection's TLS state.
func wssSession(t testing.TB, url string, cfg *tls.Config) tls.ConnectionState {
	t.Helper()
	res := wssSessionErr(url, cfg)
	if res.err != nil {
		t.Fatal(res.err)
	}
	return res.state
}

type sessionResult struct {
	state tls.ConnectionState
	err   error
}

// wssSessionErr is wssSession for any goroutine: it returns what failed.
func wssSessionErr(url string, cfg *tls.Config) sessionResult {
	d := websocket.Dialer{TLSClientConfig: cfg, HandshakeTimeout: 5 * time.Second}
	c, _, err := d.Dial(url, nil)
	if err != nil {
		return sessionResult{err: fmt.Errorf("dial %s: %w", url, err)}
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := roundTripErr(c, websocket.TextMessage, []byte("héllo over wss")); err != nil {
		return sessionResult{err: err}
	}
	if err := roundTripErr(c, websocket.BinaryMessage, []byte{0, 1, 2, 0xfe, 0xff}); err != nil {
		return sessionResult{err: err}
	}
	if err := closeNormallyErr(c); err != nil {
		return sessionResult{err: err}
	}
	return sessionResult{state: c.UnderlyingConn().(*tls.Conn).ConnectionState()}
}

func roundTripErr(c *websocket.Conn, mt int, msg []byte) error {
	if err := c.WriteMessage(mt, msg); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	gotType, got, err := c.ReadMessage()
	if err != nil || gotType != mt || !bytes.Equal(got, msg) {
		return fmt.Errorf("echo of %d bytes (type %d): got type %d, %d bytes, err %v", len(msg), mt, gotType, len(got), err)
	}
	return nil
}

// closeNormallyErr sends close 1000 and requires the server's 1000 back.
func closeNormallyErr(c *websocket.Conn) error {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")); err != nil {
		return fmt.Errorf("write close: %w", err)
	}
	if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		return fmt.Errorf("want the server's close 1000, got %v", err)
	}
	return nil
}

var versionNames = map[uint16]string{tls.VersionTLS12: "TLS 1.2", tls.VersionTLS13: "TLS 1.3"}

// TestGoClient: crypto/tls with gorilla/websocket, TLS 1.2 and 1.3, each
// with a fresh handshake every time and with a session cache (the second
// connection must resume, the first must not).
func TestGoClient(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	srv := startServer(t, server.Config{}, p)
	url := "wss://" + srv.TLSAddr() + "/"
	sessions := 0
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		for _, resume := range []bool{false, true} {
			cfg := p.client(v)
			cfg.NextProtos = []string{"http/1.1"}
			if resume {
				cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
			}
			for round := range 2 {
				st := wssSession(t, url, cfg)
				sessions++
				if st.Version != v {
					t.Errorf("%s: negotiated %s", versionNames[v], tls.VersionName(st.Version))
				}
				if want := resume && round == 1; st.DidResume != want {
					t.Errorf("%s, session cache %v, connection %d: DidResume %v, want %v", versionNames[v], resume, round+1, st.DidResume, want)
				}
				if st.NegotiatedProtocol != "http/1.1" {
					t.Errorf("%s: ALPN %q, want http/1.1", versionNames[v], st.NegotiatedProtocol)
				}
			}
		}
	}
	n := int64(sessions)
	waitCounts(t, srv.Stats(), nil, counts{
		"accepted": n, "tls_handshakes": n, "upgraded": n, "closed/client_close": n,
		"frames_in": 3 * n, "frames_out": 3 * n, // text, binary, close each way
	})
}

// TestGoClientThroughGateway: the same client through the gateway
// (-tls-listen in front of an in-process echo backend), TLS 1.2 and 1.3,
// the second connection of each resumed.
func TestGoClientThroughGateway(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	gw, backend := startGateway(t, p)
	url := "wss://" + gw.Server.TLSAddr() + "/through"
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		cfg := p.client(v)
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
		for round := range 2 {
			if st := wssSession(t, url, cfg); st.DidResume != (round == 1) {
				t.Errorf("%s connection %d: DidResume %v", versionNames[v], round+1, st.DidResume)
			}
		}
	}
	waitCounts(t, gw.Server.Stats(), nil, counts{
		"accepted": 4, "tls_handshakes": 4, "upgraded": 4, "closed/client_close": 4,
		"frames_in": 12, "frames_out": 12,
	})
	// The backend saw the two data messages of each session.
	if got := backend.Stats().Upgraded.Load(); got < 2 {
		t.Errorf("the backend upgraded %d connections", got)
	}
}

// startGateway starts an echo backend and the gateway in front of it,
// built from flags as cmd/wsgate builds it (-tls-listen with the test
// certificate, a pool of 2), and waits for its pool to fill.
func startGateway(t testing.TB, p *pki) (*gateway.Gateway, *server.Server) {
	t.Helper()
	return startGatewayWith(t, p, server.Config{})
}

// startGatewayWith is startGateway with the backend's configuration (an
// echo server on a free port, one loop) and more gateway flags.
func startGatewayWith(t testing.TB, p *pki, backendCfg server.Config, extra ...string) (*gateway.Gateway, *server.Server) {
	t.Helper()
	backendCfg.Addr, backendCfg.Loops = "127.0.0.1:0", 1
	backend, err := server.New(backendCfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := backend.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(backend.Stop)
	args := []string{"-listen", "127.0.0.1:0", "-tls-listen", "127.0.0.1:0", "-tls-cert", p.certFile, "-tls-key", p.keyFile,
		"-pool-size", "2", "-backend", "ws://" + backend.Addr() + "/"}
	args = append(args, extra...)
	opts, warnings, err := gateway.ParseArgs(args)
	if err != nil || len(warnings) > 0 {
		t.Fatalf("flags %q: %v %s", args, err, strings.Join(warnings, "; "))
	}
	opts.Logger = zaptest.NewLogger(t, zaptest.Level(zapcore.WarnLevel))
	gw, err := gateway.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.Stop)
	testutil.CheckFor(t, 5*time.Second, func() error {
		if n := gw.Pool.Backends()[0].Idle.Load(); n != 2 {
			return fmt.Errorf("%d idle backend connections, want 2", n)
		}
		return nil
	})
	return gw, backend
}
