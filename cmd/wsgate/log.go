package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/wsgate/wsgate/internal/logsink"
)

// newLogger builds the process logger on stderr; see newLoggerTo.
func newLogger(format, level string) (*zap.Logger, *logsink.Sink, func(), error) {
	return newLoggerTo(os.Stderr, format, level)
}

// newLoggerTo builds the process logger: console or JSON, at level, written
// to out through a logsink.Sink. Event loops log, and out (stderr) may be a
// pipe nobody reads: through the Sink a log call never waits on it, and
// lines out cannot take are dropped and counted (the Sink's Dropped). flush
// writes what is queued, waiting at most logsink.FlushTimeout, then stops
// the Sink; call it last, at exit.
//
// zap itself syncs the core after DPanic, Panic and Fatal entries, so those
// wait for the Sink (at most logsink.FlushTimeout) to get the last words
// out. Nothing logs at those levels on a loop.
func newLoggerTo(out io.Writer, format, level string) (*zap.Logger, *logsink.Sink, func(), error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("-log-level: %w", err)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	switch format {
	case "json":
		enc = zapcore.NewJSONEncoder(encCfg)
	case "console":
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	default:
		return nil, nil, nil, fmt.Errorf("-log-format: %q is neither console nor json", format)
	}
	sink := logsink.New(out, 0)
	// zap reports its own errors (a field that fails to encode, say) on
	// ErrorOutput, by default stderr written inline, and then syncs it: both
	// would wait on out. They go through the Sink too, with Sync hidden
	// (struct{ io.Writer } has no Sync method, so AddSync makes it a no-op).
	errorOutput := zapcore.AddSync(struct{ io.Writer }{sink})
	log := zap.New(zapcore.NewCore(enc, sink, lvl), zap.ErrorOutput(errorOutput))
	flush := func() {
		// A Sync that timed out means out is stuck; Close would only
		// wait as long again.
		if err := log.Sync(); errors.Is(err, logsink.ErrFlushTimeout) {
			return
		}
		_ = sink.Close()
	}
	return log, sink, flush, nil
}
