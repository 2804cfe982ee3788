package tlsinterop

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/testbrowser"
	"github.com/wsgate/wsgate/internal/testutil"
	"github.com/wsgate/wsgate/server"
)

// Headless Chromium (internal/testbrowser), driven over the DevTools
// protocol: a page's JavaScript opens wss:// to
// the server and checks the echoes. The browser trusts the server's
// certificate through --ignore-certificate-errors-spki-list, which pins
// the hash of the leaf's public key (and nothing else: any other
// certificate error still fails).

// chromiumPage is the script the page runs; %q is the URL. It resolves to
// a JSON string of what it saw, or throws.
const chromiumPage = `(async () => {
  const url = %q;
  const res = { userAgent: navigator.userAgent, echoes: [] };
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  const queue = [], waiters = [];
  ws.onmessage = (e) => (waiters.length ? waiters.shift()(e.data) : queue.push(e.data));
  const next = () => new Promise((resolve, reject) => {
    if (queue.length) return resolve(queue.shift());
    waiters.push(resolve);
    setTimeout(() => reject(new Error("no echo within 5 s")), 5000);
  });
  const closed = new Promise((resolve) => (ws.onclose = (e) => resolve({ code: e.code, reason: e.reason, wasClean: e.wasClean })));
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error("the WebSocket failed before it opened (certificate refused?)"));
  });
  const text = "héllo from chromium ✓";
  ws.send(text);
  const gotText = await next();
  if (gotText !== text) throw new Error("text echo differs: " + gotText);
  res.echoes.push("text");
  for (const size of [5, 70000]) {
    const bin = new Uint8Array(size);
    for (let i = 0; i < size; i += 65536) crypto.getRandomValues(bin.subarray(i, i + 65536));
    ws.send(bin);
    const got = new Uint8Array(await next());
    if (got.length !== bin.length || got.some((b, i) => b !== bin[i])) throw new Error("binary echo of " + size + " bytes differs");
    res.echoes.push("binary " + size);
  }
  ws.close(1000, "bye");
  res.close = await closed;
  return JSON.stringify(res);
})()`

type chromiumResult struct {
	UserAgent string   `json:"userAgent"`
	Echoes    []string `json:"echoes"`
	Close     struct {
		Code     int    `json:"code"`
		Reason   string `json:"reason"`
		WasClean bool   `json:"wasClean"`
	} `json:"close"`
}

// TestChromium: a real browser's WebSocket over wss:// (TLS 1.3, as
// Chromium offers it), text and binary messages, close 1000 with
// wasClean.
func TestChromium(t *testing.T) {
	t.Parallel()
	bin, err := lookTool("CHROMIUM", "/usr/bin/chromium")
	need(t, "headless Chromium", err)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()

	p := newPKI(t)
	srv := startServer(t, server.Config{}, p)
	br := testbrowser.Launch(ctx, t, bin, "--ignore-certificate-errors-spki-list="+p.spkiHash(t))
	page := br.Page(ctx, t, "")
	defer page.Close()

	var raw string
	if err := page.Evaluate(ctx, fmt.Sprintf(chromiumPage, "wss://"+srv.TLSAddr()+"/chromium"), &raw); err != nil {
		t.Fatalf("the page's WebSocket: %v (server: %v)", err, readCounts(srv.Stats()))
	}
	var res chromiumResult
	if err := json.Unmarshal([]byte(raw), &res); err != nil {
		t.Fatalf("page result %q: %v", raw, err)
	}
	if len(res.Echoes) != 3 || res.Close.Code != 1000 || !res.Close.WasClean {
		t.Errorf("page saw %+v", res)
	}
	t.Logf("%s: echoes %v, close %+v", res.UserAgent, res.Echoes, res.Close)
	waitCounts(t, srv.Stats(), nil, counts{
		"accepted": 1, "tls_handshakes": 1, "upgraded": 1, "closed/client_close": 1,
		"frames_in": 4, "frames_out": 4,
		"bytes_in": int64(len("héllo from chromium ✓") + 5 + 70000 + len("\x03\xe8bye")),
	})

	// The control: a server whose certificate the pin does not name (same
	// names, another CA and key) is refused by the browser, so what made
	// the first one work was the pin, not a browser that trusts anything.
	other := startServer(t, server.Config{}, newPKI(t))
	err = page.Evaluate(ctx, fmt.Sprintf(chromiumPage, "wss://"+other.TLSAddr()+"/chromium"), &raw)
	if err == nil || !strings.Contains(err.Error(), "failed before it opened") {
		t.Fatalf("a certificate the pin does not name: the page got %v, %s", err, raw)
	}
	st := other.Stats()
	testutil.CheckFor(t, 5*time.Second, func() error {
		c := readCounts(st)
		if c["tls_handshakes"] != 0 || c["upgraded"] != 0 || c["open"] != 0 || c["accepted"] < 1 {
			return fmt.Errorf("the refused server's counters: %v", c)
		}
		return nil
	})
	t.Logf("the refused server: %v", readCounts(st))
}
