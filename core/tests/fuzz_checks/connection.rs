//! Target `connection`: a client or server `Connection`, opened directly or through a real
//! handshake, driven by an arbitrary sequence of operations (peer bytes and frames, EOF,
//! time, sends, pings, closes, polls).
//!
//! Invariants, after every step: no event after the terminal one, and exactly one terminal
//! event once the stream ends; `buffered_input` never grows above `max_buffered_input` plus
//! the last non-empty chunk read, or, with permessage-deflate, plus what that chunk can
//! inflate to (at most `max_message_size`: the limit is checked on decoded bytes); after `handle_timeout(now)` no deadline at or before `now`; commands
//! fail exactly when the API says they should; received messages within
//! `max_message_size` and text valid UTF-8; everything written decodes as frames under the
//! peer's rules, every close code written is one §7.4 allows, nothing follows a close frame
//! or the shutdown.

use super::enc::Enc;
use super::wire::{OutputChecker, close_code_is_sendable};
use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use std::time::{Duration, Instant};
use tether_core::{
    Accept, ClientRequest, CloseCode, Config, Connection, DeflateConfig, DeflateParams, Event,
    FrameHeader, Limits, Message, OpCode, PreparedFrame, Role, State, encode_frame,
};

/// The seed of every client.
pub const SEED: [u8; 32] = [9; 32];

/// permessage-deflate parameters (window bits are `8 + value % 8`).
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeflateChoice {
    /// `server_no_context_takeover`.
    pub server_no_context_takeover: bool,
    /// `client_no_context_takeover`.
    pub client_no_context_takeover: bool,
    /// `server_max_window_bits`.
    pub server_max_window_bits: u8,
    /// `client_max_window_bits`.
    pub client_max_window_bits: u8,
}

/// Size limits.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitsChoice {
    /// The defaults (16 MiB).
    Default,
    /// Frames of 1 KiB, messages of 4 KiB, 8 KiB buffered.
    Small,
    /// Frames of 64 bytes, messages of 200, 150 buffered (less than a message: a
    /// configuration mistake that must still be safe).
    Tiny,
}

impl LimitsChoice {
    fn index(self) -> u32 {
        self as u32
    }

    /// The limits.
    pub fn limits(self) -> Limits {
        let mut l = Limits::default();
        match self {
            Self::Default => {}
            Self::Small => {
                l.max_frame_size = 1024;
                l.max_message_size = 4096;
                l.max_buffered_input = 8192 + 64;
            }
            Self::Tiny => {
                l.max_frame_size = 64;
                l.max_message_size = 200;
                l.max_buffered_input = 150;
            }
        }
        l
    }
}

/// A frame as the peer would send it. `flags`: bit 0 clears FIN, bits 1-3 set RSV1-3, bit 4
/// gets the masking wrong for the direction, bit 5 compresses the payload (and sets RSV1),
/// bit 6 makes the payload valid UTF-8 (lossy).
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct PeerFrame {
    /// See the type docs.
    pub flags: u8,
    /// The opcode (low 4 bits).
    pub opcode: u8,
    /// The payload.
    pub payload: Vec<u8>,
}

/// One step.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Bytes from the peer, as one read.
    Raw(Vec<u8>),
    /// A frame from the peer, as one read.
    Frame(PeerFrame),
    /// End of stream.
    Eof,
    /// Time passes (`value * 10` ms), then `handle_timeout`.
    Advance(u16),
    /// Time jumps to the next deadline, then `handle_timeout`.
    FireTimer,
    /// `send` (or `send_uncompressed`) a text (lossy UTF-8) or binary message.
    Send {
        /// Text or binary.
        text: bool,
        /// Use `send` rather than `send_uncompressed`.
        compress: bool,
        /// The payload.
        data: Vec<u8>,
    },
    /// `ping`.
    Ping(Vec<u8>),
    /// `send(Message::Pong)`.
    Pong(Vec<u8>),
    /// `close` with a code and a (lossy UTF-8) reason.
    Close {
        /// The code, any value.
        code: u16,
        /// The reason.
        reason: Vec<u8>,
    },
    /// Take up to this many events.
    PollEvents(u8),
    /// Drain `poll_transmit`.
    Transmit,
    /// `send_prepared`.
    Prepared {
        /// Text or binary.
        text: bool,
        /// Also prepare a compressed copy.
        compressed: bool,
        /// The payload.
        data: Vec<u8>,
    },
}

/// The whole run.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct ConnInput {
    /// Test a server (else a client).
    pub server: bool,
    /// Go through a real handshake with an in-memory peer (else `Connection::open`).
    pub handshake: bool,
    /// Negotiate permessage-deflate with these parameters.
    pub deflate: Option<DeflateChoice>,
    /// Size limits.
    pub limits: LimitsChoice,
    /// `Config::stream_fragments`.
    pub stream_fragments: bool,
    /// `Config::max_outgoing_frame_size` (0: none).
    pub max_outgoing_frame: u8,
    /// Turn on a 30 s idle timeout.
    pub idle: bool,
    /// The steps.
    pub ops: Vec<Op>,
}

