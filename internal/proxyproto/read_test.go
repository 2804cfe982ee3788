package proxyproto

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"testing/iotest"
	"time"
)

// countingReader counts the reads made of r.
type countingReader struct {
	r     io.Reader
	reads int
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.reads++
	return c.r.Read(p)
}

// TestReadLeavesTheRest reads every valid header from readers that hand
// out as much as asked (so a read past the header would take trailer
// bytes) or one byte at a time, and checks the trailer is all still there.
func TestReadLeavesTheRest(t *testing.T) {
	for _, tc := range validHeaders {
		t.Run(tc.name, func(t *testing.T) {
			stream := append(bytes.Clone(tc.input), trailer...)
			for _, oneByte := range []bool{false, true} {
				src := bytes.NewReader(stream)
				var r io.Reader = src
				if oneByte {
					r = iotest.OneByteReader(src)
				}
				counted := &countingReader{r: r}
				h, err := Read(counted)
				if err != nil {
					t.Fatalf("Read (one byte at a time: %v) = %v", oneByte, err)
				}
				if h != tc.want {
					t.Fatalf("Read = %+v; want %+v", h, tc.want)
				}
				if src.Len() != len(trailer) {
					t.Fatalf("Read left %d bytes; want the %d of the trailer", src.Len(), len(trailer))
				}
				if !oneByte {
					t.Logf("%d bytes in %d reads", len(tc.input), counted.reads)
					if tc.want.Version == 2 && counted.reads > 3 {
						t.Errorf("v2 header read in %d reads; want 3", counted.reads)
					}
				}
			}
		})
	}
}

// TestReadFromPipe reads the header from a connection and hands the same
// connection on: the bytes after the header are read from it intact.
func TestReadFromPipe(t *testing.T) {
	for _, tc := range validHeaders {
		t.Run(tc.name, func(t *testing.T) {
			client, server := net.Pipe()
			defer client.Close()
			defer server.Close()
			wrote := make(chan error, 1)
			go func() {
				_, err := client.Write(append(bytes.Clone(tc.input), trailer...))
				wrote <- err
			}()
			_ = server.SetDeadline(time.Now().Add(10 * time.Second))
			h, err := Read(server)
			if err != nil || h != tc.want {
				t.Fatalf("Read = %+v, %v; want %+v", h, err, tc.want)
			}
			rest := make([]byte, len(trailer))
			if _, err := io.ReadFull(server, rest); err != nil || !bytes.Equal(rest, trailer) {
				t.Fatalf("after the header: %q, %v; want %q", rest, err, trailer)
			}
			if err := <-wrote; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestReadRefusesAtOnce pins that a client that is not a proxy is refused
// at its first bytes, though it sent fewer than any header has and waits.
func TestReadRefusesAtOnce(t *testing.T) {
	for _, first := range []string{"GET", "\x16\x03\x01", "PUT", "PROXY\t"} {
		client, server := net.Pipe()
		go func() { _, _ = client.Write([]byte(first)) }()
		_ = server.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := Read(server); err != ErrNotProxy {
			t.Errorf("Read after %q = %v; want ErrNotProxy", first, err)
		}
		client.Close()
		server.Close()
	}
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	go func() { _, _ = client.Write([]byte("PROXY TCP4 1.2.3.4 5.6.7.8 99999")) }()
	_ = server.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := Read(server); !errors.Is(err, ErrMalformed) {
		t.Errorf("Read of a bad port = %v; want ErrMalformed", err)
	}
}

func TestReadErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		input []byte
		want  error
	}{
		{"nothing", nil, io.EOF},
		{"v1 cut short", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r"), io.ErrUnexpectedEOF},
		{"v2 cut short", validHeader("v2 PROXY TCP4")[:20], io.ErrUnexpectedEOF},
		{"not a proxy", []byte("GET / HTTP/1.1\r\n\r\n"), ErrNotProxy},
		{"malformed", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n"), ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, r := range []io.Reader{bytes.NewReader(tc.input), iotest.DataErrReader(bytes.NewReader(tc.input))} {
				if _, err := Read(r); !errors.Is(err, tc.want) {
					t.Fatalf("Read = %v; want %v", err, tc.want)
				}
			}
		})
	}
}

// TestReadDataWithEOF pins that a header whose last bytes come with
// io.EOF is returned.
func TestReadDataWithEOF(t *testing.T) {
	input := []byte("PROXY UNKNOWN\r\n")
	if h, err := Read(iotest.DataErrReader(bytes.NewReader(input))); err != nil || h.Version != 1 {
		t.Fatalf("Read = %+v, %v", h, err)
	}
}

func TestReadTimeout(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	go func() { _, _ = client.Write([]byte("PROXY TCP4 1.2")) }()
	_ = server.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := Read(server)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Read = %v; want a timeout", err)
	}
}

// emptyReader returns nothing and no error, for ever.
type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, nil }

func TestReadNoProgress(t *testing.T) {
	if _, err := Read(emptyReader{}); !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("Read = %v; want io.ErrNoProgress", err)
	}
}
