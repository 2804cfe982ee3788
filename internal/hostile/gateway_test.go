package hostile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// gwOpts describe a gateway process.
type gwOpts struct {
	config string   // YAML configuration (docs/config.md), written to a temporary file
	args   []string // more flags
	nofile int      // RLIMIT_NOFILE (soft and hard) for the process; 0 = inherited
}

// gateway is a wsgate process under test.
type gateway struct {
	t     testing.TB
	cmd   *exec.Cmd
	pid   int
	addr  string // client listener, 127.0.0.1:PORT
	admin string // admin endpoint, 127.0.0.1:PORT
	log   *logBuffer

	done     chan struct{} // closed when the process has exited and its stderr is read
	exitCode int           // valid after done: exit status, or -1 if killed by a signal
	exitHow  string        // valid after done: "exit status 2", "signal: killed", ...
}

// adminClient talks to the admin endpoint without keeping connections
// open, so it adds no descriptor to the process it measures.
var adminClient = &http.Client{
	Timeout:   5 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
}

// startGateway starts the gateway and waits until /healthz answers 200
// and a session on "/" completes a round trip. It is stopped when t ends.
// A port taken between choosing and binding it is retried.
func startGateway(t testing.TB, o gwOpts) *gateway {
	t.Helper()
	var last error
	for attempt := 0; attempt < 3; attempt++ {
		g, err := tryStartGateway(t, o)
		if err == nil {
			return g
		}
		last = err
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	t.Fatalf("gateway did not start: %v", last)
	return nil
}

func tryStartGateway(t testing.TB, o gwOpts) (*gateway, error) {
	addr, admin := freePort(t), freePort(t)
	args := []string{"-listen", addr, "-admin", admin, "-log-format", "json", "-shutdown-timeout", "2s"}
	if o.config != "" {
		file := filepath.Join(t.TempDir(), "wsgate.yaml")
		if err := os.WriteFile(file, []byte(o.config), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-config", file)
	}
	args = append(args, o.args...)
	cmd := launcher(gatewayBin, args, o.nofile)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the test binary
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = pw
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		_ = pr.Close()
		_ = pw.Close()
		t.Fatalf("start %s: %v", gatewayBin, err)
	}
	_ = pw.Close()
	g := &gateway{t: t, cmd: cmd, pid: cmd.Process.Pid, addr: addr, admin: admin, log: newLogBuffer(), done: make(chan struct{})}
	go g.wait(pr)
	t.Cleanup(g.stop)
	if err := g.waitReady(20 * time.Second); err != nil {
		g.stop()
		return nil, fmt.Errorf("%v\n%s", err, g.log.tail(3000))
	}
	return g, nil
}

// launcher runs bin with args, under a descriptor limit if nofile > 0:
// through prlimit(1) when installed, else through this test binary
// re-executing itself (TestMain) to call setrlimit and exec.
func launcher(bin string, args []string, nofile int) *exec.Cmd {
	if nofile <= 0 {
		return exec.Command(bin, args...)
	}
	if prlimit, err := exec.LookPath("prlimit"); err == nil {
		lim := strconv.Itoa(nofile)
		return exec.Command(prlimit, append([]string{"--nofile=" + lim + ":" + lim, "--", bin}, args...)...)
	}
	return reexecLauncher(bin, args, nofile)
}

// reexecLauncher is the fallback of launcher, without prlimit.
func reexecLauncher(bin string, args []string, nofile int) *exec.Cmd {
	self, err := os.Executable()
	if err != nil {
		self = os.Args[0]
	}
	cmd := exec.Command(self, append([]string{bin}, args...)...)
	cmd.Env = append(os.Environ(), reexecNofileEnv+"="+strconv.Itoa(nofile))
	return cmd
}

// freePort picks a free loopback port.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// wait collects stderr until the process ends, then reaps it.
func (g *gateway) wait(stderr *os.File) {
	g.log.readFrom(stderr)
	_ = stderr.Close()
	err := g.cmd.Wait()
	g.exitCode = 0
	g.exitHow = "exit status 0"
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		g.exitCode = ee.ExitCode()
		g.exitHow = ee.String()
	} else if err != nil {
		g.exitCode, g.exitHow = -1, err.Error()
	}
	close(g.done)
}

// alive reports whether the process is still running.
func (g *gateway) alive() bool {
	select {
	case <-g.done:
		return false
	default:
		return true
	}
}

// exitReport describes how the process ended and the end of its stderr.
func (g *gateway) exitReport() string {
	<-g.done
	return fmt.Sprintf("gateway process %d ended: %s\n--- stderr (tail) ---\n%s", g.pid, g.exitHow, g.log.tail(4000))
}

