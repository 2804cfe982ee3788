package codec

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// rfcKey and rfcAccept are the example of RFC 6455 section 1.3.
const (
	rfcKey    = "dGhlIHNhbXBsZSBub25jZQ=="
	rfcAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
)

// rfcRequest is the client handshake of RFC 6455 sections 1.2 and 4.1.
const rfcRequest = "GET /chat HTTP/1.1\r\n" +
	"Host: server.example.com\r\n" +
	"Upgrade: websocket\r\n" +
	"Connection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
	"Origin: http://example.com\r\n" +
	"Sec-WebSocket-Protocol: chat, superchat\r\n" +
	"Sec-WebSocket-Version: 13\r\n" +
	"\r\n"

// rfcResponse is the server handshake of RFC 6455 section 1.2 (and 4.2.2),
// minus the optional subprotocol line.
const rfcResponse = "HTTP/1.1 101 Switching Protocols\r\n" +
	"Upgrade: websocket\r\n" +
	"Connection: Upgrade\r\n" +
	"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" +
	"\r\n"

// baseHeaders are the header lines of a minimal valid upgrade request.
var baseHeaders = []string{
	"Host: server.example.com",
	"Upgrade: websocket",
	"Connection: Upgrade",
	"Sec-WebSocket-Key: " + rfcKey,
	"Sec-WebSocket-Version: 13",
}

