package gateway_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/internal/testutil"
	"github.com/wsgate/wsgate/server"
)

// startProtocolBackend is an echo backend speaking protocols (its own
// preference order).
func startProtocolBackend(t *testing.T, protocols ...string) *server.Server {
	t.Helper()
	srv, err := server.New(server.Config{Addr: "127.0.0.1:0", Loops: 1, Handler: server.Echo{}, Subprotocols: protocols})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return srv
}

// offer opens a session offering protocols and returns the HTTP status
// and the subprotocol the gateway's 101 named; an open session echoes one
// message first.
func offer(t *testing.T, url string, protocols ...string) (int, string) {
	t.Helper()
	d := websocket.Dialer{Subprotocols: protocols, HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial(url, nil)
	if err != nil {
		if resp == nil {
			t.Fatalf("offering %v: %v", protocols, err)
		}
		return resp.StatusCode, ""
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	roundTrip(t, c, websocket.TextMessage, []byte("through "+c.Subprotocol()))
	return http.StatusSwitchingProtocols, c.Subprotocol()
}

func TestSubprotocolsNegotiatedWithBackends(t *testing.T) {
	b := startProtocolBackend(t, "chat.v2", "chat.v1") // prefers v2
	g := startGatewayArgs(t, "-pool-size", "2", "-subprotocol", "chat.v1", "-subprotocol", "chat.v2", "-backend", backendURL(b.Addr()))
	testutil.CheckFor(t, 5*time.Second, counter("idle", g.backend(0).Idle.Load, 2))
	if got := g.backend(0).Protocol(); got != "chat.v2" {
		t.Fatalf("the backend agreed to %q, want its preference chat.v2", got)
	}
	for _, tc := range []struct {
		offered  []string
		status   int
		protocol string
	}{
		// The group prefers v1, but its backend agreed to v2: a client
		// offering both is given what its connection speaks.
		{[]string{"chat.v1", "chat.v2"}, 101, "chat.v2"},
		{[]string{"chat.v2"}, 101, "chat.v2"},
		{nil, 101, ""},                   // served on the backend's, no header
		{[]string{"chat.v1"}, 400, ""},   // spoken here, but not what the backend chose
		{[]string{"superchat"}, 400, ""}, // not spoken here at all
		{[]string{"chat.v3", "x"}, 400, ""},
	} {
		status, protocol := offer(t, g.url("/"), tc.offered...)
		if status != tc.status || protocol != tc.protocol {
			t.Errorf("offering %v: %d %q, want %d %q", tc.offered, status, protocol, tc.status, tc.protocol)
		}
	}
}

func TestSubprotocolRequired(t *testing.T) {
	b := startProtocolBackend(t, "stt.v1")
	g := startGatewayArgs(t, "-pool-size", "1", "-subprotocol", "stt.v1", "-subprotocol-required", "-backend", backendURL(b.Addr()))
	if status, _ := offer(t, g.url("/"), "stt.v1"); status != 101 {
		t.Fatalf("offering the protocol: %d", status)
	}
	if status, _ := offer(t, g.url("/")); status != 400 {
		t.Fatalf("offering none to a group that requires one: %d, want 400", status)
	}
}

// A backend that speaks no subprotocol: clients offering one are refused
// with a reason instead of a 101 that names none (which browsers reject).
func TestSubprotocolsBackendSpeaksNone(t *testing.T) {
	g := startGateway(t, []server.Handler{nil}, "-pool-size", "1")
	if status, _ := offer(t, g.url("/"), "chat"); status != 400 {
		t.Fatalf("offering a subprotocol nobody speaks: %d, want 400", status)
	}
	if status, _ := offer(t, g.url("/")); status != 101 {
		t.Fatalf("offering none: %d", status)
	}
}