/// What happened.
#[derive(Debug, Default)]
pub struct ConnOutcome {
    /// Messages (or last fragments) received.
    pub messages: usize,
    /// Whether the connection opened (always, unless a handshake failed).
    pub opened: bool,
    /// The close codes written.
    pub closes_written: Vec<Option<u16>>,
    /// The code of the terminal event.
    pub close_code: Option<u16>,
}

/// Writes `input` in the format [`check_bytes`] reads.
pub fn encode(input: &ConnInput) -> Vec<u8> {
    let mut e = Enc::new();
    e.bool(input.server).bool(input.handshake);
    match input.deflate {
        None => {
            e.bool(false);
        }
        Some(d) => {
            e.bool(true)
                .bool(d.server_no_context_takeover)
                .bool(d.client_no_context_takeover)
                .u8(d.server_max_window_bits)
                .u8(d.client_max_window_bits);
        }
    }
    e.tag(input.limits.index(), 3)
        .bool(input.stream_fragments)
        .u8(input.max_outgoing_frame)
        .bool(input.idle);
    e.list(&input.ops, encode_op);
    e.finish()
}

fn encode_op(e: &mut Enc, op: &Op) {
    const N: u32 = 12;
    match op {
        Op::Raw(b) => {
            e.tag(0, N).bytes(b);
        }
        Op::Frame(f) => {
            e.tag(1, N).u8(f.flags).u8(f.opcode).bytes(&f.payload);
        }
        Op::Eof => {
            e.tag(2, N);
        }
        Op::Advance(v) => {
            e.tag(3, N).u16(*v);
        }
        Op::FireTimer => {
            e.tag(4, N);
        }
        Op::Send {
            text,
            compress,
            data,
        } => {
            e.tag(5, N).bool(*text).bool(*compress).bytes(data);
        }
        Op::Ping(b) => {
            e.tag(6, N).bytes(b);
        }
        Op::Pong(b) => {
            e.tag(7, N).bytes(b);
        }
        Op::Close { code, reason } => {
            e.tag(8, N).u16(*code).bytes(reason);
        }
        Op::PollEvents(n) => {
            e.tag(9, N).u8(*n);
        }
        Op::Transmit => {
            e.tag(10, N);
        }
        Op::Prepared {
            text,
            compressed,
            data,
        } => {
            e.tag(11, N).bool(*text).bool(*compressed).bytes(data);
        }
    }
}

/// Decodes fuzzer bytes and runs [`check`].
pub fn check_bytes(data: &[u8]) -> ConnOutcome {
    match ConnInput::arbitrary_take_rest(Unstructured::new(data)) {
        Ok(input) => check(&input),
        Err(_) => ConnOutcome::default(),
    }
}

/// The configuration for `input`.
pub fn config(input: &ConnInput) -> Config {
    let mut cfg = Config::default();
    cfg.limits = input.limits.limits();
    cfg.stream_fragments = input.stream_fragments;
    cfg.max_outgoing_frame_size =
        (input.max_outgoing_frame > 0).then_some(usize::from(input.max_outgoing_frame));
    if input.idle {
        cfg.timeouts.idle = Some(Duration::from_secs(30));
    }
    if let Some(d) = input.deflate {
        cfg.deflate = DeflateConfig::enabled();
        cfg.deflate.server_no_context_takeover = d.server_no_context_takeover;
        cfg.deflate.client_no_context_takeover = d.client_no_context_takeover;
        cfg.deflate.server_max_window_bits = 8 + d.server_max_window_bits % 8;
        cfg.deflate.client_max_window_bits = 8 + d.client_max_window_bits % 8;
    }
    cfg
}

fn pump(from: &mut Connection, to: &mut Connection, now: Instant) {
    let mut buf = Vec::new();
    while from.poll_transmit(&mut buf).is_some() {}
    to.handle_input(now, &buf);
}

