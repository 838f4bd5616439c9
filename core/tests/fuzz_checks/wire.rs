//! Independent readers of what crosses the wire, used as oracles: a minimal HTTP head
//! reader (written from RFC 7230 §3, sharing no code with the core or httparse), the
//! `Sec-WebSocket-Accept` computation, and a checker of the frames an endpoint writes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::BytesMut;
use sha1::{Digest, Sha1};
use tether_core::{FrameDecoder, FrameHeader, OpCode, Role};

/// An HTTP head: the start line and the header fields (names lowercased, values trimmed).
#[derive(Debug)]
pub struct Head {
    /// The request or status line.
    pub start: Vec<u8>,
    /// `(lowercased name, value without surrounding whitespace)`.
    pub headers: Vec<(String, Vec<u8>)>,
}

/// The length of the head at the front of `data` (up to and including the first empty
/// line, `\r\n\r\n`), if complete.
pub fn head_len(data: &[u8]) -> Option<usize> {
    data.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
}

/// Reads a head leniently: lines end in LF (an optional CR before it is dropped), leading
/// empty lines are skipped, a field line is `name ":" value`. Returns `None` when a field
/// line has no colon or an empty name.
pub fn parse_head(head: &[u8]) -> Option<Head> {
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .skip_while(|l| l.is_empty());
    let start = lines.next()?.to_vec();
    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            break;
        }
        let colon = line.iter().position(|&b| b == b':')?;
        let name = std::str::from_utf8(&line[..colon]).ok()?.trim();
        if name.is_empty() {
            return None;
        }
        let value = line[colon + 1..].trim_ascii().to_vec();
        headers.push((name.to_ascii_lowercase(), value));
    }
    Some(Head { start, headers })
}

impl Head {
    /// Every value of the header `name` (lowercase).
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// How many times the header `name` appears.
    pub fn count(&self, name: &str) -> usize {
        self.values(name).count()
    }

    /// The comma-separated elements of every `name` header, trimmed, lowercased, empty
    /// elements dropped (RFC 7230 §7).
    pub fn tokens(&self, name: &str) -> Vec<String> {
        self.values(name)
            .flat_map(|v| v.split(|&b| b == b','))
            .map(|t| String::from_utf8_lossy(t.trim_ascii()).to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .collect()
    }

    /// The start line split at single spaces.
    pub fn start_parts(&self) -> Vec<&[u8]> {
        self.start.split(|&b| b == b' ').collect()
    }
}

/// `Sec-WebSocket-Accept` for `key` (RFC 6455 §4.2.2), computed here independently.
pub fn accept_for(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    BASE64.encode(sha.finalize())
}

/// Whether `key` is base64 for exactly 16 bytes (RFC 6455 §4.1 point 7).
pub fn key_is_valid(key: &[u8]) -> bool {
    BASE64.decode(key).is_ok_and(|k| k.len() == 16)
}

/// Close codes an endpoint may put in a close frame (RFC 6455 §7.4.1, §7.4.2, IANA
/// registry): 1000-1003, 1007-1014, 3000-4999. Written here, not taken from the core.
pub fn close_code_is_sendable(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Reads, frame by frame, what one endpoint writes, and checks every frame: it decodes
/// under the peer's rules, RSV1 only on the first frame of a message and only with
/// deflate, valid close bodies with sendable codes, nothing after a close frame.
pub struct OutputChecker {
    decoder: FrameDecoder,
    buf: BytesMut,
    deflate: bool,
    in_message: bool,
    /// The close frames written: `None` for an empty body, else `(code, reason)`.
    pub closes: Vec<Option<(u16, String)>>,
    /// Data frames written (text, binary, continuation).
    pub data_frames: usize,
    /// Whether `Transmit::Shutdown` was handed out.
    pub shut_down: bool,
}

impl OutputChecker {
    /// A checker for the frames written by an endpoint of `role`.
    pub fn new(role: Role, deflate: bool) -> Self {
        let peer = match role {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        };
        Self {
            decoder: FrameDecoder::new(peer, u64::MAX >> 1).allow_rsv1(deflate),
            buf: BytesMut::new(),
            deflate,
            in_message: false,
            closes: Vec::new(),
            data_frames: 0,
            shut_down: false,
        }
    }

    /// Drains `conn.poll_transmit` and checks what it wrote.
    pub fn drain(&mut self, conn: &mut tether_core::Connection) {
        let mut out = Vec::new();
        while let Some(t) = conn.poll_transmit(&mut out) {
            match t {
                tether_core::Transmit::Data => {
                    assert!(!self.shut_down, "bytes written after Transmit::Shutdown");
                }
                tether_core::Transmit::Shutdown => {
                    assert!(!self.shut_down, "Transmit::Shutdown handed out twice");
                    self.shut_down = true;
                }
            }
        }
        self.feed(&out);
    }

    /// Checks more written bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        loop {
            let frame = match self.decoder.decode(&mut self.buf) {
                Ok(Some(f)) => f,
                Ok(None) => return,
                Err(e) => panic!("the endpoint wrote an invalid frame: {e}"),
            };
            assert!(
                self.closes.is_empty(),
                "a frame was written after a close frame (RFC 6455 §5.5.1): {:?}",
                frame.header
            );
            let h = frame.header;
            assert!(!h.rsv1 || self.deflate, "RSV1 without deflate");
            match h.opcode {
                OpCode::Text | OpCode::Binary => {
                    assert!(!self.in_message, "new message inside a fragmented one");
                    self.in_message = !h.fin;
                    self.data_frames += 1;
                }
                OpCode::Continuation => {
                    assert!(self.in_message, "continuation without a message");
                    assert!(!h.rsv1, "RSV1 on a continuation frame (RFC 7692 §6.1)");
                    self.in_message = !h.fin;
                    self.data_frames += 1;
                }
                OpCode::Close => {
                    assert!(!h.rsv1, "RSV1 on a control frame");
                    let p = &frame.payload;
                    assert_ne!(p.len(), 1, "close frame with a 1-byte body (§5.5.1)");
                    if p.len() >= 2 {
                        let code = u16::from_be_bytes([p[0], p[1]]);
                        assert!(
                            close_code_is_sendable(code),
                            "the endpoint wrote close code {code} (§7.4)"
                        );
                        let reason = std::str::from_utf8(&p[2..])
                            .expect("close reason is UTF-8 (§5.5.1)")
                            .to_string();
                        self.closes.push(Some((code, reason)));
                    } else {
                        self.closes.push(None);
                    }
                }
                OpCode::Ping | OpCode::Pong => {
                    assert!(!h.rsv1, "RSV1 on a control frame");
                }
            }
        }
    }

