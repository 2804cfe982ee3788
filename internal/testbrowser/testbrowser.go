// Package testbrowser drives a headless Chromium for tests: it starts the
// browser in its own process group (ended with the test), finds a page
// target, and talks to it over the DevTools protocol, one call at a time,
// keeping the events that report a problem in the page (console errors
// and warnings, uncaught exceptions, CSP violations). The admin status
// page tests and the TLS interop tests use it.
//
// Ownership: a Page is used from the test's own goroutine (its methods
// may be given a *testing.T that they fail).
package testbrowser

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Path is where Debian's chromium package puts the browser (`make
// browser-deps` installs it); CHROMIUM overrides it.
func Path() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// Browser is a headless Chromium started by the test.
type Browser struct {
	debugHTTP string // host:port of the DevTools HTTP endpoint
}

// Launch starts bin on about:blank with flags added to the usual headless
// ones; it is killed, with its helper processes, when t ends.
func Launch(ctx context.Context, t testing.TB, bin string, flags ...string) *Browser {
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
		t.Fatalf("start %s: %v (run `make browser-deps`)", bin, err)
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
	go func() { <-read; _ = cmd.Wait(); close(done) }() // Wait only once the pipe is read
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
		return &Browser{debugHTTP: host}
	case <-done:
	case <-ctx.Done():
	}
	mu.Lock()
	defer mu.Unlock()
	t.Fatalf("chromium did not open its DevTools endpoint; its stderr:\n%s", strings.Join(last, "\n"))
	return nil
}

// Page connects to the first page target whose URL starts with url ("":
// any page).
func (b *Browser) Page(ctx context.Context, t testing.TB, url string) *Page {
	t.Helper()
	for {
		var targets []struct {
			Type, URL            string
			WebSocketDebuggerURL string `json:"webSocketDebuggerUrl"`
		}
		err := getJSON(ctx, "http://"+b.debugHTTP+"/json/list", &targets)
		for _, tg := range targets {
			if tg.Type == "page" && strings.HasPrefix(tg.URL, url) && tg.WebSocketDebuggerURL != "" {
				d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
				c, _, err := d.DialContext(ctx, tg.WebSocketDebuggerURL, nil)
				if err != nil {
					t.Fatalf("DevTools: %v", err)
				}
				return &Page{c: c}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("DevTools: no page target for %q (last error %v, targets %+v)", url, err, targets)
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

// Page is a minimal DevTools protocol client: one call at a time. The
// events that arrive while it waits for a reply are read too, and those
// that say something went wrong in the page are kept in problems.
type Page struct {
	c        *websocket.Conn
	next     int
	problems []string // console errors and warnings, uncaught exceptions, CSP violations
}

func (p *Page) Close() error { return p.c.Close() }

// cspReporter runs in every document before the page's own script and turns
// each CSP violation into a console error, so that problems lists it even
// if the browser reports it some other way.
const cspReporter = `document.addEventListener("securitypolicyviolation", (e) =>
  console.error("CSP violation: " + e.effectiveDirective + " blocked " + (e.blockedURI || "inline") + " (" + e.disposition + ")"));`

// Open starts watching the page's console, exceptions and log, installs
// cspReporter and the scripts in also, then loads url.
func (p *Page) Open(ctx context.Context, url string, also ...string) error {
	for _, m := range []string{"Runtime.enable", "Log.enable", "Page.enable"} {
		if err := p.Call(ctx, m, nil, nil); err != nil {
			return err
		}
	}
	for _, src := range append([]string{cspReporter}, also...) {
		if err := p.Call(ctx, "Page.addScriptToEvaluateOnNewDocument", map[string]any{"source": src}, nil); err != nil {
			return err
		}
	}
	return p.Call(ctx, "Page.navigate", map[string]any{"url": url}, nil)
}

// TakeProblems returns the problems seen up to now (a round trip makes sure
// every event sent before it has been read) and forgets them.
func (p *Page) TakeProblems(ctx context.Context) ([]string, error) {
	var one int
	err := p.Evaluate(ctx, "1", &one)
	got := p.problems
	p.problems = nil
	return got, err
}

// Evaluate runs expr in the page and stores its (JSON-able) value in out.
func (p *Page) Evaluate(ctx context.Context, expr string, out any) error {
	return p.EvaluateWith(ctx, expr, nil, out)
}

// EvaluateWith is Evaluate with more Runtime.evaluate parameters.
func (p *Page) EvaluateWith(ctx context.Context, expr string, params map[string]any, out any) error {
	all := map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}
	for k, v := range params {
		all[k] = v
	}
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	if err := p.Call(ctx, "Runtime.evaluate", all, &res); err != nil {
		return err
	}
	if ex := res.ExceptionDetails; ex != nil {
		return fmt.Errorf("in the page: %s %s", ex.Text, ex.Exception.Description)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(res.Result.Value, out)
}

// Call sends one DevTools command and stores its result in out (if not
// nil), noting the events read meanwhile.
func (p *Page) Call(ctx context.Context, method string, params, out any) error {
	p.next++
	id := p.next
	deadline := time.Now().Add(20 * time.Second) // a page's script may take a while
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = p.c.SetWriteDeadline(deadline)
	_ = p.c.SetReadDeadline(deadline)
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if err := p.c.WriteJSON(msg); err != nil {
		return err
	}
	for {
		var msg struct {
			ID     int             `json:"id"`
			Method string          `json:"method"` // of an event
			Params json.RawMessage `json:"params"` // of an event
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := p.c.ReadJSON(&msg); err != nil {
			return err
		}
		if msg.Method != "" {
			p.noteEvent(msg.Method, msg.Params)
			continue
		}
		if msg.ID != id {
			continue
		}
		if msg.Error != nil {
			return fmt.Errorf("DevTools %s: %s", method, msg.Error.Message)
		}
		if out == nil {
			return nil
		}
		return json.Unmarshal(msg.Result, out)
	}
}

// noteEvent keeps the events that report a problem in the page.
func (p *Page) noteEvent(method string, params json.RawMessage) {
	switch method {
	case "Runtime.exceptionThrown":
		var e struct {
			ExceptionDetails struct {
				Text      string `json:"text"`
				Exception struct {
					Description string `json:"description"`
				} `json:"exception"`
			} `json:"exceptionDetails"`
		}
		_ = json.Unmarshal(params, &e)
		p.problems = append(p.problems, "exception: "+e.ExceptionDetails.Text+" "+e.ExceptionDetails.Exception.Description)
	case "Runtime.consoleAPICalled":
		var e struct {
			Type string `json:"type"`
			Args []struct {
				Value       any    `json:"value"`
				Description string `json:"description"`
			} `json:"args"`
		}
		_ = json.Unmarshal(params, &e)
		if e.Type != "error" && e.Type != "warning" && e.Type != "assert" {
			return
		}
		var parts []string
		for _, a := range e.Args {
			if a.Value != nil {
				parts = append(parts, fmt.Sprint(a.Value))
			} else {
				parts = append(parts, a.Description)
			}
		}
		p.problems = append(p.problems, "console."+e.Type+": "+strings.Join(parts, " "))
	case "Log.entryAdded":
		var e struct {
			Entry struct {
				Source string `json:"source"`
				Level  string `json:"level"`
				Text   string `json:"text"`
				URL    string `json:"url"`
			} `json:"entry"`
		}
		_ = json.Unmarshal(params, &e)
		if e.Entry.Level != "error" && e.Entry.Level != "warning" {
			return
		}
		p.problems = append(p.problems, "log "+e.Entry.Source+" "+e.Entry.Level+": "+e.Entry.Text+" "+e.Entry.URL)
	}
}
