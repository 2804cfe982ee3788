package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/internal/testbrowser"
	"github.com/wsgate/wsgate/internal/testutil"
)

// TestStatusPageInChromium loads the status page in headless Chromium,
// driven over the DevTools protocol, and checks that it renders the
// backends and that its numbers follow the gateway live: the sessions the
// test opens appear without a reload, and disappear when they close.
func TestStatusPageInChromium(t *testing.T) {
	bin := testbrowser.Path()
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("headless Chromium is needed for the status page test and %s is missing (%v): run `make browser-deps` (apt-get install -y chromium), or set CHROMIUM=/path/to/chromium", bin, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	g := startGateway(t, gatewayOpts{backends: 2, poolSize: 2})
	g.waitFull()

	page := openStatusPage(ctx, t, bin, g.adminURL("/"))

	// The page renders both backends, ready, no session.
	st := waitPage(ctx, t, page, "the first render", func(s pageState) bool {
		return s.Refreshes >= 1 && s.SessionsOpen == "0" && s.Ready == "ready" && len(s.Backends) == 2 && s.Shards == 2
	})
	for i, b := range st.Backends {
		if b.URL != g.backendURL(i) || b.State != "active" || b.Idle != "2" {
			t.Errorf("backend row %d: %+v, want %s active with 2 idle", i, b, g.backendURL(i))
		}
	}
	if !strings.Contains(st.Text, g.backendURL(0)) || !strings.Contains(st.Text, g.backendURL(1)) {
		t.Errorf("backend URLs not visible in the page text:\n%s", st.Text)
	}
	for _, r := range st.Resources {
		if !strings.HasPrefix(r, "http://"+g.admin.Addr()+"/") {
			t.Errorf("the page loaded %s: it must use no external assets", r)
		}
	}

	// Open sessions: the page shows them at its next refresh.
	var conns []*websocket.Conn
	for i := 0; i < 3; i++ {
		c := g.dialWS(fmt.Sprintf("/browser-%d", i))
		echo(t, c, "hi")
		conns = append(conns, c)
	}
	st = waitPage(ctx, t, page, "3 sessions and 3 leased connections", func(s pageState) bool {
		return s.SessionsOpen == "3" && s.leased() == 3 && s.ShardSessions == 3 && s.SessionsTotal == "3"
	})
	before := st.Refreshes

	for _, c := range conns {
		closeWith(t, c, websocket.CloseNormalClosure)
	}
	st = waitPage(ctx, t, page, "the sessions gone", func(s pageState) bool {
		return s.SessionsOpen == "0" && s.leased() == 0 && strings.Contains(s.Text, "client_close")
	})
	if st.Refreshes <= before {
		t.Errorf("refresh count did not move (%d then %d): the page is not refreshing itself", before, st.Refreshes)
	}
	if st.Error != "" {
		t.Errorf("the page shows an error: %s", st.Error)
	}
	expectNoProblems(ctx, t, page)
	expectStrictCSP(ctx, t, page, "http://"+g.srv.Addr()+"/")
}

// openStatusPage starts headless Chromium, loads url (the status page) in
// it with the page's console watched, and returns the DevTools connection
// to the page. Scripts in also run before the page's own.
func openStatusPage(ctx context.Context, t *testing.T, bin, url string, also ...string) *testbrowser.Page {
	t.Helper()
	br := testbrowser.Launch(ctx, t, bin, "--window-size=1280,800") // a laptop screen: the page is laid out for one
	page := br.Page(ctx, t, "about:blank")
	t.Cleanup(func() { _ = page.Close() })
	if err := page.Open(ctx, url, also...); err != nil {
		t.Fatalf("DevTools: open %s: %v", url, err)
	}
	return page
}

// expectNoProblems fails the test for every console error or warning,
// uncaught exception or CSP violation the page has had so far.
func expectNoProblems(ctx context.Context, t *testing.T, page *testbrowser.Page) {
	t.Helper()
	problems, err := page.TakeProblems(ctx)
	if err != nil {
		t.Errorf("DevTools: %v", err)
	}
	for _, p := range problems {
		t.Errorf("the page reported: %s", p)
	}
}

// TestStatusPageLongErrorInChromium shows the status page a backend whose
// dial error is long, has no space to break at and has markup in it: the
// page shows all of it, as text, wrapped, and the backends table stays
// within the window.
func TestStatusPageLongErrorInChromium(t *testing.T) {
	bin := testbrowser.Path()
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("headless Chromium is needed for the status page test and %s is missing (%v): run `make browser-deps` (apt-get install -y chromium), or set CHROMIUM=/path/to/chromium", bin, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// The third backend answers every upgrade with a status line the pool
	// refuses, and its dial error quotes the line.
	garbage := `HTTP/1.0 <img src=x onerror=console.error(1)> ` + strings.Repeat("no-such-status-", 40)
	bad := startGarbageBackend(t, garbage)
	g := startGateway(t, gatewayOpts{backends: 2, poolSize: 2, args: []string{"-backend", "ws://" + bad + "/"}})
	testutil.WaitFor(t, 10*time.Second, "two backends full and the third failing", func() bool {
		bs := g.pool.Backends()
		return len(bs) == 3 && bs[0].Idle.Load() >= 2 && bs[1].Idle.Load() >= 2 && strings.Contains(bs[2].LastError(), "no-such-status-no-such-status")
	})
	var lastError string
	for _, b := range g.pools().Backends {
		if strings.Contains(b.URL, bad) {
			lastError = b.LastError
		}
	}

	page := openStatusPage(ctx, t, bin, g.adminURL("/"))
	l := waitProbe(ctx, t, page, layoutProbe, "the long error on the page", func(l tableLayout) bool { return l.ErrText != "" }, nil)
	if l.ErrText != lastError {
		t.Errorf("the last error cell shows %q,\nwant all of /pools' %q", l.ErrText, lastError)
	}
	if l.WrapScroll > l.WrapClient || l.DocScroll > l.DocClient || l.TableRight > l.Viewport {
		t.Errorf("the long error widens the page: backends box scrollWidth %d > clientWidth %d, or page %d > %d, or the table ends at %.0f px in a %.0f px window",
			l.WrapScroll, l.WrapClient, l.DocScroll, l.DocClient, l.TableRight, l.Viewport)
	}
	if l.ErrHeight < 2*l.LineHeight || l.ErrClipped {
		t.Errorf("the long error is not wrapped: its cell is %.0f px high (one line is %.0f px), clipped %v", l.ErrHeight, l.LineHeight, l.ErrClipped)
	}
	if l.Images != 0 {
		t.Errorf("the error's markup became %d element(s): the page must write data as text", l.Images)
	}
	screenshot(ctx, t, page, "status-long-error.png")
	expectNoProblems(ctx, t, page)
}

// tableLayout is what the test reads of the backends table's layout.
type tableLayout struct {
	WrapScroll int     `json:"wrapScroll"` // the table's scrolling box
	WrapClient int     `json:"wrapClient"`
	DocScroll  int     `json:"docScroll"` // the page
	DocClient  int     `json:"docClient"`
	TableRight float64 `json:"tableRight"`
	Viewport   float64 `json:"viewport"`
	ErrText    string  `json:"errText"` // the first last-error cell over 200 characters
	ErrHeight  float64 `json:"errHeight"`
	LineHeight float64 `json:"lineHeight"`
	ErrClipped bool    `json:"errClipped"`
	Images     int     `json:"images"` // img elements in the table
}

// layoutProbe reads the backends table's layout; returns a JSON string.
const layoutProbe = `JSON.stringify((() => {
  const table = document.getElementById("backends"), wrap = table.parentElement;
  const err = [...table.querySelectorAll("td.err")].find((td) => td.textContent.length > 200);
  return {
    wrapScroll: wrap.scrollWidth, wrapClient: wrap.clientWidth,
    docScroll: document.documentElement.scrollWidth, docClient: document.documentElement.clientWidth,
    tableRight: table.getBoundingClientRect().right, viewport: window.innerWidth,
    errText: err ? err.textContent : "",
    errHeight: err ? err.getBoundingClientRect().height : 0,
    lineHeight: err ? parseFloat(getComputedStyle(err).lineHeight) : 0,
    errClipped: err ? err.scrollWidth > err.clientWidth : false,
    images: table.querySelectorAll("img").length,
  };
})())`

// TestStatusPageChartsInChromium loads the status page while traffic
// flows and checks its charts of the last minutes: every series has
// points, and they follow the traffic (sessions open, frames each way,
// refusals); the series start over when the counters go down (a gateway
// restarted behind the same address) and points older than the window
// leave it.
func TestStatusPageChartsInChromium(t *testing.T) {
	bin := testbrowser.Path()
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("headless Chromium is needed for the status page test and %s is missing (%v): run `make browser-deps` (apt-get install -y chromium), or set CHROMIUM=/path/to/chromium", bin, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	g := startGateway(t, gatewayOpts{backends: 2, poolSize: 2})
	g.waitFull()

	page := openStatusPage(ctx, t, bin, g.adminURL("/"), fakeStatsHook)
	st := waitProbe(ctx, t, page, chartProbe, "the first render", func(s chartState) bool {
		return s.Refreshes >= 1 && len(s.Charts) == len(chartSeries)
	}, nil)
	if st.Window != 600 {
		t.Errorf("the charts cover %d s, want the last 10 minutes (600 s)", st.Window)
	}
	for i, c := range st.Charts {
		if c.Series != chartSeries[i] {
			t.Errorf("chart %d shows %q, want %q", i, c.Series, chartSeries[i])
		}
	}

	// Traffic: three sessions echoing, and handshakes refused.
	var conns []*websocket.Conn
	for i := 0; i < 3; i++ {
		c := g.dialWS(fmt.Sprintf("/charts-%d", i))
		echo(t, c, "hi")
		conns = append(conns, c)
	}
	for i := 0; i < 5; i++ {
		if code, err := getStatus(ctx, g.client, "http://"+g.srv.Addr()+"/not-an-upgrade"); err != nil || code < 400 {
			t.Fatalf("a plain GET to the gateway: HTTP %d (%v), want a refusal", code, err)
		}
	}
	stopPump := pumpEchoes(t, conns)

	st = waitProbe(ctx, t, page, chartProbe, "every chart with 5 points and the traffic on them", func(s chartState) bool {
		for _, c := range s.Charts {
			if c.Points < 5 {
				return false
			}
		}
		return s.chart("sessions").Current == 3 && s.chart("frames-in").Current > 0 && s.chart("frames-out").Current > 0 && s.chart("refusals").Max > 0
	}, nil)
	checkCharts(t, "with traffic", st)
	screenshot(ctx, t, page, "status-charts.png")
	for _, c := range st.Charts {
		if !strings.Contains(c.Text, "max") {
			t.Errorf("chart %s does not label its maximum: %q", c.Series, c.Text)
		}
	}

	// The counters go down, as after a restart: every series starts over.
	before := st.Refreshes
	if err := page.Evaluate(ctx, "__wsgateTest.restart(), 1", new(int)); err != nil {
		t.Fatal(err)
	}
	st = waitProbe(ctx, t, page, chartProbe, "the series reset", func(s chartState) bool { return s.Resets == 1 }, nil)
	for _, c := range st.Charts {
		if c.Points > st.Refreshes-before {
			t.Errorf("after the restart chart %s has %d points, %d polls later: the series did not start over", c.Series, c.Points, st.Refreshes-before)
		}
	}
	st = waitProbe(ctx, t, page, chartProbe, "every chart with points again", func(s chartState) bool {
		for _, c := range s.Charts {
			if c.Points < 2 {
				return false
			}
		}
		return s.chart("frames-in").Current > 0
	}, nil)
	checkCharts(t, "after the restart", st)

	// Eleven minutes pass between two polls: what came before leaves.
	before = st.Refreshes
	if err := page.Evaluate(ctx, "__wsgateTest.skip(660), 1", new(int)); err != nil {
		t.Fatal(err)
	}
	st = waitProbe(ctx, t, page, chartProbe, "two polls after the clock moved on", func(s chartState) bool { return s.Refreshes >= before+2 }, nil)
	for _, c := range st.Charts {
		if c.Points > st.Refreshes-before {
			t.Errorf("11 minutes later chart %s still has %d points, %d polls later: old points did not leave the window", c.Series, c.Points, st.Refreshes-before)
		}
	}
	checkCharts(t, "after 11 minutes", st)

	stopPump()
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		closeWith(t, c, websocket.CloseNormalClosure)
	}
	if st.Error != "" {
		t.Errorf("the page shows an error: %s", st.Error)
	}
	expectNoProblems(ctx, t, page)
}

// screenshot saves the whole page as a PNG named name in the folder
// WSGATE_SCREENSHOTS names, if it names one: a way to look at the page as
// the tests see it.
func screenshot(ctx context.Context, t *testing.T, p *testbrowser.Page, name string) {
	t.Helper()
	dir := os.Getenv("WSGATE_SCREENSHOTS")
	if dir == "" {
		return
	}
	var shot struct {
		Data []byte `json:"data"` // base64 in JSON
	}
	if err := p.Call(ctx, "Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true}, &shot); err != nil {
		t.Errorf("screenshot: %v", err)
		return
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, shot.Data, 0o644); err != nil {
		t.Errorf("screenshot: %v", err)
		return
	}
	t.Logf("screenshot: %s", path)
}

// chartSeries are the page's charts, in order.
var chartSeries = []string{"sessions", "frames-in", "frames-out", "paused", "waiting", "refusals"}

// checkCharts checks what every chart must satisfy at any time: its line
// has as many points as it says, all of them inside the chart (a negative
// rate or a point older than the window would be outside), and no value
// is negative.
func checkCharts(t *testing.T, when string, st chartState) {
	t.Helper()
	for _, c := range st.Charts {
		if c.PathPoints != c.Points || !c.Inside || c.Current < 0 || c.Max < c.Current {
			t.Errorf("%s, chart %s: %d points in data-points, %d drawn, all inside %v, current %g, max %g",
				when, c.Series, c.Points, c.PathPoints, c.Inside, c.Current, c.Max)
		}
	}
}

// chartState is what the test reads of the charts.
type chartState struct {
	Refreshes int            `json:"refreshes"`
	Resets    int            `json:"resets"`
	Window    int            `json:"window"`
	Error     string         `json:"error"`
	Charts    []chartReading `json:"charts"`
}

// chartReading is one chart as the test reads it.
type chartReading struct {
	Series     string  `json:"series"`     // data-series
	Points     int     `json:"points"`     // data-points
	PathPoints int     `json:"pathPoints"` // points of the drawn line
	Inside     bool    `json:"inside"`     // every point inside the SVG's viewBox
	Current    float64 `json:"current"`    // data-current
	Max        float64 `json:"max"`        // data-max
	Text       string  `json:"text"`       // its labels
}

func (s chartState) chart(series string) chartReading {
	for _, c := range s.Charts {
		if c.Series == series {
			return c
		}
	}
	return chartReading{Series: series + " (missing)"}
}

// chartProbe reads the charts; returns a JSON string.
const chartProbe = `JSON.stringify((() => {
  const box = document.getElementById("charts");
  const charts = [...document.querySelectorAll("#charts .chart")].map((c) => {
    const vb = c.querySelector("svg").viewBox.baseVal;
    const d = c.querySelector("path.line").getAttribute("d") || "";
    const pts = [...d.matchAll(/[ML]\s*(-?[\d.e+-]+)[\s,]+(-?[\d.e+-]+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
    const eps = 0.01;
    return {
      series: c.dataset.series,
      points: Number(c.dataset.points),
      pathPoints: pts.length,
      inside: pts.every(([x, y]) => x >= vb.x - eps && x <= vb.x + vb.width + eps && y >= vb.y - eps && y <= vb.y + vb.height + eps),
      current: Number(c.dataset.current),
      max: Number(c.dataset.max),
      text: c.innerText,
    };
  });
  return {
    refreshes: Number(document.body.dataset.refreshes || 0),
    resets: Number(box ? box.dataset.resets : -1),
    window: Number(box ? box.dataset.window : 0),
    error: document.getElementById("error").textContent,
    charts,
  };
})())`

// fakeStatsHook runs before the page's script and wraps its fetch of
// /stats: after __wsgateTest.restart() the counters answer less their
// values at that moment, as a restarted gateway's would, and
// __wsgateTest.skip(s) moves the gateway's clock s seconds on.
const fakeStatsHook = `(() => {
  const realFetch = window.fetch.bind(window);
  const counters = ["frames_in", "frames_out", "bytes_in", "bytes_out", "sessions_upgraded", "connections_accepted"];
  let restarted = false, base = null, skew = 0;
  window.__wsgateTest = { restart() { restarted = true; }, skip(s) { skew += s; } };
  window.fetch = async (input, init) => {
    const r = await realFetch(input, init);
    if ((!restarted && !skew) || !String(input).endsWith("stats") || !r.ok) return r;
    const st = await r.json();
    if (restarted) {
      if (!base) {
        base = { failures: { ...st.handshake_failures } };
        for (const k of counters) base[k] = st[k];
      }
      for (const k of counters) st[k] -= base[k];
      for (const k of Object.keys(st.handshake_failures || {})) st.handshake_failures[k] -= base.failures[k] || 0;
    }
    st.time = new Date(Date.parse(st.time) + skew * 1000).toISOString();
    return new Response(JSON.stringify(st), { headers: { "Content-Type": "application/json" } });
  };
})();`

// startGarbageBackend listens on loopback and answers every request with
// the status line line, then closes; it stops when the test ends.
func startGarbageBackend(t *testing.T, line string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go serveGarbage(ln, line, done)
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
	})
	return ln.Addr().String()
}

