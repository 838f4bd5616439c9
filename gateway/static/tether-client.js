// TetherClient: a small browser client of the tether gateway's protocol (PROTOCOL.md).
// Copy this file as it is: no dependency, no build step (an ES module).
//
//   import { TetherClient } from './tether-client.js';
//   const client = new TetherClient('ws://127.0.0.1:8080/ws', { userId: 'alice' });
//   client.on('message', (m) => console.log(m.room, m.from, m.content));
//   client.connect();
//   await client.join('chat:lobby');
//   await client.publish('chat:lobby', { text: 'hello' });
//   await client.send('bob', { text: 'psst' });
//
// What it does for you:
// - reconnects after a lost connection, with exponential backoff and jitter;
// - re-joins its rooms after a reconnect: with `recover` from the last (offset, epoch) it saw
//   in a room with history, so that the messages published meanwhile arrive, once and in
//   order. When recovery is impossible (the server restarted and lost the history: a new
//   epoch) it says so with a `reset` event, then loads what the room keeps of its new
//   epoch (`history`), so that nothing published since the restart is missed;
// - on a first join of a room with history, shows what the room keeps (`history`);
// - shows each room message once: a message whose (epoch, offset) it has already seen is
//   dropped;
// - queues requests made while disconnected and sends them after the reconnect, once the
//   rooms are joined again.
//
// Events (client.on(name, fn)):
//   state    (state, detail)   'connecting' | 'open' | 'reconnecting' | 'closed'
//   message  (envelope)        a room message (publish), each once, in offset order;
//                              envelope.gap = n when n messages before it are missing
//   direct   (envelope)        a message sent to this user (send, or a broadcast)
//   joined   (room, how)       the room is (re)subscribed: how = 'join' | 'recover' | 'reset'
//   recovered(room, count)     a recover brought `count` missed messages
//   reset    (room, info)      recovery was impossible; info = { reason, oldEpoch, newEpoch }
//   error    (envelope)        an error envelope that answers no request of ours
//   envelope (envelope)        every envelope received (for debugging)
'use strict';

export class TetherClient {
  /**
   * @param {string} url  the gateway's WebSocket URL, e.g. `ws://host/ws`
   * @param {object} options
   *   userId   dev mode: the identity, sent as ?user_id= (needs auth.dev_user_id = true)
   *   token    a JWT, sent in Sec-WebSocket-Protocol as `bearer.<jwt>` next to tether.v1
   *   getToken async () => JWT: called before every connection attempt (tokens expire, and
   *            a restarted server may no longer accept the last one); a rejection counts
   *            as a failed attempt
   *   minDelay, maxDelay   reconnect backoff bounds in ms (250, 10000)
   *   pingEvery, pongWithin  keep-alive in ms (20000, 10000)
   */
  constructor(url, options = {}) {
    this.url = url;
    this.userId = options.userId || '';
    this.token = options.token || '';
    this.getToken = options.getToken || null;
    this.fetchingToken = false;
    this.minDelay = options.minDelay ?? 250;
    this.maxDelay = options.maxDelay ?? 10000;
    this.pingEvery = options.pingEvery ?? 20000;
    this.pongWithin = options.pongWithin ?? 10000;
    this.state = 'closed';
    this.ws = null;
    this.attempt = 0; // reconnect attempts since the last successful open
    this.wanted = false; // whether the user wants to be connected
    this.nextId = 1;
    this.pending = new Map(); // id -> { resolve, reject, envelope }
    this.outbox = []; // requests made while not connected
    // room -> { position: {offset, epoch} | null, subscribed: bool }
    this.rooms = new Map();
    this.handlers = new Map();
    this.timers = { reconnect: null, ping: null, pong: null };
  }

  /** Registers `fn` for the event `name` (see the list above); returns a function that removes it. */
  on(name, fn) {
    if (!this.handlers.has(name)) this.handlers.set(name, new Set());
    this.handlers.get(name).add(fn);
    return () => this.handlers.get(name).delete(fn);
  }

