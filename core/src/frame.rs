//! The frame codec (RFC 6455 §5): stateless header decoding and encoding, and masking.
//!
//! This layer knows nothing about connections: it turns bytes into [`FrameHeader`]s and
//! [`Frame`]s and back. The connection uses it, and so can fuzzers, benchmarks and anyone
//! who wants to speak raw frames.

use bytes::{Buf, Bytes, BytesMut};
use std::fmt;

/// The longest possible frame header: 2 bytes, 8 bytes of extended length, 4 bytes of mask.
pub const MAX_HEADER_LEN: usize = 14;

/// Largest payload of a control frame (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A frame opcode (RFC 6455 §5.2). Reserved opcodes are rejected while decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// `0x0`: continues a fragmented message.
    Continuation,
    /// `0x1`: the first frame of a text message.
    Text,
    /// `0x2`: the first frame of a binary message.
    Binary,
    /// `0x8`: close.
    Close,
    /// `0x9`: ping.
    Ping,
    /// `0xA`: pong.
    Pong,
}

impl OpCode {
    /// Returns the opcode for a 4-bit value, or `None` for the reserved values (§5.2).
    pub fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            _ => return None,
        })
    }

    /// Returns the 4-bit wire value.
    pub fn as_u8(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }

    /// Returns true for close, ping and pong (§5.5).
    pub fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }
}

/// A violation of the frame format found while decoding (RFC 6455 §5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// An opcode from the reserved ranges `0x3..=0x7` or `0xB..=0xF`.
    ReservedOpcode(u8),
    /// The most significant bit of a 64-bit payload length was set.
    InvalidLength,
    /// A control frame carried more than 125 bytes.
    ControlFrameTooLong,
    /// A control frame had FIN clear.
    FragmentedControlFrame,
    /// An RSV bit was set that no negotiated extension defines.
    ReservedBits,
    /// A client sent an unmasked frame (a server must fail the connection, §5.1).
    UnmaskedFrame,
    /// A server sent a masked frame (a client must fail the connection, §5.1).
    MaskedFrame,
    /// The payload is larger than the configured maximum frame size.
    FrameTooLarge,
}