// serveGarbage answers the connections of ln one at a time until ln closes.
func serveGarbage(ln net.Listener, line string, done chan<- struct{}) {
	defer close(done)
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		for {
			l, err := br.ReadString('\n')
			if err != nil || strings.TrimSpace(l) == "" {
				break
			}
		}
		_, _ = c.Write([]byte(line + "\r\n\r\n"))
		_ = c.Close()
	}
}

// pumpEchoes keeps frames flowing both ways on conns (one echo on each,
// every 20 ms) until the returned stop is called, or the test ends.
func pumpEchoes(t *testing.T, conns []*websocket.Conn) (stop func()) {
	quit := make(chan struct{})
	done := make(chan struct{})
	go pumpLoop(t, conns, quit, done)
	var once sync.Once
	stop = func() {
		once.Do(func() { close(quit) })
		<-done
	}
	t.Cleanup(stop) // before the gateway stops, if the test fails first
	return stop
}

func pumpLoop(t *testing.T, conns []*websocket.Conn, quit <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-quit:
			return
		case <-tick.C:
		}
		for _, c := range conns {
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if err := c.WriteMessage(websocket.TextMessage, []byte("tick")); err != nil {
				t.Errorf("pump: %v", err)
				return
			}
			if _, _, err := c.ReadMessage(); err != nil {
				t.Errorf("pump: %v", err)
				return
			}
		}
	}
}