  emit(name, ...args) {
    for (const fn of this.handlers.get(name) || []) {
      try {
        fn(...args);
      } catch (e) {
        console.error(`TetherClient: a '${name}' handler threw`, e);
      }
    }
  }

  setState(state, detail = '') {
    this.state = state;
    this.emit('state', state, detail);
  }

  /** Connects (and keeps reconnecting until `disconnect()`). */
  connect() {
    this.wanted = true;
    clearTimeout(this.timers.reconnect);
    if (this.ws || this.fetchingToken) return;
    this.open();
  }

  /** Closes the connection and stops reconnecting. Rooms and their positions are kept, so
   * that `connect()` recovers what was published meanwhile. */
  disconnect() {
    this.wanted = false;
    clearTimeout(this.timers.reconnect);
    if (this.ws) {
      const ws = this.ws;
      this.dropped(); // at once: the close handshake may take a while
      ws.close(1000, 'bye');
    }
    this.setState('closed', 'disconnected');
  }

  open() {
    if (!this.getToken) {
      this.openSocket();
      return;
    }
    this.fetchingToken = true;
    this.setState('connecting', this.attempt ? `attempt ${this.attempt + 1}` : '');
    Promise.resolve()
      .then(() => this.getToken())
      .then(
        (token) => {
          this.fetchingToken = false;
          if (!this.wanted || this.ws) return;
          if (token) this.token = token;
          this.openSocket();
        },
        () => {
          this.fetchingToken = false;
          if (!this.wanted || this.ws) return;
          this.scheduleReconnect('could not connect');
        },
      );
  }