// stop sends SIGTERM, then SIGKILL after 5 s.
func (g *gateway) stop() {
	if !g.alive() {
		return
	}
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.done:
		return
	case <-time.After(5 * time.Second):
	}
	_ = g.cmd.Process.Kill()
	select {
	case <-g.done:
	case <-time.After(10 * time.Second):
		g.t.Errorf("gateway process %d did not die after SIGKILL", g.pid)
	}
}

// waitReady polls /healthz, then opens a session on "/" and does a round trip.
func (g *gateway) waitReady(within time.Duration) error {
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		if !g.alive() {
			<-g.done
			return fmt.Errorf("gateway exited during start: %s", g.exitHow)
		}
		if last = g.healthz(); last == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if last != nil {
		return fmt.Errorf("/healthz not 200 within %v: %v", within, last)
	}
	for time.Now().Before(deadline) {
		var s *session
		if s, last = openSession(g.addr, "/ready", "ready", dialOpts{}); last == nil {
			_ = s.closeSession()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("no working session within %v: %v", within, last)
}

// healthz is nil if GET /healthz answers 200.
func (g *gateway) healthz() error {
	resp, err := adminClient.Get("http://" + g.admin + "/healthz")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/healthz: %s", resp.Status)
	}
	return nil
}

// rss is the process's resident set size in bytes (VmRSS).
func (g *gateway) rss() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", g.pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS %q: %w", rest, err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("no VmRSS in /proc/PID/status")
}

// fds counts the process's open descriptors.
func (g *gateway) fds() (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", g.pid))
	return len(ents), err
}

// goroutines reads the process's goroutine count from its pprof endpoint.
func (g *gateway) goroutines() (int, error) {
	resp, err := adminClient.Get("http://" + g.admin + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(io.LimitReader(resp.Body, 4096)).ReadString('\n')
	_, _ = io.Copy(io.Discard, resp.Body)
	if err != nil {
		return 0, fmt.Errorf("goroutine profile: %w", err)
	}
	var n int
	if _, err := fmt.Sscanf(line, "goroutine profile: total %d", &n); err != nil {
		return 0, fmt.Errorf("goroutine profile first line %q: %w", line, err)
	}
	return n, nil
}

// logBuffer keeps the head and the tail of a process's stderr, bounded,
// and counts lines that must never appear.
type logBuffer struct {
	mu     sync.Mutex
	first  []byte // the first headMax bytes
	ring   []byte // the last tailMax bytes
	total  int64
	races  int      // "WARNING: DATA RACE" reports
	panics []string // "panic:" / "fatal error:" lines
}

const (
	headMax = 8 << 10
	tailMax = 64 << 10
)

func newLogBuffer() *logBuffer { return &logBuffer{} }

func (l *logBuffer) readFrom(r io.Reader) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			l.add(line)
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

func (l *logBuffer) add(line []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total += int64(len(line))
	if n := min(headMax-len(l.first), len(line)); n > 0 {
		l.first = append(l.first, line[:n]...)
	}
	l.ring = append(l.ring, line...)
	if len(l.ring) > 2*tailMax {
		l.ring = append(l.ring[:0], l.ring[len(l.ring)-tailMax:]...)
	}
	switch {
	case bytes.Contains(line, []byte("WARNING: DATA RACE")):
		l.races++
	case bytes.HasPrefix(line, []byte("panic:")), bytes.HasPrefix(line, []byte("fatal error:")):
		if len(l.panics) < 5 {
			l.panics = append(l.panics, strings.TrimSpace(string(line)))
		}
	}
}

// tail returns about the last n bytes of stderr.
func (l *logBuffer) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.ring
	if len(r) > n {
		r = r[len(r)-n:]
		if i := bytes.IndexByte(r, '\n'); i >= 0 {
			r = r[i+1:]
		}
	}
	return string(r)
}

// head returns the first bytes of stderr that were kept.
func (l *logBuffer) head() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.first)
}

// grep returns up to n kept lines of stderr that contain any of subs.
func (l *logBuffer) grep(n int, subs ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	seen := map[string]bool{}
	for _, b := range [][]byte{l.first, l.ring} {
		for _, line := range strings.Split(string(b), "\n") {
			for _, s := range subs {
				if strings.Contains(line, s) && !seen[line] && len(out) < n {
					seen[line] = true
					out = append(out, line)
				}
			}
		}
	}
	return out
}

// find returns up to n bytes of stderr around the first occurrence of s in
// what is kept, or "".
func (l *logBuffer) find(s string, n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range [][]byte{l.first, l.ring} {
		if i := bytes.Index(b, []byte(s)); i >= 0 {
			return string(b[i:min(len(b), i+n)])
		}
	}
	return ""
}

func (l *logBuffer) findings() (races int, panics []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.races, append([]string(nil), l.panics...)
}
