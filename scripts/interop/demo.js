#!/usr/bin/env node
// The demo chat at `/` (gateway/static/) in headless Chromium against the real `tether`
// binary, driven through the page's own form fields and buttons by playwright-core (from
// scripts/node/node_modules; no browser download).
//
//     node demo.js TETHER_BIN CONFIG PORT
//
// CONFIG is a tether.toml that listens on 127.0.0.1:PORT, runs in dev mode (the page gets tokens from GET /dev/token)
// and keeps history in every room (demo.sh writes it). This script starts TETHER_BIN with
// it, opens two pages as alice and bob, and checks:
//   1. the page and its scripts come from the gateway (no other host is asked);
//   2. both join a room and exchange messages: each sees every message once, in order;
//      presence lists both;
//   3. a direct message (send to a user) reaches the user only;
//   4. recovery without a restart: bob goes offline, alice publishes, bob reconnects: the
//      missed messages arrive through `recover`, once and in order;
//   5. a server restart (SIGKILL, then the same binary again): both pages reconnect by
//      themselves; the in-memory history is gone (new epoch), which each page detects and
//      says (a "reset" notice) instead of showing duplicates, then loads what the room keeps
//      of the new epoch; a message alice sent while the server was down goes out after her
//      reconnect; every message since the restart reaches both pages once and in order,
//      whichever re-joined first; nothing is shown twice, and within an epoch a page shows
//      consecutive offsets;
//   6. a third user (carol) joining after the restart is shown the room's history.
// And between 4 and 5: 4a, the same recovery after a connection lost under the page (the
// browser offline, the socket closed) that the client retries by itself; 4b: in a room keeping only 2 messages, bob, back after 4 were
// published, is shown the 2 kept ones with a notice that recovery failed and a mark of the
// 2 missing.
// Prints one line per check; exits 1 at the first failure, with what was expected and seen.
'use strict';

const path = require('path');
const net = require('net');
const { spawn } = require('child_process');
const { chromium, launchOptions } = require('./chromium');

const ROOM = 'chat:demo';
const WAIT_MS = 15000;

if (process.argv.length !== 5) {
  console.error('usage: demo.js TETHER_BIN CONFIG PORT');
  process.exit(2);
}
const [bin, configPath, port] = process.argv.slice(2);
const BASE = `http://127.0.0.1:${port}`;

// The server: started, SIGKILLed and started again by this script.
let server = null;
let serverLog = '';

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function accepts() {
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function startServer() {
  serverLog = '';
  const child = spawn(bin, ['--config', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr.on('data', (d) => {
    serverLog += d;
  });
  child.exited = new Promise((resolve) => child.once('exit', resolve));
  server = child;
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) break;
    if (await accepts()) return;
    await sleep(100);
  }
  throw new Error(`${bin} did not start listening on 127.0.0.1:${port}; its stderr:\n${serverLog}`);
}

async function killServer() {
  if (!server || server.exitCode !== null) return;
  server.kill('SIGKILL');
  await server.exited;
}

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    if (server && server.exitCode === null) server.kill('SIGKILL');
    process.exit(1);
  });
}

function ok(message) {
  console.log(`demo: ok - ${message}`);
}

function check(condition, message, detail) {
  if (!condition) throw new Error(`${message}${detail ? `: ${detail}` : ''}`);
  ok(message);
}

// One user: a browser context (own storage) with the page at `/`.
async function openUser(browser, name, requests, pageErrors) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (e) => pageErrors.push(`${name}: ${e.message}`));
  await page.goto(`${BASE}/`);
  await page.fill('#name', name);
  await page.click('#connect');
  await page.waitForSelector('#state[data-state="open"]', { timeout: WAIT_MS });
  return { name, page, context };
}