/// The connection under test, open, with its output so far drained.
fn start(input: &ConnInput, cfg: Config, now: Instant) -> Connection {
    let role = if input.server {
        Role::Server
    } else {
        Role::Client
    };
    if !input.handshake {
        let params = input.deflate.map(|d| DeflateParams {
            server_no_context_takeover: d.server_no_context_takeover,
            client_no_context_takeover: d.client_no_context_takeover,
            server_max_window_bits: 8 + d.server_max_window_bits % 8,
            client_max_window_bits: 8 + d.client_max_window_bits % 8,
        });
        return Connection::open(cfg, role, params, SEED, now);
    }
    let request = ClientRequest::new("ws://localhost/fuzz").expect("URL");
    let (mut client, mut server) = if input.server {
        let mut peer = Config::default();
        peer.deflate = cfg.deflate.clone();
        (
            Connection::client(peer, &request, SEED, now).expect("client"),
            Connection::server(cfg, now),
        )
    } else {
        let mut peer = Config::default();
        peer.deflate = cfg.deflate.clone();
        (
            Connection::client(cfg, &request, SEED, now).expect("client"),
            Connection::server(peer, now),
        )
    };
    pump(&mut client, &mut server, now);
    assert!(matches!(server.poll_event(), Some(Event::Request(_))));
    server.accept(now, Accept::new()).expect("accept");
    pump(&mut server, &mut client, now);
    assert!(matches!(client.poll_event(), Some(Event::Connected(_))));
    assert_eq!(
        client.deflate_params(),
        server.deflate_params(),
        "both ends agree on permessage-deflate"
    );
    let mut conn = if input.server { server } else { client };
    let mut sink = Vec::new();
    while conn.poll_transmit(&mut sink).is_some() {}
    conn
}

/// Compresses `data` as a fresh raw deflate stream ended by a sync flush, without the
/// `00 00 ff ff` tail (RFC 7692 §7.2.1), as a peer's compressor would.
pub fn peer_deflate(data: &[u8]) -> Vec<u8> {
    super::deflate::compress(data, 6)
}

/// Encodes a peer frame for a connection of `role` (the peer masks iff `role` is server).
pub fn peer_frame_bytes(f: &PeerFrame, role: Role, index: usize) -> Vec<u8> {
    let opcode = match OpCode::from_u8(f.opcode & 0x0F) {
        Some(op) => op,
        None => {
            // A reserved opcode: write the header by hand.
            let mut out = vec![0x80 | (f.opcode & 0x0F), 0];
            if role == Role::Server {
                out[1] |= 0x80;
                out.extend_from_slice(&[1, 2, 3, 4]);
            }
            return out;
        }
    };
    let mut payload = f.payload.clone();
    if f.flags & 0x40 != 0 {
        payload = String::from_utf8_lossy(&payload).into_owned().into_bytes();
    }
    let compress = f.flags & 0x20 != 0;
    if compress {
        payload = peer_deflate(&payload);
    }
    let header = FrameHeader {
        fin: f.flags & 1 == 0,
        rsv1: f.flags & 2 != 0 || compress,
        rsv2: f.flags & 4 != 0,
        rsv3: f.flags & 8 != 0,
        opcode,
        mask: None,
        payload_len: 0,
    };
    let wrong = f.flags & 0x10 != 0;
    let masked = (role == Role::Server) != wrong;
    let key = (index as u32).wrapping_mul(0x9E37_79B9).to_be_bytes();
    let mut out = Vec::new();
    encode_frame(header, masked.then_some(key), &payload, &mut out);
    out
}

struct Run {
    conn: Connection,
    now: Instant,
    limits: Limits,
    terminal: bool,
    output: OutputChecker,
    outcome: ConnOutcome,
    /// Bytes of the message being received as fragments.
    fragment_bytes: usize,
    last_chunk: usize,
    /// `buffered_input` after the previous step.
    last_buffered: usize,
}

impl Run {
    fn input(&mut self, data: &[u8]) {
        if !data.is_empty() {
            // An empty read changes nothing: the previous read's allowance still holds.
            self.last_chunk = data.len();
        }
        self.conn.handle_input(self.now, data);
    }

    fn timeout(&mut self) {
        self.conn.handle_timeout(self.now);
        if let Some(t) = self.conn.poll_timeout() {
            assert!(t > self.now, "deadline {t:?} not after now {:?}", self.now);
        }
    }

    fn poll(&mut self, max: usize) {
        for _ in 0..max {
            let Some(event) = self.conn.poll_event() else {
                return;
            };
            assert!(!self.terminal, "event after the terminal one: {event:?}");
            match event {
                Event::Message(m) => {
                    assert!(m.len() <= self.limits.max_message_size, "message too large");
                    if let Message::Text(t) = &m {
                        assert!(std::str::from_utf8(t.as_bytes()).is_ok(), "invalid text");
                    }
                    self.outcome.messages += 1;
                }
                Event::Fragment(f) => {
                    if f.first {
                        self.fragment_bytes = 0;
                    }
                    self.fragment_bytes += f.data.len();
                    assert!(
                        self.fragment_bytes <= self.limits.max_message_size,
                        "fragmented message too large"
                    );
                    if f.last {
                        self.outcome.messages += 1;
                    }
                }
                Event::Ping(p) | Event::Pong(p) => assert!(p.len() <= 125),
                Event::Closed(reason) => {
                    self.terminal = true;
                    self.outcome.close_code = Some(reason.code().0);
                }
                Event::Request(_) | Event::Connected(_) => {
                    panic!("handshake event on an open connection")
                }
                _ => {}
            }
        }
    }

