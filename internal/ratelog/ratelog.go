// Package ratelog writes log lines at most once a second per kind of
// event: a flood of bad handshakes, refused connections or failed tokens
// must not become a flood of log lines. A line says how many of its kind
// were left out since the last one. It owns nothing but its limiters.
package ratelog

import (
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Limiter lets one line through per second for one kind of event. The
// zero value is ready. Safe for concurrent use.
type Limiter struct {
	next    atomic.Int64 // unix ns: the earliest time of the next line
	dropped atomic.Int64 // lines left out since the last one written
}

// Allow reports whether a line may be written at now (unix ns), and how
// many were left out since the last one.
func (l *Limiter) Allow(now int64) (ok bool, dropped int64) {
	next := l.next.Load()
	if now < next || !l.next.CompareAndSwap(next, now+int64(time.Second)) {
		l.dropped.Add(1)
		return false, 0
	}
	return true, l.dropped.Swap(0)
}

// Log writes msg at lvl on log if l allows it now, with a "suppressed"
// field counting the lines left out before it.
func (l *Limiter) Log(log *zap.Logger, lvl zapcore.Level, msg string, fields ...zap.Field) {
	ok, dropped := l.Allow(time.Now().UnixNano())
	if !ok {
		return
	}
	if ce := log.Check(lvl, msg); ce != nil {
		ce.Write(append(fields, zap.Int64("suppressed", dropped))...)
	}
}
