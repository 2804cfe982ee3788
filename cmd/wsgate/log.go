package main

import (
	"fmt"
	"os"
	"runtime"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// newLogger builds the process logger: console or JSON, at level. Writes
// go through a buffer flushed every second, so a loop that logs never
// waits on stderr; flush writes what is left at exit.
func newLogger(format, level string) (*zap.Logger, func(), error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, nil, fmt.Errorf("-log-level: %w", err)
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
		return nil, nil, fmt.Errorf("-log-format: %q is neither console nor json", format)
	}
	ws := &zapcore.BufferedWriteSyncer{WS: zapcore.Lock(os.Stderr), FlushInterval: time.Second}
	log := zap.New(zapcore.NewCore(enc, ws, lvl))
	return log, func() { _ = log.Sync(); _ = ws.Stop() }, nil
}

// defaultLoops is one event loop per usable CPU.
func defaultLoops() int { return runtime.GOMAXPROCS(0) }