    fn check_command(&self, result: Result<(), tether_core::SendError>, allowed: bool) {
        assert_eq!(
            result.is_ok(),
            allowed,
            "command result {result:?} in state {:?}",
            self.conn.state()
        );
    }

    fn after_step(&mut self) {
        let limit = self.limits.max_buffered_input;
        let slack = if self.conn.deflate_params().is_some() {
            self.last_chunk.max(self.limits.max_message_size)
        } else {
            self.last_chunk
        };
        let buffered = self.conn.buffered_input();
        let before = std::mem::replace(&mut self.last_buffered, buffered);
        // A step that takes no input in (ignored after a failure, an empty read, a send)
        // never adds to it: what an earlier read brought may stay until it is taken.
        assert!(
            buffered <= before || buffered <= limit + slack,
            "buffered_input {} above the limit {limit} + one read of {}",
            self.conn.buffered_input(),
            self.last_chunk
        );
    }
}

/// Runs the operations and checks the invariants of the module docs.
pub fn check(input: &ConnInput) -> ConnOutcome {
    let now = Instant::now();
    let cfg = config(input);
    let limits = cfg.limits;
    let conn = start(input, cfg, now);
    let role = conn.role();
    let deflate = conn.deflate_params().is_some();
    let mut run = Run {
        conn,
        now,
        limits,
        terminal: false,
        output: OutputChecker::new(role, deflate),
        outcome: ConnOutcome {
            opened: true,
            ..ConnOutcome::default()
        },
        fragment_bytes: 0,
        last_chunk: 0,
        last_buffered: 0,
    };
    for (i, op) in input.ops.iter().enumerate() {
        let open = run.conn.state() == State::Open;
        match op {
            Op::Raw(b) => run.input(b),
            Op::Frame(f) => {
                let bytes = peer_frame_bytes(f, role, i);
                run.input(&bytes);
            }
            Op::Eof => run.conn.handle_eof(run.now),
            Op::Advance(v) => {
                run.now += Duration::from_millis(u64::from(*v) * 10);
                run.timeout();
            }
            Op::FireTimer => {
                if let Some(t) = run.conn.poll_timeout() {
                    run.now = run.now.max(t);
                }
                run.timeout();
            }
            Op::Send {
                text,
                compress,
                data,
            } => {
                let msg = if *text {
                    Message::text(String::from_utf8_lossy(data).into_owned())
                } else {
                    Message::binary(data.clone())
                };
                let r = if *compress {
                    run.conn.send(run.now, msg)
                } else {
                    run.conn.send_uncompressed(run.now, msg)
                };
                run.check_command(r, open);
            }
            Op::Ping(b) => {
                let r = run.conn.ping(run.now, Bytes::copy_from_slice(b));
                run.check_command(r, open && b.len() <= 125);
            }
            Op::Pong(b) => {
                let r = run
                    .conn
                    .send(run.now, Message::Pong(Bytes::copy_from_slice(b)));
                run.check_command(r, open && b.len() <= 125);
            }
            Op::Close { code, reason } => {
                let reason = String::from_utf8_lossy(reason);
                let r = run.conn.close(run.now, CloseCode(*code), &reason);
                run.check_command(
                    r,
                    open && close_code_is_sendable(*code) && reason.len() <= 123,
                );
            }
            Op::PollEvents(n) => run.poll(usize::from(*n)),
            Op::Transmit => run.output.drain(&mut run.conn),
            Op::Prepared {
                text,
                compressed,
                data,
            } => {
                let msg = if *text {
                    Message::text(String::from_utf8_lossy(data).into_owned())
                } else {
                    Message::binary(data.clone())
                };
                let mut frame = PreparedFrame::new(&msg).expect("data message");
                if *compressed {
                    frame = frame.compressed(15, 6);
                }
                let r = run.conn.send_prepared(run.now, &frame);
                run.check_command(r, open);
            }
        }
        run.after_step();
    }
    // The end: take every event, close the stream, take the rest.
    run.poll(usize::MAX);
    run.output.drain(&mut run.conn);
    run.conn.handle_eof(run.now);
    run.poll(usize::MAX);
    run.after_step();
    run.output.drain(&mut run.conn);
    assert!(run.terminal, "no terminal event after the stream ended");
    assert_eq!(run.conn.state(), State::Closed);
    assert!(run.output.shut_down, "the transport was not shut down");
    assert!(run.conn.is_finished());
    assert!(run.conn.poll_event().is_none());
    run.outcome.closes_written = run
        .output
        .closes
        .iter()
        .map(|c| c.as_ref().map(|(code, _)| *code))
        .collect();
    run.outcome
}
