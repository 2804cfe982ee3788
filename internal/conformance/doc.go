// Package conformance is a reusable RFC 6455 conformance suite for a
// WebSocket server endpoint, run over raw TCP sockets with crafted bytes.
//
// Run drives a Target (an address and the limits the endpoint was
// configured with) through table-driven cases, each a subtest with a
// stable name:
//
//   - handshake/...: the opening handshake (RFC 6455 section 4.2): a valid
//     upgrade gets 101 with the right Sec-WebSocket-Accept; a method other
//     than GET 405, another version 426 with "Sec-WebSocket-Version: 13",
//     a missing or malformed Host, Upgrade, Connection or key 400, a header
//     block over the limit 431; token lists and split writes are accepted;
//     subprotocols are selected only among those offered; extensions are
//     never accepted. Every refusal ends with the server closing TCP.
//   - frames/...: framing after the upgrade (sections 5, 7, 8): protocol
//     violations get close 1002, invalid UTF-8 1007, sizes over the limits
//     1009 (from the header, without waiting for the payload), and in every
//     case the server then closes TCP without sending anything else; pings
//     are answered, pongs ignored, messages of every length encoding echoed
//     (the endpoint is expected to echo, like wsgate's Echo handler), and
//     the close handshake is answered with the client's code.
//   - pipelined/...: frames sent in the same TCP write as the request.
//
// Nothing here depends on the endpoint's implementation: frames and
// requests are built by hand and every read has a deadline, so a broken
// endpoint fails a case and never hangs the test. The raw client (Dial,
// Client.Handshake, Client.WriteFrame, Client.ReadFrame, Client.ExpectClose,
// Client.ExpectTCPClosed, ...) is exported for other tests to reuse.
package conformance
