package goroutineproxy

import (
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// Config is the proxy's configuration. Zero durations and sizes take the
// defaults below.
type Config struct {
	Listen   string   // client listen address, host:port
	Backends []string // backend WebSocket URLs, ws://host:port/path
	PoolSize int      // target connections per backend

	AcquireTimeout    time.Duration // a client waits this long for an idle backend connection, then 503 (default 5 s)
	DialTimeout       time.Duration // TCP connect + handshake to a backend (default 5 s)
	DialParallelism   int           // dials in flight per pool during one reconcile run (default 32)
	HealthInterval    time.Duration // ping a backend connection quiet this long (default 10 s)
	PongTimeout       time.Duration // a pinged backend connection silent this long is broken (default 5 s)
	ReconcileInterval time.Duration // safety-net reconcile period, jittered ±10% (default 5 s)
	ClientPing        time.Duration // ping a client silent this long (default 30 s)
	ClientPongTimeout time.Duration // close a pinged client silent this long (default 10 s)
	WriteTimeout      time.Duration // one message write toward a peer (default 10 s)
	MaxMessageBytes   int64         // larger client messages close the session 1009 (default 1 MiB)

	Logger *zap.Logger // default zap.NewNop()
}

// ErrConfig wraps every configuration refusal.
var ErrConfig = errors.New("goroutineproxy: bad config")

func (c Config) withDefaults() (Config, error) {
	if c.Listen == "" {
		return c, fmt.Errorf("%w: empty listen address", ErrConfig)
	}
	if len(c.Backends) == 0 {
		return c, fmt.Errorf("%w: no backend", ErrConfig)
	}
	if c.PoolSize <= 0 {
		return c, fmt.Errorf("%w: pool size must be positive, got %d", ErrConfig, c.PoolSize)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.AcquireTimeout, 5*time.Second)
	def(&c.DialTimeout, 5*time.Second)
	def(&c.HealthInterval, 10*time.Second)
	def(&c.PongTimeout, 5*time.Second)
	def(&c.ReconcileInterval, 5*time.Second)
	def(&c.ClientPing, 30*time.Second)
	def(&c.ClientPongTimeout, 10*time.Second)
	def(&c.WriteTimeout, 10*time.Second)
	if c.DialParallelism <= 0 {
		c.DialParallelism = 32
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = 1 << 20
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c, nil
}
