package admin

import (
	"sync/atomic"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/wsgate/wsgate/server"
)

// AccessLog writes one structured line per ended session. It runs on the
// event loop (through the session-end hook), so it must never block: it
// writes through the logger's core, which in wsgate buffers in memory and
// flushes from its own goroutine. Safe for concurrent use.
type AccessLog struct {
	log    *zap.Logger
	sample uint64        // log 1 session in sample (1: all); abnormal ends always
	seen   atomic.Uint64 // normal session ends so far, for sampling
	// Written counts the lines written, Skipped the normal ends that
	// sampling left out.
	Written, Skipped atomic.Int64
}

// NewAccessLog logs to log's core, under the name "access". The access
// log is turned on by its own flag, not by the log level: its lines go
// out whatever level the logger's core was built with. sample > 1 keeps
// one normal session end in sample; abnormal ends are always written.
func NewAccessLog(log *zap.Logger, sample int) *AccessLog {
	if sample < 1 {
		sample = 1
	}
	l := log.Named("access").WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core { return anyLevel{c} }))
	return &AccessLog{log: l, sample: uint64(sample)}
}

// Log writes rec, or counts it as skipped by sampling. Loop-safe.
func (a *AccessLog) Log(rec *server.SessionRecord) {
	if !Abnormal(rec) && a.sample > 1 && a.seen.Add(1)%a.sample != 0 {
		a.Skipped.Add(1)
		return
	}
	ce := a.log.Check(zap.InfoLevel, "session")
	if ce == nil {
		return
	}
	ce.Write(
		zap.String("session", server.SessionID(rec.ID)), // as in session_start
		zap.String("client", rec.Client),
		zap.String("path", rec.Path),
		zap.String("backend", rec.Backend),
		zap.Duration("duration", rec.Duration),
		zap.Int64("frames_in", rec.FramesIn),
		zap.Int64("frames_out", rec.FramesOut),
		zap.Int64("bytes_in", rec.BytesIn),
		zap.Int64("bytes_out", rec.BytesOut),
		zap.Uint16("close_sent", rec.CloseSent),
		zap.Uint16("close_recv", rec.CloseRecv),
		zap.Uint16("close_backend", rec.BackendClose),
		zap.Stringer("reason", rec.Reason),
	)
	a.Written.Add(1)
}

// Abnormal reports whether a session ended badly: for a reason other
// than a close by either peer or a shutdown, or with a close code other
// than 1000 (normal) or 1001 (going away) on any side. Sampling never
// drops those.
func Abnormal(rec *server.SessionRecord) bool {
	switch rec.Reason {
	case server.ReasonClientClose, server.ReasonServerClose, server.ReasonShutdown, server.ReasonBackendLost, server.ReasonBackendClose:
	default:
		return true
	}
	for _, code := range [...]uint16{rec.CloseSent, rec.CloseRecv, rec.BackendClose} {
		if code != 0 && code != 1000 && code != 1001 {
			return true
		}
	}
	return false
}

// anyLevel is a core that writes every entry whatever the wrapped core's
// level: the access log is switched by -access-log, not by -log-level.
// Writing through the wrapped core keeps its encoder and write syncer, so
// access lines never interleave with other lines.
type anyLevel struct{ zapcore.Core }

func (c anyLevel) Enabled(zapcore.Level) bool { return true }

func (c anyLevel) With(fields []zapcore.Field) zapcore.Core { return anyLevel{c.Core.With(fields)} }

func (c anyLevel) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	return ce.AddCore(e, c)
}

// Hook returns the server's session-end hook feeding rec and access (each
// may be nil), or nil when both are. It runs on the event loop.
func Hook(rec *Recorder, access *AccessLog) func(*server.SessionRecord) {
	switch {
	case rec == nil && access == nil:
		return nil
	case access == nil:
		return rec.Record
	case rec == nil:
		return access.Log
	}
	return func(r *server.SessionRecord) {
		rec.Record(r)
		access.Log(r)
	}
}
