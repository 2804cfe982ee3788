package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wsgate/wsgate/admin"
	"github.com/wsgate/wsgate/server"
)

func parseOps(t *testing.T, args ...string) *opsFlags {
	t.Helper()
	var f gatewayFlags
	fs := flag.NewFlagSet("wsgate", flag.ContinueOnError)
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return &f.ops
}

func TestOpsOffByDefault(t *testing.T) {
	o := parseOps(t)
	if o.admin != "" || o.accessLogOn || o.accessSample != 1 || o.mutexFraction != 0 || o.blockRate != 0 {
		t.Fatalf("defaults: %+v", o)
	}
	if hook := o.accessLog(zap.NewNop()); hook != nil {
		t.Fatal("with the admin endpoint and the access log off, the loops must get no session-end hook")
	}
	stop, err := o.start(opsDeps{log: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	stop()
}

// TestAccessLogFlag: lines are written whatever -log-level says, one in
// -access-log-sample normal ends, every abnormal one.
func TestAccessLogFlag(t *testing.T) {
	o := parseOps(t, "-access-log", "-access-log-sample", "3")
	core, logs := observer.New(zapcore.ErrorLevel) // as with -log-level error
	hook := o.accessLog(zap.New(core))
	if hook == nil {
		t.Fatal("no hook with -access-log")
	}
	normal := &server.SessionRecord{ID: 7, Client: "127.0.0.1:5000", Path: "/x", Reason: server.ReasonClientClose, CloseSent: 1000, CloseRecv: 1000}
	for i := 0; i < 9; i++ {
		hook(normal)
	}
	hook(&server.SessionRecord{Reason: server.ReasonBackendLost, CloseSent: 1011, BackendClose: 1011})
	if n := logs.Len(); n != 4 {
		t.Fatalf("9 normal ends at 1 in 3 plus 1 abnormal: %d lines, want 4", n)
	}
	if f := logs.All()[0].ContextMap(); f["path"] != "/x" || f["client"] != "127.0.0.1:5000" || f["reason"] != "client_close" {
		t.Errorf("fields %v", f)
	}
	if o.recorder != nil {
		t.Error("no admin endpoint, yet a recorder was made")
	}

	o = parseOps(t, "-access-log", "-access-log-sample", "0")
	o.accessLog(zap.NewNop())
	if _, err := o.start(opsDeps{log: zap.NewNop()}); err == nil || !strings.Contains(err.Error(), "-access-log-sample") {
		t.Fatalf("-access-log-sample 0: %v, want a refusal", err)
	}
}

func TestAdminFlagLoopbackOnly(t *testing.T) {
	o := parseOps(t, "-admin", "0.0.0.0:0")
	o.accessLog(zap.NewNop())
	_, err := o.start(opsDeps{log: zaptest.NewLogger(t)})
	if !errors.Is(err, admin.ErrPublicWithoutToken) || !strings.Contains(err.Error(), "-admin-token") {
		t.Fatalf("-admin 0.0.0.0:0 without a token: %v, want a clear refusal", err)
	}
	o = parseOps(t, "-admin", "0.0.0.0:0", "-admin-token", "t0ken")
	o.accessLog(zap.NewNop())
	stop, err := o.start(opsDeps{log: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatalf("-admin 0.0.0.0:0 with a token: %v", err)
	}
	stop()
}

// TestAdminServes: -admin starts the endpoint (with the session metrics
// hook) and stop ends it.
func TestAdminServes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()

	o := parseOps(t, "-admin", addr)
	if o.accessLog(zap.NewNop()) == nil || o.recorder == nil {
		t.Fatal("-admin needs the session-end hook for its session metrics")
	}
	stop, err := o.start(opsDeps{log: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	for _, path := range []string{"/healthz", "/metrics", "/debug/pprof/"} {
		resp, err := client.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		if path == "/metrics" && !strings.Contains(string(body), "wsgate_session_duration_seconds") {
			t.Fatalf("/metrics lacks the session metrics:\n%.500s", body)
		}
	}
	stop()
	if _, err := client.Get("http://" + addr + "/healthz"); err == nil {
		t.Fatal("the endpoint still answers after stop")
	}
}

// TestConfigStatusAndReload: with the gateway's applier and file source
// wired in as runGateway wires them, the admin endpoint reports the
// version in force and POST /actions/reload returns the reload's result:
// the new version, or the reason the file was rejected (the last good
// version stays).
func TestConfigStatusAndReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wsgate.yaml")
	writeConfig(t, path, "default_group: main\ngroups: [{name: main, backends: [{url: 'ws://127.0.0.1:9/', pool_target: 1}]}]\n")
	gw := startFileGateway(t, path)
	p, log := gw.Pool, zaptest.NewLogger(t)

	d := opsDeps{pool: p, log: log, applier: gw.Applier, reload: gw.Reload, configSource: true}
	st := configStatus(d)()
	if st.Version != 1 || st.LastReload != admin.ReloadOK || !strings.HasPrefix(st.Source, "file:") {
		t.Fatalf("initial status %+v", st)
	}
	reload := reloadNow(d)
	writeConfig(t, path, "default_group: main\ngroups: [{name: main, backends: [{url: 'ws://127.0.0.1:9/', pool_target: 2}]}]\n")
	if err := reload(context.Background()); err != nil {
		t.Fatalf("good reload: %v", err)
	}
	if st := configStatus(d)(); st.Version != 2 || st.LastReload != admin.ReloadOK {
		t.Fatalf("after a good reload: %+v", st)
	}
	writeConfig(t, path, "default_group: main\ngroups: [{name: main, backends: [{url: 'ftp://nope/'}]}]\n")
	err := reload(context.Background())
	if err == nil || !strings.Contains(err.Error(), "ftp://nope/") {
		t.Fatalf("bad reload: %v, want the rejection naming the value", err)
	}
	if st := configStatus(d)(); st.Version != 2 || st.LastReload == admin.ReloadOK {
		t.Fatalf("after a rejected reload: %+v (the last good version must stay)", st)
	}

	// Nothing to reload (no source, no certificates): the action answers
	// 501. Without an applier the admin's own default stands.
	if reloadNow(opsDeps{pool: p}) != nil {
		t.Fatal("no source: the reload action must be unavailable")
	}
	if configStatus(opsDeps{pool: p}) != nil {
		t.Fatal("no applier: no status function")
	}
	// Certificates alone: the action answers with their result.
	bad := errors.New("tls: private key does not match public key")
	if err := reloadNow(opsDeps{reload: func() error { return bad }})(context.Background()); !errors.Is(err, bad) {
		t.Fatalf("a certificate that does not load: %v, want its error", err)
	}
	if err := reloadNow(opsDeps{reload: func() error { return nil }})(context.Background()); err != nil {
		t.Fatalf("certificates reloaded: %v", err)
	}
}