// The messages a page shows in a room, in page order.
function messages(user, room = ROOM) {
  return user.page.$$eval(`ul.log[data-room="${room}"] > li.msg`, (items) =>
    items.map((li) => ({
      from: li.dataset.from,
      text: li.querySelector('.text').textContent,
      epoch: li.dataset.epoch,
      offset: li.dataset.offset === '' ? null : Number(li.dataset.offset),
    })),
  );
}

function notices(user, kind, room = ROOM) {
  return user.page.$$eval(`ul.log[data-room="${room}"] > li.notice[data-kind="${kind}"]`, (items) =>
    items.map((li) => li.textContent),
  );
}

async function waitFor(user, what, predicate, arg) {
  try {
    await user.page.waitForFunction(predicate, arg, { timeout: WAIT_MS, polling: 50 });
  } catch {
    const shown = (await messages(user)).map((m) => m.text).join(', ');
    throw new Error(`${user.name}'s page: ${what} within ${WAIT_MS / 1000} s (room shows: ${shown})`);
  }
}

// Waits until the page shows a room message with exactly `text`.
function waitMessage(user, text, room = ROOM) {
  return waitFor(
    user,
    `no message '${text}' in ${room}`,
    ({ room, text }) =>
      [...document.querySelectorAll(`ul.log[data-room="${room}"] > li.msg .text`)].some((t) => t.textContent === text),
    { room, text },
  );
}

function waitState(user, state) {
  return waitFor(user, `the state did not become '${state}'`, (state) => document.querySelector('#state').dataset.state === state, state);
}

function waitSubscribed(user, room = ROOM) {
  return waitFor(
    user,
    `${room} was not joined (again)`,
    (room) => {
      const c = window.tetherDemo && window.tetherDemo.client;
      return !!c && c.state === 'open' && !!c.rooms.get(room) && c.rooms.get(room).subscribed && !c.rooms.get(room).hold;
    },
    room,
  );
}

async function showRoom(user, room) {
  await user.page.click(`.room-tab[data-tab="${room}"]`);
}

// Types `text` in the page's message field and sends it to `room`.
async function say(user, text, room = ROOM) {
  await showRoom(user, room);
  await user.page.fill('#text', text);
  await user.page.click('#send');
}

async function joinRoom(user, room = ROOM) {
  await user.page.fill('#room', room);
  await user.page.click('#join');
  await waitSubscribed(user, room);
}

// Each of `texts` exactly once in `list`, in this order.
function onceInOrder(list, texts) {
  const seen = list.map((m) => m.text);
  for (const t of texts) {
    const n = seen.filter((s) => s === t).length;
    if (n !== 1) return `'${t}' shown ${n} times`;
  }
  const positions = texts.map((t) => seen.indexOf(t));
  for (let i = 1; i < positions.length; i++) {
    if (positions[i] < positions[i - 1]) return `'${texts[i]}' shown before '${texts[i - 1]}'`;
  }
  return null;
}

// Within each epoch: offsets present and increasing by one (no duplicate, no gap after the
// first message the page got in that epoch).
function offsetsConsecutive(list) {
  const last = new Map();
  for (const m of list) {
    if (m.offset === null || !m.epoch) return `'${m.text}' has no offset/epoch (is history on for the room?)`;
    const before = last.get(m.epoch);
    if (before !== undefined && m.offset !== before + 1) {
      return `'${m.text}' has offset ${m.offset} after ${before} in epoch ${m.epoch}`;
    }
    last.set(m.epoch, m.offset);
  }
  return null;
}

function describe(list) {
  return list.map((m) => `${m.text}@${m.epoch ? m.epoch.slice(0, 6) : '-'}:${m.offset}`).join(', ');
}

