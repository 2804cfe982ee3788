package admin

import (
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wsgate/wsgate/internal/testutil"
	"github.com/wsgate/wsgate/server"
)

// TestAccessLogThroughGateway: one line per session with every field,
// written even though the logger's level is warn.
func TestAccessLogThroughGateway(t *testing.T) {
	core, logs := observer.New(zapcore.WarnLevel)
	access := NewAccessLog(zap.New(core), 1)
	g := startGateway(t, gatewayOpts{poolSize: 2, access: access})
	g.waitFull()

	c := g.dialWS("/room/7?lang=en")
	echo(t, c, "hello")
	echo(t, c, "again")
	local := c.LocalAddr().String()
	closeWith(t, c, websocket.CloseNormalClosure)

	testutil.WaitFor(t, 5*time.Second, "the access line", func() bool { return logs.Len() == 1 })
	e := logs.All()[0]
	if e.LoggerName != "access" || e.Message != "session" {
		t.Fatalf("entry %s %q, want logger access, message session", e.LoggerName, e.Message)
	}
	f := e.ContextMap()
	want := map[string]any{
		"client": local, "path": "/room/7?lang=en", "backend": g.backendURL(0),
		"frames_in": int64(3), "frames_out": int64(3), "bytes_in": int64(12), "bytes_out": int64(12),
		"close_sent": uint16(1000), "close_recv": uint16(1000), "close_backend": uint16(0), "reason": "client_close",
	}
	for k, v := range want {
		if f[k] != v {
			t.Errorf("field %s = %v (%T), want %v (%T)", k, f[k], f[k], v, v)
		}
	}
	if d, ok := f["duration"].(time.Duration); !ok || d <= 0 || d > time.Minute {
		t.Errorf("duration %v", f["duration"])
	}
	// The id a backend got in session_start.
	if id, ok := f["session"].(string); !ok || !strings.HasSuffix(id, "-1") || len(id) != len(server.SessionID(1)) {
		t.Errorf("session id %v (%T), want the session_start form", f["session"], f["session"])
	}
	if access.Written.Load() != 1 {
		t.Errorf("Written = %d", access.Written.Load())
	}
}

func TestAccessLogSampling(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	a := NewAccessLog(zap.New(core), 4)
	normal := &server.SessionRecord{Reason: server.ReasonClientClose, CloseSent: 1000, CloseRecv: 1000}
	for i := 0; i < 40; i++ {
		a.Log(normal)
	}
	if n := logs.Len(); n != 10 {
		t.Fatalf("sample 4 over 40 normal ends: %d lines, want 10", n)
	}
	abnormal := []*server.SessionRecord{
		{Reason: server.ReasonConnectionLost},
		{Reason: server.ReasonProtocolError, CloseSent: 1002},
		{Reason: server.ReasonClientClose, CloseRecv: 4000, CloseSent: 4000},
		{Reason: server.ReasonBackendLost, CloseSent: 1011, BackendClose: 1011},
		{Reason: server.ReasonAcquireTimeout, CloseSent: 1013},
		{Reason: server.ReasonSlowConsumer, CloseSent: 1008},
	}
	for _, r := range abnormal {
		if !Abnormal(r) {
			t.Errorf("%+v should be abnormal", r)
		}
		a.Log(r)
	}
	if n := logs.Len(); n != 10+len(abnormal) {
		t.Fatalf("abnormal ends must all be logged: %d lines, want %d", n, 10+len(abnormal))
	}
	for _, r := range []*server.SessionRecord{
		normal,
		{Reason: server.ReasonShutdown, CloseSent: 1001},
		{Reason: server.ReasonBackendLost, CloseSent: 1000, BackendClose: 1000},
		{Reason: server.ReasonServerClose, CloseSent: 1000, CloseRecv: 1000},
	} {
		if Abnormal(r) {
			t.Errorf("%+v should be normal", r)
		}
	}
	if a.Skipped.Load() != 30 || a.Written.Load() != int64(10+len(abnormal)) {
		t.Errorf("written %d skipped %d", a.Written.Load(), a.Skipped.Load())
	}
}

func TestHook(t *testing.T) {
	if Hook(nil, nil) != nil {
		t.Fatal("Hook(nil, nil) must be nil: no work on the loops")
	}
	core, logs := observer.New(zapcore.InfoLevel)
	r, a := NewRecorder(), NewAccessLog(zap.New(core), 1)
	h := Hook(r, a)
	h(&server.SessionRecord{Reason: server.ReasonClientClose, CloseSent: 1000, CloseRecv: 1000, Duration: time.Second})
	h(&server.SessionRecord{Reason: server.ReasonInvalidPayload, CloseSent: 1007, Duration: time.Millisecond})
	if logs.Len() != 2 {
		t.Errorf("%d lines", logs.Len())
	}
	if o := r.Outcomes(); o["client_close"] != 1 || o["invalid_payload"] != 1 {
		t.Errorf("outcomes %v", o)
	}
	if c := r.CloseCodes(); c["sent"]["1000"] != 1 || c["sent"]["1007"] != 1 || c["received"]["1000"] != 1 {
		t.Errorf("codes %v", c)
	}
}

func BenchmarkSessionEndHook(b *testing.B) {
	r := NewRecorder()
	rec := &server.SessionRecord{Reason: server.ReasonClientClose, CloseSent: 1000, CloseRecv: 1000, Duration: 3 * time.Second}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Record(rec)
		}
	})
}
