#!/usr/bin/env node
// Interop with a browser (issue #4): headless Chromium's own WebSocket against an echo
// server, driven by playwright-core (from scripts/node/node_modules; no browser download).
//
//     node browser.js URL
//
// Launches /usr/bin/chromium headless with a fresh profile (and Local Network Access
// checks off, see below), opens about:blank, and in the
// page runs `new WebSocket(URL)`: checks that `ws.extensions` shows permessage-deflate
// negotiated (RFC 7692; Chromium always offers it), sends text messages (UTF-8 with 1- to
// 4-byte characters) and binary messages (ArrayBuffer) of 0, 1, 125, 126, 65535, 65536
// bytes and 1 MiB, one at a time, checks that each comes back exactly with the same type,
// then closes with 1000 and checks the close event: code 1000 and wasClean.
//
// Prints one summary line and exits 0, or prints what failed and exits 1.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium, launchOptions } = require('./chromium');

const SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20];
const TIMEOUT_MS = 90000;

const url = process.argv[2];
if (process.argv.length !== 3) {
  console.error('usage: browser.js URL');
  process.exit(2);
}

// Runs inside the page: everything here is the browser's own WebSocket implementation.
async function pageSession({ url, sizes }) {
  const ALPHABET = [...'az ~éßЖ€中あ😀🎉'];
  const random = (n) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
    return out;
  };
  // A string of exactly n UTF-8 bytes mixing 1- to 4-byte characters.
  const makeText = (n) => {
    const picks = random(16384);
    let chunk = '';
    for (const p of picks) chunk += ALPHABET[p % ALPHABET.length];
    const chunkBytes = new TextEncoder().encode(chunk);
    const bytes = new Uint8Array(n + 1);
    for (let i = 0; i <= n; i += chunkBytes.length) bytes.set(chunkBytes.subarray(0, Math.min(chunkBytes.length, n + 1 - i)), i);
    let end = n;
    while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--; // back off to a character boundary
    bytes.fill(0x61, end, n); // pad with 'a'
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, n));
    if (new TextEncoder().encode(text).length !== n) throw new Error(`makeText(${n}) is wrong`);
    return text;
  };
  const equalBytes = (a, b) => {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  };

  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  const inbox = [];
  let waiter = null;
  let closeEvent = null;
  let errored = false;
  const wake = () => {
    if (waiter) {
      const w = waiter;
      waiter = null;
      w();
    }
  };
  ws.onmessage = (e) => {
    inbox.push(e.data);
    wake();
  };
  ws.onerror = () => {
    errored = true;
    wake();
  };
  ws.onclose = (e) => {
    closeEvent = { code: e.code, reason: e.reason, wasClean: e.wasClean };
    wake();
  };
  const until = async (what, ready) => {
    while (!ready()) {
      if (errored) throw new Error(`WebSocket error event while waiting for ${what}`);
      if (closeEvent) throw new Error(`connection closed (${closeEvent.code} '${closeEvent.reason}') while waiting for ${what}`);
      await new Promise((resolve) => {
        waiter = resolve;
      });
    }
  };

  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.addEventListener('error', () => reject(new Error(`could not connect to ${url}`)));
    ws.addEventListener('close', (e) => reject(new Error(`closed before open: ${e.code}`)));
  });
  const extensions = ws.extensions;
  if (!extensions.includes('permessage-deflate')) {
    throw new Error(`permessage-deflate not negotiated (ws.extensions '${extensions}')`);
  }

  let count = 0;
  for (const size of sizes) {
    const text = makeText(size);
    const binary = random(size);
    for (const payload of [text, binary]) {
      const kind = typeof payload === 'string' ? 'text' : 'binary';
      ws.send(typeof payload === 'string' ? payload : payload.buffer);
      await until(`the echo of ${kind} of ${size} bytes`, () => inbox.length > 0);
      const echo = inbox.shift();
      const gotKind = typeof echo === 'string' ? 'text' : echo instanceof ArrayBuffer ? 'binary' : typeof echo;
      const same = kind === 'text' ? echo === payload : echo instanceof ArrayBuffer && equalBytes(new Uint8Array(echo), payload);
      if (gotKind !== kind || !same) {
        throw new Error(`sent ${kind} of ${size} bytes, got back ${gotKind} of ${echo.length ?? echo.byteLength} that differs`);
      }
      count++;
    }
  }
  ws.close(1000);
  while (!closeEvent) {
    await new Promise((resolve) => {
      waiter = resolve;
    });
  }
  if (closeEvent.code !== 1000 || !closeEvent.wasClean) {
    throw new Error(`close event: code ${closeEvent.code}, wasClean ${closeEvent.wasClean}, reason '${closeEvent.reason}'`);
  }
  return { count, extensions };
}

async function main() {
  const started = Date.now();
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'tether-chromium-'));
  let context;
  try {
    // A persistent context is how playwright takes an explicit (here fresh) user-data-dir.
    context = await chromium.launchPersistentContext(profile, launchOptions());
    const page = context.pages()[0] || (await context.newPage());
    await page.goto('about:blank');
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no result within ${TIMEOUT_MS / 1000} s`)), TIMEOUT_MS);
    });
    const result = await Promise.race([page.evaluate(pageSession, { url, sizes: SIZES }), timeout]);
    clearTimeout(timer);
    const cdp = await context.newCDPSession(page);
    const { product } = await cdp.send('Browser.getVersion');
    const version = product.replace(/^\D*\//, '');
    const secs = ((Date.now() - started) / 1000).toFixed(1);
    console.log(
      `interop chromium ${version} -> ${url}: ${result.count} messages echoed exactly, ` +
        `deflate negotiated (${result.extensions}), clean close 1000 (${secs} s)`,
    );
    return 0;
  } catch (e) {
    const message = String(e && e.message ? e.message : e).split('\n')[0];
    console.log(`interop chromium -> ${url}: FAILED: ${message}`);
    return 1;
  } finally {
    if (context) await context.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

main().then((code) => process.exit(code));
