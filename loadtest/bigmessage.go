package loadtest

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/gorilla/websocket"
)

// `loadtest big-message` echoes one large message through the echo
// endpoint alone and then through the gateway in front of it, each a
// separate process, and reports how far each process's RSS rose above its
// idle level while the message streamed through. The client writes and
// reads at once (a reader that keeps up); the echo must come back whole
// and the close handshake end with 1000.

// bigCommands start the processes of a big-message run.
type bigCommands struct {
	echo    func(addr string, maxMessage int) *exec.Cmd
	gateway func(args []string) *exec.Cmd
}

func wsgateBigCommands(bin string) bigCommands {
	return bigCommands{
		echo: func(addr string, maxMessage int) *exec.Cmd {
			return exec.Command(bin, "echo", "-listen", addr, "-max-message-bytes", strconv.Itoa(maxMessage), "-log-level", "warn")
		},
		gateway: func(args []string) *exec.Cmd { return exec.Command(bin, append(args, "-log-level", "warn")...) },
	}
}

// BigResult is one process's figures.
type BigResult struct {
	Through   string // "endpoint" or "gateway"
	CloseCode int    // the close code the server answered (1000 expected)
	BaseRSS   uint64 // bytes, before the message
	PeakRSS   uint64 // bytes, highest sample while it streamed
	Elapsed   time.Duration
}

// Growth is how far RSS rose above its idle level.
func (r BigResult) Growth() uint64 { return r.PeakRSS - min(r.PeakRSS, r.BaseRSS) }

// BigMessageMain runs `loadtest big-message`.
func BigMessageMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadtest big-message", flag.ContinueOnError)
	fs.SetOutput(stderr)
	size := fs.Int("size", 16<<20, "message size in bytes (also the processes' -max-message-bytes)")
	bin := fs.String("wsgate", "bin/wsgate", "the wsgate binary (echo endpoint and gateway)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	dir, err := os.MkdirTemp("", "wsgate-big-message-")
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	results, err := runBigMessage(wsgateBigCommands(*bin), *size, dir)
	for _, r := range results {
		fmt.Fprintf(stdout, "%s: %d MiB echoed in %v, close %d; RSS %.1f MiB idle, %.1f MiB peak: +%.1f MiB while it streamed\n",
			r.Through, *size>>20, r.Elapsed.Round(time.Millisecond), r.CloseCode, mib(r.BaseRSS), mib(r.PeakRSS), mib(r.Growth()))
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// runBigMessage starts the echo endpoint and the gateway in front of it
// and echoes one message of size bytes through each in turn.
func runBigMessage(cmds bigCommands, size int, logDir string) ([]BigResult, error) {
	echoAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	echo, err := startChild("echo", cmds.echo(echoAddr, size), logDir)
	if err != nil {
		return nil, err
	}
	defer echo.stop(5 * time.Second)
	gwAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	gw, err := startChild("wsgate", cmds.gateway([]string{"-listen", gwAddr, "-backend", "ws://" + echoAddr + "/",
		"-pool-size", "1", "-max-message-bytes", strconv.Itoa(size)}), logDir)
	if err != nil {
		return nil, err
	}
	defer gw.stop(5 * time.Second)
	msg := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
	var out []BigResult
	for _, target := range []struct {
		name string
		addr string
		proc *child
	}{{"endpoint", echoAddr, echo}, {"gateway", gwAddr, gw}} {
		if _, err := probe("ws://"+target.addr+"/", nil, target.proc, 20*time.Second); err != nil {
			return out, err
		}
		r, err := echoBig(target.addr, target.proc.pid(), msg)
		r.Through = target.name
		out = append(out, r)
		if err != nil {
			return out, fmt.Errorf("through the %s: %w", target.name, err)
		}
	}
	return out, nil
}

// echoBig sends msg while reading its echo, checks it, closes with 1000,
// and samples pid's RSS meanwhile.
func echoBig(addr string, pid int, msg []byte) (r BigResult, err error) {
	time.Sleep(500 * time.Millisecond) // let the probe's session end
	base, err := readProcMem(pid)
	if err != nil {
		return r, err
	}
	r.BaseRSS = base.RSS
	peak := sampleRSS(pid, 5*time.Millisecond)
	defer func() { r.PeakRSS = max(r.BaseRSS, peak()) }()

	d := websocket.Dialer{ReadBufferSize: 64 << 10, WriteBufferSize: 64 << 10, HandshakeTimeout: 5 * time.Second}
	c, _, err := d.Dial("ws://"+addr+"/", nil)
	if err != nil {
		return r, err
	}
	defer c.Close()
	c.SetReadLimit(int64(len(msg)))
	start := time.Now()
	written := make(chan error, 1)
	go func() { written <- c.WriteMessage(websocket.BinaryMessage, msg) }()
	_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
	_, got, err := c.ReadMessage()
	if werr := <-written; err == nil {
		err = werr
	}
	if err != nil {
		return r, err
	}
	r.Elapsed = time.Since(start)
	if !bytes.Equal(got, msg) {
		return r, fmt.Errorf("the echo differs: %d bytes back of %d", len(got), len(msg))
	}
	if err := c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")); err != nil {
		return r, err
	}
	_, _, err = c.ReadMessage()
	if ce, ok := err.(*websocket.CloseError); ok {
		r.CloseCode = ce.Code
	}
	if r.CloseCode != websocket.CloseNormalClosure {
		return r, fmt.Errorf("close: %v, want 1000", err)
	}
	return r, nil
}

// sampleRSS samples pid's RSS every interval until the returned function
// is called, which returns the highest sample.
func sampleRSS(pid int, interval time.Duration) (stop func() uint64) {
	done := make(chan struct{})
	result := make(chan uint64, 1)
	go func() {
		var peak uint64
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-done:
				result <- peak
				return
			case <-tick.C:
				if m, err := readProcMem(pid); err == nil {
					peak = max(peak, m.RSS)
				}
			}
		}
	}()
	return func() uint64 { close(done); return <-result }
}