/// A close status code (RFC 6455 §7.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: normal closure.
    pub const NORMAL: Self = Self(1000);
    /// 1001: the endpoint is going away (server shutdown, page navigation).
    pub const GOING_AWAY: Self = Self(1001);
    /// 1002: protocol error.
    pub const PROTOCOL_ERROR: Self = Self(1002);
    /// 1003: a data type the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: Self = Self(1003);
    /// 1005: no status code was present (never sent on the wire).
    pub const NO_STATUS: Self = Self(1005);
    /// 1006: closed without a close frame (never sent on the wire).
    pub const ABNORMAL: Self = Self(1006);
    /// 1007: message data inconsistent with its type, such as invalid UTF-8 in text.
    pub const INVALID_PAYLOAD: Self = Self(1007);
    /// 1008: policy violation.
    pub const POLICY_VIOLATION: Self = Self(1008);
    /// 1009: a message too big to process.
    pub const MESSAGE_TOO_BIG: Self = Self(1009);
    /// 1010: the client expected an extension the server did not negotiate.
    pub const MANDATORY_EXTENSION: Self = Self(1010);
    /// 1011: the server hit an unexpected condition.
    pub const INTERNAL_ERROR: Self = Self(1011);
    /// 1012: the service is restarting.
    pub const SERVICE_RESTART: Self = Self(1012);
    /// 1013: try again later.
    pub const TRY_AGAIN_LATER: Self = Self(1013);
    /// 1014: a gateway received an invalid response.
    pub const BAD_GATEWAY: Self = Self(1014);
    /// 1015: TLS handshake failure (never sent on the wire).
    pub const TLS_HANDSHAKE: Self = Self(1015);

    /// Whether this code may appear in a close frame on the wire (§7.4.1, §7.4.2 and the IANA
    /// registry): 1000-1003, 1007-1014, and 3000-4999 for libraries and applications.
    pub fn is_sendable(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        Self(code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> Self {
        code.0
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FrameError {
    /// The close code this error calls for (RFC 6455 §7.4.1): 1009 for size, 1002 otherwise.
    pub fn close_code(self) -> CloseCode {
        match self {
            Self::FrameTooLarge => CloseCode::MESSAGE_TOO_BIG,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ReservedOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            Self::InvalidLength => f.write_str("64-bit payload length with the top bit set"),
            Self::ControlFrameTooLong => f.write_str("control frame longer than 125 bytes"),
            Self::FragmentedControlFrame => f.write_str("fragmented control frame"),
            Self::ReservedBits => f.write_str("reserved bits set without a negotiated extension"),
            Self::UnmaskedFrame => f.write_str("unmasked frame from a client"),
            Self::MaskedFrame => f.write_str("masked frame from a server"),
            Self::FrameTooLarge => f.write_str("frame larger than the configured maximum"),
        }
    }
}

impl std::error::Error for FrameError {}

/// A decoded frame header (RFC 6455 §5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Final fragment of a message.
    pub fin: bool,
    /// RSV1: "per-message compressed" once permessage-deflate is negotiated (RFC 7692 §6).
    pub rsv1: bool,
    /// RSV2, reserved.
    pub rsv2: bool,
    /// RSV3, reserved.
    pub rsv3: bool,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, present on every client-to-server frame.
    pub mask: Option<[u8; 4]>,
    /// The payload length.
    pub payload_len: u64,
}

impl FrameHeader {
    /// A header with FIN set, no RSV bits and no mask.
    pub fn new(opcode: OpCode, payload_len: u64) -> Self {
        Self {
            fin: true,
            rsv1: false,
            rsv2: false,
            rsv3: false,
            opcode,
            mask: None,
            payload_len,
        }
    }

    /// Decodes a header from the front of `buf`.
    ///
    /// Returns `Ok(None)` when more bytes are needed, or the header and its encoded length.
    /// Checks what can be checked without knowing the role or extensions: reserved opcodes,
    /// the top bit of a 64-bit length, and control frame rules (§5.5). Non-minimal length
    /// encodings are accepted, as the RFC does not require minimal ones of a receiver.
    pub fn decode(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, FrameError> {
        let [b0, b1, ..] = *buf else {
            return Ok(None);
        };
        let opcode = OpCode::from_u8(b0 & 0x0F).ok_or(FrameError::ReservedOpcode(b0 & 0x0F))?;
        let fin = b0 & 0x80 != 0;
        let masked = b1 & 0x80 != 0;
        let len7 = b1 & 0x7F;
        if opcode.is_control() {
            if !fin {
                return Err(FrameError::FragmentedControlFrame);
            }
            if len7 > 125 {
                return Err(FrameError::ControlFrameTooLong);
            }
        }
        let (payload_len, mut pos) = match len7 {
            126 => {
                let Some(b) = buf.get(2..4) else {
                    return Ok(None);
                };
                (u64::from(u16::from_be_bytes([b[0], b[1]])), 4)
            }
            127 => {
                let Some(b) = buf.get(2..10) else {
                    return Ok(None);
                };
                let len = u64::from_be_bytes(b.try_into().expect("8 bytes"));
                if len >> 63 != 0 {
                    return Err(FrameError::InvalidLength);
                }
                (len, 10)
            }
            n => (u64::from(n), 2),
        };
        let mask = if masked {
            let Some(b) = buf.get(pos..pos + 4) else {
                return Ok(None);
            };
            pos += 4;
            Some([b[0], b[1], b[2], b[3]])
        } else {
            None
        };
        Ok(Some((
            FrameHeader {
                fin,
                rsv1: b0 & 0x40 != 0,
                rsv2: b0 & 0x20 != 0,
                rsv3: b0 & 0x10 != 0,
                opcode,
                mask,
                payload_len,
            },
            pos,
        )))
    }

    /// Returns the length of this header once encoded (2 to 14 bytes), using the minimal length form.
    pub fn encoded_len(&self) -> usize {
        let len = match self.payload_len {
            0..=125 => 2,
            126..=0xFFFF => 4,
            _ => 10,
        };
        len + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Encodes this header (minimal length form) into `out` and returns how many bytes it used.
    pub fn encode(&self, out: &mut [u8; MAX_HEADER_LEN]) -> usize {
        out[0] = (u8::from(self.fin) << 7)
            | (u8::from(self.rsv1) << 6)
            | (u8::from(self.rsv2) << 5)
            | (u8::from(self.rsv3) << 4)
            | self.opcode.as_u8();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut pos = match self.payload_len {
            n @ 0..=125 => {
                out[1] = mask_bit | n as u8;
                2
            }
            n @ 126..=0xFFFF => {
                out[1] = mask_bit | 126;
                out[2..4].copy_from_slice(&(n as u16).to_be_bytes());
                4
            }
            n => {
                out[1] = mask_bit | 127;
                out[2..10].copy_from_slice(&n.to_be_bytes());
                10
            }
        };
        if let Some(key) = self.mask {
            out[pos..pos + 4].copy_from_slice(&key);
            pos += 4;
        }
        pos
    }

    /// Appends the encoded header to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        let b0 = (u8::from(self.fin) << 7)
            | (u8::from(self.rsv1) << 6)
            | (u8::from(self.rsv2) << 5)
            | (u8::from(self.rsv3) << 4)
            | self.opcode.as_u8();
        // The usual short forms as fixed-size copies; the rest through `encode`.
        match (self.payload_len, self.mask) {
            (n @ 0..=125, None) => out.extend_from_slice(&[b0, n as u8]),
            (n @ 0..=125, Some(k)) => {
                out.extend_from_slice(&[b0, 0x80 | n as u8, k[0], k[1], k[2], k[3]]);
            }
            (n @ 126..=0xFFFF, None) => {
                let [l0, l1] = (n as u16).to_be_bytes();
                out.extend_from_slice(&[b0, 126, l0, l1]);
            }
            _ => {
                let mut tmp = [0u8; MAX_HEADER_LEN];
                let n = self.encode(&mut tmp);
                out.extend_from_slice(&tmp[..n]);
            }
        }
    }
}

/// XORs `buf` with the masking key (RFC 6455 §5.3), starting `offset` bytes into the key's
/// cycle so that a payload can be unmasked in pieces as it arrives.
///
/// Word-wise code that the compiler vectorizes: the key is rotated by `offset` and repeated
/// into a `u64`, the bulk is XORed 64 bytes per iteration (eight `u64` words), and the tail
/// eight bytes at a time and then byte by byte. Buffers of 512 bytes or more first mask a
/// short head (under 64 bytes) so that the bulk starts on a cache line and its stores never
/// straddle one, and the bulk runs in a copy of the loop compiled for AVX2 when the CPU has
/// it (chosen at run time, once, by the [`multiversion`] crate): 32-byte stores instead of
/// baseline x86-64's 16-byte SSE2 stores. Shorter buffers stay on the baseline code, where a
/// dispatch would cost more than it saves.
///
/// A bulk of 16 KiB or more goes from its end to its start. A payload has usually just been
/// written front to back (by `read` into the receive buffer, or copied into the output
/// before masking), so when it and its source outgrow the L1 cache, its end is what is still
/// there: starting from the end uses those lines before the misses evict them, where going
/// forward would evict them first and miss on every line.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    // Little-endian byte `i` of `key` is `key[(i + offset) % 4]`.
    let key = u32::from_le_bytes(key).rotate_right(8 * (offset % 4) as u32);
    if buf.len() < MASK_ALIGN_MIN_LEN {
        return mask_words(buf, key);
    }
    let head = buf.as_ptr().align_offset(64);
    if head >= 64 {
        // `align_offset` is allowed to give up (`usize::MAX`): stay unaligned.
        return mask_bulk(buf, key);
    }
    let (head_bytes, body) = buf.split_at_mut(head);
    mask_words(head_bytes, key);
    mask_bulk(body, key.rotate_right(8 * (head % 4) as u32));
}

/// Below this length [`apply_mask`] neither aligns the bulk nor picks a wider instruction
/// set: masking the head and the dispatch cost more than they save.
const MASK_ALIGN_MIN_LEN: usize = 512;

/// From this length on, [`mask_bulk`] goes backwards. Below it, a payload and the source it
/// was copied from fit in an L1 data cache together (32 KiB is the smallest current one), so
/// the order gains nothing, and the backward loop measured a few percent slower at 1–8 KiB
/// (10 % at 1 KiB).
const MASK_BACKWARD_MIN_LEN: usize = 16 * 1024;

/// [`mask_words`] for long buffers, backwards from [`MASK_BACKWARD_MIN_LEN`] on: the tail
/// (under 64 bytes) first, then the 64-byte blocks from the last to the first (see
/// [`apply_mask`] for why). Compiled for AVX2 as well as for the baseline, with the version
/// chosen by what the CPU supports.
#[multiversion::multiversion(targets("x86_64+avx2"))]
fn mask_bulk(buf: &mut [u8], key: u32) {
    if buf.len() < MASK_BACKWARD_MIN_LEN {
        return mask_words(buf, key);
    }
    let wide = u64::from(key) * 0x1_0000_0001;
    let (blocks, tail) = buf.split_at_mut(buf.len() / 64 * 64);
    // The tail starts a multiple of 4 bytes in, so the key's phase is the same.
    mask_words(tail, key);
    for block in blocks.rchunks_exact_mut(64) {
        mask_block(block, wide);
    }
}

/// XORs one 64-byte block with `wide`, the key repeated into a `u64`.
#[inline(always)]
fn mask_block(block: &mut [u8], wide: u64) {
    for word in block.chunks_exact_mut(8) {
        let v = u64::from_le_bytes(word.try_into().expect("8 bytes")) ^ wide;
        word.copy_from_slice(&v.to_le_bytes());
    }
}

/// XORs `buf` with `key` repeated (little-endian byte `i` of `key` goes on `buf[i]`,
/// `buf[i + 4]`, ...).
#[inline(always)]
fn mask_words(buf: &mut [u8], key: u32) {
    let wide = u64::from(key) * 0x1_0000_0001;
    let mut blocks = buf.chunks_exact_mut(64);
    for block in &mut blocks {
        mask_block(block, wide);
    }
    let mut words = blocks.into_remainder().chunks_exact_mut(8);
    for word in &mut words {
        let v = u64::from_le_bytes(word.try_into().expect("8 bytes")) ^ wide;
        word.copy_from_slice(&v.to_le_bytes());
    }
    let rest = words.into_remainder();
    if !rest.is_empty() {
        mask_tail(rest, key);
    }
}

/// [`mask_words`] for the last 7 bytes or fewer: four at once if there are, then one at a
/// time.
#[inline(always)]
fn mask_tail(rest: &mut [u8], key: u32) {
    let rest = match rest.split_first_chunk_mut::<4>() {
        Some((word, tail)) => {
            // Four bytes in, the key's phase is the same again.
            *word = (u32::from_le_bytes(*word) ^ key).to_le_bytes();
            tail
        }
        None => rest,
    };
    for (b, k) in rest.iter_mut().zip(key.to_le_bytes()) {
        *b ^= k;
    }
}

/// A whole frame: header and (unmasked) payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The header as it was on the wire (its `mask` tells whether the frame was masked).
    pub header: FrameHeader,
    /// The payload, already unmasked.
    pub payload: Bytes,
}

impl Frame {
    /// Appends the frame to `out`, masking the payload with `mask` if given (a client's frames
    /// must be masked, a server's must not, §5.1). `header.payload_len` and `header.mask` are
    /// taken from the payload and `mask`.
    pub fn encode(&self, mask: Option<[u8; 4]>, out: &mut Vec<u8>) {
        encode_frame(self.header, mask, &self.payload, out);
    }
}

/// Appends one frame to `out`: the header (with `payload_len` and `mask` overridden to fit
/// `payload` and `mask`) then the payload, masked when `mask` is given.
pub fn encode_frame(header: FrameHeader, mask: Option<[u8; 4]>, payload: &[u8], out: &mut Vec<u8>) {
    let header = FrameHeader {
        mask,
        payload_len: payload.len() as u64,
        ..header
    };
    out.reserve(header.encoded_len() + payload.len());
    header.write(out);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut out[start..], key, 0);
    }
}

