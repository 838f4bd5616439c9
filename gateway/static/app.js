// The demo chat's page logic: the DOM around a TetherClient (tether-client.js does the
// protocol). Each room has a log <ul class="log" data-room="...">; each message is an
// <li class="msg"> with data-from, data-epoch and data-offset; what the client tells about
// recovery is an <li class="notice" data-kind="...">.
import { TetherClient } from './tether-client.js';

const $ = (selector) => document.querySelector(selector);
const DIRECT = '@direct';

let client = null;
let current = null; // the room (or DIRECT) shown
let everOpened = false;
const logs = new Map(); // room -> <ul>
const members = new Map(); // room -> the last presence answer ({connections, users}) or {error}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else if (k.startsWith('data-')) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const child of children) node.append(child);
  return node;
}

function text(content) {
  if (content && typeof content === 'object' && typeof content.text === 'string') return content.text;
  return JSON.stringify(content);
}

function time(ts) {
  return el('time', {}, ts ? new Date(ts).toLocaleTimeString() : '');
}

function logOf(room) {
  if (!logs.has(room)) {
    const ul = el('ul', { class: 'log', 'data-room': room, hidden: true });
    $('#logs').append(ul);
    logs.set(room, ul);
  }
  return logs.get(room);
}

function append(room, item) {
  const ul = logOf(room);
  const atBottom = ul.scrollHeight - ul.scrollTop - ul.clientHeight < 40;
  ul.append(item);
  if (atBottom) ul.scrollTop = ul.scrollHeight;
}

function notice(room, kind, message) {
  append(room, el('li', { class: `notice ${kind}`, 'data-kind': kind }, message));
}

function show(room) {
  current = room;
  for (const [name, ul] of logs) ul.hidden = name !== room;
  logOf(room).hidden = false;
  for (const tab of document.querySelectorAll('.room-tab')) {
    tab.classList.toggle('current', tab.dataset.tab === room);
  }
  const direct = room === DIRECT;
  $('#target').value = direct ? 'user' : 'room';
  $('#target').querySelector('option[value=room]').disabled = direct;
  $('#to').hidden = !direct;
  $('#text').placeholder = direct ? 'message to the user' : `message to ${room}`;
  renderPresence();
  refreshPresence();
}

function addRoomTab(room) {
  if (document.querySelector(`#rooms li[data-room="${CSS.escape(room)}"]`)) return;
  const tab = el('button', { type: 'button', class: 'room-tab', 'data-tab': room }, room);
  tab.addEventListener('click', () => show(room));
  const leave = el('button', { type: 'button', class: 'leave', title: `leave ${room}` }, '×');
  leave.addEventListener('click', async () => {
    li.remove();
    logOf(room).remove();
    logs.delete(room);
    members.delete(room);
    if (current === room) show(DIRECT);
    try {
      await client.leave(room);
    } catch (e) {
      console.warn('leave', room, e);
    }
  });
  const li = el('li', { 'data-room': room }, tab, leave);
  $('#rooms').append(li);
}

function renderPresence() {
  const ul = $('#presence');
  ul.replaceChildren();
  const info = members.get(current);
  if (!info) {
    ul.append(el('li', { class: 'muted' }, current === DIRECT ? 'pick a room' : 'asking…'));
    return;
  }
  if (info.error) {
    ul.append(el('li', { class: 'muted' }, info.error));
    return;
  }
  for (const u of info.users || []) ul.append(el('li', { class: 'member', 'data-user': u.user }, u.user));
  const anonymous = (info.connections || 0) - (info.users || []).length;
  if (anonymous > 0) ul.append(el('li', { class: 'muted' }, `+ ${anonymous} more connection(s)`));
}

// Presence is asked for (the `presence` request), for the room shown, every few seconds.
async function refreshPresence() {
  const room = current;
  if (!client || client.state !== 'open' || !room || room === DIRECT || !client.rooms.has(room)) return;
  try {
    members.set(room, await client.presence(room));
  } catch (e) {
    members.set(room, { error: e.message });
  }
  if (room === current) renderPresence();
}
setInterval(refreshPresence, 3000);

function setState(state, detail) {
  const badge = $('#state');
  badge.className = `state ${state}`;
  badge.dataset.state = state;
  badge.textContent = { connecting: 'connecting…', open: 'connected', reconnecting: 'reconnecting', closed: 'disconnected' }[state] || state;
  $('#state-detail').textContent = detail || '';
  $('#toggle').textContent = client && client.wanted ? 'Go offline' : 'Reconnect';
}

// A refused upgrade is not visible to the page (the browser only says "error"): ask the
// same URL over plain HTTP, whose refusal carries the JSON {code, message}.
async function explainRefusal(name) {
  try {
    const response = await fetch(`/ws?user_id=${encodeURIComponent(name)}`);
    const body = await response.json().catch(() => null);
    if (response.status === 401 || response.status === 403 || response.status === 429 || response.status === 503) {
      const hint =
        body && body.code === 'user_id_disabled'
          ? ' Start the gateway with auth.dev_user_id = true (TETHER_AUTH__DEV_USER_ID=true) in dev mode.'
          : '';
      const error = $('#login-error');
      error.textContent = `The gateway refused the connection: ${body ? `${body.code}: ${body.message}` : response.status}.${hint}`;
      error.hidden = false;
      if (response.status === 401 || response.status === 403) {
        // Retrying will not help: stop, and let the name be changed.
        client.disconnect();
        $('#chat').hidden = true;
        $('#toggle').hidden = true;
        $('#login-form').hidden = false;
      }
    }
  } catch {
    // the server is down: the state badge says so
  }
}

