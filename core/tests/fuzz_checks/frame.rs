//! Target `frame`: the frame decoder (RFC 6455 §5) on arbitrary bytes.
//!
//! Invariants: `FrameHeader::decode` agrees with an independent reading of §5.2; a
//! `FrameDecoder` leaves its buffer untouched until a whole frame is there, then consumes
//! exactly that frame; every frame it accepts obeys the role, RSV and size rules, and
//! re-encodes (`encode_frame`) to bytes that decode to the same frame, byte for byte when
//! the original used the minimal length form; unmasking in pieces equals unmasking at once.

use super::enc::Enc;
use super::wire::reference_header;
use arbitrary::{Arbitrary, Unstructured};
use bytes::BytesMut;
use tether_core::{FrameDecoder, FrameError, FrameHeader, OpCode, Role, apply_mask, encode_frame};

/// A decoder configuration and the bytes to decode.
#[derive(Arbitrary, Debug, PartialEq, Eq)]
pub struct FrameInput<'a> {
    /// Decode as a server (client frames, masked) or as a client.
    pub server: bool,
    /// Allow RSV1 (permessage-deflate negotiated).
    pub allow_rsv1: bool,
    /// Maximum frame size; 0 means 1 MiB.
    pub max_frame: u16,
    /// The bytes.
    pub data: &'a [u8],
}

/// What the decoder made of the input.
#[derive(Debug, Default)]
pub struct FrameOutcome {
    /// Frames decoded.
    pub frames: Vec<tether_core::Frame>,
    /// The error that stopped decoding, if any.
    pub error: Option<FrameError>,
}

/// Writes `input` in the format [`check_bytes`] reads.
pub fn encode(input: &FrameInput<'_>) -> Vec<u8> {
    Enc::new()
        .bool(input.server)
        .bool(input.allow_rsv1)
        .u16(input.max_frame)
        .rest(input.data)
        .finish()
}

/// Decodes fuzzer bytes and runs [`check`].
pub fn check_bytes(data: &[u8]) -> FrameOutcome {
    match FrameInput::arbitrary_take_rest(Unstructured::new(data)) {
        Ok(input) => check(&input),
        Err(_) => FrameOutcome::default(),
    }
}

/// Decodes every frame in `input.data`, checking the invariants of the module docs.
pub fn check(input: &FrameInput<'_>) -> FrameOutcome {
    let role = if input.server {
        Role::Server
    } else {
        Role::Client
    };
    let max = if input.max_frame == 0 {
        1 << 20
    } else {
        u64::from(input.max_frame)
    };
    let decoder = FrameDecoder::new(role, max).allow_rsv1(input.allow_rsv1);
    let mut outcome = FrameOutcome::default();
    let mut buf = BytesMut::from(input.data);
    loop {
        let before = buf.clone();
        let reference = reference_header(&before);
        let header = FrameHeader::decode(&before);
        match (&header, &reference) {
            (Ok(None), Ok(None)) | (Err(_), Err(())) => {}
            (Ok(Some(a)), Ok(Some(b))) => assert_eq!(a, b, "header differs from §5.2"),
            _ => panic!("FrameHeader::decode gave {header:?}, §5.2 says {reference:?}"),
        }
        match decoder.decode(&mut buf) {
            Ok(None) => {
                assert_eq!(buf, before, "an incomplete frame was consumed");
                if let Ok(Some((h, n))) = header {
                    assert!(decoder.check(&h).is_ok());
                    assert!(((before.len() - n) as u64) < h.payload_len);
                }
                return outcome;
            }
            Err(e) => {
                assert_eq!(buf, before, "a rejected frame was consumed");
                match header {
                    Err(he) => assert_eq!(e, he),
                    Ok(Some((h, _))) => assert_eq!(decoder.check(&h), Err(e)),
                    Ok(None) => panic!("error {e:?} on an incomplete header"),
                }
                outcome.error = Some(e);
                return outcome;
            }
            Ok(Some(frame)) => {
                let (h, header_len) = header.expect("decoded").expect("complete");
                let consumed = before.len() - buf.len();
                assert_eq!(consumed as u64, header_len as u64 + h.payload_len);
                assert_eq!(frame.header, h);
                check_rules(&frame.header, role, input.allow_rsv1, max);
                // The payload is the unmasked wire payload, also when unmasked in pieces.
                let wire_payload = &before[header_len..consumed];
                let mut whole = wire_payload.to_vec();
                let mut pieces = wire_payload.to_vec();
                if let Some(key) = h.mask {
                    apply_mask(&mut whole, key, 0);
                    let split = pieces.len() / 3;
                    let (a, b) = pieces.split_at_mut(split);
                    apply_mask(a, key, 0);
                    apply_mask(b, key, split);
                    for (i, (&w, &m)) in wire_payload.iter().zip(&whole).enumerate() {
                        assert_eq!(m, w ^ key[i % 4], "§5.3 masking at {i}");
                    }
                }
                assert_eq!(whole, pieces, "masking in pieces differs");
                assert_eq!(&frame.payload[..], &whole[..]);
                // Re-encode and decode again.
                let mut out = Vec::new();
                encode_frame(frame.header, frame.header.mask, &frame.payload, &mut out);
                assert_eq!(out.len(), h.encoded_len() + frame.payload.len());
                if header_len == h.encoded_len() {
                    assert_eq!(
                        &out[..],
                        &before[..consumed],
                        "minimal form re-encodes exactly"
                    );
                }
                let mut again = BytesMut::from(&out[..]);
                let back = decoder
                    .decode(&mut again)
                    .expect("re-encoded frame decodes")
                    .expect("re-encoded frame is complete");
                assert!(again.is_empty());
                assert_eq!(back, frame, "round trip");
                // Every proper prefix of the frame needs more bytes.
                for cut in (0..consumed.min(16)).chain([consumed - 1]) {
                    let mut part = BytesMut::from(&out[..cut.min(out.len() - 1)]);
                    assert_eq!(decoder.decode(&mut part), Ok(None), "prefix {cut}");
                }
                outcome.frames.push(frame);
            }
        }
    }
}

fn check_rules(h: &FrameHeader, role: Role, allow_rsv1: bool, max: u64) {
    assert!(!h.rsv2 && !h.rsv3, "RSV2/RSV3 accepted");
    assert!(!h.rsv1 || allow_rsv1, "RSV1 accepted without an extension");
    match role {
        Role::Server => assert!(h.mask.is_some(), "unmasked client frame accepted (§5.1)"),
        Role::Client => assert!(h.mask.is_none(), "masked server frame accepted (§5.1)"),
    }
    assert!(h.payload_len <= max, "frame above the size limit accepted");
    if matches!(h.opcode, OpCode::Close | OpCode::Ping | OpCode::Pong) {
        assert!(
            h.fin && h.payload_len <= 125,
            "bad control frame accepted (§5.5)"
        );
    }
}
