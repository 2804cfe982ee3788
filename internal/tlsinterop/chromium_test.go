package tlsinterop

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/internal/testutil"
	"github.com/wsgate/wsgate/server"
)

// Headless Chromium, started the way admin/browser_test.go starts it and
// driven over the DevTools protocol: a page's JavaScript opens wss:// to
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
	br := launchChromium(ctx, t, bin, "--ignore-certificate-errors-spki-list="+p.spkiHash(t))
	page := br.page(ctx, t)
	defer page.Close()

	var raw string
	if err := page.evaluate(ctx, fmt.Sprintf(chromiumPage, "wss://"+srv.TLSAddr()+"/chromium"), &raw); err != nil {
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
	err = page.evaluate(ctx, fmt.Sprintf(chromiumPage, "wss://"+other.TLSAddr()+"/chromium"), &raw)
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

// browser is a headless Chromium started by the test, in its own process
// group so its helper processes end with it.
type browser struct {
	debugHTTP string // host:port of the DevTools HTTP endpoint
}

func launchChromium(ctx context.Context, t *testing.T, bin string, flags ...string) *browser {
	t.Helper()
	args := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--disable-extensions", "--mute-audio",
		"--user-data-dir=" + t.TempDir(), "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
		"--remote-allow-origins=*"}, flags...)
	cmd := exec.Command(bin, append(args, "about:blank")...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v (run `make interop-deps`)", bin, err)
	}
	pgid := cmd.Process.Pid
	var (
		mu   sync.Mutex
		last []string
	)
	found := make(chan string, 1)
	read := make(chan struct{})
	go func() { // Chromium prints "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID".
		defer close(read)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			mu.Lock()
			if last = append(last, line); len(last) > 40 {
				last = last[1:]
			}
			mu.Unlock()
			if _, rest, ok := strings.Cut(line, "DevTools listening on ws://"); ok {
				host, _, _ := strings.Cut(rest, "/")
				select {
				case found <- host:
				default:
				}
			}
		}
	}()
	done := make(chan struct{})
	go func() { <-read; _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-pgid, syscall.SIGKILL) // the group this test created
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Errorf("chromium (pid %d) did not exit", pgid)
		}
	})
	select {
	case host := <-found:
		return &browser{debugHTTP: host}
	case <-done:
	case <-ctx.Done():
	}
	mu.Lock()
	defer mu.Unlock()
	t.Fatalf("chromium did not open its DevTools endpoint; its stderr:\n%s", strings.Join(last, "\n"))
	return nil
}

// page connects to the browser's first page target.
func (b *browser) page(ctx context.Context, t *testing.T) *cdpConn {
	t.Helper()
	for {
		var targets []struct {
			Type, URL            string
			WebSocketDebuggerURL string `json:"webSocketDebuggerUrl"`
		}
		err := getJSON(ctx, "http://"+b.debugHTTP+"/json/list", &targets)
		for _, tg := range targets {
			if tg.Type == "page" && tg.WebSocketDebuggerURL != "" {
				d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
				c, _, err := d.DialContext(ctx, tg.WebSocketDebuggerURL, nil)
				if err != nil {
					t.Fatalf("DevTools: %v", err)
				}
				return &cdpConn{c: c}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("DevTools: no page target (last error %v, targets %+v)", err, targets)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	// No idle connection kept: it would outlive the browser, and the
	// tests that count descriptors would count it.
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// cdpConn is a minimal DevTools protocol client: one call at a time,
// events ignored.
type cdpConn struct {
	c    *websocket.Conn
	next int
}

func (p *cdpConn) Close() error { return p.c.Close() }

// evaluate runs expr in the page, waits for the promise it returns, and
// stores its (JSON-able) value in out.
func (p *cdpConn) evaluate(ctx context.Context, expr string, out any) error {
	p.next++
	id := p.next
	deadline := time.Now().Add(20 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = p.c.SetWriteDeadline(deadline)
	_ = p.c.SetReadDeadline(deadline)
	if err := p.c.WriteJSON(map[string]any{"id": id, "method": "Runtime.evaluate",
		"params": map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}}); err != nil {
		return err
	}
	for {
		var msg struct {
			ID     int `json:"id"`
			Result struct {
				Result struct {
					Value json.RawMessage `json:"value"`
				} `json:"result"`
				ExceptionDetails *struct {
					Text      string `json:"text"`
					Exception struct {
						Description string `json:"description"`
					} `json:"exception"`
				} `json:"exceptionDetails"`
			} `json:"result"`
			Error *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := p.c.ReadJSON(&msg); err != nil {
			return err
		}
		if msg.ID != id {
			continue // an event
		}
		if msg.Error != nil {
			return fmt.Errorf("DevTools: %s", msg.Error.Message)
		}
		if ex := msg.Result.ExceptionDetails; ex != nil {
			return fmt.Errorf("in the page: %s %s", ex.Text, ex.Exception.Description)
		}
		return json.Unmarshal(msg.Result.Result.Value, out)
	}
}
