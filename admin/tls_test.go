package admin

import (
	"crypto/tls"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/internal/testcert"
	"github.com/wsgate/wsgate/internal/testutil"
)

// TestTLSMetrics: handshakes, failures by reason, reloads and the
// certificate's expiry are exported, and the status JSON has them.
func TestTLSMetrics(t *testing.T) {
	ca, err := testcert.NewCA("admin test CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Server("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := leaf.Write(t.TempDir(), "server")
	if err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, gatewayOpts{args: []string{"-tls-listen", "127.0.0.1:0", "-tls-cert", cert, "-tls-key", key}})
	g.waitFull()
	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"}}
	c, _, err := d.Dial("wss://"+g.srv.TLSAddr()+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	echo(t, c, "over tls")
	closeWith(t, c, websocket.CloseNormalClosure)
	// Plain bytes on the TLS port: a not_tls failure.
	nc, err := net.Dial("tcp", g.srv.TLSAddr())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = nc.Write([]byte("hello, is this TLS?\r\n\r\n"))
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _ = nc.Read(make([]byte, 64))
	_ = nc.Close()
	g.gw.Reload() // a reload of unchanged files still counts

	testutil.CheckFor(t, 5*time.Second, func() error {
		m := g.scrape()
		for _, want := range []struct {
			name   string
			labels []string
			value  float64
		}{
			{"wsgate_tls_handshakes_total", nil, 1},
			{"wsgate_tls_handshake_failures_total", []string{"reason", "not_tls"}, 1},
			{"wsgate_tls_handshake_failures_total", []string{"reason", "other"}, 0},
			{"wsgate_tls_handshake_waits_total", nil, 0},
			{"wsgate_tls_handshakes_running", nil, 0},
			{"wsgate_tls_read_errors_total", nil, 0},
			{"wsgate_tls_certificate_reloads_total", []string{"result", "ok"}, 1},
			{"wsgate_tls_certificate_expiry_seconds", nil, float64(leaf.TLS.Leaf.NotAfter.Unix())},
		} {
			if got, ok := m.value(want.name, want.labels...); !ok || got != want.value {
				return fmt.Errorf("%s%v = %v, want %v", want.name, want.labels, got, want.value)
			}
		}
		return nil
	})
	var v StatsView
	g.getJSON("/stats", &v)
	if v.TLSListen != g.srv.TLSAddr() || v.TLSHandshakes != 1 || v.TLSFailures["not_tls"] != 1 || v.TLSCertExpiry.IsZero() {
		t.Fatalf("/stats TLS fields: %+v", v)
	}
}