/// Which side of the connection a codec decodes for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The endpoint that opened the connection: it masks what it sends.
    Client,
    /// The endpoint that accepted it: it requires masked input.
    Server,
}

/// A standalone frame decoder for one role: header checks, role-dependent masking rules,
/// allowed RSV bits and a frame size limit, then the whole frame, unmasked.
#[derive(Clone, Debug)]
pub struct FrameDecoder {
    role: Role,
    max_frame_size: u64,
    allow_rsv1: bool,
}

impl FrameDecoder {
    /// A decoder for frames received by `role` (a server decodes client frames).
    pub fn new(role: Role, max_frame_size: u64) -> Self {
        Self {
            role,
            max_frame_size,
            allow_rsv1: false,
        }
    }

    /// Allows RSV1, as permessage-deflate does (RFC 7692 §6).
    pub fn allow_rsv1(mut self, allow: bool) -> Self {
        self.allow_rsv1 = allow;
        self
    }

    /// Checks a decoded header against the role, RSV and size rules.
    pub fn check(&self, header: &FrameHeader) -> Result<(), FrameError> {
        if header.rsv2 || header.rsv3 || (header.rsv1 && !self.allow_rsv1) {
            return Err(FrameError::ReservedBits);
        }
        match (self.role, header.mask.is_some()) {
            (Role::Server, false) => return Err(FrameError::UnmaskedFrame),
            (Role::Client, true) => return Err(FrameError::MaskedFrame),
            _ => {}
        }
        if header.payload_len > self.max_frame_size {
            return Err(FrameError::FrameTooLarge);
        }
        Ok(())
    }

