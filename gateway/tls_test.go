package gateway_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/internal/conformance"
	"github.com/wsgate/wsgate/internal/rawbackend"
	"github.com/wsgate/wsgate/internal/testcert"
	"github.com/wsgate/wsgate/internal/testutil"
)

// TLS through the gateway: wss:// in front and toward backends, the
// conformance suite over both, backends' first frames behind their 101,
// backends whose certificate must be refused, and certificates reloaded
// when their files change.

// pki is a CA and the files of a certificate it signed for 127.0.0.1.
type pki struct {
	ca                     *testcert.CA
	caFile, cert, key, dir string
}

func newPKI(t *testing.T, names ...string) *pki {
	t.Helper()
	ca, err := testcert.NewCA("gateway test CA")
	if err != nil {
		t.Fatal(err)
	}
	p := &pki{ca: ca, dir: t.TempDir()}
	if len(names) == 0 {
		names = []string{"127.0.0.1"}
	}
	leaf, err := ca.Server(names...)
	if err != nil {
		t.Fatal(err)
	}
	if p.cert, p.key, err = leaf.Write(p.dir, "server"); err != nil {
		t.Fatal(err)
	}
	if p.caFile, err = ca.Write(p.dir, "ca"); err != nil {
		t.Fatal(err)
	}
	return p
}

// serverTLS is a TLS configuration presenting p's certificate.
func (p *pki) serverTLS(t *testing.T) *tls.Config {
	t.Helper()
	c, err := tls.LoadX509KeyPair(p.cert, p.key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{c}}
}

// client trusts p's CA.
func (p *pki) client() *tls.Config {
	return &tls.Config{RootCAs: p.ca.Pool(), ServerName: "127.0.0.1"}
}

// listenerFlags put a TLS listener with p's certificate on a free port.
func (p *pki) listenerFlags() []string {
	return []string{"-tls-listen", "127.0.0.1:0", "-tls-cert", p.cert, "-tls-key", p.key}
}

func startTLSBackend(t *testing.T, p *pki, greeting []byte) *rawbackend.Server {
	t.Helper()
	rb, err := rawbackend.StartTLS(p.serverTLS(t), greeting)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rb.Close)
	return rb
}

func TestConformanceThroughTLSProxy(t *testing.T) {
	front, back := newPKI(t), newPKI(t)
	rb := startTLSBackend(t, back, nil)
	args := append(front.listenerFlags(), "-loops", "2", "-max-message-bytes", "65536", "-max-header-bytes", "2048",
		"-close-timeout", "1s", "-pool-size", "8", "-release-policy", "reset", "-reset-quiet", "30ms",
		"-backend", "wss://"+rb.Addr()+"/", "-backend-ca", back.caFile)
	g := startGatewayArgs(t, args...)
	b := g.backend(0)
	testutil.CheckFor(t, 5*time.Second, counter("idle wss:// connections", b.Idle.Load, 8))
	cfg := g.Server.Config()
	conformance.Run(t, conformance.Target{
		Addr:                 g.Server.TLSAddr(),
		TLS:                  front.client(),
		MaxMessageBytes:      cfg.MaxMessageBytes,
		MaxFrameBytes:        cfg.MaxFrameBytes,
		MaxHeaderBytes:       cfg.MaxHeaderBytes,
		CloseTimeout:         cfg.CloseTimeout,
		RepliesBeforeFailure: true,
		// A client offering only subprotocols nobody here speaks gets
		// 400: no backend agreed to them.
		RefusesUnknownSubprotocols: true,
		Skip:                       []string{"pipelined/request_frames_and_close_in_one_write"}, // see TestConformanceThroughProxy
	})
	testutil.CheckFor(t, 10*time.Second, counter("sessions open", g.Server.Stats().Open.Load, 0))
	if b.Leases.Load() == 0 || b.Failures.Load() != 0 {
		t.Errorf("leases %d, backend connection failures %d", b.Leases.Load(), b.Failures.Load())
	}
}

// A wss:// backend that pings right behind its 101, in the same record:
// every connection's ping is answered, so nothing it sent was lost when
// the connection moved from the dialer to its loop.
func TestWSSBackendFirstFramesAreRead(t *testing.T) {
	back := newPKI(t)
	ping := []byte{0x89, 4, 'h', 'e', 'y', '!'}
	rb := startTLSBackend(t, back, ping)
	g := startGatewayArgs(t, "-pool-size", "4", "-backend", "wss://"+rb.Addr()+"/", "-backend-ca", back.caFile)
	testutil.CheckFor(t, 5*time.Second, counter("idle connections", g.backend(0).Idle.Load, 4))
	testutil.CheckFor(t, 5*time.Second, counter("pongs to the greeting pings", rb.Pongs.Load, 4))
	c := dial(t, g.url("/"), nil)
	defer c.Close()
	roundTrip(t, c, websocket.TextMessage, []byte("through wss"))
}

