package loadtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// child is a process a run started and must stop: a backend or a proxy.
// Its output goes to a log file so that a failure can quote it.
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{} // closed once the process has been reaped
	waitErr error         // the exit status; valid after exited is closed
}

// startChild starts cmd with its output in logDir/name.log. The child gets
// its own process group (so a stop reaches nginx's workers too) and dies
// with us if we die first (Pdeathsig), so an interrupted run leaves
// nothing behind.
func startChild(name string, cmd *exec.Cmd, logDir string) (*child, error) {
	logPath := filepath.Join(logDir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("loadtest: log for %s: %w", name, err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("loadtest: start %s (%s): %w", name, cmd.Path, err)
	}
	c := &child{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		c.waitErr = cmd.Wait()
		_ = logFile.Close()
		close(c.exited)
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// alive reports whether the process is still running.
func (c *child) alive() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// deathError describes how a child that should be running ended.
func (c *child) deathError() error {
	<-c.exited
	return fmt.Errorf("%s exited (%v); last lines of %s:\n%s", c.name, c.waitErr, c.logPath, c.logTail(12))
}

// stop asks the process group to end (SIGTERM), then kills it after grace.
func (c *child) stop(grace time.Duration) {
	if !c.alive() {
		return
	}
	_ = syscall.Kill(-c.pid(), syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-c.exited:
	case <-t.C:
		_ = syscall.Kill(-c.pid(), syscall.SIGKILL)
		<-c.exited
	}
}

// logTail returns the last n lines of the child's log.
func (c *child) logTail(n int) string {
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}

// freeAddr returns a loopback address with a port nobody listens on now.
// Another process could take it before the child binds it; on a machine
// running only this benchmark that does not happen.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("loadtest: find a free port: %w", err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr, nil
}

// pollInterval is how often readiness checks retry.
const pollInterval = 20 * time.Millisecond

// waitListening polls until addr accepts TCP connections, the child dies,
// or timeout passes.
func waitListening(addr string, c *child, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = conn.Close()
			return nil
		}
		if c != nil && !c.alive() {
			return c.deathError()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("loadtest: nothing listening on %s after %v: %w", addr, timeout, err)
		}
		time.Sleep(pollInterval)
	}
}

// probe checks that one WebSocket round trip works through url, retrying
// until timeout: a pooled proxy may be filling its pool still. tlsConfig
// is the clients' for a wss:// url (nil: plain); what that connection
// negotiated comes back (nil for ws://).
func probe(url string, tlsConfig *tls.Config, c *child, timeout time.Duration) (*TLSResult, error) {
	deadline := time.Now().Add(timeout)
	for {
		negotiated, err := probeOnce(url, tlsConfig)
		if err == nil {
			return negotiated, nil
		}
		if c != nil && !c.alive() {
			return nil, c.deathError()
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("loadtest: no echo through %s after %v: %w", url, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func probeOnce(url string, tlsConfig *tls.Config) (*TLSResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	d := *websocket.DefaultDialer
	d.TLSClientConfig = tlsConfig
	ws, resp, err := d.DialContext(ctx, url, nil)
	if err != nil {
		return nil, dialError(err, resp)
	}
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(2 * time.Second))
	want := []byte("loadtest probe")
	if err := ws.WriteMessage(websocket.TextMessage, want); err != nil {
		return nil, err
	}
	_, got, err := ws.ReadMessage()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(got, want) {
		return nil, errors.New("probe: the echo differs from the message")
	}
	_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	if tc, ok := ws.NetConn().(*tls.Conn); ok {
		return negotiated(tc.ConnectionState()), nil
	}
	return nil, nil
}

// settle waits until the measured processes are quiet (at most one clock
// tick of CPU in half a second), so the idle baseline is not taken while a
// pool is still filling or the runtime is still starting. It gives up after
// timeout and says so.
func settle(groups []procGroup, timeout time.Duration) (quiet bool, err error) {
	const window = 500 * time.Millisecond
	deadline := time.Now().Add(timeout)
	cpu := func() (time.Duration, error) {
		var total time.Duration
		for _, g := range groups {
			u, err := g.sample()
			if err != nil {
				return 0, err
			}
			total += u.CPU
		}
		return total, nil
	}
	prev, err := cpu()
	if err != nil {
		return false, err
	}
	for time.Now().Before(deadline) {
		time.Sleep(window)
		cur, err := cpu()
		if err != nil {
			return false, err
		}
		if cur-prev <= clockTick {
			return true, nil
		}
		prev = cur
	}
	return false, nil
}