// getStatus fetches url and returns its status code.
func getStatus(ctx context.Context, client *http.Client, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// pageState is what the test reads of the rendered page.
type pageState struct {
	Refreshes     int      `json:"refreshes"`
	Ready         string   `json:"ready"`
	SessionsOpen  string   `json:"sessionsOpen"`
	SessionsTotal string   `json:"sessionsTotal"`
	ShardSessions int      `json:"shardSessions"`
	Shards        int      `json:"shards"`
	Error         string   `json:"error"`
	Text          string   `json:"text"`
	Resources     []string `json:"resources"`
	Backends      []struct {
		URL    string `json:"url"`
		State  string `json:"state"`
		Idle   string `json:"idle"`
		Leased string `json:"leased"`
	} `json:"backends"`
}

func (s pageState) leased() int {
	n := 0
	for _, b := range s.Backends {
		var v int
		fmt.Sscan(b.Leased, &v)
		n += v
	}
	return n
}

// pageProbe reads the page's state in the page; returns a JSON string.
const pageProbe = `JSON.stringify({
  refreshes: Number(document.body.dataset.refreshes || 0),
  ready: document.getElementById("ready").textContent,
  sessionsOpen: document.getElementById("sessions-open").textContent,
  sessionsTotal: document.getElementById("sessions-total").textContent,
  shardSessions: [...document.querySelectorAll("#shards tbody td.sessions")].reduce((a, td) => a + Number(td.textContent), 0),
  shards: document.querySelectorAll("#shards tbody tr").length,
  error: document.getElementById("error").textContent,
  text: document.body.innerText,
  resources: performance.getEntriesByType("resource").map((e) => e.name),
  backends: [...document.querySelectorAll("#backends tbody tr")].map((tr) => ({
    url: tr.dataset.backend,
    state: tr.children[3].textContent,
    idle: tr.querySelector(".idle").textContent,
    leased: tr.querySelector(".leased").textContent,
  })),
})`

// waitPage polls the page until cond holds, or fails with the last state.
func waitPage(ctx context.Context, t *testing.T, page *testbrowser.Page, what string, cond func(pageState) bool) pageState {
	t.Helper()
	st := waitProbe(ctx, t, page, pageProbe, what, cond, func(s *pageState) { s.Text = truncate(s.Text, 2000) })
	return st
}

// waitProbe evaluates probe (an expression that returns a JSON string) in
// the page until what it returns satisfies cond, or fails with the last
// state read, shortened by trim if given.
func waitProbe[T any](ctx context.Context, t *testing.T, page *testbrowser.Page, probe, what string, cond func(T) bool, trim func(*T)) T {
	t.Helper()
	var last T
	var lastErr error
	for {
		var raw string
		lastErr = page.Evaluate(ctx, probe, &raw)
		if lastErr == nil {
			var st T
			lastErr = json.Unmarshal([]byte(raw), &st)
			if lastErr == nil {
				last = st
				if cond(st) {
					return st
				}
			}
		}
		select {
		case <-ctx.Done():
			if trim != nil {
				trim(&last)
			}
			t.Fatalf("status page: timed out waiting for %s (last error %v); last state %+v", what, lastErr, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// expectStrictCSP checks in the page that its content security policy is
// in force, and that the test would see a violation: eval, a fetch to
// another origin (otherOrigin, the gateway's listener) and an image, even
// from the endpoint itself, must all be refused and reported.
func expectStrictCSP(ctx context.Context, t *testing.T, page *testbrowser.Page, otherOrigin string) {
	t.Helper()
	var got struct{ Eval, Fetch, Image string }
	err := page.EvaluateWith(ctx, `(async () => {
  const r = {};
  try { eval("1"); r.eval = "allowed"; } catch (e) { r.eval = e.name; }
  try { await fetch(`+strconv.Quote(otherOrigin)+`, { cache: "no-store" }); r.fetch = "allowed"; } catch (e) { r.fetch = e.name; }
  r.image = await new Promise((done) => {
    const img = new Image();
    img.onload = () => done("loaded");
    img.onerror = () => done("refused");
    img.src = "/stats?img";
  });
  return r;
})()`, map[string]any{"allowUnsafeEvalBlockedByCSP": false}, &got)
	if err != nil {
		t.Fatalf("CSP probe: %v", err)
	}
	if got.Eval != "EvalError" || got.Fetch != "TypeError" || got.Image != "refused" {
		t.Errorf("CSP probe: eval %s, fetch to %s %s, image %s; want EvalError, TypeError, refused", got.Eval, otherOrigin, got.Fetch, got.Image)
	}
	var all []string
	for {
		ps, err := page.TakeProblems(ctx)
		if err != nil {
			t.Fatalf("DevTools: %v", err)
		}
		all = append(all, ps...)
		seen := strings.Join(all, "\n")
		if strings.Contains(seen, "CSP violation: script-src") && strings.Contains(seen, "CSP violation: connect-src") && strings.Contains(seen, "CSP violation: img-src") {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("CSP probe: the violations were not all reported; seen %q", all)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
