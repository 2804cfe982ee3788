package tlsinterop

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/testbrowser"
	"github.com/wsgate/wsgate/server"
)

// chromiumSubprotocolPage opens a WebSocket to %q offering the
// subprotocols %s (a JS array), and resolves to what it saw: the
// subprotocol the server named, an echo, the close; or throws when the
// socket fails before it opens.
const chromiumSubprotocolPage = `(async () => {
  const ws = new WebSocket(%q, %s);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error("the WebSocket failed before it opened"));
  });
  const protocol = ws.protocol;
  const echo = new Promise((resolve) => (ws.onmessage = (e) => resolve(e.data)));
  ws.send("speech frame");
  const got = await echo;
  const closed = new Promise((resolve) => (ws.onclose = (e) => resolve(e.code)));
  ws.close(1000);
  return JSON.stringify({ protocol, echo: got, close: await closed });
})()`

// TestChromiumSubprotocolThroughGateway: a real browser offering a
// subprotocol over wss:// through the gateway to a backend that requires
// it gets the backend's agreement in its 101 (Chromium fails a socket
// whose 101 names none); offering none to a group that requires one is
// refused before the upgrade.
func TestChromiumSubprotocolThroughGateway(t *testing.T) {
	t.Parallel()
	bin, err := lookTool("CHROMIUM", "/usr/bin/chromium")
	need(t, "headless Chromium", err)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()

	p := newPKI(t)
	gw, _ := startGatewayWith(t, p, server.Config{Subprotocols: []string{"stt.v1"}},
		"-subprotocol", "stt.v1", "-subprotocol-required")
	br := testbrowser.Launch(ctx, t, bin, "--ignore-certificate-errors-spki-list="+p.spkiHash(t))
	page := br.Page(ctx, t, "")
	defer page.Close()
	url := "wss://" + gw.Server.TLSAddr() + "/speech"

	var raw string
	if err := page.Evaluate(ctx, fmt.Sprintf(chromiumSubprotocolPage, url, `["stt.v0", "stt.v1"]`), &raw); err != nil {
		t.Fatalf("offering stt.v1: %v", err)
	}
	var res struct {
		Protocol, Echo string
		Close          int
	}
	if err := json.Unmarshal([]byte(raw), &res); err != nil {
		t.Fatal(err)
	}
	if res.Protocol != "stt.v1" || res.Echo != "speech frame" || res.Close != 1000 {
		t.Fatalf("page saw %+v", res)
	}
	if got := gw.Pool.Backends()[0].Protocol(); got != "stt.v1" {
		t.Fatalf("the backend agreed to %q", got)
	}

	err = page.Evaluate(ctx, fmt.Sprintf(chromiumSubprotocolPage, url, `[]`), &raw)
	if err == nil || !strings.Contains(err.Error(), "failed before it opened") {
		t.Fatalf("offering none to a group that requires one: %v %s", err, raw)
	}
	if n := gw.Server.Stats().Refused(400); n != 1 {
		t.Fatalf("%d refusals counted as 400, want 1", n)
	}
}