// request joins a request line and header lines into a header block.
func request(requestLine string, headers ...string) string {
	var b strings.Builder
	b.WriteString(requestLine)
	b.WriteString("\r\n")
	for _, h := range headers {
		b.WriteString(h)
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// getRequest is a GET /chat HTTP/1.1 request with headers.
func getRequest(headers ...string) string {
	return request("GET /chat HTTP/1.1", headers...)
}

// headerName is the name of a "Name: value" line.
func headerName(line string) string {
	name, _, _ := strings.Cut(line, ":")
	return name
}

// without returns baseHeaders minus the lines named name.
func without(name string) []string {
	var out []string
	for _, h := range baseHeaders {
		if !strings.EqualFold(headerName(h), name) {
			out = append(out, h)
		}
	}
	return out
}

// with returns baseHeaders with the line named like line replaced by line
// (or line appended when baseHeaders has no such header).
func with(line string) []string {
	out := make([]string, 0, len(baseHeaders)+1)
	replaced := false
	for _, h := range baseHeaders {
		if !replaced && strings.EqualFold(headerName(h), headerName(line)) {
			out = append(out, line)
			replaced = true
			continue
		}
		out = append(out, h)
	}
	if !replaced {
		out = append(out, line)
	}
	return out
}

// plus returns baseHeaders followed by extra lines.
func plus(extra ...string) []string {
	return append(append([]string(nil), baseHeaders...), extra...)
}

// asHandshakeError extracts the *HandshakeError of err or fails the test.
func asHandshakeError(t *testing.T, err error) *HandshakeError {
	t.Helper()
	var he *HandshakeError
	if !errors.As(err, &he) {
		t.Fatalf(
			"error %v (%T) is not a *HandshakeError",
			err, err,
		)
	}
	return he
}

func TestParseUpgrade(t *testing.T) {
	tests := []struct {
		name   string
		block  string
		status int    // 0: accepted
		header string // substring of HandshakeError.Header
		check  func(t *testing.T, r *UpgradeRequest)
	}{
		{
			name:  "RFC 6455 4.1 example",
			block: rfcRequest,
			check: func(t *testing.T, r *UpgradeRequest) {
				if r.URI != "/chat" || r.Host != "server.example.com" || r.Key != rfcKey || r.Origin != "http://example.com" {
					t.Errorf(
						"URI %q Host %q Key %q Origin %q",
						r.URI, r.Host, r.Key, r.Origin,
					)
				}
				if want := []string{"chat", "superchat"}; !reflect.DeepEqual(r.Protocols, want) {
					t.Errorf(
						"Protocols = %q, want %q",
						r.Protocols, want,
					)
				}
				if len(r.Header) != 7 || r.Header[0] != (HeaderField{Name: "Host", Value: "server.example.com"}) {
					t.Errorf(
						"Header = %q",
						r.Header,
					)
				}
				if got := r.Get("sec-websocket-key"); got != rfcKey {
					t.Errorf(
						"Get(sec-websocket-key) = %q",
						got,
					)
				}
				if got := r.Get("X-Absent"); got != "" {
					t.Errorf(
						"Get(X-Absent) = %q",
						got,
					)
				}
			},
		},
		{
			name:  "minimal request",
			block: getRequest(baseHeaders...),
			check: func(t *testing.T, r *UpgradeRequest) {
				if r.Origin != "" || r.Protocols != nil {
					t.Errorf(
						"Origin %q Protocols %q, want none",
						r.Origin, r.Protocols,
					)
				}
			},
		},
		{
			name:  "target with query",
			block: request("GET /chat?room=1&x=%20 HTTP/1.1", baseHeaders...),
			check: func(t *testing.T, r *UpgradeRequest) {
				if r.URI != "/chat?room=1&x=%20" {
					t.Errorf(
						"URI = %q",
						r.URI,
					)
				}
			},
		},
		{
			name:  "Connection token list keep-alive, Upgrade",
			block: getRequest(with("Connection: keep-alive, Upgrade")...),
		},
		{
			name:  "Connection UPGRADE upper case",
			block: getRequest(with("Connection: UPGRADE")...),
		},
		{
			name:  "Connection upgrade,keep-alive without spaces",
			block: getRequest(with("Connection: upgrade,keep-alive")...),
		},
		{
			name:  "Connection split over two lines",
			block: getRequest(append(with("Connection: keep-alive"), "Connection: Upgrade")...),
		},
		{
			name:  "Upgrade token any case",
			block: getRequest(with("Upgrade: WebSocket")...),
		},
		{
			name:  "Upgrade token list",
			block: getRequest(with("Upgrade: h2c, websocket")...),
		},
		{
			name: "header names in lower case",
			block: getRequest(
				"host: server.example.com",
				"upgrade: websocket",
				"connection: upgrade",
				"sec-websocket-key: "+rfcKey,
				"sec-websocket-version: 13",
			),
		},
		{
			name:  "optional whitespace around values",
			block: getRequest(with("Connection:\t Upgrade \t")...),
		},
		{
			name:  "value with obs-text",
			block: getRequest(plus("X-Name: caf\xc3\xa9")...),
		},
		{
			name:  "subprotocols over two lines",
			block: getRequest(plus("Sec-WebSocket-Protocol: chat, superchat", "Sec-WebSocket-Protocol:  v2.wsgate ,")...),
			check: func(t *testing.T, r *UpgradeRequest) {
				if want := []string{"chat", "superchat", "v2.wsgate"}; !reflect.DeepEqual(r.Protocols, want) {
					t.Errorf(
						"Protocols = %q, want %q",
						r.Protocols, want,
					)
				}
			},
		},
		{
			name:  "permessage-deflate offer is accepted",
			block: getRequest(plus("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits")...),
		},

		{
			name:   "POST",
			block:  request("POST /chat HTTP/1.1", baseHeaders...),
			status: 405,
			header: "Allow: GET\r\n",
		},
		{
			name:   "PUT",
			block:  request("PUT /chat HTTP/1.1", baseHeaders...),
			status: 405,
			header: "Allow: GET\r\n",
		},
		{
			name:   "lower case get is another method",
			block:  request("get /chat HTTP/1.1", baseHeaders...),
			status: 405,
			header: "Allow: GET\r\n",
		},
		{
			name:   "method not a token",
			block:  request("GE(T /chat HTTP/1.1", baseHeaders...),
			status: 400,
		},
		{
			name:   "HTTP/1.0",
			block:  request("GET /chat HTTP/1.0", baseHeaders...),
			status: 400,
		},
		{
			name:   "HTTP/2.0",
			block:  request("GET /chat HTTP/2.0", baseHeaders...),
			status: 400,
		},
		{
			name:   "request line without spaces",
			block:  request("GET/chat", baseHeaders...),
			status: 400,
		},
		{
			name:   "request line starting with a space",
			block:  request(" GET /chat HTTP/1.1", baseHeaders...),
			status: 400,
		},
		{
			name:   "no protocol version",
			block:  request("GET /chat", baseHeaders...),
			status: 400,
		},
		{
			name:   "extra field on request line",
			block:  request("GET /chat HTTP/1.1 x", baseHeaders...),
			status: 400,
		},
		{
			name:   "empty request target",
			block:  request("GET  HTTP/1.1", baseHeaders...),
			status: 400,
		},
		{
			name:   "absolute-form target",
			block:  request("GET http://server.example.com/chat HTTP/1.1", baseHeaders...),
			status: 400,
		},
		{
			name:   "control character in target",
			block:  request("GET /ch\x01at HTTP/1.1", baseHeaders...),
			status: 400,
		},
		{
			name:   "empty block",
			block:  "",
			status: 400,
		},
		{
			name:   "unterminated header line",
			block:  "GET /chat HTTP/1.1\r\nHost: server.example.com",
			status: 400,
		},
		{
			name:   "missing Host",
			block:  getRequest(without("Host")...),
			status: 400,
		},
		{
			name:   "empty Host",
			block:  getRequest(with("Host: ")...),
			status: 400,
		},
		{
			name:   "duplicate Host",
			block:  getRequest(plus("Host: evil.example.com")...),
			status: 400,
		},
		// Regression (hardening issue, defect 12): "Host: a b" was accepted.
		{name: "Host with a space", block: getRequest(with("Host: a b")...), status: 400},
		{name: "Host with a path", block: getRequest(with("Host: example.com/x")...), status: 400},
		{name: "Host with userinfo", block: getRequest(with("Host: user@example.com")...), status: 400},
		{name: "Host port not a number", block: getRequest(with("Host: example.com:8o")...), status: 400},
		{name: "Host empty port", block: getRequest(with("Host: example.com:")...), status: 400},
		{name: "Host unclosed IPv6", block: getRequest(with("Host: [::1")...), status: 400},
		{name: "Host IPv6 junk after bracket", block: getRequest(with("Host: [::1]x")...), status: 400},
		{name: "Host bad percent", block: getRequest(with("Host: a%zz")...), status: 400},
		{
			name:   "missing Upgrade",
			block:  getRequest(without("Upgrade")...),
			status: 400,
		},
		{
			name:   "Upgrade h2c",
			block:  getRequest(with("Upgrade: h2c")...),
			status: 400,
		},
		{
			name:   "Upgrade websocket2 is another token",
			block:  getRequest(with("Upgrade: websocket2")...),
			status: 400,
		},
		{
			name:   "missing Connection",
			block:  getRequest(without("Connection")...),
			status: 400,
		},
		{
			name:   "Connection keep-alive only",
			block:  getRequest(with("Connection: keep-alive")...),
			status: 400,
		},
		{
			name:   "Connection upgraded is another token",
			block:  getRequest(with("Connection: upgraded")...),
			status: 400,
		},
		{
			name:   "missing key",
			block:  getRequest(without("Sec-WebSocket-Key")...),
			status: 400,
		},
		{
			name:   "empty key",
			block:  getRequest(with("Sec-WebSocket-Key: ")...),
			status: 400,
		},
		{
			name:   "key of 10 bytes",
			block:  getRequest(with("Sec-WebSocket-Key: dGhlIHNhbXBsZQ==")...),
			status: 400,
		},
		{
			name:   "key of 18 bytes in 24 characters",
			block:  getRequest(with("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQAA")...),
			status: 400,
		},
		{
			name:   "key not base64",
			block:  getRequest(with("Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!==")...),
			status: 400,
		},
		{
			name:   "key of 17 bytes",
			block:  getRequest(with("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZSE=")...),
			status: 400,
		},
		{
			name:   "duplicate key",
			block:  getRequest(plus("Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==")...),
			status: 400,
		},
		{
			name:   "version 8",
			block:  getRequest(with("Sec-WebSocket-Version: 8")...),
			status: 426,
			header: "Sec-WebSocket-Version: 13\r\n",
		},
		{
			name:   "version 14",
			block:  getRequest(with("Sec-WebSocket-Version: 14")...),
			status: 426,
			header: "Sec-WebSocket-Version: 13\r\n",
		},
		{
			name:   "missing version",
			block:  getRequest(without("Sec-WebSocket-Version")...),
			status: 400,
		},
		{
			name:   "duplicate version",
			block:  getRequest(plus("Sec-WebSocket-Version: 13")...),
			status: 400,
		},
		{
			name:   "obs-fold continuation line",
			block:  getRequest(plus("Sec-WebSocket-Protocol: chat,", " superchat")...),
			status: 400,
		},
		{
			name:   "obs-fold with tab",
			block:  getRequest(plus("X-Long: a", "\tb")...),
			status: 400,
		},
		{
			name:   "control character in value",
			block:  getRequest(plus("Origin: http://exa\x01mple.com")...),
			status: 400,
		},
		{
			name:   "NUL in value",
			block:  getRequest(plus("X-Name: a\x00b")...),
			status: 400,
		},
		{
			name:   "DEL in value",
			block:  getRequest(plus("X-Name: a\x7fb")...),
			status: 400,
		},
		{
			name:   "bare LF in value",
			block:  getRequest(plus("X-Name: a\nb")...),
			status: 400,
		},
		{
			name:   "bare CR in value",
			block:  getRequest(plus("X-Name: a\rb")...),
			status: 400,
		},
		{
			name:   "space before colon",
			block:  getRequest(plus("X-Name : a")...),
			status: 400,
		},
		{
			name:   "line without colon",
			block:  getRequest(plus("X-Name")...),
			status: 400,
		},
		{
			name:   "empty header name",
			block:  getRequest(plus(": a")...),
			status: 400,
		},
		{
			name:   "separator in header name",
			block:  getRequest(plus("X(Name): a")...),
			status: 400,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := ParseUpgrade([]byte(tt.block))
			if tt.status == 0 {
				if err != nil {
					t.Fatalf(
						"ParseUpgrade: %v",
						err,
					)
				}
				if tt.check != nil {
					tt.check(t, req)
				}
				return
			}
			if req != nil {
				t.Errorf(
					"ParseUpgrade returned a request with error %v",
					err,
				)
			}
			he := asHandshakeError(t, err)
			if he.Status != tt.status {
				t.Fatalf(
					"status %d (%q), want %d",
					he.Status, he.Reason, tt.status,
				)
			}
			if he.Reason == "" {
				t.Errorf(
					"empty Reason for status %d",
					he.Status,
				)
			}
			if !strings.Contains(he.Header, tt.header) {
				t.Errorf(
					"Header %q does not hold %q",
					he.Header, tt.header,
				)
			}
			if tt.header == "" && he.Header != "" {
				t.Errorf(
					"unexpected Header %q",
					he.Header,
				)
			}
			if !strings.HasSuffix(he.Header, "\r\n") && he.Header != "" {
				t.Errorf(
					"Header %q does not end in CRLF",
					he.Header,
				)
			}
		})
	}
}

// TestParseUpgradeCopies checks that the request outlives its buffer.
func TestParseUpgradeCopies(t *testing.T) {
	block := []byte(rfcRequest)
	req, err := ParseUpgrade(block)
	if err != nil {
		t.Fatalf(
			"ParseUpgrade: %v",
			err,
		)
	}
	for i := range block {
		block[i] = 'x'
	}
	if req.Key != rfcKey || req.Host != "server.example.com" || req.URI != "/chat" || req.Protocols[1] != "superchat" || req.Header[0].Name != "Host" {
		t.Fatalf(
			"request changed with its buffer: %+v",
			req,
		)
	}
}

func TestAcceptKey(t *testing.T) {
	var dst [28]byte
	if got := string(AcceptKey(&dst, rfcKey)); got != rfcAccept {
		t.Fatalf(
			"AcceptKey(%q) = %q, want %q",
			rfcKey, got, rfcAccept,
		)
	}
	// A key of another length (only a client checking a bad server sees
	// one) still gives the RFC formula.
	if got := string(AcceptKey(&dst, "short")); got != "JQHdhQRrQ3pd0VAHx7vMGlEiL+4=" {
		t.Fatalf(
			"AcceptKey(short) = %q",
			got,
		)
	}
}

func TestAppendAccept(t *testing.T) {
	req, err := ParseUpgrade([]byte(rfcRequest))
	if err != nil {
		t.Fatalf(
			"ParseUpgrade: %v",
			err,
		)
	}
	prefix := []byte("prefix")
	out := AppendAccept(prefix, req.Key, "")
	if !bytes.HasPrefix(out, prefix) {
		t.Fatalf(
			"AppendAccept lost dst: %q",
			out,
		)
	}
	out = out[len(prefix):]
	if string(out) != rfcResponse {
		t.Fatalf(
			"AppendAccept = %q, want %q",
			out, rfcResponse,
		)
	}
	if !bytes.Contains(out, []byte("Sec-WebSocket-Accept: "+rfcAccept+"\r\n")) {
		t.Fatalf(
			"no RFC accept value in %q",
			out,
		)
	}
	var s HeaderScanner
	if n, err := s.Scan(out, 0); err != nil || n != len(out) {
		t.Fatalf(
			"Scan(accept) = %d, %v; want %d",
			n, err, len(out),
		)
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(out)), nil)
	if err != nil {
		t.Fatalf(
			"net/http cannot read the response: %v",
			err,
		)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != rfcAccept || resp.Header.Get("Upgrade") != "websocket" {
		t.Fatalf(
			"net/http read %d %v",
			resp.StatusCode, resp.Header,
		)
	}

	chosen := SelectProtocol([]string{"superchat", "chat"}, req.Protocols)
	out = AppendAccept(nil, req.Key, chosen)
	if !bytes.Contains(out, []byte("\r\nSec-WebSocket-Protocol: superchat\r\n")) || !bytes.HasSuffix(out, []byte("\r\n\r\n")) {
		t.Fatalf(
			"AppendAccept with protocol = %q",
			out,
		)
	}
	if bytes.Count(out, []byte("\r\n\r\n")) != 1 {
		t.Fatalf(
			"AppendAccept with protocol has an early end: %q",
			out,
		)
	}
}

// TestAcceptDeclinesExtensions checks that no extension is ever accepted,
// whatever the client offers.
func TestAcceptDeclinesExtensions(t *testing.T) {
	offers := []string{
		"permessage-deflate",
		"permessage-deflate; client_max_window_bits",
		"permessage-deflate; server_no_context_takeover; client_no_context_takeover, permessage-deflate",
		"x-webkit-deflate-frame",
	}
	for _, offer := range offers {
		req, err := ParseUpgrade([]byte(getRequest(plus("Sec-WebSocket-Extensions: "+offer, "Sec-WebSocket-Protocol: chat")...)))
		if err != nil {
			t.Fatalf(
				"ParseUpgrade with %q: %v",
				offer, err,
			)
		}
		if req.Get("Sec-WebSocket-Extensions") != offer {
			t.Errorf(
				"offer %q not kept in Header",
				offer,
			)
		}
		for _, protocol := range []string{"", SelectProtocol([]string{"chat"}, req.Protocols)} {
			out := AppendAccept(nil, req.Key, protocol)
			if bytes.Contains(bytes.ToLower(out), []byte("sec-websocket-extensions")) || bytes.Contains(out, []byte("deflate")) {
				t.Errorf(
					"AppendAccept accepted an extension for offer %q: %q",
					offer, out,
				)
			}
		}
	}
}

func TestSelectProtocol(t *testing.T) {
	tests := []struct {
		name      string
		supported []string
		offered   []string
		want      string
	}{
		{
			name:      "server preference wins over client order",
			supported: []string{"superchat", "chat"},
			offered:   []string{"chat", "superchat"},
			want:      "superchat",
		},
		{
			name:      "first supported that is offered",
			supported: []string{"v3", "v2", "v1"},
			offered:   []string{"v1", "v2"},
			want:      "v2",
		},
		{
			name:      "no match",
			supported: []string{"mqtt"},
			offered:   []string{"chat", "superchat"},
			want:      "",
		},
		{
			name:      "nothing supported",
			supported: nil,
			offered:   []string{"chat"},
			want:      "",
		},
		{
			name:      "nothing offered",
			supported: []string{"chat"},
			offered:   nil,
			want:      "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SelectProtocol(tt.supported, tt.offered); got != tt.want {
				t.Fatalf(
					"SelectProtocol(%q, %q) = %q, want %q",
					tt.supported, tt.offered, got, tt.want,
				)
			}
		})
	}
}

