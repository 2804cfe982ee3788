package tlsinterop

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// peer is an external client process (openssl, node, python) run by a
// test: its stdin is a pipe the test writes, its stdout and stderr are
// kept whole (they are small) for the test to wait on. It runs in a
// process group of its own and is killed, with anything it started, when
// the test ends or its deadline passes.
type peer struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *lockedBuffer
	err   *lockedBuffer
	done  chan struct{} // closed when the process has exited and its output is read
	wait  error         // the exit status, once done
}

// lockedBuffer is a bytes.Buffer written by the copier of one pipe and
// read by the test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

func (b *lockedBuffer) String() string { return string(b.Bytes()) }

// startPeer runs bin with args (and env added to the test's environment)
// for at most within.
func startPeer(t testing.TB, within time.Duration, env []string, bin string, args ...string) *peer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.Env = append(cmd.Environ(), env...)
	p := &peer{name: bin, cmd: cmd, out: &lockedBuffer{}, err: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.err
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() {
		p.wait = cmd.Wait()
		cancel()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.stdin.Close()
		select {
		case <-p.done:
		case <-time.After(2 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	})
	return p
}

// send writes p to the peer's stdin.
func (p *peer) send(t testing.TB, b []byte) {
	t.Helper()
	if _, err := p.stdin.Write(b); err != nil {
		t.Fatalf("%s: write to stdin: %v\n%s", p.name, err, p.describe())
	}
}

// waitOut waits until the peer's stdout holds what (after the offset
// from), and returns the offset just past it.
func (p *peer) waitOut(t testing.TB, from int, what []byte, within time.Duration) int {
	t.Helper()
	return p.waitIn(t, p.out, "stdout", from, what, within)
}

// waitErr is waitOut on stderr.
func (p *peer) waitErr(t testing.TB, from int, what []byte, within time.Duration) int {
	t.Helper()
	return p.waitIn(t, p.err, "stderr", from, what, within)
}

func (p *peer) waitIn(t testing.TB, b *lockedBuffer, name string, from int, what []byte, within time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		out := b.Bytes()
		if from <= len(out) {
			if i := bytes.Index(out[from:], what); i >= 0 {
				return from + i + len(what)
			}
		}
		select {
		case <-p.done:
			out = b.Bytes()
			if from <= len(out) && bytes.Contains(out[from:], what) {
				continue
			}
			t.Fatalf("%s exited (%v) before printing %q on %s\n%s", p.name, p.wait, what, name, p.describe())
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %q not printed on %s within %v\n%s", p.name, what, name, within, p.describe())
		}
	}
}

// exit closes the peer's stdin and waits for it to exit; it returns the
// exit error (nil for status 0).
func (p *peer) exit(t testing.TB, within time.Duration) error {
	t.Helper()
	_ = p.stdin.Close()
	select {
	case <-p.done:
		return p.wait
	case <-time.After(within):
		t.Fatalf("%s did not exit within %v after its stdin closed\n%s", p.name, within, p.describe())
		return nil
	}
}

// describe is the peer's output, for failure messages.
func (p *peer) describe() string {
	return fmt.Sprintf("--- %s stdout (tail):\n%s\n--- stderr (tail):\n%s", p.name,
		tail(printable(p.out.String()), 40), tail(p.err.String(), 40))
}

// printable replaces the bytes of binary frames in s so it prints.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' || (r >= ' ' && r < 0x7f) {
			return r
		}
		return '.'
	}, s)
}
