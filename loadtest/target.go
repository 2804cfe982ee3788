package loadtest

import (
	"crypto/tls"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"
)

// Proxy kinds.
const (
	KindWsgate    = "wsgate"    // the gateway built from this repo
	KindGoroutine = "goroutine" // the goroutine-per-connection baseline (goroutineproxy)
	KindNginx     = "nginx"     // Debian's nginx as a WebSocket reverse proxy
	KindDirect    = "direct"    // no proxy: clients dial the backends themselves
	KindURL       = "url"       // a proxy someone else runs, at -url
)

// Kinds lists the proxy kinds in the order -compare all uses.
var Kinds = []string{KindWsgate, KindGoroutine, KindNginx, KindDirect}

// validKind reports whether name is a proxy kind.
func validKind(name string) bool {
	switch name {
	case KindWsgate, KindGoroutine, KindNginx, KindDirect, KindURL:
		return true
	}
	return false
}

// Commands says how to start the processes a run needs. The CLI points
// them at bin/wsgate and at its own executable; tests point them at the
// test binary.
type Commands struct {
	// Backend returns the command of one echo backend listening on addr.
	Backend func(addr string) *exec.Cmd
	// GoroutineProxy returns the command of the baseline proxy with args.
	GoroutineProxy func(args []string) *exec.Cmd
	// Wsgate returns the command of the wsgate gateway with args.
	Wsgate func(args []string) *exec.Cmd
	// NginxBin is the nginx executable ("" = look it up).
	NginxBin string
}

// DefaultCommands uses wsgateBin for the backends and the gateway, and
// this executable's `goroutine-proxy` subcommand for the baseline.
func DefaultCommands(wsgateBin string) Commands {
	return Commands{
		Backend: func(addr string) *exec.Cmd {
			return exec.Command(wsgateBin, "echo", "-listen", addr, "-log-level", "warn")
		},
		GoroutineProxy: func(args []string) *exec.Cmd {
			self, err := os.Executable()
			if err != nil {
				self = os.Args[0]
			}
			return exec.Command(self, append([]string{"goroutine-proxy"}, args...)...)
		},
		Wsgate: func(args []string) *exec.Cmd { return exec.Command(wsgateBin, args...) },
	}
}

// backendSet is the echo backends of one run.
type backendSet struct {
	addrs    []string
	children []*child
}

func (b *backendSet) urls() []string {
	out := make([]string, len(b.addrs))
	for i, a := range b.addrs {
		out[i] = "ws://" + a + "/"
	}
	return out
}

func (b *backendSet) group() procGroup {
	g := procGroup{}
	for _, c := range b.children {
		g.roots = append(g.roots, c.pid())
	}
	return g
}

// stop stops every backend at once: each takes a moment to shut down.
func (b *backendSet) stop() {
	var wg sync.WaitGroup
	for _, c := range b.children {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.stop(5 * time.Second)
		}()
	}
	wg.Wait()
}

// alive returns an error describing the first backend that died.
func (b *backendSet) alive() error {
	for _, c := range b.children {
		if !c.alive() {
			return c.deathError()
		}
	}
	return nil
}

// startBackends starts n echo backends and waits until each listens.
func startBackends(cmds Commands, n int, logDir string) (*backendSet, error) {
	b := &backendSet{}
	for i := 0; i < n; i++ {
		addr, err := freeAddr()
		if err != nil {
			b.stop()
			return nil, err
		}
		c, err := startChild(fmt.Sprintf("backend-%d", i+1), cmds.Backend(addr), logDir)
		if err != nil {
			b.stop()
			return nil, err
		}
		b.addrs = append(b.addrs, addr)
		b.children = append(b.children, c)
	}
	for i, addr := range b.addrs {
		if err := waitListening(addr, b.children[i], 15*time.Second); err != nil {
			b.stop()
			return nil, err
		}
	}
	return b, nil
}

