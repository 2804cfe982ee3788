package reconcile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/pool"
)

// maxResponseHeader bounds a backend's handshake response.
const maxResponseHeader = 8 << 10

// Dial connects to b and runs the client handshake, within timeout. It
// reads exactly the response header block and nothing after it, so frames
// the backend sends right behind its 101 stay in the socket for the event
// loop that takes the connection over.
func Dial(ctx context.Context, b *pool.Backend, timeout time.Duration) (*net.TCPConn, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", b.Addr)
	if err != nil {
		return nil, fmt.Errorf("reconcile: dial %s: %w", b.Addr, err)
	}
	tc := nc.(*net.TCPConn)
	deadline, _ := ctx.Deadline()
	if err := handshake(tc, b, deadline); err != nil {
		_ = tc.Close()
		return nil, err
	}
	return tc, nil
}

func handshake(tc *net.TCPConn, b *pool.Backend, deadline time.Time) error {
	_ = tc.SetDeadline(deadline)
	defer tc.SetDeadline(time.Time{})
	req := &codec.ClientRequest{Host: b.Host, URI: b.URI, Key: codec.NewClientKey()}
	if _, err := tc.Write(codec.AppendClientRequest(nil, req)); err != nil {
		return fmt.Errorf("reconcile: handshake with %s: %w", b.Addr, err)
	}
	block, err := readHeaderBlock(tc)
	if err != nil {
		return fmt.Errorf("reconcile: handshake with %s: %w", b.Addr, err)
	}
	if _, _, err := codec.ParseClientResponse(block, req); err != nil {
		return fmt.Errorf("reconcile: handshake with %s: %w", b.Addr, err)
	}
	return nil
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
