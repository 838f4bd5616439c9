//! Target `deflate`: inflating arbitrary compressed payloads through the real message path:
//! a client `Connection` opened with permessage-deflate (RFC 7692) is fed server frames
//! with RSV1 set whose payload is the fuzz input, possibly fragmented, and sometimes plain
//! messages between them.
//!
//! The oracle is a reference inflater (flate2 used directly, RFC 7692 §7.2.2: the payload
//! plus `00 00 ff ff`, a new stream after a BFINAL block inside the payload, nothing after
//! one that ends in the tail, no tail after one that ends exactly with the payload).
//! Invariants: a message the reference inflates within
//! `max_message_size` (and, for text, to valid UTF-8) is delivered exactly; one that is too
//! large closes with 1009, invalid deflate data with 1002, invalid UTF-8 with 1007 (the
//! first violation met may win when there are several); no message above
//! `max_message_size` is ever delivered; the close code on the wire is the one reported;
//! the buffers stay within the limit; no panic.

use super::enc::Enc;
use super::wire::OutputChecker;
use arbitrary::{Arbitrary, Unstructured};
use bytes::BytesMut;
use flate2::{Compression, Decompress, FlushDecompress, Status};
use std::io::Write as _;
use std::time::Instant;
use tether_core::{
    CloseReason, Config, Connection, DeflateConfig, DeflateParams, Event, FrameHeader, Message,
    OpCode, Role, encode_frame,
};

/// The `00 00 ff ff` tail removed by the sender (RFC 7692 §7.2.1).
pub const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// One message from the server.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct DeflateMessage {
    /// Text (else binary).
    pub text: bool,
    /// RSV1 set: the payload is compressed (else a plain message).
    pub compressed: bool,
    /// Fragment lengths (modulo 512, plus one).
    pub splits: Vec<u16>,
    /// The frame payload (compressed data when `compressed`).
    pub payload: Vec<u8>,
}

/// The agreed parameters, the limit and the messages.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct DeflateInput {
    /// `server_no_context_takeover`: the client's inflater resets after every message.
    pub server_no_context_takeover: bool,
    /// `client_no_context_takeover`.
    pub client_no_context_takeover: bool,
    /// `server_max_window_bits` is `8 + value % 8`.
    pub server_max_window_bits: u8,
    /// `max_message_size`: 16, 1000, 65536 or 1 MiB (`value % 4`).
    pub limit: u8,
    /// `Config::stream_fragments`.
    pub stream_fragments: bool,
    /// The messages, in order.
    pub messages: Vec<DeflateMessage>,
}

/// What happened.
#[derive(Debug, Default)]
pub struct DeflateOutcome {
    /// Messages delivered whole.
    pub delivered: usize,
    /// The close code, if the connection failed.
    pub close_code: Option<u16>,
}

/// Writes `input` in the format [`check_bytes`] reads.
pub fn encode(input: &DeflateInput) -> Vec<u8> {
    let mut e = Enc::new();
    e.bool(input.server_no_context_takeover)
        .bool(input.client_no_context_takeover)
        .u8(input.server_max_window_bits)
        .u8(input.limit)
        .bool(input.stream_fragments);
    e.list(&input.messages, |e, m| {
        e.bool(m.text)
            .bool(m.compressed)
            .u16s(&m.splits)
            .bytes(&m.payload);
    });
    e.finish()
}

/// Decodes fuzzer bytes and runs [`check`].
pub fn check_bytes(data: &[u8]) -> DeflateOutcome {
    match DeflateInput::arbitrary_take_rest(Unstructured::new(data)) {
        Ok(input) => check(&input),
        Err(_) => DeflateOutcome::default(),
    }
}

/// The message size limit for a selector.
pub fn limit_for(selector: u8) -> usize {
    [16, 1000, 65536, 1 << 20][usize::from(selector % 4)]
}

/// Compresses `data` as a fresh raw deflate stream ended by a sync flush, without the tail
/// (RFC 7692 §7.2.1).
pub fn compress(data: &[u8], level: u32) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), Compression::new(level));
    e.write_all(data).expect("in memory");
    e.flush().expect("in memory");
    let mut out = e.get_ref().clone();
    if out.ends_with(&TAIL) {
        out.truncate(out.len() - TAIL.len());
    }
    out
}

