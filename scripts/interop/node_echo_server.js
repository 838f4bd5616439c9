#!/usr/bin/env node
// Node.js `ws` echo server for Tether's interop tests.
//
//     node node_echo_server.js PORT [--deflate]
//
// Listens on 127.0.0.1:PORT (0 picks a free port), echoes every text and binary message
// unchanged (same type), forever. Messages may be up to 64 MiB. permessage-deflate
// (RFC 7692) is accepted only with --deflate (ws' defaults: messages under 1 KiB are sent
// uncompressed). `require('ws')` resolves from scripts/node/node_modules.
//
// Prints one readiness line to stderr once listening:
//
//     node-echo-server listening on 127.0.0.1:PORT (deflate on|off)
'use strict';

const path = require('path');
const { WebSocketServer } = require(path.join(__dirname, '..', 'node', 'node_modules', 'ws'));

const args = process.argv.slice(2);
const deflate = args.includes('--deflate');
const positional = args.filter((a) => !a.startsWith('--'));
if (positional.length !== 1 || !/^\d+$/.test(positional[0])) {
  console.error('usage: node_echo_server.js PORT [--deflate]');
  process.exit(2);
}

const server = new WebSocketServer({
  host: '127.0.0.1',
  port: Number(positional[0]),
  perMessageDeflate: deflate,
  maxPayload: 64 << 20,
});

server.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', (err) => console.error(`node-echo-server: connection error: ${err.message}`));
});

server.on('listening', () => {
  const { port } = server.address();
  console.error(`node-echo-server listening on 127.0.0.1:${port} (deflate ${deflate ? 'on' : 'off'})`);
});

server.on('error', (err) => {
  console.error(`node-echo-server: ${err.message}`);
  process.exit(1);
});