// TestAppendHTTPError checks that every refusal is a well-formed HTTP
// response that net/http reads back, with its extra header lines.
func TestAppendHTTPError(t *testing.T) {
	tests := []struct {
		err    *HandshakeError
		phrase string
		header string // header name that must be present
		value  string
	}{
		{
			err:    &HandshakeError{Status: 400, Reason: "missing Host"},
			phrase: "Bad Request",
		},
		{
			err:    &HandshakeError{Status: 405, Reason: "method not allowed", Header: "Allow: GET\r\n"},
			phrase: "Method Not Allowed",
			header: "Allow",
			value:  "GET",
		},
		{
			err:    &HandshakeError{Status: 426, Reason: "unsupported WebSocket version", Header: "Sec-WebSocket-Version: 13\r\n"},
			phrase: "Upgrade Required",
			header: "Sec-WebSocket-Version",
			value:  "13",
		},
		{
			err:    &HandshakeError{Status: 431, Reason: "request header block too large"},
			phrase: "Request Header Fields Too Large",
		},
		{
			err:    &HandshakeError{Status: 503, Reason: "draining", Header: "Retry-After: 5\r\n"},
			phrase: "Service Unavailable",
			header: "Retry-After",
			value:  "5",
		},
		{
			err:    &HandshakeError{Status: 418, Reason: "teapot"},
			phrase: "Error",
		},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.err.Status), func(t *testing.T) {
			out := AppendHTTPError([]byte("x"), tt.err)[1:]
			statusLine := "HTTP/1.1 " + strconv.Itoa(tt.err.Status) + " " + tt.phrase + "\r\n"
			if !bytes.HasPrefix(out, []byte(statusLine)) {
				t.Fatalf(
					"response %q does not start with %q",
					out, statusLine,
				)
			}
			resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(out)), nil)
			if err != nil {
				t.Fatalf(
					"net/http cannot read %q: %v",
					out, err,
				)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf(
					"reading body: %v",
					err,
				)
			}
			if resp.StatusCode != tt.err.Status || string(body) != tt.err.Reason+"\n" || !resp.Close {
				t.Fatalf(
					"read back %d %q close=%v",
					resp.StatusCode, body, resp.Close,
				)
			}
			if tt.header != "" && resp.Header.Get(tt.header) != tt.value {
				t.Fatalf(
					"header %s = %q, want %q",
					tt.header, resp.Header.Get(tt.header), tt.value,
				)
			}
			if tt.err.Error() == "" {
				t.Fatal(
					"empty Error()",
				)
			}
		})
	}
}

