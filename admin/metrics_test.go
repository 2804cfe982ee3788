package admin

import (
	"bufio"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/internal/testutil"
)

// TestMetricsMatchTraffic drives known traffic through a real gateway and
// checks the scraped values against it: sessions, frames and bytes each
// way, handshake failures, closes by reason and by code, the duration
// histogram, pool counters and per-shard counts.
func TestMetricsMatchTraffic(t *testing.T) {
	g := startGateway(t, gatewayOpts{poolSize: 4, policy: "reuse"}) // it counts releases to idle
	g.waitFull()
	url := g.backendURL(0)

	// A: five 5-byte messages, then close 1000.
	a := g.dialWS("/a?room=1")
	for i := 0; i < 5; i++ {
		echo(t, a, fmt.Sprintf("msg-%d", i))
	}
	closeWith(t, a, websocket.CloseNormalClosure)

	// B: three 10-byte messages, then a private close code.
	b := g.dialWS("/b")
	for i := 0; i < 3; i++ {
		echo(t, b, fmt.Sprintf("ten-bytes%d", i))
	}
	closeWith(t, b, 4000)

	// C: invalid UTF-8 in a text message: the gateway fails it with 1007.
	c := g.dialWS("/c")
	if err := c.WriteMessage(websocket.TextMessage, []byte{0xff}); err != nil {
		t.Fatal(err)
	}
	_, _, err := c.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseInvalidFramePayloadData {
		t.Fatalf("C: got %v, want close 1007", err)
	}
	_ = c.Close()
	cOut := int64(2 + len(ce.Text)) // the close payload: code and reason

	// D: a handshake with the wrong version: HTTP 426.
	if st := rawUpgrade(t, g.srv.Addr(), "8"); st != http.StatusUpgradeRequired {
		t.Fatalf("D: status %d, want 426", st)
	}

	// E: stays open after one echo.
	e := g.dialWS("/e")
	defer e.Close()
	echo(t, e, "e-1")

	const (
		// Data frames and close frames from clients; C's bad frame is
		// refused at its bad byte, so it never counts as received.
		framesIn  = 6 + 4 + 0 + 1
		framesOut = 6 + 4 + 1 + 1 // echoes and close frames to clients
		bytesIn   = 5*5 + 2 + 3*10 + 2 + 3
	)
	bytesOut := int64(5*5+2+3*10+2+3) + cOut

	// Counters land as the loops get to them: poll until all agree.
	var m metrics
	want := map[string]float64{}
	check := func(name string, v float64, labels ...string) {
		want[fmt.Sprint(name, labels)] = v
	}
	check("wsgate_frames_total", framesIn, "direction", "in")
	check("wsgate_frames_total", framesOut, "direction", "out")
	check("wsgate_payload_bytes_total", bytesIn, "direction", "in")
	check("wsgate_payload_bytes_total", float64(bytesOut), "direction", "out")
	check("wsgate_sessions_total", 4)
	check("wsgate_sessions_open", 1)
	check("wsgate_connections_accepted_total", 5)
	check("wsgate_connections_open", 1)
	check("wsgate_handshake_failures_total", 1, "status", "426")
	check("wsgate_handshake_failures_total", 0, "status", "503")
	check("wsgate_connections_closed_total", 2, "reason", "client_close")
	check("wsgate_connections_closed_total", 1, "reason", "invalid_payload")
	check("wsgate_connections_closed_total", 1, "reason", "handshake_refused")
	check("wsgate_sessions_ended_total", 2, "outcome", "client_close")
	check("wsgate_sessions_ended_total", 1, "outcome", "invalid_payload")
	check("wsgate_session_duration_seconds", 3)
	check("wsgate_session_close_codes_total", 1, "side", "received", "code", "1000")
	check("wsgate_session_close_codes_total", 1, "side", "received", "code", "4xxx")
	check("wsgate_session_close_codes_total", 1, "side", "sent", "code", "1000")
	check("wsgate_session_close_codes_total", 1, "side", "sent", "code", "4xxx")
	check("wsgate_session_close_codes_total", 1, "side", "sent", "code", "1007")
	check("wsgate_backend_leases_total", 4, "backend", url)
	check("wsgate_backend_releases_total", 3, "backend", url)
	check("wsgate_backend_connections", 1, "backend", url, "state", "leased")
	check("wsgate_backend_connections", 0, "backend", url, "state", "dialing")
	check("wsgate_backend_target", 4, "backend", url)
	check("wsgate_backend_healthy", 1, "backend", url)
	check("wsgate_backend_paused", 0, "backend", url)
	check("wsgate_backend_dial_failures_total", 0, "backend", url)
	check("wsgate_config_version", 1)
	check("wsgate_config_last_reload_success", 1)
	check("wsgate_shutting_down", 0)
	check("wsgate_paused_connections", 0) // nobody is slow here
	check("wsgate_stalls_total", 0)

	testutil.CheckFor(t, 10*time.Second, func() error {
		m = g.scrape()
		var diff []string
		for _, name := range sortedKeys(want) {
			metric, labels := splitKey(name)
			got, ok := m.value(metric, labels...)
			if !ok || got != want[name] {
				diff = append(diff, fmt.Sprintf("%s = %v (present %v), want %v", name, got, ok, want[name]))
			}
		}
		// The pool refills to its target behind the leased connection;
		// idle may pass it (a connection released into a shard whose
		// share a replacement already filled stays until -idle-timeout).
		idle, _ := m.value("wsgate_backend_connections", "backend", url, "state", "idle")
		total, _ := m.value("wsgate_backend_connections", "backend", url, "state", "total")
		if idle < 4 || total != idle+1 {
			diff = append(diff, fmt.Sprintf("backend idle %v total %v, want idle >= 4 and total = idle + 1 leased", idle, total))
		}
		if len(diff) > 0 {
			return fmt.Errorf("metrics do not match the traffic:\n%s", strings.Join(diff, "\n"))
		}
		return nil
	})

	// Per shard: the sessions and the backend's connections add up.
	var sessions, idle, leased float64
	for _, s := range m["wsgate_shard_sessions"].GetMetric() {
		sessions += s.GetGauge().GetValue()
	}
	for _, s := range m["wsgate_shard_backend_connections"].GetMetric() {
		for _, l := range s.GetLabel() {
			if l.GetName() == "state" && l.GetValue() == "idle" {
				idle += s.GetGauge().GetValue()
			}
			if l.GetName() == "state" && l.GetValue() == "leased" {
				leased += s.GetGauge().GetValue()
			}
		}
	}
	bIdle, _ := m.value("wsgate_backend_connections", "backend", url, "state", "idle")
	if sessions != 1 || leased != 1 || idle != bIdle {
		t.Errorf("per shard: sessions %v leased %v idle %v, want 1, 1 and the backend's idle %v", sessions, leased, idle, bIdle)
	}
	if n := len(m["wsgate_shard_waiting"].GetMetric()); n != 2 {
		t.Errorf("wsgate_shard_waiting has %d shards, want 2", n)
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total", "process_open_fds"} {
		if _, ok := m[name]; !ok {
			t.Errorf("runtime metric %s missing", name)
		}
	}

	// /stats carries the same numbers for the status page.
	var st StatsView
	g.getJSON("/stats", &st)
	if st.FramesIn != framesIn || st.FramesOut != framesOut || st.SessionsOpen != 1 || st.SessionsUpgraded != 4 ||
		st.HandshakeFailures["426"] != 1 || st.SessionsEnded["client_close"] != 2 || st.CloseCodes["sent"]["1007"] != 1 {
		t.Errorf("/stats does not match: %+v", st)
	}
}

// rawUpgrade sends an upgrade request with the given version and returns
// the HTTP status of the answer.
func rawUpgrade(t *testing.T, addr, version string) int {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(nc, "GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: %s\r\n\r\n", addr, version)
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func sortedKeys(m map[string]float64) []string { return slices.Sorted(maps.Keys(m)) }

// splitKey undoes the fmt.Sprint(name, labels) of the want table.
func splitKey(k string) (string, []string) {
	name, rest, _ := strings.Cut(k, "[")
	rest = strings.TrimSuffix(rest, "]")
	if rest == "" {
		return name, nil
	}
	return name, strings.Fields(rest)
}
