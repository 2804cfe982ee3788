package reconcile

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/internal/looptls"
	"github.com/wsgate/wsgate/internal/tlsconf"
	"github.com/wsgate/wsgate/pool"
)

// maxResponseHeader bounds a backend's handshake response.
const maxResponseHeader = 8 << 10

// DefaultSocketBuffer is the send and receive buffer of a backend
// connection's socket (the kernel doubles it): what the kernel may queue
// toward and from a backend on top of the relay's flow window. Left to
// autotuning a loopback or LAN socket grows to megabytes, seconds of a
// session's traffic hidden from flow control.
const DefaultSocketBuffer = 128 << 10

// DialOptions are how backends are dialed.
type DialOptions struct {
	Timeout time.Duration // connect, TLS handshake and upgrade together
	// SocketBuffer sets the socket's send and receive buffers before it
	// connects (0: the kernel's autotuning).
	SocketBuffer int
	// TLS is the configuration wss:// backends are dialed with (nil: the
	// system roots, the URL's host as server name).
	TLS *tlsconf.Client
}

// Dialed is a connection Dial made: TCP, its TLS state for a wss://
// backend (nil for ws://), and the subprotocol the backend agreed to
// ("" for none).
type Dialed struct {
	TCP      *net.TCPConn
	TLS      *looptls.Handshaken
	Protocol string
}

// Dial connects to b and runs the client handshake (TLS first for a
// wss:// backend), within o.Timeout, offering b's subprotocols. Nothing the backend sends right
// behind its 101 is lost: over plain TCP exactly the response header
// block is read and the rest stays in the socket for the event loop that
// takes the connection over; over TLS what was decrypted past the header
// block travels in the returned Handshaken (nil for ws://), and records
// crypto/tls buffered stay in it too. Both the connect and the handshake
// give up as soon as ctx ends (the reconciler stops): a backend that
// accepts and never answers holds nothing past that.
func Dial(ctx context.Context, b *pool.Backend, o DialOptions) (*Dialed, error) {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	var d net.Dialer
	if o.SocketBuffer > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				if serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, o.SocketBuffer); serr == nil {
					serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, o.SocketBuffer)
				}
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	nc, err := d.DialContext(ctx, "tcp", b.Addr)
	if err != nil {
		return nil, fmt.Errorf("reconcile: dial %s: %w", b.Addr, err)
	}
	dialed := &Dialed{TCP: nc.(*net.TCPConn)}
	req := &codec.ClientRequest{Host: b.Host, URI: b.URI, Key: codec.NewClientKey(), Protocols: b.Settings().Subprotocols}
	exchange := func() (err error) {
		dialed.Protocol, err = exchangeHandshake(dialed.TCP, req)
		return err
	}
	if b.TLS {
		exchange = func() (err error) {
			dialed.TLS, dialed.Protocol, err = exchangeOverTLS(ctx, dialed.TCP, b, req, o.TLS)
			return err
		}
	}
	if err := handshake(ctx, dialed.TCP, exchange); err != nil {
		_ = dialed.TCP.Close()
		return nil, fmt.Errorf("reconcile: handshake with %s: %w", b.Addr, err)
	}
	return dialed, nil
}

// longAgo is a deadline in the past: setting it wakes every blocked read
// and write of the conn at once.
var longAgo = time.Unix(1, 0)

// handshake runs exchange (the upgrade request and its response, TLS
// first for wss://) until ctx's deadline or until ctx is cancelled. On
// error the caller closes tc.
func handshake(ctx context.Context, tc *net.TCPConn, exchange func() error) error {
	deadline, _ := ctx.Deadline()
	_ = tc.SetDeadline(deadline)
	// Set after the deadline above, so a cancellation is never overwritten.
	stop := context.AfterFunc(ctx, func() { _ = tc.SetDeadline(longAgo) })
	err := exchange()
	if !stop() {
		// ctx ended, and the deadline is in the past (or about to be):
		// whatever the exchange returned, the connection is not usable.
		if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			err = ctx.Err()
		}
		return err
	}
	_ = tc.SetDeadline(time.Time{})
	return err
}

func exchangeHandshake(tc *net.TCPConn, req *codec.ClientRequest) (protocol string, err error) {
	if _, err := tc.Write(codec.AppendClientRequest(nil, req)); err != nil {
		return "", err
	}
	block, err := readHeaderBlock(tc)
	if err != nil {
		return "", err
	}
	protocol, _, err = codec.ParseClientResponse(block, req)
	return protocol, err
}

// exchangeOverTLS runs the TLS handshake on tc, then the upgrade over it.
// Plaintext past the response header block is kept in the Handshaken.
func exchangeOverTLS(ctx context.Context, tc *net.TCPConn, b *pool.Backend, req *codec.ClientRequest, settings *tlsconf.Client) (*looptls.Handshaken, string, error) {
	if settings == nil {
		settings = defaultBackendTLS
	}
	shim := looptls.NewShim(tc)
	conn := tls.Client(shim, settings.For(b.ServerName))
	if err := conn.HandshakeContext(ctx); err != nil {
		return nil, "", fmt.Errorf("TLS: %w", err)
	}
	if _, err := conn.Write(codec.AppendClientRequest(nil, req)); err != nil {
		return nil, "", err
	}
	var (
		got     []byte
		scanner codec.HeaderScanner
		buf     = make([]byte, 4096)
	)
	for {
		n, err := conn.Read(buf)
		got = append(got, buf[:n]...)
		end, serr := scanner.Scan(got, maxResponseHeader)
		switch {
		case serr == nil:
			protocol, _, err := codec.ParseClientResponse(got[:end], req)
			if err != nil {
				return nil, "", err
			}
			return &looptls.Handshaken{TLS: conn, Shim: shim, Unread: got[end:]}, protocol, nil
		case !errors.Is(serr, codec.ErrNeedMore):
			return nil, "", serr
		case err != nil:
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, "", err
		}
	}
}

// defaultBackendTLS verifies backends against the system roots.
var defaultBackendTLS = func() *tlsconf.Client {
	c, err := tlsconf.NewClient(tlsconf.ClientOptions{})
	if err != nil {
		panic(err) // no file to read: cannot fail
	}
	return c
}()

// readHeaderBlock peeks at what has arrived (MSG_PEEK) and consumes only
// up to the end of the header block. Bytes before the end are consumed as
// they come, so the socket is never readable without news and no peek
// spins.
func readHeaderBlock(tc *net.TCPConn) ([]byte, error) {
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil, err
	}
	var (
		got     []byte // consumed so far: all of it belongs to the header
		scanner codec.HeaderScanner
		peekBuf = make([]byte, 4096)
	)
	for {
		var n int
		var perr error
		err := rc.Read(func(fd uintptr) bool {
			n, _, perr = syscall.Recvfrom(int(fd), peekBuf, syscall.MSG_PEEK)
			return perr != syscall.EAGAIN
		})
		if err == nil {
			err = perr
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, io.ErrUnexpectedEOF
		}
		all := append(got, peekBuf[:n]...)
		end, err := scanner.Scan(all, maxResponseHeader)
		switch {
		case err == nil:
			take := end - len(got)
			if _, err := io.ReadFull(tc, peekBuf[:take]); err != nil {
				return nil, err
			}
			return append(got, peekBuf[:take]...), nil
		case errors.Is(err, codec.ErrNeedMore):
			if _, err := io.ReadFull(tc, peekBuf[:n]); err != nil {
				return nil, err
			}
			got = append(got, peekBuf[:n]...)
		default:
			return nil, err
		}
	}
}
