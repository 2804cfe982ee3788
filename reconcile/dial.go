package reconcile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/codec"
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

// Dial connects to b and runs the client handshake, within timeout. It
// reads exactly the response header block and nothing after it, so frames
// the backend sends right behind its 101 stay in the socket for the event
// loop that takes the connection over. Both the connect and the handshake
// give up as soon as ctx ends (the reconciler stops): a backend that
// accepts and never answers holds nothing past that. socketBuffer sets the
// socket's send and receive buffers before it connects (0: the kernel's
// autotuning).
func Dial(ctx context.Context, b *pool.Backend, timeout time.Duration, socketBuffer int) (*net.TCPConn, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	if socketBuffer > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				if serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, socketBuffer); serr == nil {
					serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, socketBuffer)
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
	tc := nc.(*net.TCPConn)
	if err := handshake(ctx, tc, b); err != nil {
		_ = tc.Close()
		return nil, fmt.Errorf("reconcile: handshake with %s: %w", b.Addr, err)
	}
	return tc, nil
}

// longAgo is a deadline in the past: setting it wakes every blocked read
// and write of the conn at once.
var longAgo = time.Unix(1, 0)

// handshake sends the upgrade request and reads the response, until ctx's
// deadline or until ctx is cancelled. On error the caller closes tc.
func handshake(ctx context.Context, tc *net.TCPConn, b *pool.Backend) error {
	deadline, _ := ctx.Deadline()
	_ = tc.SetDeadline(deadline)
	// Set after the deadline above, so a cancellation is never overwritten.
	stop := context.AfterFunc(ctx, func() { _ = tc.SetDeadline(longAgo) })
	err := exchangeHandshake(tc, b)
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

func exchangeHandshake(tc *net.TCPConn, b *pool.Backend) error {
	req := &codec.ClientRequest{Host: b.Host, URI: b.URI, Key: codec.NewClientKey()}
	if _, err := tc.Write(codec.AppendClientRequest(nil, req)); err != nil {
		return err
	}
	block, err := readHeaderBlock(tc)
	if err != nil {
		return err
	}
	_, _, err = codec.ParseClientResponse(block, req)
	return err
}

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
