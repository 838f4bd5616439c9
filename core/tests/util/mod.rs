//! An in-memory client/server pair driven with virtual time (after quinn-proto's test
//! `Pair`): no sockets, no sleeps.
#![allow(dead_code)]

use std::time::{Duration, Instant};
use tether_core::{
    Accept, ClientRequest, CloseReason, Config, Connection, Event, Message, Transmit,
};

/// One endpoint plus what it has produced so far.
pub struct Side {
    pub conn: Connection,
    pub events: Vec<Event>,
    /// Whether this side handed out `Transmit::Shutdown`.
    pub shut_down: bool,
    /// Everything this side wrote, for inspection.
    pub wire: Vec<u8>,
}

impl Side {
    fn new(conn: Connection) -> Self {
        Self {
            conn,
            events: Vec::new(),
            shut_down: false,
            wire: Vec::new(),
        }
    }

    /// Takes every event; checks that `has_events` tells the truth before each one.
    pub fn drain_events(&mut self) {
        loop {
            let expected = self.conn.has_events();
            let event = self.conn.poll_event();
            assert_eq!(
                expected,
                event.is_some(),
                "has_events disagrees with poll_event"
            );
            match event {
                Some(e) => self.events.push(e),
                None => break,
            }
        }
    }

    /// Takes the bytes this side wants to write (and notes a shutdown).
    pub fn take_output(&mut self) -> Vec<u8> {
        let mut buf = Vec::new();
        while let Some(t) = self.conn.poll_transmit(&mut buf) {
            if t == Transmit::Shutdown {
                self.shut_down = true;
            }
        }
        self.wire.extend_from_slice(&buf);
        buf
    }

    pub fn messages(&self) -> Vec<Message> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Message(m) => Some(m.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn closed(&self) -> Option<&CloseReason> {
        self.events.iter().find_map(|e| match e {
            Event::Closed(r) => Some(r),
            _ => None,
        })
    }
}

/// A client and a server joined by in-memory pipes, with a virtual clock.
pub struct Pair {
    pub now: Instant,
    pub client: Side,
    pub server: Side,
    /// Deliver at most this many bytes per `handle_input` call (tests chunking).
    pub chunk: usize,
    /// When a side shuts down, the other sees EOF.
    pub propagate_eof: bool,
    client_eof_sent: bool,
    server_eof_sent: bool,
}

pub fn seed() -> [u8; 32] {
    [42; 32]
}

impl Pair {
    /// A pair that has not started the handshake.
    pub fn new(client_cfg: Config, server_cfg: Config) -> Self {
        let now = Instant::now();
        let request = ClientRequest::new("ws://localhost:9001/chat?room=1").unwrap();
        Self::with_request(client_cfg, server_cfg, &request, now)
    }

    pub fn with_request(
        client_cfg: Config,
        server_cfg: Config,
        request: &ClientRequest,
        now: Instant,
    ) -> Self {
        Self {
            now,
            client: Side::new(Connection::client(client_cfg, request, seed(), now).unwrap()),
            server: Side::new(Connection::server(server_cfg, now)),
            chunk: usize::MAX,
            propagate_eof: true,
            client_eof_sent: false,
            server_eof_sent: false,
        }
    }

    /// An open pair with default configs.
    pub fn open() -> Self {
        Self::open_with(Config::default(), Config::default())
    }

    /// An open pair (server accepts with `Accept::new()`).
    pub fn open_with(client_cfg: Config, server_cfg: Config) -> Self {
        let mut pair = Self::new(client_cfg, server_cfg);
        pair.drive();
        assert!(
            matches!(pair.server.events.first(), Some(Event::Request(_))),
            "{:?}",
            pair.server.events
        );
        pair.server.events.clear();
        pair.server.conn.accept(pair.now, Accept::new()).unwrap();
        pair.drive();
        assert!(
            matches!(pair.client.events.first(), Some(Event::Connected(_))),
            "{:?}",
            pair.client.events
        );
        pair.client.events.clear();
        pair
    }

    fn feed(now: Instant, to: &mut Side, bytes: &[u8], chunk: usize) {
        for piece in bytes.chunks(chunk.max(1)) {
            to.conn.handle_input(now, piece);
        }
    }

    /// Moves bytes both ways until nothing moves.
    pub fn drive(&mut self) {
        loop {
            let c2s = self.client.take_output();
            let s2c = self.server.take_output();
            let mut moved = !c2s.is_empty() || !s2c.is_empty();
            Self::feed(self.now, &mut self.server, &c2s, self.chunk);
            Self::feed(self.now, &mut self.client, &s2c, self.chunk);
            if self.propagate_eof {
                if self.client.shut_down && !self.client_eof_sent {
                    self.client_eof_sent = true;
                    self.server.conn.handle_eof(self.now);
                    moved = true;
                }
                if self.server.shut_down && !self.server_eof_sent {
                    self.server_eof_sent = true;
                    self.client.conn.handle_eof(self.now);
                    moved = true;
                }
            }
            self.client.drain_events();
            self.server.drain_events();
            if !moved {
                break;
            }
        }
    }

    /// Advances virtual time by `d`, firing every timer due on the way, in order.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let next = [
                self.client.conn.poll_timeout(),
                self.server.conn.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.client.conn.handle_timeout(self.now);
                    self.server.conn.handle_timeout(self.now);
                    for side in [&self.client, &self.server] {
                        if let Some(t) = side.conn.poll_timeout() {
                            assert!(t > self.now, "deadline in the past after handle_timeout");
                        }
                    }
                    self.drive();
                }
                _ => break,
            }
        }
        self.now = end;
    }
}

/// Encodes a client frame (masked) by hand.
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let header = tether_core::FrameHeader {
        fin,
        rsv1: false,
        rsv2: false,
        rsv3: false,
        opcode: tether_core::OpCode::from_u8(opcode).unwrap(),
        mask: None,
        payload_len: 0,
    };
    tether_core::encode_frame(header, Some([0x11, 0x22, 0x33, 0x44]), payload, &mut out);
    out
}

/// Encodes a server frame (unmasked) by hand.
pub fn server_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let header = tether_core::FrameHeader {
        fin,
        rsv1: false,
        rsv2: false,
        rsv3: false,
        opcode: tether_core::OpCode::from_u8(opcode).unwrap(),
        mask: None,
        payload_len: 0,
    };
    tether_core::encode_frame(header, None, payload, &mut out);
    out
}

/// Decodes every frame in `wire` (as written by one side).
pub fn frames(wire: &[u8]) -> Vec<tether_core::Frame> {
    let mut buf = bytes::BytesMut::from(wire);
    let mut out = Vec::new();
    while let Ok(Some((h, n))) = tether_core::FrameHeader::decode(&buf) {
        let len = h.payload_len as usize;
        if buf.len() < n + len {
            break;
        }
        let _ = buf.split_to(n);
        let mut payload = buf.split_to(len);
        if let Some(k) = h.mask {
            tether_core::apply_mask(&mut payload, k, 0);
        }
        out.push(tether_core::Frame {
            header: h,
            payload: payload.freeze(),
        });
    }
    out
}

/// Strips the HTTP head from what a side wrote.
pub fn after_head(wire: &[u8]) -> &[u8] {
    let pos = wire
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP head");
    &wire[pos + 4..]
}