// target is the proxy under test, once started.
type target struct {
	kind  string
	urls  []string   // what clients dial; session i dials urls[i % len]
	group procGroup  // what to measure; empty for direct
	admin string     // host:port serving /debug/pprof, if any
	proc  *child     // nil for direct and url
	tls   *TLSResult // what the probe negotiated; nil for ws://
}

func (t *target) stop() {
	if t != nil && t.proc != nil {
		t.proc.stop(10 * time.Second)
	}
}

// targetSpec is what startTarget needs besides the backends.
type targetSpec struct {
	kind      string
	poolSize  int           // per backend, for pooled proxies
	url       string        // KindURL
	pid       int           // KindURL: process to measure (0 = none)
	extraArgs []string      // appended to the wsgate command line
	tls       *tlsMaterials // the front listens with TLS (wsgate, nginx); nil: plain
	logDir    string
}

// startTarget starts the proxy of spec.kind in front of backends and waits
// until one echo goes through it.
func startTarget(cmds Commands, spec targetSpec, backends *backendSet) (*target, error) {
	t := &target{kind: spec.kind}
	switch spec.kind {
	case KindDirect:
		t.urls = backends.urls()
		return t, nil
	case KindURL:
		t.urls = []string{spec.url}
		if spec.pid > 0 {
			t.group = procGroup{roots: []int{spec.pid}, children: true}
		}
		_, err := probe(spec.url, nil, nil, 10*time.Second)
		return t, err
	}
	if spec.tls != nil && !tlsKind(spec.kind) {
		return nil, fmt.Errorf("loadtest: %s cannot run with -tls (only wsgate and nginx terminate TLS here)", spec.kind)
	}

	listen, err := freeAddr()
	if err != nil {
		return nil, err
	}
	scheme, tlsConfig := "ws://", (*tls.Config)(nil)
	if spec.tls != nil {
		scheme, tlsConfig = "wss://", spec.tls.client
	}
	t.urls = []string{scheme + listen + "/"}
	var cmd *exec.Cmd
	switch spec.kind {
	case KindWsgate, KindGoroutine:
		admin, err := freeAddr()
		if err != nil {
			return nil, err
		}
		t.admin = admin
		args := []string{"-listen", listen, "-admin", admin, "-pool-size", strconv.Itoa(spec.poolSize)}
		if spec.tls != nil {
			// The TLS listener alone: no plain port beside it, as nginx.
			args = []string{"-listen", "", "-tls-listen", listen, "-tls-cert", spec.tls.certFile, "-tls-key", spec.tls.keyFile,
				"-tls-min-version", spec.tls.opts.Version, "-admin", admin, "-pool-size", strconv.Itoa(spec.poolSize)}
		}
		for _, u := range backends.urls() {
			args = append(args, "-backend", u)
		}
		if spec.kind == KindWsgate {
			// wsgate's -pool-size is PgBouncer's min idle: it keeps that many
			// idle connections ready and dials more as sessions lease them.
			// Capping the total at the same figure gives it exactly the
			// goroutine baseline's pool (all pre-dialed, none added), so the
			// two hold the same backend connections; extra args may override.
			args = append(args, "-pool-max", strconv.Itoa(spec.poolSize), "-log-level", "warn")
			cmd = cmds.Wsgate(append(args, spec.extraArgs...))
		} else {
			cmd = cmds.GoroutineProxy(args)
		}
	case KindNginx:
		cmd, err = nginxCommand(cmds.NginxBin, listen, backends.addrs, spec.logDir, spec.tls)
		if err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("loadtest: unknown proxy %q", spec.kind)
	}
	c, err := startChild(spec.kind, cmd, spec.logDir)
	if err != nil {
		return nil, err
	}
	t.proc = c
	t.group = procGroup{roots: []int{c.pid()}, children: spec.kind == KindNginx}
	if err := waitListening(listen, c, 20*time.Second); err != nil {
		t.stop()
		return nil, err
	}
	if t.tls, err = probe(t.urls[0], tlsConfig, c, 20*time.Second); err != nil {
		t.stop()
		return nil, err
	}
	return t, nil
}