// A token for `name` from the gateway's dev mode; '' when it gives none (404: a secret is
// configured). Throws when the gateway cannot be reached.
async function devToken(name) {
  const response = await fetch(`/dev/token?user=${encodeURIComponent(name)}`);
  if (!response.ok) return '';
  const body = await response.json();
  return body.token || '';
}

async function start(name) {
  if (client) client.disconnect();
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  // Dev mode: a token for the name from the gateway (GET /dev/token, signed with a secret
  // of the process). Where the gateway gives none (a configured secret), ?user_id= (with
  // auth.dev_user_id = true).
  // (Unreachable now: assume it gives tokens; they are asked for at every attempt anyway.)
  const token = await devToken(name).catch(() => 'unknown yet');
  // A new token before every connection attempt: a restarted gateway has a new secret.
  const options = token ? { getToken: () => devToken(name) } : { userId: name };
  client = new TetherClient(`${scheme}://${location.host}/ws`, options);
  window.tetherDemo = { client };
  $('#me').textContent = `as ${name}`;
  $('#login').hidden = true;
  $('#chat').hidden = false;
  $('#toggle').hidden = false;
  logOf(DIRECT);
  show(DIRECT);

  client.on('state', (state, detail) => {
    setState(state, detail);
    if (state === 'open') {
      everOpened = true;
      $('#login-error').hidden = true;
    }
    if (state === 'reconnecting' && !everOpened && client.attempt === 1) {
      $('#login').hidden = false;
      $('#login-form').hidden = true;
      explainRefusal(name);
    }
    if (state === 'open') $('#login').hidden = true;
  });
  client.on('message', (m) => {
    if (m.gap) notice(m.room, 'gap', `${m.gap} message(s) missing before this one`);
    append(
      m.room,
      el(
        'li',
        { class: m.from === name ? 'msg mine' : 'msg', 'data-from': m.from || '', 'data-epoch': m.epoch ?? '', 'data-offset': m.offset ?? '' },
        el('b', { class: 'from' }, m.from || 'server'),
        ' ',
        el('span', { class: 'text' }, text(m.content)),
        ' ',
        time(m.ts),
      ),
    );
  });
  client.on('direct', (m) => {
    append(
      DIRECT,
      el('li', { class: 'msg direct', 'data-from': m.from || '', 'data-to': m.to || '' },
        el('b', { class: 'from' }, m.from || 'server'), m.to ? ' → you ' : ' → everyone ',
        el('span', { class: 'text' }, text(m.content)), ' ', time(m.ts)),
    );
  });
  client.on('joined', (room, how) => {
    if (how === 'join') notice(room, 'joined', `joined ${room}`);
  });
  client.on('recovered', (room, count) => {
    notice(room, 'recovered', `reconnected: recovered ${count} missed message(s)`);
  });
  client.on('reset', (room, info) => {
    const restarted = info.newEpoch && info.newEpoch !== info.oldEpoch;
    notice(
      room,
      'reset',
      restarted
        ? "The server lost this room's history (a restart: new epoch). Anything published " +
            'after your last message here and before the restart is gone; the messages since ' +
            'the restart follow.'
        : 'You missed more than this room keeps: what it still keeps follows, the hole is marked.',
    );
  });
  client.on('error', (m) => {
    const c = m.content || {};
    notice(current || DIRECT, 'error', `error ${c.code || ''}: ${c.message || ''}`);
  });
  client.connect();
}

async function joinRoom(room) {
  addRoomTab(room);
  logOf(room);
  show(room);
  try {
    await client.join(room);
    refreshPresence();
  } catch (e) {
    if (!e.retried) notice(room, 'error', `could not join: ${e.message}`);
  }
}

async function sendMessage() {
  const input = $('#text');
  const message = input.value;
  if (!message) return;
  input.value = '';
  const content = { text: message };
  if ($('#target').value === 'user') {
    const to = $('#to').value.trim();
    if (!to) return;
    append(DIRECT, el('li', { class: 'msg sent', 'data-to': to }, 'you → ', el('b', {}, to), ' ', el('span', { class: 'text' }, message)));
    client.send(to, content).catch((e) => notice(DIRECT, 'error', `not sent to ${to}: ${e.message}`));
  } else {
    const room = current;
    // The message shows when the server delivers it back (with its offset), like everyone's.
    client.publish(room, content).catch((e) => notice(room, 'error', `"${message}" not confirmed: ${e.message}`));
  }
}

$('#login-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const name = $('#name').value.trim();
  if (!name) return;
  localStorage.setItem('tether-demo-name', name);
  start(name);
});
$('#join-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const room = $('#room').value.trim();
  if (room) joinRoom(room);
});
$('#send-form').addEventListener('submit', (e) => {
  e.preventDefault();
  sendMessage();
});
$('#target').addEventListener('change', () => {
  $('#to').hidden = $('#target').value !== 'user';
});
$('#toggle').addEventListener('click', () => {
  if (client.wanted) client.disconnect();
  else client.connect();
});
document.querySelector('.room-tab[data-tab="@direct"]').addEventListener('click', () => show(DIRECT));

$('#name').value = new URLSearchParams(location.search).get('name') || localStorage.getItem('tether-demo-name') || '';