func TestWSSBackendCertificateChecked(t *testing.T) {
	back := newPKI(t, "backend.internal") // not the address the URL names
	rb := startTLSBackend(t, back, nil)
	url := "wss://" + rb.Addr() + "/"
	other := newPKI(t)
	for name, args := range map[string][]string{
		"wrong CA":    {"-backend-ca", other.caFile, "-backend-server-name", "backend.internal"},
		"wrong name":  {"-backend-ca", back.caFile},
		"system root": {"-backend-server-name", "backend.internal"},
	} {
		t.Run(name, func(t *testing.T) {
			g := startGatewayArgs(t, append(args, "-pool-size", "2", "-backend", url)...)
			b := g.backend(0)
			testutil.WaitFor(t, 5*time.Second, "a failed dial", func() bool { return b.DialFailures.Load() > 0 })
			if n := b.Idle.Load(); n != 0 {
				t.Fatalf("%d connections to a backend whose certificate is refused", n)
			}
		})
	}
	t.Run("right CA and name", func(t *testing.T) {
		g := startGatewayArgs(t, "-backend-ca", back.caFile, "-backend-server-name", "backend.internal", "-pool-size", "2", "-backend", url)
		testutil.CheckFor(t, 5*time.Second, counter("idle connections", g.backend(0).Idle.Load, 2))
	})
}

func TestTLSFlagsRefused(t *testing.T) {
	p := newPKI(t)
	for name, args := range map[string][]string{
		"cert without listener": {"-tls-cert", p.cert, "-tls-key", p.key},
		"listener without cert": {"-tls-listen", "127.0.0.1:0"},
		"cert without key":      {"-tls-listen", "127.0.0.1:0", "-tls-cert", p.cert},
		"TLS 1.1":               append(p.listenerFlags(), "-tls-min-version", "1.1"),
		"backend cert alone":    {"-backend-cert", p.cert},
	} {
		_, _, err := gateway.ParseArgs(append(args, "-backend", "ws://127.0.0.1:1/"))
		if !errors.Is(err, gateway.ErrFlags) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// TLS alone: no plain listener.
	opts, _, err := gateway.ParseArgs(append(p.listenerFlags(), "-listen", "", "-backend", "ws://127.0.0.1:1/"))
	if err != nil || opts.Server.Addr != "" || opts.Server.TLS == nil {
		t.Fatalf("TLS only: %v (addr %q)", err, opts.Server.Addr)
	}
}

// Certificates reload when their files change; sessions open before go on.
func TestCertificatesReloadWhenFilesChange(t *testing.T) {
	front := newPKI(t)
	backend := startBackend(t, nil, "")
	opts, _, err := gateway.ParseArgs(append(front.listenerFlags(), "-listen", "127.0.0.1:0", "-backend", backendURL(backend.Addr())))
	if err != nil {
		t.Fatal(err)
	}
	opts.CertWatchInterval = 20 * time.Millisecond
	gw, err := gateway.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	start(t, gw)
	d := websocket.Dialer{TLSClientConfig: front.client(), HandshakeTimeout: 5 * time.Second}
	serial := func() string {
		c, _, err := d.Dial("wss://"+gw.Server.TLSAddr()+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.UnderlyingConn().(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	old, _, err := d.Dial("wss://"+gw.Server.TLSAddr()+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	before := serial()
	leaf, err := front.ca.Server("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(front.cert, leaf.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(front.key, leaf.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	want := leaf.TLS.Leaf.SerialNumber.String()
	testutil.CheckFor(t, 5*time.Second, func() error {
		if got := serial(); got != want {
			return fmt.Errorf("serving certificate %s, want the new %s (was %s)", got, want, before)
		}
		return nil
	})
	if n := gw.ListenerTLS().Reloads.Load(); n < 1 {
		t.Fatalf("%d reloads counted", n)
	}
	_ = old.SetReadDeadline(time.Now().Add(5 * time.Second))
	roundTrip(t, old, websocket.BinaryMessage, []byte("opened before the reload"))
}