/// How the reference inflater ended a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefEnd {
    /// Inflated within the limit.
    Ok,
    /// More than the limit would come out.
    TooLarge,
    /// Not valid deflate data.
    Corrupt,
    /// More than the limit came out just before invalid data.
    TooLargeOrCorrupt,
}

/// The reference inflater: flate2's raw inflate with a 15-bit window.
pub struct Reference {
    state: Decompress,
    no_context_takeover: bool,
    /// The last feed ended a deflate stream exactly at the end of its input.
    ended_at_end: bool,
}

impl Reference {
    /// A reference for a peer that resets its context after every message when
    /// `no_context_takeover`.
    pub fn new(no_context_takeover: bool) -> Self {
        Self {
            state: Decompress::new(false),
            no_context_takeover,
            ended_at_end: false,
        }
    }

    /// Inflates one message's payload (RFC 7692 §7.2.2), producing at most `limit + 1` bytes.
    pub fn message(&mut self, payload: &[u8], limit: usize) -> (Vec<u8>, RefEnd) {
        let mut out = Vec::new();
        let mut end = RefEnd::Ok;
        if !payload.is_empty() {
            self.ended_at_end = false;
            end = self.feed(payload, true, &mut out, limit);
            // A stream that ended exactly at the end of the payload leaves nothing for the
            // tail to complete: the tail is not fed (it would start a stream of its own).
            if end == RefEnd::Ok && !self.ended_at_end {
                end = self.feed(&TAIL, false, &mut out, limit);
            }
        }
        if self.no_context_takeover || end != RefEnd::Ok {
            self.state.reset(false);
        }
        (out, end)
    }

    fn feed(&mut self, input: &[u8], restart: bool, out: &mut Vec<u8>, limit: usize) -> RefEnd {
        let mut pos = 0;
        let mut buf = [0u8; 4096];
        loop {
            if pos == input.len() {
                return RefEnd::Ok;
            }
            let room = (limit + 1 - out.len()).min(buf.len());
            let (in0, out0) = (self.state.total_in(), self.state.total_out());
            let result =
                self.state
                    .decompress(&input[pos..], &mut buf[..room], FlushDecompress::None);
            let consumed = (self.state.total_in() - in0) as usize;
            let produced = (self.state.total_out() - out0) as usize;
            // What came out before an error counts too: a streaming receiver may have
            // delivered it as fragments.
            out.extend_from_slice(&buf[..produced]);
            let Ok(status) = result else {
                // The same call produced more than the limit and met the error: a receiver
                // may see either first.
                return if out.len() > limit {
                    RefEnd::TooLargeOrCorrupt
                } else {
                    RefEnd::Corrupt
                };
            };
            if out.len() > limit {
                return RefEnd::TooLarge;
            }
            pos += consumed;
            if status == Status::StreamEnd {
                // A BFINAL block ended the stream: inside the payload a new one starts;
                // in the tail, the rest is after the end of the data.
                self.state.reset(false);
                self.ended_at_end = pos == input.len();
                if !restart {
                    return RefEnd::Ok;
                }
                continue;
            }
            if consumed == 0 && produced == 0 {
                return RefEnd::Corrupt;
            }
        }
    }
}

/// Whether `bytes` contains a UTF-8 error that no continuation could repair.
pub fn definitely_invalid_utf8(bytes: &[u8]) -> bool {
    match std::str::from_utf8(bytes) {
        Ok(_) => false,
        Err(e) => e.error_len().is_some(),
    }
}

/// The frames of one message, as the server sends them (unmasked).
pub fn message_frames(m: &DeflateMessage) -> Vec<Vec<u8>> {
    let pieces = if m.payload.is_empty() {
        vec![&m.payload[..]]
    } else {
        super::chunks(&m.payload, &m.splits, 512)
    };
    let n = pieces.len();
    pieces
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let header = FrameHeader {
                fin: i + 1 == n,
                rsv1: i == 0 && m.compressed,
                ..FrameHeader::new(
                    match (i, m.text) {
                        (0, true) => OpCode::Text,
                        (0, false) => OpCode::Binary,
                        _ => OpCode::Continuation,
                    },
                    0,
                )
            };
            let mut out = Vec::new();
            encode_frame(header, None, p, &mut out);
            out
        })
        .collect()
}