    /// Whether a partial frame is left over.
    pub fn has_partial(&self) -> bool {
        !self.buf.is_empty()
    }
}

/// Decodes a frame header by the bit layout of RFC 6455 §5.2, written independently of the
/// core: `Ok(None)` when more bytes are needed, `Err(())` for what §5.2 and §5.5 forbid
/// regardless of role (reserved opcode, top bit of a 64-bit length, long or fragmented
/// control frame).
pub fn reference_header(b: &[u8]) -> Result<Option<(FrameHeader, usize)>, ()> {
    if b.len() < 2 {
        return Ok(None);
    }
    let op = b[0] & 0x0F;
    let opcode = match op {
        0 => OpCode::Continuation,
        1 => OpCode::Text,
        2 => OpCode::Binary,
        8 => OpCode::Close,
        9 => OpCode::Ping,
        10 => OpCode::Pong,
        _ => return Err(()),
    };
    let fin = b[0] >> 7 == 1;
    let len7 = u64::from(b[1] & 0x7F);
    let control = op >= 8;
    if control && (!fin || len7 > 125) {
        return Err(());
    }
    let (len, mut pos) = match len7 {
        126 => {
            if b.len() < 4 {
                return Ok(None);
            }
            ((u64::from(b[2]) << 8) | u64::from(b[3]), 4)
        }
        127 => {
            if b.len() < 10 {
                return Ok(None);
            }
            let mut n = 0u64;
            for &x in &b[2..10] {
                n = (n << 8) | u64::from(x);
            }
            if n >= 1 << 63 {
                return Err(());
            }
            (n, 10)
        }
        n => (n, 2),
    };
    let mask = if b[1] & 0x80 != 0 {
        if b.len() < pos + 4 {
            return Ok(None);
        }
        let m = [b[pos], b[pos + 1], b[pos + 2], b[pos + 3]];
        pos += 4;
        Some(m)
    } else {
        None
    };
    Ok(Some((
        FrameHeader {
            fin,
            rsv1: b[0] & 0x40 != 0,
            rsv2: b[0] & 0x20 != 0,
            rsv3: b[0] & 0x10 != 0,
            opcode,
            mask,
            payload_len: len,
        },
        pos,
    )))
}