// TestRefusalsAnswer sends the refusals of ParseUpgrade through
// AppendHTTPError and ParseClientResponse: a client sees the status.
func TestRefusalsAnswer(t *testing.T) {
	for _, tt := range []struct {
		block  string
		status int
	}{
		{
			block:  request("POST /chat HTTP/1.1", baseHeaders...),
			status: 405,
		},
		{
			block:  getRequest(with("Sec-WebSocket-Version: 8")...),
			status: 426,
		},
		{
			block:  getRequest(without("Host")...),
			status: 400,
		},
	} {
		_, err := ParseUpgrade([]byte(tt.block))
		he := asHandshakeError(t, err)
		out := AppendHTTPError(nil, he)
		var s HeaderScanner
		n, err := s.Scan(out, 0)
		if err != nil {
			t.Fatalf(
				"Scan(%q): %v",
				out, err,
			)
		}
		if string(out[n:]) != he.Reason+"\n" {
			t.Fatalf(
				"body after the header block = %q",
				out[n:],
			)
		}
		_, status, err := ParseClientResponse(out[:n], &ClientRequest{Key: rfcKey})
		if status != tt.status || !errors.Is(err, ErrBadHandshakeResponse) {
			t.Fatalf(
				"ParseClientResponse = %d, %v; want %d",
				status, err, tt.status,
			)
		}
	}
}