    /// Decodes one frame from the front of `buf`, removing it and unmasking its payload in place.
    ///
    /// Returns `Ok(None)` and leaves `buf` untouched when the frame is not complete yet. The
    /// size limit is checked on the header, before any payload is buffered.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let Some((header, header_len)) = FrameHeader::decode(buf)? else {
            return Ok(None);
        };
        self.check(&header)?;
        let len = header.payload_len as usize;
        if buf.len() - header_len < len {
            return Ok(None);
        }
        // `advance`, not a `split_to` that is dropped: that would take and release a
        // reference to the shared buffer (two atomic operations) for nothing.
        buf.advance(header_len);
        let mut payload = buf.split_to(len);
        if let Some(key) = header.mask {
            apply_mask(&mut payload, key, 0);
        }
        Ok(Some(Frame {
            header,
            payload: payload.freeze(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask_bytewise(buf: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, b) in buf.iter_mut().enumerate() {
            // `(i + offset) % 4`, without overflowing for offsets near `usize::MAX`.
            *b ^= key[(i % 4 + offset % 4) % 4];
        }
    }

    /// `len` bytes of test data that are not a repeating pattern.
    fn mask_test_data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + 3 + i / 251) as u8).collect()
    }

    /// Masks `len` bytes starting `start` bytes into a buffer (so that every alignment of
    /// the slice is covered), with `apply_mask` and bytewise, and compares the whole buffers
    /// (so that bytes outside the slice must stay untouched).
    fn check_mask(len: usize, start: usize, offset: usize) {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let data = mask_test_data(start + len + 5);
        let mut a = data.clone();
        let mut b = data;
        apply_mask(&mut a[start..start + len], key, offset);
        mask_bytewise(&mut b[start..start + len], key, offset);
        assert_eq!(a, b, "len {len} start {start} offset {offset}");
    }

    #[test]
    fn rfc6455_5_3_mask_matches_bytewise_definition() {
        for len in 0..300 {
            for offset in 0..4 {
                for start in [0, 1, 3] {
                    check_mask(len, start, offset);
                }
            }
        }
    }

    #[test]
    fn mask_every_alignment_and_offset() {
        // Lengths around the switch to the aligned path (512), around the 64-byte blocks and
        // a few large ones, each at all 64 alignments of the start and with offsets past 4.
        let lens = [
            0, 1, 15, 16, 17, 63, 64, 65, 300, 510, 511, 512, 513, 527, 528, 529, 575, 576, 1000,
            1024, 4099, 65536, 65543,
        ];
        for len in lens {
            for start in 0..64 {
                for offset in 0..8 {
                    check_mask(len, start, offset);
                }
            }
        }
        for offset in [usize::MAX - 2, usize::MAX - 1, usize::MAX] {
            check_mask(1000, 5, offset);
        }
    }

    #[test]
    fn mask_bulk_every_tail_length() {
        // The forward bulk (512 bytes and up) and the backward one (16 KiB and up, which
        // masks its tail before its blocks): every tail length, at a few alignments of the
        // start (which move the head and so the tail too), and both sides of the switch.
        let backward = MASK_BACKWARD_MIN_LEN;
        for len in (640..704).chain(backward..backward + 128) {
            for start in [0, 1, 2, 3, 17, 63] {
                for offset in 0..4 {
                    check_mask(len, start, offset);
                }
            }
        }
    }

    #[test]
    fn mask_in_pieces_equals_mask_at_once() {
        let key = [0x01, 0x80, 0xff, 0x5a];
        let data = mask_test_data(3000);
        let mut whole = data.clone();
        apply_mask(&mut whole, key, 0);
        for cuts in [
            &[0, 1, 2, 3][..],
            &[7, 600, 601, 2999],
            &[13, 530, 1700, 2400],
        ] {
            let mut pieces = data.clone();
            let mut from = 0;
            for &to in cuts.iter().chain(&[data.len()]) {
                apply_mask(&mut pieces[from..to], key, from);
                from = to;
            }
            assert_eq!(pieces, whole, "cuts {cuts:?}");
        }
    }

    #[test]
    fn rfc6455_5_7_single_frame_masked_text_example() {
        // "A single-frame masked text message" from §5.7.
        let wire = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let mut buf = BytesMut::from(&wire[..]);
        let frame = FrameDecoder::new(Role::Server, 1 << 20)
            .decode(&mut buf)
            .unwrap()
            .unwrap();
        assert_eq!(&frame.payload[..], b"Hello");
        assert!(frame.header.fin);
        assert_eq!(frame.header.opcode, OpCode::Text);
        assert!(buf.is_empty());
        let mut out = Vec::new();
        frame.encode(Some([0x37, 0xfa, 0x21, 0x3d]), &mut out);
        assert_eq!(out, wire);
    }

    #[test]
    fn rfc6455_5_7_unmasked_fragments_and_lengths() {
        let mut out = Vec::new();
        encode_frame(
            FrameHeader::new(OpCode::Binary, 0),
            None,
            &[0; 256],
            &mut out,
        );
        assert_eq!(&out[..4], &[0x82, 0x7E, 0x01, 0x00]);
        out.clear();
        encode_frame(
            FrameHeader::new(OpCode::Binary, 0),
            None,
            &[0; 65536],
            &mut out,
        );
        assert_eq!(
            &out[..10],
            &[0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00]
        );
    }

    #[test]
    fn rfc6455_5_2_non_minimal_length_is_accepted() {
        // 5 bytes of payload announced with the 16-bit form.
        let wire = [0x82, 0x7E, 0x00, 0x05, 1, 2, 3, 4, 5];
        let mut buf = BytesMut::from(&wire[..]);
        let frame = FrameDecoder::new(Role::Client, 100)
            .decode(&mut buf)
            .unwrap()
            .unwrap();
        assert_eq!(&frame.payload[..], &[1, 2, 3, 4, 5]);
    }

    #[test]
    fn rfc6455_5_2_64_bit_length_top_bit_must_be_zero() {
        let wire = [0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 1];
        assert_eq!(FrameHeader::decode(&wire), Err(FrameError::InvalidLength));
    }

    #[test]
    fn rfc6455_5_2_reserved_opcodes_rejected() {
        for op in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            assert_eq!(
                FrameHeader::decode(&[0x80 | op, 0]),
                Err(FrameError::ReservedOpcode(op))
            );
        }
    }

    #[test]
    fn rfc6455_5_2_rsv_bits_rejected_without_extension() {
        let dec = FrameDecoder::new(Role::Client, 100);
        for bits in [0x40u8, 0x20, 0x10] {
            let mut buf = BytesMut::from(&[0x81 | bits, 0][..]);
            assert_eq!(dec.decode(&mut buf), Err(FrameError::ReservedBits));
        }
        let mut buf = BytesMut::from(&[0xC1, 0][..]);
        assert!(
            dec.clone()
                .allow_rsv1(true)
                .decode(&mut buf)
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn rfc6455_5_5_control_frames_short_and_unfragmented() {
        assert_eq!(
            FrameHeader::decode(&[0x89, 126, 0, 126]),
            Err(FrameError::ControlFrameTooLong)
        );
        assert_eq!(
            FrameHeader::decode(&[0x09, 0]),
            Err(FrameError::FragmentedControlFrame)
        );
    }

    #[test]
    fn rfc6455_5_1_masking_direction_enforced() {
        let mut buf = BytesMut::from(&[0x81, 0x00][..]);
        assert_eq!(
            FrameDecoder::new(Role::Server, 100).decode(&mut buf),
            Err(FrameError::UnmaskedFrame)
        );
        let mut buf = BytesMut::from(&[0x81, 0x80, 1, 2, 3, 4][..]);
        assert_eq!(
            FrameDecoder::new(Role::Client, 100).decode(&mut buf),
            Err(FrameError::MaskedFrame)
        );
    }

    #[test]
    fn frame_size_limit_checked_on_header() {
        // Header announces 1 GiB; only the header is present. Rejected at once.
        let wire = [0x82, 0x7F, 0, 0, 0, 0, 0x40, 0, 0, 0];
        let mut buf = BytesMut::from(&wire[..]);
        assert_eq!(
            FrameDecoder::new(Role::Client, 1 << 20).decode(&mut buf),
            Err(FrameError::FrameTooLarge)
        );
    }

    #[test]
    fn incomplete_input_needs_more() {
        let mut out = Vec::new();
        encode_frame(
            FrameHeader::new(OpCode::Text, 0),
            Some([1, 2, 3, 4]),
            &[b'x'; 300],
            &mut out,
        );
        let dec = FrameDecoder::new(Role::Server, 1000);
        for cut in 0..out.len() {
            let mut buf = BytesMut::from(&out[..cut]);
            assert_eq!(dec.decode(&mut buf), Ok(None), "cut {cut}");
            assert_eq!(buf.len(), cut);
        }
    }
}
