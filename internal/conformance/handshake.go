package conformance

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"strings"
)

// HeaderLine is one HTTP header line, name as written.
type HeaderLine struct {
	Name  string
	Value string
}

// Request is an HTTP upgrade request built line by line, so cases can drop,
// change or add any part of it. The zero value is not useful: use
// NewRequest.
type Request struct {
	Method string // "GET"
	Target string // "/"
	Proto  string // "HTTP/1.1"
	Header []HeaderLine
}

// NewRequest returns a valid RFC 6455 upgrade request for host and path
// ("/" if empty) with a fresh random key.
func NewRequest(host, path string) *Request {
	if path == "" {
		path = "/"
	}
	return &Request{
		Method: "GET",
		Target: path,
		Proto:  "HTTP/1.1",
		Header: []HeaderLine{
			{"Host", host},
			{"Upgrade", "websocket"},
			{"Connection", "Upgrade"},
			{"Sec-WebSocket-Key", NewKey()},
			{"Sec-WebSocket-Version", "13"},
		},
	}
}

// NewKey returns a random Sec-WebSocket-Key (16 random bytes, base64).
func NewKey() string {
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	return base64.StdEncoding.EncodeToString(raw[:])
}

// AcceptFor is the Sec-WebSocket-Accept value for key (RFC 6455 section 4.2.2).
func AcceptFor(key string) string {
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// Get returns the value of the first header named name (any case).
func (r *Request) Get(name string) string {
	for _, h := range r.Header {
		if strings.EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
}

// Key is the request's Sec-WebSocket-Key.
func (r *Request) Key() string { return r.Get("Sec-WebSocket-Key") }

// Set replaces the value of every header named name (any case), or adds
// the header at the end if there is none.
func (r *Request) Set(name, value string) *Request {
	found := false
	for i := range r.Header {
		if strings.EqualFold(r.Header[i].Name, name) {
			r.Header[i].Value = value
			found = true
		}
	}
	if !found {
		r.Header = append(r.Header, HeaderLine{name, value})
	}
	return r
}

// Add appends a header line.
func (r *Request) Add(name, value string) *Request {
	r.Header = append(r.Header, HeaderLine{name, value})
	return r
}

// Del removes every header named name (any case).
func (r *Request) Del(name string) *Request {
	out := r.Header[:0]
	for _, h := range r.Header {
		if !strings.EqualFold(h.Name, name) {
			out = append(out, h)
		}
	}
	r.Header = out
	return r
}

// Bytes is the request as sent: request line, header lines, blank line.
func (r *Request) Bytes() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s\r\n", r.Method, r.Target, r.Proto)
	for _, h := range r.Header {
		fmt.Fprintf(&b, "%s: %s\r\n", h.Name, h.Value)
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

// PadTo adds an "X-Pad" header so that Bytes() is exactly n bytes long.
// It panics if the request is already too long for a padding line.
func (r *Request) PadTo(n int) *Request {
	const overhead = len("X-Pad: \r\n")
	fill := n - len(r.Bytes()) - overhead
	if fill < 1 {
		panic(fmt.Sprintf("conformance: request of %d bytes cannot be padded to %d", len(r.Bytes()), n))
	}
	return r.Add("X-Pad", strings.Repeat("p", fill))
}

// Response is an HTTP response read by the raw client.
type Response struct {
	Proto      string
	Status     int
	StatusText string
	Header     []HeaderLine
	Body       []byte // for non-101 answers: Content-Length bytes, or all until EOF
}

// Get returns the value of the first header named name (any case).
func (r *Response) Get(name string) string {
	for _, h := range r.Header {
		if strings.EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
}

// Values returns the values of every header named name (any case).
func (r *Response) Values(name string) []string {
	var vs []string
	for _, h := range r.Header {
		if strings.EqualFold(h.Name, name) {
			vs = append(vs, h.Value)
		}
	}
	return vs
}

// HasToken reports whether a comma-separated header named name holds token
// (both compared case-insensitively), on any of its lines.
func (r *Response) HasToken(name, token string) bool {
	for _, v := range r.Values(name) {
		for _, part := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

func (r *Response) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d %s", r.Proto, r.Status, r.StatusText)
	for _, h := range r.Header {
		fmt.Fprintf(&b, " | %s: %s", h.Name, h.Value)
	}
	if len(r.Body) > 0 {
		fmt.Fprintf(&b, " | body %q", truncate(r.Body, 80))
	}
	return b.String()
}

// CheckUpgrade checks that r accepts the upgrade request req (RFC 6455
// section 4.2.2 and 4.1): status 101, "Upgrade: websocket" and a
// "Connection" holding "Upgrade", the Sec-WebSocket-Accept for req's key,
// no Sec-WebSocket-Extensions (the suite never negotiates one, so none may
// be in use), and at most one Sec-WebSocket-Protocol, which must be one the
// request offered.
func (r *Response) CheckUpgrade(req *Request) error {
	if r.Status != 101 {
		return fmt.Errorf("status %d, want 101 (%v)", r.Status, r)
	}
	if !r.HasToken("Upgrade", "websocket") {
		return fmt.Errorf("no \"Upgrade: websocket\" (%v)", r)
	}
	if !r.HasToken("Connection", "upgrade") {
		return fmt.Errorf("no \"Connection: Upgrade\" (%v)", r)
	}
	accepts := r.Values("Sec-WebSocket-Accept")
	if want := AcceptFor(req.Key()); len(accepts) != 1 || accepts[0] != want {
		return fmt.Errorf("Sec-WebSocket-Accept %q, want exactly %q (%v)", accepts, want, r)
	}
	if ext := r.Values("Sec-WebSocket-Extensions"); len(ext) > 0 {
		return fmt.Errorf("Sec-WebSocket-Extensions %q in the response: no extension may be accepted (%v)", ext, r)
	}
	protos := r.Values("Sec-WebSocket-Protocol")
	if len(protos) > 1 {
		return fmt.Errorf("%d Sec-WebSocket-Protocol lines, want at most one (%v)", len(protos), r)
	}
	if len(protos) == 1 && !contains(offeredProtocols(req), protos[0]) {
		return fmt.Errorf("Sec-WebSocket-Protocol %q was not offered (offered %q)", protos[0], offeredProtocols(req))
	}
	return nil
}

// Protocol is the subprotocol the server selected, "" if none.
func (r *Response) Protocol() string { return r.Get("Sec-WebSocket-Protocol") }

func offeredProtocols(req *Request) []string {
	var out []string
	for _, h := range req.Header {
		if !strings.EqualFold(h.Name, "Sec-WebSocket-Protocol") {
			continue
		}
		for _, p := range strings.Split(h.Value, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func truncate(p []byte, n int) []byte {
	if len(p) > n {
		return p[:n]
	}
	return p
}
