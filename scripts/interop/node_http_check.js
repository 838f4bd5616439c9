#!/usr/bin/env node
// The plain-HTTP side of a server that serves WebSockets next to HTTP routes on one port
// (adapters/tokio/examples/axum_server.rs), checked with Node's http client:
//
//     node node_http_check.js HOST:PORT
//
// - GET /health answers 200, `application/json`, body {"status":"ok"};
// - an upgrade request to /ws with Sec-WebSocket-Version: 8 answers 426 with
//   Sec-WebSocket-Version: 13 (RFC 6455 §4.4);
// - a plain GET /ws (no Upgrade) answers 400 (RFC 6455 §4.2.1).
//
// Prints one summary line and exits 0, or prints the first mismatch and exits 1.
'use strict';

const http = require('http');

const NAME = 'node-http';
const args = process.argv.slice(2);
if (args.length !== 1) {
  console.error('usage: node_http_check.js HOST:PORT');
  process.exit(2);
}
const [host, port] = args[0].split(':');
const base = `http://${args[0]}`;

function fail(message) {
  console.log(`interop ${NAME} -> ${base}: FAILED: ${message}`);
  process.exit(1);
}

/** GET `path` with `headers`; resolves to { status, headers, body }. */
function get(path, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port: Number(port), path, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.setTimeout(10000, () => req.destroy(new Error(`GET ${path} timed out`)));
  });
}

(async () => {
  const health = await get('/health');
  if (health.status !== 200) fail(`GET /health: status ${health.status}`);
  if (!String(health.headers['content-type']).startsWith('application/json')) {
    fail(`GET /health: content-type '${health.headers['content-type']}'`);
  }
  let parsed;
  try {
    parsed = JSON.parse(health.body);
  } catch (e) {
    fail(`GET /health: body is not JSON: '${health.body}'`);
  }
  if (JSON.stringify(parsed) !== JSON.stringify({ status: 'ok' })) fail(`GET /health: body '${health.body}'`);

  const v8 = await get('/ws', {
    Connection: 'Upgrade',
    Upgrade: 'websocket',
    'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version': '8',
  });
  if (v8.status !== 426) fail(`upgrade with version 8: status ${v8.status}, wanted 426`);
  if (v8.headers['sec-websocket-version'] !== '13') {
    fail(`upgrade with version 8: Sec-WebSocket-Version '${v8.headers['sec-websocket-version']}', wanted 13`);
  }

  const plain = await get('/ws');
  if (plain.status !== 400) fail(`plain GET /ws: status ${plain.status}, wanted 400`);

  console.log(`interop ${NAME} -> ${base}: /health 200 {"status":"ok"}, version 8 -> 426 (Sec-WebSocket-Version: 13), plain GET /ws -> 400`);
})().catch((e) => fail(e.message));
