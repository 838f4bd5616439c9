// node ws: a fan-out peer of Tether's benchmark (issue 22). `node server.js HOST:PORT`
// serves ws://HOST:PORT/ (any path) with the `ws` package from scripts/node, no
// compression, and sends every message any client sends to every connected client, the
// sender included, with `wss.clients.forEach(c => c.send(data))`, as ws's README does.
// `ws` queues without bound, so nothing is dropped; a client that cannot keep up grows the
// server's memory instead (`bufferedAmount`). Prints "node-ws: stats …" on standard error
// once a second while the counters change, like the other peers.
'use strict';
const path = require('path');
const { WebSocketServer, WebSocket } = require(path.join(__dirname, '../../../scripts/node/node_modules/ws'));

const addr = process.argv[2] || '127.0.0.1:9001';
const colon = addr.lastIndexOf(':');
const stats = { conns: 0, relayed: 0, queued: 0, dropped: 0, cut: 0 };

const wss = new WebSocketServer({ host: addr.slice(0, colon), port: Number(addr.slice(colon + 1)), perMessageDeflate: false });
wss.on('listening', () => process.stderr.write(`node-ws listening on ${addr}\n`));
wss.on('connection', (ws, req) => {
  stats.conns++;
  req.socket.setNoDelay(true);
  ws.on('close', () => stats.conns--);
  ws.on('message', (data, isBinary) => {
    stats.relayed++;
    wss.clients.forEach((c) => {
      if (c.readyState === WebSocket.OPEN) {
        c.send(data, { binary: isBinary });
        stats.queued++;
      }
    });
  });
});

let last = '';
setInterval(() => {
  const line = `conns=${stats.conns} relayed=${stats.relayed} queued=${stats.queued} dropped=${stats.dropped} cut=${stats.cut}`;
  if (line !== last) {
    process.stderr.write(`node-ws: stats ${line}\n`);
    last = line;
  }
}, 1000).unref();