/// Feeds the messages to a client and checks the invariants of the module docs.
pub fn check(input: &DeflateInput) -> DeflateOutcome {
    let now = Instant::now();
    let limit = limit_for(input.limit);
    let mut cfg = Config::default();
    cfg.deflate = DeflateConfig::enabled();
    cfg.stream_fragments = input.stream_fragments;
    cfg.limits.max_message_size = limit;
    cfg.limits.max_buffered_input = 2 * limit + 64;
    let params = DeflateParams {
        server_no_context_takeover: input.server_no_context_takeover,
        client_no_context_takeover: input.client_no_context_takeover,
        server_max_window_bits: 8 + input.server_max_window_bits % 8,
        client_max_window_bits: 15,
    };
    let mut conn = Connection::open(cfg, Role::Client, Some(params), [5; 32], now);
    let mut output = OutputChecker::new(Role::Client, true);
    let mut reference = Reference::new(input.server_no_context_takeover);
    let mut outcome = DeflateOutcome::default();
    for m in &input.messages {
        let (expected, end) = if m.compressed {
            reference.message(&m.payload, limit)
        } else if m.payload.len() > limit {
            (m.payload.clone(), RefEnd::TooLarge)
        } else {
            (m.payload.clone(), RefEnd::Ok)
        };
        let bad_utf8 = m.text && definitely_invalid_utf8(&expected);
        let valid = end == RefEnd::Ok && (!m.text || std::str::from_utf8(&expected).is_ok());
        let mut allowed = Vec::new();
        match end {
            RefEnd::Ok if !valid => allowed.push(1007),
            RefEnd::Ok => {}
            RefEnd::TooLarge => allowed.push(1009),
            RefEnd::Corrupt => allowed.push(1002),
            RefEnd::TooLargeOrCorrupt => allowed.extend([1009, 1002]),
        }
        if bad_utf8 && !allowed.contains(&1007) {
            allowed.push(1007);
        }
        let mut got = BytesMut::new();
        let mut whole = None;
        for frame in message_frames(m) {
            conn.handle_input(now, &frame);
            assert!(
                conn.buffer_capacity() <= limit + 2 * frame.len() + 16384,
                "buffers hold {} bytes with a limit of {limit}",
                conn.buffer_capacity()
            );
            assert!(conn.buffered_input() <= 2 * limit + 64 + frame.len());
            while let Some(event) = conn.poll_event() {
                assert!(outcome.close_code.is_none(), "event after the terminal one");
                match event {
                    Event::Message(msg) => {
                        assert!(whole.is_none(), "two messages for one");
                        assert!(msg.len() <= limit, "message above max_message_size");
                        let bytes = match msg {
                            Message::Text(t) => {
                                assert!(m.text, "binary delivered as text");
                                assert!(std::str::from_utf8(t.as_bytes()).is_ok());
                                t.into_bytes()
                            }
                            Message::Binary(b) => {
                                assert!(!m.text, "text delivered as binary");
                                b
                            }
                            other => panic!("unexpected {other:?}"),
                        };
                        whole = Some(bytes);
                    }
                    Event::Fragment(f) => {
                        got.extend_from_slice(&f.data);
                        assert!(got.len() <= limit, "fragments above max_message_size");
                        if f.last {
                            whole = Some(std::mem::take(&mut got).freeze());
                        }
                    }
                    Event::Closed(reason) => {
                        let code = reason.code().0;
                        assert!(
                            matches!(reason, CloseReason::ProtocolError { .. }),
                            "{reason:?}"
                        );
                        outcome.close_code = Some(code);
                    }
                    _ => {}
                }
            }
        }
        output.drain(&mut conn);
        if let Some(code) = outcome.close_code {
            assert!(
                allowed.contains(&code),
                "closed with {code}, expected one of {allowed:?} (reference: {end:?}, {} bytes)",
                expected.len()
            );
            assert_eq!(
                output.closes.last(),
                Some(&Some((code, String::new()))),
                "the close frame written carries the reported code"
            );
            assert!(whole.is_none(), "a failed message was delivered");
            assert!(
                expected.starts_with(&got),
                "fragments differ from the reference"
            );
            return outcome;
        }
        assert!(
            allowed.is_empty(),
            "delivered a message the reference refuses ({end:?}, utf8 bad: {bad_utf8})"
        );
        let whole = whole.expect("a valid message was not delivered");
        assert_eq!(
            &whole[..],
            &expected[..],
            "inflated message differs from the reference"
        );
        outcome.delivered += 1;
    }
    outcome
}
