#!/usr/bin/env node
// Node.js `ws` client for Tether's interop tests.
//
//     node node_client.js URL [--deflate]
//
// Connects to an echo server at URL, offering permessage-deflate (RFC 7692) only with
// --deflate (and then requires `ws.extensions` to show it negotiated). Sends text messages
// (valid UTF-8 with 1- to 4-byte characters) and binary messages of 0, 1, 125, 126, 65535,
// 65536 bytes, 1 MiB and 8 MiB, one at a time, and checks that each comes back exactly,
// with the same type. Then closes with 1000 and checks that the closing handshake completed
// (RFC 6455 §7.1): the server's close frame carried 1000 and no error occurred.
//
// Prints one summary line and exits 0, or prints the first mismatch and exits 1.
'use strict';

const crypto = require('crypto');
const path = require('path');
const WebSocket = require(path.join(__dirname, '..', 'node', 'node_modules', 'ws'));

const NAME = 'node-client';
const SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20, 8 << 20];
// Characters of 1, 2, 3 and 4 bytes in UTF-8.
const ALPHABET = [...'az ~éßЖ€中あ😀🎉'];
const STEP_TIMEOUT_MS = 60000;

const args = process.argv.slice(2);
const deflate = args.includes('--deflate');
const positional = args.filter((a) => !a.startsWith('--'));
if (positional.length !== 1) {
  console.error('usage: node_client.js URL [--deflate]');
  process.exit(2);
}
const url = positional[0];
const started = Date.now();

/** A string of exactly n UTF-8 bytes mixing 1- to 4-byte characters. */
function makeText(n) {
  let chunk = '';
  for (let i = 0; i < 16384; i++) chunk += ALPHABET[crypto.randomInt(ALPHABET.length)];
  const bytes = Buffer.from(chunk.repeat(Math.floor(n / Buffer.byteLength(chunk)) + 1));
  let end = n;
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--; // back off to a character boundary
  const text = Buffer.concat([bytes.subarray(0, end), Buffer.alloc(n - end, 'a')]).toString('utf8');
  if (Buffer.byteLength(text) !== n) throw new Error(`makeText(${n}) is wrong`);
  return text;
}

function fail(message) {
  console.log(`interop ${NAME} -> ${url}: FAILED: ${message}`);
  process.exit(1);
}

const ws = new WebSocket(url, { perMessageDeflate: deflate, maxPayload: 64 << 20 });
let pending = null; // { resolve } of the echo being waited for
let extensionsHeader = ''; // the server's Sec-WebSocket-Extensions

ws.on('upgrade', (res) => {
  extensionsHeader = res.headers['sec-websocket-extensions'] || '';
});
ws.on('error', (err) => fail(`error: ${err.message}`));
ws.on('message', (data, isBinary) => {
  if (!pending) fail('unexpected message');
  const p = pending;
  pending = null;
  p.resolve({ data, isBinary });
});
ws.on('close', (code, reason) => {
  if (pending) fail(`connection closed while waiting for an echo: ${code} ${reason}`);
});

function echo(payload, isBinary) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => fail('timed out waiting for an echo'), STEP_TIMEOUT_MS);
    pending = {
      resolve: (m) => {
        clearTimeout(timer);
        resolve(m);
      },
    };
    ws.send(payload, { binary: isBinary });
  });
}

ws.on('open', async () => {
  const negotiated = ws.extensions.includes('permessage-deflate');
  if (negotiated !== deflate) {
    fail(`permessage-deflate negotiated: ${negotiated}, wanted ${deflate} (extensions '${ws.extensions}')`);
  }
  let count = 0;
  for (const size of SIZES) {
    const text = makeText(size);
    for (const [payload, isBinary] of [[Buffer.from(text, 'utf8'), false], [crypto.randomBytes(size), true]]) {
      const got = await echo(payload, isBinary);
      const kind = isBinary ? 'binary' : 'text';
      const gotKind = got.isBinary ? 'binary' : 'text';
      if (got.isBinary !== isBinary || !got.data.equals(payload)) {
        fail(`sent ${kind} of ${size} bytes, got back ${gotKind} of ${got.data.length} bytes that differs`);
      }
      count++;
    }
  }
  const closeTimer = setTimeout(() => fail('closing handshake did not complete within 5 s'), 5000);
  ws.once('close', (code, reason) => {
    clearTimeout(closeTimer);
    if (code !== 1000) fail(`close ended with ${code} '${reason}' instead of the server's 1000`);
    const state = negotiated ? `deflate negotiated (${extensionsHeader})` : 'no deflate';
    const secs = ((Date.now() - started) / 1000).toFixed(1);
    console.log(`interop ${NAME} -> ${url}: ${count} messages echoed exactly, ${state}, clean close 1000 (${secs} s)`);
    process.exit(0);
  });
  ws.close(1000);
});