func TestStatusText(t *testing.T) {
	for status, want := range map[int]string{
		101: "Switching Protocols",
		400: "Bad Request",
		403: "Forbidden",
		404: "Not Found",
		405: "Method Not Allowed",
		408: "Request Timeout",
		426: "Upgrade Required",
		429: "Too Many Requests",
		431: "Request Header Fields Too Large",
		500: "Internal Server Error",
		502: "Bad Gateway",
		503: "Service Unavailable",
	} {
		if got := StatusText(status); got != want || got != http.StatusText(status) {
			t.Errorf(
				"StatusText(%d) = %q, want %q",
				status, got, want,
			)
		}
	}
}

func TestHeaderScanner(t *testing.T) {
	frame := []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}
	stream := append([]byte(rfcRequest), frame...)
	orig := bytes.Clone(stream)

	var s HeaderScanner
	n, err := s.Scan(stream, 0)
	if err != nil || n != len(rfcRequest) {
		t.Fatalf(
			"Scan = %d, %v; want %d",
			n, err, len(rfcRequest),
		)
	}
	if !bytes.Equal(stream[n:], frame) {
		t.Fatalf(
			"bytes after the block = %x, want the frame %x",
			stream[n:], frame,
		)
	}
	if !bytes.Equal(stream, orig) {
		t.Fatal(
			"Scan modified its input",
		)
	}
	if _, err := ParseUpgrade(stream[:n]); err != nil {
		t.Fatalf(
			"ParseUpgrade(block): %v",
			err,
		)
	}

	// Every strict prefix of the block needs more, from a fresh scanner.
	for i := 0; i < len(rfcRequest); i++ {
		var s HeaderScanner
		if n, err := s.Scan(stream[:i], 0); n != 0 || !errors.Is(err, ErrNeedMore) {
			t.Fatalf(
				"Scan(prefix %d) = %d, %v; want ErrNeedMore",
				i, n, err,
			)
		}
	}

	// The first blank line ends the block, even with a second one behind.
	twice := []byte(rfcRequest + rfcRequest)
	var s2 HeaderScanner
	if n, err := s2.Scan(twice, 0); err != nil || n != len(rfcRequest) {
		t.Fatalf(
			"Scan(two requests) = %d, %v",
			n, err,
		)
	}
}