async function main() {
  const started = Date.now();
  const requests = [];
  const pageErrors = [];
  let browser;
  try {
    await startServer();
    browser = await chromium.launch(launchOptions());
    const version = browser.version();
    const alice = await openUser(browser, 'alice', requests, pageErrors);
    const bob = await openUser(browser, 'bob', requests, pageErrors);
    ok(`chromium ${version}: the page at ${BASE}/ loaded twice and connected as alice and bob`);
    const foreign = requests.filter((u) => !u.startsWith(`${BASE}/`) && !u.startsWith(`ws://127.0.0.1:${port}/`));
    check(foreign.length === 0, 'the page and its scripts come from the gateway only (no CDN)', foreign.join(', '));
    const loaded = new Set(requests.map((u) => new URL(u).pathname));
    for (const file of ['/', '/app.js', '/tether-client.js', '/style.css']) {
      if (!loaded.has(file)) throw new Error(`the page did not load ${file} (it loaded ${[...loaded].join(', ')})`);
    }

    // 2. Join and exchange.
    await joinRoom(alice);
    await joinRoom(bob);
    ok(`both joined ${ROOM}`);
    const first = [];
    for (let i = 1; i <= 3; i++) {
      for (const [user, other] of [
        [alice, bob],
        [bob, alice],
      ]) {
        const text = `${user.name} ${i}`;
        await say(user, text);
        await waitMessage(user, text);
        await waitMessage(other, text);
        first.push(text);
      }
    }
    for (const user of [alice, bob]) {
      const list = await messages(user);
      const bad = onceInOrder(list, first) || offsetsConsecutive(list) || (list.length !== first.length && 'extra messages');
      check(!bad, `${user.name} shows the ${first.length} messages exchanged, each once, in order, consecutive offsets`, `${bad}; shown: ${describe(list)}`);
    }
    await waitFor(
      alice,
      'presence did not list alice and bob',
      () => ['alice', 'bob'].every((u) => document.querySelector(`#presence li.member[data-user="${u}"]`)),
    );
    ok(`alice's page lists alice and bob as present in ${ROOM} (presence)`);
    const senders = (await messages(bob)).map((m) => m.from).join(',');
    check(senders === 'alice,bob,alice,bob,alice,bob', 'each message shows its sender (the server-set `from`)', senders);

    // 3. A direct message.
    await showRoom(alice, '@direct');
    await alice.page.fill('#to', 'bob');
    await alice.page.fill('#text', 'psst bob');
    await alice.page.click('#send');
    await waitMessage(bob, 'psst bob', '@direct');
    const direct = await messages(bob, '@direct');
    check(
      direct.length === 1 && direct[0].from === 'alice',
      'a send to bob shows once on bob\'s page, from alice',
      describe(direct),
    );
    const aliceDirect = await alice.page.$$eval('ul.log[data-room="@direct"] > li.msg.direct', (l) => l.length);
    check(aliceDirect === 0, 'alice did not receive her send to bob', `${aliceDirect} received`);

    // 4. Recovery without a restart.
    await bob.page.click('#toggle'); // Go offline
    await waitState(bob, 'closed');
    const missed = [];
    for (let i = 4; i <= 6; i++) {
      const text = `alice ${i} (bob offline)`;
      await say(alice, text);
      await waitMessage(alice, text);
      missed.push(text);
    }
    await sleep(300);
    const whileOffline = await messages(bob);
    check(whileOffline.length === first.length, `bob, offline, did not get the ${missed.length} new messages yet`, describe(whileOffline));
    await bob.page.click('#toggle'); // Reconnect
    await waitState(bob, 'open');
    await waitMessage(bob, missed[missed.length - 1]);
    await waitSubscribed(bob);
    const beforeRestart = [...first, ...missed];
    {
      const a = await messages(alice);
      const b = await messages(bob);
      const bad = onceInOrder(b, beforeRestart) || offsetsConsecutive(b) || (b.length !== beforeRestart.length && 'extra messages');
      check(!bad, `after reconnecting, bob shows the ${missed.length} missed messages once, in order (recover)`, `${bad}; shown: ${describe(b)}`);
      check(describe(a) === describe(b), 'alice and bob show the same messages with the same offsets', `alice: ${describe(a)} / bob: ${describe(b)}`);
      const recovered = await notices(bob, 'recovered');
      check(
        recovered.some((t) => t.includes(`recovered ${missed.length} `)),
        `bob's page says it recovered ${missed.length} missed messages`,
        recovered.join(' | ') || 'no notice',
      );
    }

    // 4a. The same after a connection lost without "Go offline": the browser goes offline
    // (new connections fail) and bob's socket is closed under the page; the client retries
    // with backoff by itself and recovers once the browser is back online.
    await bob.context.setOffline(true);
    await bob.page.evaluate(() => window.tetherDemo.client.ws.close());
    await waitFor(bob, 'did not show it is reconnecting', () => document.querySelector('#state').dataset.state === 'reconnecting');
    const dropped = [];
    for (let i = 1; i <= 2; i++) {
      const text = `alice ${i} (bob's connection lost)`;
      await say(alice, text);
      await waitMessage(alice, text);
      dropped.push(text);
    }
    const retrying = await bob.page.textContent('#state-detail');
    await bob.context.setOffline(false);
    await waitMessage(bob, dropped[dropped.length - 1]);
    await waitSubscribed(bob);
    beforeRestart.push(...dropped);
    {
      const a = await messages(alice);
      const b = await messages(bob);
      const bad = onceInOrder(b, beforeRestart) || offsetsConsecutive(b) || (b.length !== beforeRestart.length && 'extra messages');
      check(
        !bad && describe(a) === describe(b),
        `connection lost: bob's page retried by itself ("${retrying}"), reconnected and recovered the ${dropped.length} missed messages once, in order`,
        `${bad}; alice: ${describe(a)} / bob: ${describe(b)}`,
      );
      const recovered = await notices(bob, 'recovered');
      check(
        recovered.length === 2 && recovered[1].includes(`recovered ${dropped.length} `),
        `bob's page says it recovered ${dropped.length} missed messages`,
        recovered.join(' | '),
      );
    }

    // 4b. Recovery beyond what a room keeps (history_size = 2): the page says so and marks
    // the hole instead of showing the kept messages as if nothing were missing.
    const SMALL = 'small:demo';
    await joinRoom(alice, SMALL);
    await joinRoom(bob, SMALL);
    await bob.page.click('#toggle');
    await waitState(bob, 'closed');
    const burst = ['s1', 's2', 's3', 's4'];
    for (const t of burst) {
      await say(alice, t, SMALL);
      await waitMessage(alice, t, SMALL);
    }
    await bob.page.click('#toggle');
    await waitState(bob, 'open');
    await waitSubscribed(bob, SMALL);
    await waitMessage(bob, 's4', SMALL);
    {
      const b = await messages(bob, SMALL);
      const resets = await notices(bob, 'reset', SMALL);
      const gaps = await notices(bob, 'gap', SMALL);
      check(
        b.map((m) => m.text).join(',') === 's3,s4' &&
          resets.length === 1 &&
          resets[0].startsWith('You missed more than this room keeps') &&
          gaps.length === 1 &&
          gaps[0].startsWith('2 message'),
        'a room keeping 2 messages: bob, back after 4 were published, is shown the 2 kept once, ' +
          `a "you missed more than this room keeps" notice and "${gaps[0]}"`,
        `shown: ${describe(b)}; resets: ${resets.length}; gaps: ${gaps.join(' | ')}`,
      );
    }
    const oldEpoch = (await messages(alice))[0].epoch;

    // 5. A server restart.
    await killServer();
    await waitFor(alice, 'did not notice the server was gone', () => document.querySelector('#state').dataset.state !== 'open');
    await waitFor(bob, 'did not notice the server was gone', () => document.querySelector('#state').dataset.state !== 'open');
    ok('server killed (SIGKILL): both pages show they are not connected');
    const offline = 'alice 7 (sent while the server was down)';
    await say(alice, offline);
    await sleep(500);
    await startServer();
    await waitState(alice, 'open');
    await waitState(bob, 'open');
    ok('server restarted on the same port: both pages reconnected by themselves');
    await waitSubscribed(alice);
    await waitSubscribed(bob);
    await waitMessage(alice, offline);
    ok('the message alice sent while the server was down went out after her reconnect');
    const after = [];
    for (const [user, other] of [
      [alice, bob],
      [bob, alice],
    ]) {
      const text = `${user.name} 8 (after the restart)`;
      await say(user, text);
      await waitMessage(user, text);
      await waitMessage(other, text);
      after.push(text);
    }
    const lists = {};
    for (const user of [alice, bob]) {
      const list = await messages(user);
      lists[user.name] = list;
      const old = list.filter((m) => m.epoch === oldEpoch);
      let bad = onceInOrder(old, beforeRestart) || (old.length !== beforeRestart.length && 'extra messages');
      check(!bad, `${user.name}: the ${beforeRestart.length} messages from before the restart still shown once each, in order`, `${bad}; shown: ${describe(list)}`);
      const fresh = list.filter((m) => m.epoch !== oldEpoch);
      const epochs = new Set(fresh.map((m) => m.epoch));
      check(epochs.size === 1, `${user.name}: the messages after the restart are in one new epoch`, describe(fresh));
      const resets = await notices(user, 'reset');
      check(
        resets.length === 1 && resets[0].startsWith("The server lost this room's history"),
        `${user.name}'s page says the server lost the room's history (one notice)`,
        resets.join(' | ') || 'no notice',
      );
      bad = offsetsConsecutive(list);
      check(!bad, `${user.name}: no duplicate and no unexplained gap (consecutive offsets within each epoch)`, `${bad}; shown: ${describe(list)}`);
      // Whoever re-joined first, the recover's error names the new epoch and the page loads
      // what the room keeps of it (`history`): alice's message from the downtime included.
      const expectedAfter = [offline, ...after];
      bad = onceInOrder(fresh, expectedAfter) || (fresh.length !== expectedAfter.length && 'extra messages');
      check(
        !bad,
        `${user.name}: the ${expectedAfter.length} messages since the restart (the one sent while it was down included) shown once each, in order`,
        `${bad}; shown: ${describe(fresh)}`,
      );
    }
    const fresh = (l) => describe(l.filter((m) => m.epoch !== oldEpoch));
    check(fresh(lists.alice) === fresh(lists.bob), 'alice and bob show the post-restart messages with the same offsets', `${fresh(lists.alice)} / ${fresh(lists.bob)}`);

    // 6. A newcomer gets what the room keeps (its history since the restart).
    const carol = await openUser(browser, 'carol', requests, pageErrors);
    await joinRoom(carol);
    const carolList = await messages(carol);
    check(
      fresh(carolList) === fresh(lists.alice) && carolList.length === after.length + 1,
      `carol, joining after the restart, is shown the room's history (${carolList.length} messages) once, in order`,
      `carol: ${describe(carolList)} / alice: ${fresh(lists.alice)}`,
    );
    check(pageErrors.length === 0, 'no uncaught error in the pages', pageErrors.join(' | '));
    const secs = ((Date.now() - started) / 1000).toFixed(1);
    console.log(`demo chromium ${version} -> ${BASE}/: all checks passed (${secs} s)`);
    return 0;
  } catch (e) {
    const message = String(e && e.message ? e.message : e);
    console.log(`demo chromium -> ${BASE}/: FAILED: ${message}`);
    if (pageErrors.length) console.log(`  uncaught errors in the pages: ${pageErrors.join(' | ')}`);
    if (serverLog) console.log(`  the server's stderr (last 2000 bytes):\n${serverLog.slice(-2000)}`);
    return 1;
  } finally {
    if (browser) await browser.close().catch(() => {});
    await killServer();
  }
}

main().then((code) => process.exit(code));
