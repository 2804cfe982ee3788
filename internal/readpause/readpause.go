// Package readpause stops and resumes reading a connection of a gnet event
// loop, for backpressure: while a connection is paused the loop does not
// read it, its socket buffer fills, and TCP slows its sender down, as
// nginx does when its buffer toward the other side is full.
//
// gnet v2.10.0 has no such call, and it treats its epoll set as its own.
// It changes a connection's interest itself in two places only (level-
// triggered mode, the default): a write that leaves bytes queued asks for
// EPOLLIN|EPOLLOUT, and the write that empties the queue asks for EPOLLIN
// again. This package changes the same registration with epoll_ctl on the
// loop's epoll instance, exactly as gnet registers it (the connection's
// descriptor as the event data), so gnet never sees anything it did not
// set itself. What it cannot prevent, its user must undo: after gnet's own
// change, pause again (server's flow control does it after a write that
// queued bytes, and when the loop reads a paused connection once after its
// queue emptied).
//
// The loop's epoll descriptor is found once per loop, from a connection
// known to be on it, in /proc/self/fdinfo (each epoll instance lists the
// descriptors it watches and their event data); Find also checks the data
// is the descriptor, as gnet's default build registers it, and refuses
// otherwise (gnet's poll_opt build tag stores a pointer there).
//
// A Loop is used only on its event loop's goroutine.
package readpause

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// gnet's level-triggered interest (pkg/netpoll's ReadEvents, WriteEvents).
const (
	readEvents  = unix.EPOLLIN | unix.EPOLLPRI
	writeEvents = unix.EPOLLOUT
)

// Loop is one event loop's epoll instance.
type Loop struct {
	epfd int
}

// ErrNotFound says no epoll instance of this process watches the
// descriptor, or one does with event data that is not the descriptor.
var ErrNotFound = errors.New("readpause: no epoll instance registers the descriptor as gnet's default build does")

// Find returns the epoll instance that watches fd (a connection of the
// loop). It reads /proc: call it once per loop, not per connection.
func Find(fd int) (*Loop, error) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, fmt.Errorf("readpause: %w", err)
	}
	for _, e := range ents {
		link, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil || link != "anon_inode:[eventpoll]" {
			continue
		}
		epfd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, ok, err := watched(epfd, fd)
		if err != nil || !ok {
			continue
		}
		if data != uint64(fd) {
			return nil, fmt.Errorf("%w: epoll %d holds %d with data %#x", ErrNotFound, epfd, fd, data)
		}
		return &Loop{epfd: epfd}, nil
	}
	return nil, fmt.Errorf("%w: descriptor %d", ErrNotFound, fd)
}

// watched reads /proc/self/fdinfo/epfd for the line of fd ("tfd: N
// events: E data: D ...") and returns its data.
func watched(epfd, fd int) (data uint64, ok bool, err error) {
	f, err := os.Open("/proc/self/fdinfo/" + strconv.Itoa(epfd))
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[0] != "tfd:" || fields[2] != "events:" || fields[4] != "data:" {
			continue
		}
		if tfd, err := strconv.Atoi(fields[1]); err != nil || tfd != fd {
			continue
		}
		data, err := strconv.ParseUint(fields[5], 16, 64)
		return data, err == nil, err
	}
	return 0, false, sc.Err()
}

// Pause stops the loop from reading fd. writePending keeps EPOLLOUT (the
// connection has bytes queued that gnet must still flush). Loop-only.
func (l *Loop) Pause(fd int, writePending bool) error {
	var ev uint32
	if writePending {
		ev = writeEvents
	}
	return l.mod(fd, ev)
}

// Resume lets the loop read fd again, with EPOLLOUT if bytes are queued,
// as gnet itself would have registered it. Loop-only.
func (l *Loop) Resume(fd int, writePending bool) error {
	var ev uint32 = readEvents
	if writePending {
		ev |= writeEvents
	}
	return l.mod(fd, ev)
}

func (l *Loop) mod(fd int, events uint32) error {
	err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, fd, &unix.EpollEvent{Events: events, Fd: int32(fd)})
	if err != nil {
		return fmt.Errorf("readpause: epoll_ctl mod %d: %w", fd, err)
	}
	return nil
}