  openSocket() {
    let url = this.url;
    if (this.userId && !this.token) {
      url += (url.includes('?') ? '&' : '?') + 'user_id=' + encodeURIComponent(this.userId);
    }
    const protocols = this.token ? ['tether.v1', 'bearer.' + this.token] : ['tether.v1'];
    this.setState('connecting', this.attempt ? `attempt ${this.attempt + 1}` : '');
    const ws = new WebSocket(url, protocols);
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.attempt = 0;
      this.setState('open');
      this.keepAlive();
      // The rooms first, then what was queued meanwhile (so that a message queued while
      // offline goes to a room this connection is in again).
      this.resubscribe().then(() => {
        if (this.ws === ws) this.flushOutbox();
      });
    };
    ws.onmessage = (event) => this.receive(event.data);
    ws.onclose = (event) => {
      if (this.ws !== ws) return; // already handled (disconnect, ping timeout)
      this.dropped();
      const why = opened ? `closed ${event.code}${event.reason ? ' ' + event.reason : ''}` : 'could not connect';
      this.scheduleReconnect(why);
    };
  }

  /** Forgets the current socket: in-flight requests fail or are redone after the reconnect. */
  dropped() {
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.onopen = ws.onmessage = ws.onclose = null;
    clearInterval(this.timers.ping);
    clearTimeout(this.timers.pong);
    for (const room of this.rooms.values()) room.subscribed = false;
    for (const [id, request] of this.pending) {
      this.pending.delete(id);
      const type = request.envelope.type;
      const error = new Error(`connection lost before the ${type} was answered`);
      // Joins and recovers are redone by resubscribe() after the reconnect. A publish or
      // send without its ack may or may not have been delivered: resending could show it
      // twice, so the caller is told instead.
      error.retried = type === 'join' || type === 'recover';
      request.reject(error);
    }
  }

  scheduleReconnect(why) {
    if (!this.wanted) {
      this.setState('closed', why);
      return;
    }
    // Exponential backoff with "equal jitter": half the delay fixed, half random, so that
    // clients dropped together by a server restart do not all come back at once.
    const ceiling = Math.min(this.maxDelay, this.minDelay * 2 ** this.attempt);
    const delay = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
    this.attempt++;
    this.setState('reconnecting', `${why}; retry in ${(delay / 1000).toFixed(1)} s`);
    this.timers.reconnect = setTimeout(() => this.open(), delay);
  }

  keepAlive() {
    clearInterval(this.timers.ping);
    this.timers.ping = setInterval(() => {
      const ws = this.ws;
      if (!ws) return;
      this.request({ type: 'ping' }, { now: true }).then(
        () => clearTimeout(this.timers.pong),
        () => {},
      );
      clearTimeout(this.timers.pong);
      this.timers.pong = setTimeout(() => {
        if (this.ws !== ws) return;
        // No pong: the connection is dead even if the browser has not noticed.
        this.dropped();
        ws.close();
        this.scheduleReconnect('no pong');
      }, this.pongWithin);
    }, this.pingEvery);
  }

  /** Sends a request envelope with a fresh `id`; resolves with its ack (or pong), rejects
   * with its error. Made while disconnected (or while earlier ones wait), it waits for the
   * next connection, after the rooms are joined again. `now`: the client's own joins,
   * recovers and pings, which go first. */
  request(envelope, { now = false } = {}) {
    const id = this.nextId++;
    const full = { ...envelope, id };
    return new Promise((resolve, reject) => {
      const entry = { resolve, reject, envelope: full };
      if (this.ws && this.ws.readyState === WebSocket.OPEN && (now || this.outbox.length === 0)) {
        this.pending.set(id, entry);
        this.ws.send(JSON.stringify(full));
      } else {
        this.outbox.push(entry);
      }
    });
  }

  flushOutbox() {
    const queued = this.outbox;
    this.outbox = [];
    for (const entry of queued) {
      this.pending.set(entry.envelope.id, entry);
      this.ws.send(JSON.stringify(entry.envelope));
    }
  }

  /** Joins `room`; it is re-joined (recovered) after every reconnect until `leave(room)`. */
  join(room) {
    if (!this.rooms.has(room)) this.rooms.set(room, { position: null, subscribed: false });
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
      return Promise.resolve(); // resubscribe() joins it on the next connection
    }
    return this.subscribe(room);
  }

  leave(room) {
    this.rooms.delete(room);
    return this.request({ type: 'leave', room });
  }

  publish(room, content) {
    return this.request({ type: 'publish', room, content });
  }

  /** Sends `content` to every connection of the user `to`. */
  send(to, content) {
    return this.request({ type: 'send', to, content });
  }

  /** The last (offset, epoch) seen in `room`, or null. */
  position(room) {
    const r = this.rooms.get(room);
    return r && r.position ? { ...r.position } : null;
  }

  /** Joins (or recovers) every room again; resolves when each has its answer. */
  resubscribe() {
    return Promise.allSettled([...this.rooms.keys()].map((room) => this.subscribe(room)));
  }

  /** Who is in `room`: the server's answer's content, `{connections, users: [{user, meta}]}`. */
  async presence(room) {
    const answer = await this.request({ type: 'presence', room });
    return answer.content || {};
  }

  /** Join, or recover from the last position when there is one. */
  async subscribe(room) {
    const r = this.rooms.get(room);
    if (!r) return;
    // Until the room's answer is in, its messages wait in `r.hold`; then they are shown with
    // what the history gave, in offset order, each once.
    r.hold = [];
    if (!r.position) {
      let ack;
      try {
        ack = await this.request({ type: 'join', room }, { now: true });
      } catch (e) {
        this.release(r, []);
        throw e;
      }
      r.subscribed = true;
      this.emit('joined', room, 'join');
      // A room with history answers with its position: show what it keeps.
      if (typeof ack.epoch === 'string') await this.reload(room, r, ack.epoch);
      else this.release(r, []);
      this.startFrom(r, ack);
      return;
    }
    const since = r.position;
    try {
      await this.request({ type: 'recover', room, offset: since.offset, epoch: since.epoch }, { now: true });
      r.subscribed = true;
      this.emit('joined', room, 'recover');
      this.emit('recovered', room, this.release(r, []));
    } catch (e) {
      const error = e.envelope;
      const code = error && error.content && error.content.code;
      if (code !== 'not_found') {
        this.release(r, []);
        if (error) this.emit('error', error);
        throw e;
      }
      // The server cannot give what we missed (it restarted and lost the history, or the
      // messages are no longer kept). We are in the room anyway; the error tells the room's
      // latest position: show what the room keeps of that epoch.
      r.subscribed = true;
      this.emit('reset', room, {
        reason: error.epoch && error.epoch !== since.epoch ? 'new epoch: the server lost the history' : 'the missed messages are no longer kept',
        oldEpoch: since.epoch,
        newEpoch: error.epoch || null,
      });
      // In a new epoch, start over; in the same one, what was shown stays shown (and a
      // message after a hole says how many are missing).
      if (error.epoch && error.epoch !== since.epoch) r.position = null;
      this.emit('joined', room, 'reset');
      if (typeof error.epoch === 'string') await this.reload(room, r, error.epoch);
      else this.release(r, []);
      this.startFrom(r, error);
    }
  }

  /** Without a message seen yet, the position an answer gives is where a later recover
   * starts (a room with history tells it in the join's ack and in a recover's error). */
  startFrom(r, answer) {
    if (!r.position && typeof answer.offset === 'number' && typeof answer.epoch === 'string') {
      r.position = { offset: answer.offset, epoch: answer.epoch };
    }
  }

  /** Shows what `room` keeps of `epoch` (a `history` request), then what was held. */
  async reload(room, r, epoch) {
    let kept = [];
    try {
      const answer = await this.request({ type: 'history', room, epoch }, { now: true });
      if (Array.isArray(answer.content)) kept = answer.content;
    } catch {
      // No history access, or the epoch changed again: show what comes from now on.
    }
    this.release(r, kept);
  }

  /** Ends the hold: shows `kept` and the held messages, in offset order, each once;
   * returns how many were shown. */
  release(r, kept) {
    const all = [...kept, ...(r.hold || [])];
    r.hold = null;
    if (all.every((m) => typeof m.offset === 'number')) all.sort((a, b) => a.offset - b.offset);
    let shown = 0;
    for (const m of all) if (this.receiveRoomMessage(m)) shown++;
    return shown;
  }

  receive(data) {
    let envelope;
    try {
      envelope = JSON.parse(data);
    } catch {
      return; // not an envelope (a raw room): nothing for this client
    }
    this.emit('envelope', envelope);
    const { type, id } = envelope;
    const answer = ['ack', 'pong', 'error', 'history', 'presence'].includes(type);
    if (answer && id !== undefined && this.pending.has(id)) {
      const request = this.pending.get(id);
      this.pending.delete(id);
      if (type === 'error') {
        const c = envelope.content || {};
        const error = new Error(`${c.code || 'error'}: ${c.message || ''}`);
        error.envelope = envelope;
        request.reject(error);
      } else {
        request.resolve(envelope);
      }
      return;
    }
    switch (type) {
      case 'publish':
        this.receiveRoomMessage(envelope);
        break;
      case 'send':
        this.emit('direct', envelope);
        break;
      case 'error':
        this.emit('error', envelope);
        break;
      default:
        break;
    }
  }

  /** Shows each room message once, in order: drops what was already seen (a recover may
   * overlap with the history), holds what comes while the room is being (re)joined, and
   * notices a new epoch. Returns whether it was shown. */
  receiveRoomMessage(envelope) {
    const r = this.rooms.get(envelope.room);
    if (!r) return false; // left meanwhile
    const { offset, epoch } = envelope;
    if (r.hold) {
      r.hold.push(envelope);
      return false;
    }
    if (typeof offset === 'number' && typeof epoch === 'string') {
      const p = r.position;
      if (p && p.epoch === epoch && offset <= p.offset) return false; // a duplicate
      if (p && p.epoch !== epoch) {
        this.emit('reset', envelope.room, { reason: 'new epoch', oldEpoch: p.epoch, newEpoch: epoch });
      } else if (p && offset > p.offset + 1) {
        envelope.gap = offset - p.offset - 1; // no longer kept by the room: say so, not hide it
      }
      r.position = { offset, epoch };
    }
    this.emit('message', envelope);
    return true;
  }
}
