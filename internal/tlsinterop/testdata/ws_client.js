// A wss:// client on Node's `ws` package, run by node_test.go:
//
//   node ws_client.js URL CA_FILE FRAGMENT_BYTES TLS_VERSION
//
// It trusts CA_FILE (the `ca` option), speaks TLS_VERSION (TLSv1.2 or
// TLSv1.3: minVersion and maxVersion), echoes a text message, a binary
// one and a 1 MiB binary message sent in FRAGMENT_BYTES fragments
// (send with fin: false), checks every echo byte for byte, closes 1000
// and prints one JSON line with what it saw. Exit status 0 only if all
// of it went as expected; it gives up after 20 s.
'use strict';
const fs = require('fs');
const crypto = require('crypto');
const WebSocket = require('ws');

const [url, caFile, fragArg, tlsVersion] = process.argv.slice(2);
const fragment = Number(fragArg);
const result = { version: require('ws/package.json').version, node: process.version, echoes: [] };

function finish(code, err) {
  if (err) result.error = String(err && err.stack || err);
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(code));
}
setTimeout(() => finish(2, 'timed out after 20 s'), 20000).unref();

const ws = new WebSocket(url, {
  ca: fs.readFileSync(caFile),
  minVersion: tlsVersion,
  maxVersion: tlsVersion,
  perMessageDeflate: false,
});
const pending = [];
ws.on('message', (data, isBinary) => {
  const want = pending.shift();
  if (!want) return finish(1, 'unexpected message of ' + data.length + ' bytes');
  want(data, isBinary);
});
ws.on('error', (err) => finish(1, err));
ws.on('close', (code, reason) => {
  result.closeCode = code;
  result.closeReason = reason.toString();
  finish(code === 1000 && result.echoes.length === 3 ? 0 : 1);
});

function echo(name, payload, isBinary, send) {
  return new Promise((resolve, reject) => {
    pending.push((data, gotBinary) => {
      if (gotBinary !== isBinary || !Buffer.from(data).equals(Buffer.from(payload))) {
        return reject(new Error(name + ': echo differs (' + data.length + ' bytes, binary ' + gotBinary + ')'));
      }
      result.echoes.push({ name, bytes: data.length });
      resolve();
    });
    send();
  });
}

ws.on('open', async () => {
  const sock = ws._socket;
  result.tls = sock.getProtocol();
  result.authorized = sock.authorized;
  try {
    const text = 'héllo from node';
    await echo('text', Buffer.from(text), false, () => ws.send(text));
    const bin = crypto.randomBytes(300);
    await echo('binary', bin, true, () => ws.send(bin));
    const big = crypto.randomBytes(1 << 20);
    await echo('fragmented', big, true, () => {
      for (let off = 0; off < big.length; off += fragment) {
        ws.send(big.subarray(off, off + fragment), { binary: true, fin: off + fragment >= big.length });
      }
    });
    ws.close(1000, 'bye');
  } catch (err) {
    finish(1, err);
  }
});
