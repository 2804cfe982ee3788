package gateway_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/conformance"
	"github.com/wsgate/wsgate/internal/rawbackend"
	"github.com/wsgate/wsgate/internal/testutil"
)

// TestConformanceThroughProxy runs the endpoint's conformance suite against
// the gateway with a lenient raw backend behind it, one that echoes every
// frame as it came without checking anything: every refusal, close code
// and limit the suite sees is the gateway's own.
func TestConformanceThroughProxy(t *testing.T) {
	rb, err := rawbackend.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer rb.Close()
	// The echo backend may still be echoing when a session ends (the proxy
	// fails or closes a session at once): drain released connections, as a
	// user of such a backend would, so no echo reaches the next session.
	g := startGatewayArgs(t, "-loops", "2", "-max-message-bytes", "65536", "-max-header-bytes", "2048",
		"-close-timeout", "1s", "-subprotocol", "chat.v2", "-subprotocol", "chat.v1",
		"-pool-size", "8", "-release-policy", "reset", "-reset-quiet", "30ms", "-backend", backendURL(rb.Addr()))
	b := g.backend(0)
	testutil.CheckFor(t, 5*time.Second, func() error {
		if idle := b.Idle.Load(); idle < 8 {
			return fmt.Errorf("idle %d, want the pool filled to 8", idle)
		}
		return nil
	})

	// The limits the suite checks are the gateway's effective ones, the
	// flags' with the binary's defaults applied.
	cfg := g.Server.Config()
	conformance.Run(t, conformance.Target{
		Addr:            g.Server.Addr(),
		MaxMessageBytes: cfg.MaxMessageBytes,
		MaxFrameBytes:   cfg.MaxFrameBytes,
		MaxHeaderBytes:  cfg.MaxHeaderBytes,
		CloseTimeout:    cfg.CloseTimeout,
		// The group speaks chat.v2 and chat.v1; offered both, the backend
		// agreed to chat.v2, so that is what clients can be given.
		Subprotocols: []string{"chat.v2"},
		// A bad frame is failed after the backend's replies to the frames
		// before it went through (the raw backend echoes each frame).
		RepliesBeforeFailure: true,
		// A client offering only subprotocols nobody here speaks gets
		// 400: no backend agreed to them.
		RefusesUnknownSubprotocols: true,
		// This one expects the echo of a frame before the endpoint's answer
		// to the client's close in the same write. An echo endpoint can
		// promise that order; a proxy answers the client's close itself,
		// at once, while the backend's echo is still on its way.
		Skip: []string{"pipelined/request_frames_and_close_in_one_write"},
	})

	// The proxy, not the backend, judged every bad frame: the backend
	// never saw a protocol error (it would have dropped the connection),
	// and connections went back to the pool.
	testutil.CheckFor(t, 10*time.Second, counter("sessions open", g.Server.Stats().Open.Load, 0))
	if b.Leases.Load() == 0 || b.Releases.Load() == 0 {
		t.Errorf("no lease or release through the proxy: leases %d releases %d", b.Leases.Load(), b.Releases.Load())
	}
}