func TestHeaderScannerLimit(t *testing.T) {
	// filler builds a block of exactly size bytes, or a header-only prefix
	// of that size without the end marker when end is false.
	filler := func(size int, end bool) []byte {
		head := "GET / HTTP/1.1\r\nX-Fill: "
		tail := "\r\n\r\n"
		if !end {
			tail = ""
		}
		n := size - len(head) - len(tail)
		return []byte(head + strings.Repeat("a", n) + tail)
	}
	for _, tt := range []struct {
		name string
		max  int // passed to Scan
		eff  int // the limit in effect
	}{
		{name: "default", max: 0, eff: DefaultMaxHeaderBytes},
		{name: "negative means default", max: -1, eff: DefaultMaxHeaderBytes},
		{name: "custom 64", max: 64, eff: 64},
		{name: "custom 1000", max: 1000, eff: 1000},
		{name: "custom 16 KiB", max: 16 << 10, eff: 16 << 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// A block of exactly the limit is accepted, with a frame behind.
			p := append(filler(tt.eff, true), 0x88, 0x80, 1, 2, 3, 4)
			var s HeaderScanner
			if n, err := s.Scan(p, tt.max); err != nil || n != tt.eff {
				t.Fatalf(
					"block of %d: Scan = %d, %v",
					tt.eff, n, err,
				)
			}
			// One byte more is refused with 431.
			var s2 HeaderScanner
			n, err := s2.Scan(filler(tt.eff+1, true), tt.max)
			if n != 0 || asHandshakeError(t, err).Status != 431 {
				t.Fatalf(
					"block of %d: Scan = %d, %v; want 431",
					tt.eff+1, n, err,
				)
			}
			// Before the limit without an end: need more.
			var s3 HeaderScanner
			if n, err := s3.Scan(filler(tt.eff-1, false), tt.max); n != 0 || !errors.Is(err, ErrNeedMore) {
				t.Fatalf(
					"%d bytes without end: Scan = %d, %v; want ErrNeedMore",
					tt.eff-1, n, err,
				)
			}
			// Then the limit reached without an end: 431, and it stays so.
			n, err = s3.Scan(filler(tt.eff, false), tt.max)
			if n != 0 || asHandshakeError(t, err).Status != 431 {
				t.Fatalf(
					"%d bytes without end: Scan = %d, %v; want 431",
					tt.eff, n, err,
				)
			}
			n, err = s3.Scan(filler(tt.eff+100, true), tt.max)
			if n != 0 || asHandshakeError(t, err).Status != 431 {
				t.Fatalf(
					"after 431: Scan = %d, %v; want 431",
					n, err,
				)
			}
		})
	}

	// The 431 is answered like any refusal.
	var s HeaderScanner
	_, err := s.Scan(bytes.Repeat([]byte("a"), DefaultMaxHeaderBytes), 0)
	out := AppendHTTPError(nil, asHandshakeError(t, err))
	if !bytes.HasPrefix(out, []byte("HTTP/1.1 431 Request Header Fields Too Large\r\n")) {
		t.Fatalf(
			"431 answer = %q",
			out,
		)
	}
}

func TestValidHost(t *testing.T) {
	for host, want := range map[string]bool{
		"example.com": true, "example.com:8080": true, "127.0.0.1": true, "127.0.0.1:80": true,
		"[::1]": true, "[::1]:8080": true, "[2001:db8::7]": true, "xn--bcher-kva.example": true,
		"a%20b": true, "localhost:65535": true,
		"a b": false, "": true /* emptiness is refused earlier as missing Host */, "a/b": false, "a@b": false,
		"a:": false, ":80": true, "[]": false, "[::1": false, "[::1]x": false, "[g::1]": false,
		"a:1234567": false, "a\tb": false, "é.example": false,
	} {
		if got := validHost(host); got != want {
			t.Errorf("validHost(%q) = %v, want %v", host, got, want)
		}
	}
}
