//! The seed corpus: inputs for every fuzz target built from valid traffic (frames of every
//! kind, the opening handshakes of real browsers and libraries, compressed messages) and a
//! few classic violations. Each seed states what its checker must report, so generating
//! the corpus is itself a test.

use super::fuzz_checks::connection::{ConnInput, DeflateChoice, LimitsChoice, Op, PeerFrame};
use super::fuzz_checks::deflate::{DeflateInput, DeflateMessage, compress};
use super::fuzz_checks::frame::FrameInput;
use super::fuzz_checks::handshake_request::{Answer, RequestInput};
use super::fuzz_checks::handshake_response::{ResponseInput, client_key};
use super::fuzz_checks::{connection, deflate, frame, handshake_request, handshake_response, wire};
use arbitrary::{Arbitrary, Unstructured};
use base64::Engine as _;
use tether_core::{FrameHeader, OpCode, apply_mask, encode_frame};

/// A named seed file for one target.
pub struct Seed {
    /// The target (directory under `fuzz/corpus`).
    pub target: &'static str,
    /// The file name.
    pub name: String,
    /// The bytes.
    pub data: Vec<u8>,
}

fn seed(target: &'static str, name: &str, data: Vec<u8>) -> Seed {
    assert!(data.len() < 64 * 1024, "seed {target}/{name} is too large");
    Seed {
        target,
        name: name.to_string(),
        data,
    }
}

/// Every seed of every target, each checked against its expected outcome.
pub fn all() -> Vec<Seed> {
    let mut out = frame_seeds();
    out.extend(request_seeds());
    out.extend(response_seeds());
    out.extend(connection_seeds());
    out.extend(deflate_seeds());
    out
}

// ---------------------------------------------------------------- frame

fn frame_bytes(
    fin: bool,
    rsv1: bool,
    op: OpCode,
    mask: Option<[u8; 4]>,
    payload: &[u8],
) -> Vec<u8> {
    let header = FrameHeader {
        fin,
        rsv1,
        ..FrameHeader::new(op, 0)
    };
    let mut out = Vec::new();
    encode_frame(header, mask, payload, &mut out);
    out
}

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    p
}

fn frame_seeds() -> Vec<Seed> {
    let m = Some(KEY);
    // (name, server role, allow rsv1, max frame, bytes, frames expected, error expected)
    type Case = (&'static str, bool, bool, u16, Vec<u8>, usize, bool);
    let mut cases: Vec<Case> = vec![
        // RFC 6455 §5.7 examples.
        (
            "rfc6455-5.7-unmasked-hello",
            false,
            false,
            0,
            vec![0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f],
            1,
            false,
        ),
        (
            "rfc6455-5.7-masked-hello",
            true,
            false,
            0,
            vec![
                0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
            ],
            1,
            false,
        ),
        (
            "rfc6455-5.7-fragmented-hello",
            false,
            false,
            0,
            vec![0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f],
            2,
            false,
        ),
        (
            "rfc6455-5.7-ping-pong",
            false,
            false,
            0,
            vec![
                0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f,
                0x9f, 0x4d, 0x51, 0x58,
            ],
            1,
            true,
        ),
        (
            "rfc6455-5.7-256-bytes",
            false,
            false,
            0,
            frame_bytes(true, false, OpCode::Binary, None, &[0xab; 256]),
            1,
            false,
        ),
        (
            "binary-16-bit-length-masked",
            true,
            false,
            0,
            frame_bytes(true, false, OpCode::Binary, m, &[7; 300]),
            1,
            false,
        ),
        // 5 bytes announced with the 64-bit form (non-minimal, accepted).
        (
            "non-minimal-64-bit-length",
            false,
            false,
            0,
            vec![0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4, 5],
            1,
            false,
        ),
        (
            "non-minimal-16-bit-length",
            true,
            false,
            0,
            [vec![0x82, 0xfe, 0, 3], KEY.to_vec(), vec![1, 2, 3]].concat(),
            1,
            false,
        ),
        (
            "close-1000-with-reason",
            true,
            false,
            0,
            frame_bytes(true, false, OpCode::Close, m, &close_payload(1000, "bye")),
            1,
            false,
        ),
        (
            "close-empty",
            false,
            false,
            0,
            frame_bytes(true, false, OpCode::Close, None, &[]),
            1,
            false,
        ),
        (
            "close-125-bytes",
            false,
            false,
            0,
            frame_bytes(
                true,
                false,
                OpCode::Close,
                None,
                &close_payload(4000, &"r".repeat(123)),
            ),
            1,
            false,
        ),
        (
            "pong-masked",
            true,
            false,
            0,
            frame_bytes(true, false, OpCode::Pong, m, b"keepalive"),
            1,
            false,
        ),
        (
            "compressed-text-rsv1",
            false,
            true,
            0,
            frame_bytes(
                true,
                true,
                OpCode::Text,
                None,
                &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
            ),
            1,
            false,
        ),
        (
            "compressed-fragments-masked",
            true,
            true,
            0,
            [
                frame_bytes(false, true, OpCode::Binary, m, &[0xf2, 0x48]),
                frame_bytes(
                    true,
                    false,
                    OpCode::Continuation,
                    m,
                    &[0xcd, 0xc9, 0xc9, 0x07, 0x00],
                ),
            ]
            .concat(),
            2,
            false,
        ),
        (
            "empty-text",
            true,
            false,
            0,
            frame_bytes(true, false, OpCode::Text, m, &[]),
            1,
            false,
        ),
        // Errors.
        (
            "reserved-opcode-3",
            false,
            false,
            0,
            vec![0x83, 0x00],
            0,
            true,
        ),
        (
            "reserved-opcode-b",
            false,
            false,
            0,
            vec![0x8b, 0x00],
            0,
            true,
        ),
        (
            "control-frame-too-long",
            false,
            false,
            0,
            vec![0x89, 0x7e, 0x00, 0x7e],
            0,
            true,
        ),
        (
            "fragmented-ping",
            false,
            false,
            0,
            vec![0x09, 0x00],
            0,
            true,
        ),
        (
            "64-bit-length-top-bit",
            false,
            false,
            0,
            vec![0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 1],
            0,
            true,
        ),
        (
            "rsv1-without-extension",
            false,
            false,
            0,
            vec![0xc1, 0x00],
            0,
            true,
        ),
        ("rsv2-rsv3", false, true, 0, vec![0xb1, 0x00], 0, true),
        (
            "unmasked-to-server",
            true,
            false,
            0,
            vec![0x81, 0x02, b'h', b'i'],
            0,
            true,
        ),
        (
            "masked-to-client",
            false,
            false,
            0,
            frame_bytes(true, false, OpCode::Text, m, b"hi"),
            0,
            true,
        ),
        (
            "frame-above-limit",
            false,
            false,
            100,
            frame_bytes(true, false, OpCode::Binary, None, &[1; 200]),
            0,
            true,
        ),
        (
            "huge-length-header-only",
            false,
            false,
            0,
            vec![0x82, 0x7f, 0, 0, 0, 1, 0, 0, 0, 0],
            0,
            true,
        ),
        (
            "incomplete-payload",
            true,
            false,
            0,
            frame_bytes(true, false, OpCode::Text, m, b"hello")[..8].to_vec(),
            0,
            false,
        ),
    ];
    // A whole conversation from a client: every kind of frame, one after the other.
    let mut conversation = Vec::new();
    for (i, (op, fin, payload)) in [
        (OpCode::Text, false, &b"Hello, "[..]),
        (OpCode::Ping, true, b"p"),
        (OpCode::Continuation, true, b"world"),
        (OpCode::Binary, true, &[0, 1, 2, 3, 255][..]),
        (OpCode::Pong, true, b""),
        (OpCode::Close, true, &[0x03, 0xe8][..]),
    ]
    .into_iter()
    .enumerate()
    {
        conversation.extend(frame_bytes(
            fin,
            false,
            op,
            Some([i as u8, 0x11, 0x22, 0x33]),
            payload,
        ));
    }
    cases.push((
        "client-conversation",
        true,
        false,
        0,
        conversation,
        6,
        false,
    ));
    let mut seeds = Vec::new();
    for (name, server, allow_rsv1, max_frame, data, frames, error) in cases {
        let input = FrameInput {
            server,
            allow_rsv1,
            max_frame,
            data: &data,
        };
        let bytes = frame::encode(&input);
        assert_eq!(
            FrameInput::arbitrary_take_rest(Unstructured::new(&bytes)).unwrap(),
            input
        );
        let outcome = frame::check_bytes(&bytes);
        assert_eq!(outcome.frames.len(), frames, "frame seed {name}");
        assert_eq!(
            outcome.error.is_some(),
            error,
            "frame seed {name}: {:?}",
            outcome.error
        );
        seeds.push(seed("frame", name, bytes));
    }
    seeds
}

// ---------------------------------------------------------------- handshake_request

fn key_from(n: u8) -> String {
    let bytes: Vec<u8> = (0..16u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(n))
        .collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn crlf(lines: &[&str]) -> Vec<u8> {
    let mut s = lines.join("\r\n");
    s.push_str("\r\n\r\n");
    s.into_bytes()
}

/// Request heads as real clients write them (header order and values from their sources
/// and captures), with fresh keys.
pub fn client_heads() -> Vec<(&'static str, Vec<u8>)> {
    let (k1, k2, k3, k4, k5) = (
        key_from(1),
        key_from(2),
        key_from(3),
        key_from(4),
        key_from(5),
    );
    vec![
        (
            "rfc6455-example",
            crlf(&[
                "GET /chat HTTP/1.1",
                "Host: server.example.com",
                "Upgrade: websocket",
                "Connection: Upgrade",
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                "Origin: http://example.com",
                "Sec-WebSocket-Protocol: chat, superchat",
                "Sec-WebSocket-Version: 13",
            ]),
        ),
        (
            "chromium",
            crlf(&[
                "GET /socket?room=42 HTTP/1.1",
                "Host: localhost:8080",
                "Connection: Upgrade",
                "Pragma: no-cache",
                "Cache-Control: no-cache",
                "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
                "Upgrade: websocket",
                "Origin: http://localhost:8080",
                "Sec-WebSocket-Version: 13",
                "Accept-Encoding: gzip, deflate, br, zstd",
                "Accept-Language: en-US,en;q=0.9",
                "Cookie: session=abc123; theme=dark",
                &format!("Sec-WebSocket-Key: {k1}"),
                "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
                "Sec-WebSocket-Protocol: chat",
            ]),
        ),
        (
            "firefox",
            crlf(&[
                "GET /chat HTTP/1.1",
                "Host: localhost:8080",
                "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
                "Accept: */*",
                "Accept-Language: en-US,en;q=0.5",
                "Accept-Encoding: gzip, deflate, br, zstd",
                "Sec-WebSocket-Version: 13",
                "Origin: http://localhost:8080",
                "Sec-WebSocket-Protocol: chat, superchat",
                "Sec-WebSocket-Extensions: permessage-deflate",
                &format!("Sec-WebSocket-Key: {k2}"),
                "Connection: keep-alive, Upgrade",
                "Sec-Fetch-Dest: empty",
                "Sec-Fetch-Mode: websocket",
                "Sec-Fetch-Site: same-origin",
                "Pragma: no-cache",
                "Cache-Control: no-cache",
                "Upgrade: websocket",
            ]),
        ),
        (
            "python-websockets",
            crlf(&[
                "GET /ws HTTP/1.1",
                "Host: 127.0.0.1:8765",
                "Upgrade: websocket",
                "Connection: Upgrade",
                &format!("Sec-WebSocket-Key: {k3}"),
                "Sec-WebSocket-Version: 13",
                "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
                "User-Agent: Python/3.12 websockets/13.1",
            ]),
        ),
        (
            "node-ws",
            crlf(&[
                "GET /ws HTTP/1.1",
                "Sec-WebSocket-Version: 13",
                &format!("Sec-WebSocket-Key: {k4}"),
                "Connection: Upgrade",
                "Upgrade: websocket",
                "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
                "Host: localhost:8080",
            ]),
        ),
        (
            "safari",
            crlf(&[
                "GET /live HTTP/1.1",
                "Host: example.com",
                "Accept: */*",
                "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==",
                "Sec-WebSocket-Version: 13",
                "Sec-WebSocket-Extensions: permessage-deflate",
                "Upgrade: websocket",
                "Origin: https://example.com",
                "User-Agent: Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
                "Connection: Upgrade",
            ]),
        ),
        (
            "tungstenite",
            crlf(&[
                "GET /socket HTTP/1.1",
                "Host: localhost:9001",
                "Connection: Upgrade",
                "Upgrade: websocket",
                "Sec-WebSocket-Version: 13",
                &format!("Sec-WebSocket-Key: {k5}"),
            ]),
        ),
    ]
}

fn request_seeds() -> Vec<Seed> {
    let mut seeds = Vec::new();
    let mut add = |name: &str, input: RequestInput<'_>, requests: usize, status: Option<u16>| {
        let bytes = handshake_request::encode(&input);
        assert_eq!(
            RequestInput::arbitrary_take_rest(Unstructured::new(&bytes)).unwrap(),
            input
        );
        let outcome = handshake_request::check_bytes(&bytes);
        assert_eq!(outcome.requests, requests, "request seed {name}");
        assert_eq!(outcome.response_status, status, "request seed {name}");
        seeds.push(seed("handshake_request", name, bytes));
    };
    let answers = [
        Answer::Accept,
        Answer::AcceptProtocol,
        Answer::Reject,
        Answer::Nothing,
    ];
    for (i, (name, head)) in client_heads().into_iter().enumerate() {
        let answer = answers[i % answers.len()];
        let status = match answer {
            Answer::Accept | Answer::AcceptProtocol => Some(101),
            Answer::Reject => Some(403),
            Answer::Nothing => None,
        };
        let input = RequestInput {
            small_limits: false,
            deflate: i % 2 == 1,
            answer,
            eof: false,
            cuts: vec![],
            data: &head,
        };
        add(name, input, 1, status);
        // The same head in small pieces, with a frame behind it, accepted.
        let mut with_frame = head.clone();
        with_frame.extend(frame_bytes(true, false, OpCode::Text, Some(KEY), b"hello"));
        let cuts: Vec<u16> = (0..24).map(|j| (j * 7 + i as u16) % 40).collect();
        let input = RequestInput {
            small_limits: false,
            deflate: true,
            answer: Answer::Accept,
            eof: true,
            cuts,
            data: &with_frame,
        };
        add(&format!("{name}-chunked-then-frame"), input, 1, Some(101));
    }
    let heads = client_heads();
    let base = String::from_utf8(heads[6].1.clone()).unwrap();
    let bad: Vec<(&str, String, u16)> = vec![
        ("post", base.replacen("GET", "POST", 1), 405),
        ("http-1.0", base.replacen("HTTP/1.1", "HTTP/1.0", 1), 400),
        (
            "missing-host",
            base.replacen("Host: localhost:9001\r\n", "", 1),
            400,
        ),
        (
            "missing-upgrade",
            base.replacen("Upgrade: websocket\r\n", "", 1),
            400,
        ),
        (
            "connection-keep-alive",
            base.replacen("Connection: Upgrade", "Connection: keep-alive", 1),
            400,
        ),
        ("short-key", base.replacen(&key_from(5), "c2hvcnQ=", 1), 400),
        (
            "version-8",
            base.replacen("Version: 13", "Version: 8", 1),
            426,
        ),
        (
            "with-body",
            base.replacen("\r\n\r\n", "\r\nContent-Length: 4\r\n\r\nbody", 1),
            400,
        ),
        (
            "duplicate-key",
            base.replacen(
                "\r\n\r\n",
                &format!("\r\nSec-WebSocket-Key: {}\r\n\r\n", key_from(9)),
                1,
            ),
            400,
        ),
        (
            "duplicate-version",
            base.replacen("\r\n\r\n", "\r\nSec-WebSocket-Version: 8\r\n\r\n", 1),
            400,
        ),
        (
            "duplicate-host",
            base.replacen("\r\n\r\n", "\r\nHost: evil.example\r\n\r\n", 1),
            400,
        ),
        (
            "not-http",
            "\x16\x03\x01\x02\x00\x01\x00\x01\x7c\x03\x03 TLS hello\r\n\r\n".to_string(),
            400,
        ),
    ];
    for (name, head, status) in bad {
        let input = RequestInput {
            small_limits: false,
            deflate: false,
            answer: Answer::Accept,
            eof: false,
            cuts: vec![],
            data: head.as_bytes(),
        };
        add(name, input, 0, Some(status));
    }
    // A head above the 1 KiB limit, byte by byte at first: 431.
    let mut long = base.replacen("\r\n\r\n", "\r\nX-Padding: ", 1);
    long.push_str(&"a".repeat(1200));
    long.push_str("\r\n\r\n");
    let input = RequestInput {
        small_limits: true,
        deflate: false,
        answer: Answer::Accept,
        eof: false,
        cuts: vec![0; 64],
        data: long.as_bytes(),
    };
    add("head-above-limit", input, 0, Some(431));
    // End of stream in the middle of the head.
    let input = RequestInput {
        small_limits: false,
        deflate: false,
        answer: Answer::Accept,
        eof: true,
        cuts: vec![],
        data: &base.as_bytes()[..40],
    };
    add("eof-mid-head", input, 0, None);
    seeds
}

// ---------------------------------------------------------------- handshake_response

fn response_seeds() -> Vec<Seed> {
    let key = client_key();
    let accept = wire::accept_for(&key);
    let acc = format!("Sec-WebSocket-Accept: {accept}");
    let mut seeds = Vec::new();
    let mut add = |name: &str, input: ResponseInput<'_>, connected: bool, rejected: Option<u16>| {
        let bytes = handshake_response::encode(&input);
        assert_eq!(
            ResponseInput::arbitrary_take_rest(Unstructured::new(&bytes)).unwrap(),
            input
        );
        let outcome = handshake_response::check_bytes(&bytes);
        assert_eq!(
            outcome.connected, connected,
            "response seed {name}: {outcome:?}"
        );
        assert_eq!(outcome.rejected, rejected, "response seed {name}");
        seeds.push(seed("handshake_response", name, bytes));
    };
    let hello = frame_bytes(true, false, OpCode::Text, None, b"hello");
    let heads: Vec<(&str, Vec<u8>, bool, u8, bool)> = vec![
        // (name, bytes, offer deflate, protocols, connects)
        (
            "rfc6455-example",
            crlf(&[
                "HTTP/1.1 101 Switching Protocols",
                "Upgrade: websocket",
                "Connection: Upgrade",
                &acc,
                "Sec-WebSocket-Protocol: chat",
            ]),
            false,
            0b011,
            true,
        ),
        (
            "node-ws",
            crlf(&[
                "HTTP/1.1 101 Switching Protocols",
                "Upgrade: websocket",
                "Connection: Upgrade",
                &acc,
            ]),
            false,
            0,
            true,
        ),
        (
            "node-ws-deflate",
            crlf(&[
                "HTTP/1.1 101 Switching Protocols",
                "Upgrade: websocket",
                "Connection: Upgrade",
                &acc,
                "Sec-WebSocket-Extensions: permessage-deflate",
            ]),
            true,
            0,
            true,
        ),
        (
            "python-websockets",
            crlf(&[
                "HTTP/1.1 101 Switching Protocols",
                "Date: Sat, 23 Nov 2024 10:00:00 GMT",
                "Upgrade: websocket",
                "Connection: Upgrade",
                &acc,
                "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
                "Server: Python/3.12 websockets/13.1",
            ]),
            true,
            0,
            true,
        ),
        (
            "gorilla",
            crlf(&[
                "HTTP/1.1 101 Switching Protocols",
                "Upgrade: websocket",
                "Connection: Upgrade",
                &acc,
                "Sec-WebSocket-Protocol: v2.json",
            ]),
            false,
            0b100,
            true,
        ),
        (
            "nginx-proxy",
            crlf(&[
                "HTTP/1.1 101 Switching Protocols",
                "Server: nginx/1.26.2",
                "Date: Sat, 23 Nov 2024 10:00:00 GMT",
                "Connection: upgrade",
                "Upgrade: websocket",
                &acc,
            ]),
            false,
            0,
            true,
        ),
        (
            "lowercase-tokens",
            crlf(&[
                "HTTP/1.1 101 Switching Protocols",
                "upgrade: WebSocket",
                "connection: keep-alive, upgrade",
                &format!("sec-websocket-accept: {accept}"),
            ]),
            false,
            0,
            true,
        ),
        (
            "no-context-takeover",
            crlf(&[
                "HTTP/1.1 101 Switching Protocols",
                "Upgrade: websocket",
                "Connection: Upgrade",
                &acc,
                "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            ]),
            true,
            0,
            true,
        ),
        // Violations.
        (
            "wrong-accept",
            crlf(&[
                "HTTP/1.1 101 Switching Protocols",
                "Upgrade: websocket",
                "Connection: Upgrade",
                "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
            ]),
            false,
            0,
            false,
        ),
        (
            "missing-upgrade",
            crlf(&[
                "HTTP/1.1 101 Switching Protocols",
                "Connection: Upgrade",
                &acc,
            ]),
            false,
            0,
            false,
        ),
        (
            "missing-connection",
            crlf(&[
                "HTTP/1.1 101 Switching Protocols",
                "Upgrade: websocket",
                &acc,
            ]),
            false,
            0,
            false,
        ),
        (
            "unoffered-protocol",
            crlf(&[
                "HTTP/1.1 101 Switching Protocols",
                "Upgrade: websocket",
                "Connection: Upgrade",
                &acc,
                "Sec-WebSocket-Protocol: mqtt",
            ]),
            false,
            0b001,
            false,
        ),
        (
            "unoffered-extension",
            crlf(&[
                "HTTP/1.1 101 Switching Protocols",
                "Upgrade: websocket",
                "Connection: Upgrade",
                &acc,
                "Sec-WebSocket-Extensions: permessage-deflate",
            ]),
            false,
            0,
            false,
        ),
        (
            "duplicate-accept",
            crlf(&[
                "HTTP/1.1 101 Switching Protocols",
                "Upgrade: websocket",
                "Connection: Upgrade",
                &acc,
                "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
            ]),
            false,
            0,
            false,
        ),
        (
            "200-ok",
            crlf(&["HTTP/1.1 200 OK", "Content-Length: 0"]),
            false,
            0,
            false,
        ),
    ];
    for (i, (name, head, deflate, protocols, connects)) in heads.into_iter().enumerate() {
        let input = ResponseInput {
            deflate,
            protocols,
            eof: false,
            cuts: vec![],
            data: &head,
        };
        let rejected = (name == "200-ok").then_some(200);
        add(name, input, connects, rejected);
        if connects {
            // In pieces, followed by a frame, then end of stream.
            let mut more = head.clone();
            more.extend_from_slice(&hello);
            let cuts: Vec<u16> = (0..16).map(|j| (j * 13 + i as u16) % 30).collect();
            let input = ResponseInput {
                deflate,
                protocols,
                eof: true,
                cuts,
                data: &more,
            };
            add(&format!("{name}-chunked-then-frame"), input, true, None);
        }
    }
    let rejections: Vec<(&str, Vec<u8>, u16, bool)> = vec![
        ("403-with-body", b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nForbidden".to_vec(), 403, false),
        ("426-upgrade-required", b"HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n".to_vec(), 426, false),
        ("301-redirect", b"HTTP/1.1 301 Moved Permanently\r\nLocation: wss://example.com/chat\r\nContent-Length: 0\r\n\r\n".to_vec(), 301, false),
        ("503-body-to-eof", b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\n\r\ntry again later".to_vec(), 503, true),
    ];
    for (name, data, status, eof) in rejections {
        let input = ResponseInput {
            deflate: false,
            protocols: 0,
            eof,
            cuts: vec![3, 7, 11],
            data: &data,
        };
        add(name, input, false, Some(status));
    }
    seeds
}

// ---------------------------------------------------------------- connection

fn pf(flags: u8, op: u8, payload: &[u8]) -> Op {
    Op::Frame(PeerFrame {
        flags,
        opcode: op,
        payload: payload.to_vec(),
    })
}

const FRAG: u8 = 1; // FIN clear
const COMPRESS: u8 = 0x20;

fn connection_seeds() -> Vec<Seed> {
    let deflate = Some(DeflateChoice {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: 7,
        client_max_window_bits: 7,
    });
    let base = ConnInput {
        server: true,
        handshake: false,
        deflate: None,
        limits: LimitsChoice::Default,
        stream_fragments: false,
        max_outgoing_frame: 0,
        idle: false,
        ops: vec![],
    };
    let close = |code: u16, reason: &str| pf(0, 8, &close_payload(code, reason));
    let text = |s: &str| Op::Send {
        text: true,
        compress: true,
        data: s.as_bytes().to_vec(),
    };
    let poll = Op::PollEvents(255);
    // (name, input, messages received, code of the terminal event)
    let cases: Vec<(&str, ConnInput, usize, u16)> = vec![
        (
            "echo-server",
            ConnInput {
                ops: vec![
                    pf(0, 1, b"hello"),
                    poll.clone(),
                    text("hello"),
                    Op::Transmit,
                    close(1000, ""),
                    poll.clone(),
                    Op::Transmit,
                ],
                ..base.clone()
            },
            1,
            1000,
        ),
        (
            "echo-client",
            ConnInput {
                server: false,
                ops: vec![
                    text("hi"),
                    Op::Transmit,
                    pf(0, 1, b"hi"),
                    pf(0, 2, &[0, 1, 2]),
                    poll.clone(),
                    Op::Close {
                        code: 1000,
                        reason: b"done".to_vec(),
                    },
                    Op::Transmit,
                    close(1000, "done"),
                    poll.clone(),
                ],
                ..base.clone()
            },
            2,
            1000,
        ),
        (
            "handshake-server-deflate",
            ConnInput {
                handshake: true,
                deflate,
                ops: vec![
                    pf(COMPRESS, 1, b"compressed hello, compressed hello"),
                    poll.clone(),
                    text(&"reply ".repeat(20)),
                    Op::Transmit,
                    close(1001, "going"),
                    poll.clone(),
                    Op::Transmit,
                ],
                ..base.clone()
            },
            1,
            1001,
        ),
        (
            "handshake-client-deflate",
            ConnInput {
                server: false,
                handshake: true,
                deflate,
                ops: vec![
                    text(&"abc".repeat(30)),
                    Op::Transmit,
                    pf(COMPRESS, 2, &[9; 500]),
                    pf(COMPRESS | 0x40, 1, "ünïcödé ünïcödé ünïcödé".as_bytes()),
                    poll.clone(),
                    Op::Close {
                        code: 4000,
                        reason: vec![],
                    },
                    Op::Transmit,
                    close(4000, ""),
                    poll.clone(),
                ],
                ..base.clone()
            },
            2,
            4000,
        ),
        (
            "fragmented-with-ping",
            ConnInput {
                ops: vec![
                    pf(FRAG, 1, b"Hel"),
                    pf(0, 9, b"ping"),
                    pf(FRAG, 0, b"lo, "),
                    pf(0, 0, b"world"),
                    poll.clone(),
                    Op::Transmit,
                ],
                ..base.clone()
            },
            1,
            1006,
        ),
        (
            "stream-fragments",
            ConnInput {
                stream_fragments: true,
                ops: vec![
                    pf(FRAG, 2, &[1; 100]),
                    pf(FRAG, 0, &[2; 100]),
                    poll.clone(),
                    pf(0, 0, &[3; 10]),
                    poll.clone(),
                ],
                ..base.clone()
            },
            1,
            1006,
        ),
        (
            "keepalive-ping-then-pong-timeout",
            ConnInput {
                server: false,
                ops: vec![
                    Op::FireTimer,
                    Op::Transmit,
                    Op::FireTimer,
                    poll.clone(),
                    Op::Transmit,
                ],
                ..base.clone()
            },
            0,
            1006,
        ),
        (
            "keepalive-answered",
            ConnInput {
                ops: vec![
                    Op::Advance(2000),
                    Op::Transmit,
                    pf(0, 10, b""),
                    Op::Advance(2000),
                    Op::Transmit,
                    poll.clone(),
                ],
                ..base.clone()
            },
            0,
            1006,
        ),
        (
            "idle-timeout",
            ConnInput {
                idle: true,
                ops: vec![
                    Op::Advance(3001),
                    Op::Transmit,
                    poll.clone(),
                    close(1001, ""),
                    Op::Transmit,
                ],
                ..base.clone()
            },
            0,
            1001,
        ),
        (
            "local-close-times-out",
            ConnInput {
                ops: vec![
                    Op::Close {
                        code: 1000,
                        reason: b"bye".to_vec(),
                    },
                    Op::Transmit,
                    Op::FireTimer,
                    poll.clone(),
                    Op::Transmit,
                ],
                ..base.clone()
            },
            0,
            1006,
        ),
        (
            "invalid-utf8-1007",
            ConnInput {
                ops: vec![
                    pf(
                        0,
                        1,
                        &[
                            0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xed,
                            0xa0, 0x80,
                        ],
                    ),
                    poll.clone(),
                    Op::Transmit,
                ],
                ..base.clone()
            },
            0,
            1007,
        ),
        (
            "reserved-opcode-1002",
            ConnInput {
                server: false,
                ops: vec![pf(0, 5, b""), poll.clone(), Op::Transmit],
                ..base.clone()
            },
            0,
            1002,
        ),
        (
            "unmasked-to-server-1002",
            ConnInput {
                ops: vec![pf(0x10, 1, b"x"), poll.clone(), Op::Transmit],
                ..base.clone()
            },
            0,
            1002,
        ),
        (
            "too-big-1009",
            ConnInput {
                limits: LimitsChoice::Tiny,
                ops: vec![
                    pf(FRAG, 2, &[0; 60]),
                    pf(FRAG, 0, &[0; 60]),
                    pf(FRAG, 0, &[0; 60]),
                    pf(0, 0, &[0; 60]),
                    poll.clone(),
                    Op::Transmit,
                ],
                ..base.clone()
            },
            0,
            1009,
        ),
        (
            "close-code-1005-on-wire-1002",
            ConnInput {
                ops: vec![close(1005, ""), poll.clone(), Op::Transmit],
                ..base.clone()
            },
            0,
            1002,
        ),
        (
            "deferred-failure",
            ConnInput {
                ops: vec![
                    pf(0, 1, b"one"),
                    pf(0, 1, b"two"),
                    pf(0, 7, b""),
                    text("reply"),
                    Op::PollEvents(1),
                    text("reply"),
                    poll.clone(),
                    Op::Transmit,
                ],
                ..base.clone()
            },
            2,
            1002,
        ),
        (
            "eof-mid-message",
            ConnInput {
                server: false,
                ops: vec![pf(FRAG, 1, b"partial"), Op::Eof, poll.clone()],
                ..base.clone()
            },
            0,
            1006,
        ),
        (
            "raw-split-frame",
            ConnInput {
                server: false,
                ops: vec![
                    Op::Raw(vec![0x81]),
                    Op::Raw(vec![0x05, b'H', b'e']),
                    Op::Raw(b"llo".to_vec()),
                    poll.clone(),
                ],
                ..base.clone()
            },
            1,
            1006,
        ),
        (
            "prepared-broadcast",
            ConnInput {
                handshake: true,
                deflate,
                max_outgoing_frame: 16,
                ops: vec![
                    Op::Prepared {
                        text: true,
                        compressed: true,
                        data: b"broadcast to everyone, broadcast to everyone".to_vec(),
                    },
                    Op::Prepared {
                        text: false,
                        compressed: false,
                        data: vec![1; 40],
                    },
                    Op::Transmit,
                ],
                ..base.clone()
            },
            0,
            1006,
        ),
        (
            "local-misuse",
            ConnInput {
                ops: vec![
                    Op::Close {
                        code: 1005,
                        reason: vec![],
                    },
                    Op::Ping(vec![0; 126]),
                    Op::Close {
                        code: 1000,
                        reason: vec![b'r'; 124],
                    },
                    Op::Close {
                        code: 3000,
                        reason: vec![],
                    },
                    text("after close"),
                    Op::Transmit,
                ],
                ..base.clone()
            },
            0,
            1006,
        ),
    ];
    let mut seeds = Vec::new();
    for (name, input, messages, code) in cases {
        let bytes = connection::encode(&input);
        assert_eq!(
            ConnInput::arbitrary_take_rest(Unstructured::new(&bytes)).unwrap(),
            input
        );
        let outcome = connection::check_bytes(&bytes);
        assert_eq!(
            outcome.messages, messages,
            "connection seed {name}: {outcome:?}"
        );
        assert_eq!(
            outcome.close_code,
            Some(code),
            "connection seed {name}: {outcome:?}"
        );
        seeds.push(seed("connection", name, bytes));
    }
    seeds
}

// ---------------------------------------------------------------- deflate

fn dm(text: bool, payload: Vec<u8>, splits: Vec<u16>) -> DeflateMessage {
    DeflateMessage {
        text,
        compressed: true,
        splits,
        payload,
    }
}

fn deflate_seeds() -> Vec<Seed> {
    let hello = vec![0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    let json = br#"{"type":"update","id":1234,"values":[1,2,3,4,5],"text":"the quick brown fox"}"#
        .repeat(12);
    let mut invalid = "valid text, then ".repeat(4).into_bytes();
    invalid.extend_from_slice(&[0xc3, 0x28]);
    let mut masked_hello = hello.clone();
    apply_mask(&mut masked_hello, KEY, 0);
    let base = DeflateInput {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: 7,
        limit: 2,
        stream_fragments: false,
        messages: vec![],
    };
    // (name, input, messages delivered, close code)
    let cases: Vec<(&str, DeflateInput, usize, Option<u16>)> = vec![
        (
            "rfc7692-7.2.3.1-hello",
            DeflateInput {
                messages: vec![dm(true, hello.clone(), vec![])],
                ..base.clone()
            },
            1,
            None,
        ),
        (
            "rfc7692-7.2.3.1-fragmented",
            DeflateInput {
                messages: vec![dm(true, hello.clone(), vec![2, 0])],
                ..base.clone()
            },
            1,
            None,
        ),
        (
            "rfc7692-7.2.3.2-context-takeover",
            DeflateInput {
                messages: vec![
                    dm(true, hello.clone(), vec![]),
                    dm(true, vec![0xf2, 0x00, 0x11, 0x00, 0x00], vec![]),
                ],
                ..base.clone()
            },
            2,
            None,
        ),
        (
            "rfc7692-7.2.3.2-no-context-takeover",
            DeflateInput {
                server_no_context_takeover: true,
                messages: vec![
                    dm(true, hello.clone(), vec![]),
                    dm(true, hello.clone(), vec![]),
                ],
                ..base.clone()
            },
            2,
            None,
        ),
        (
            "rfc7692-7.2.3.3-stored",
            DeflateInput {
                messages: vec![dm(
                    true,
                    vec![
                        0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
                    ],
                    vec![],
                )],
                ..base.clone()
            },
            1,
            None,
        ),
        (
            "rfc7692-7.2.3.4-bfinal",
            DeflateInput {
                messages: vec![
                    dm(
                        true,
                        vec![0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00],
                        vec![],
                    ),
                    dm(true, hello.clone(), vec![]),
                ],
                ..base.clone()
            },
            2,
            None,
        ),
        (
            "rfc7692-7.2.3.5-two-blocks",
            DeflateInput {
                messages: vec![dm(
                    true,
                    vec![
                        0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07,
                        0x00,
                    ],
                    vec![5],
                )],
                ..base.clone()
            },
            1,
            None,
        ),
        (
            "rfc7692-7.2.3.6-empty",
            DeflateInput {
                messages: vec![dm(false, vec![0x00], vec![]), dm(false, vec![], vec![])],
                ..base.clone()
            },
            2,
            None,
        ),
        (
            "json-level-9-fragmented",
            DeflateInput {
                messages: vec![dm(true, compress(&json, 9), vec![10, 100, 3])],
                ..base.clone()
            },
            1,
            None,
        ),
        (
            "json-level-1-stream",
            DeflateInput {
                stream_fragments: true,
                messages: vec![dm(true, compress(&json, 1), vec![20, 20])],
                ..base.clone()
            },
            1,
            None,
        ),
        (
            "stored-level-0",
            DeflateInput {
                messages: vec![dm(false, compress(&json[..300], 0), vec![])],
                ..base.clone()
            },
            1,
            None,
        ),
        (
            "plain-between-compressed",
            DeflateInput {
                messages: vec![
                    dm(true, hello.clone(), vec![]),
                    DeflateMessage {
                        text: false,
                        compressed: false,
                        splits: vec![1],
                        payload: b"plain".to_vec(),
                    },
                    dm(true, vec![0xf2, 0x00, 0x11, 0x00, 0x00], vec![]),
                ],
                ..base.clone()
            },
            3,
            None,
        ),
        (
            "bomb-1009",
            DeflateInput {
                limit: 1,
                messages: vec![dm(false, compress(&[0u8; 200_000], 9), vec![])],
                ..base.clone()
            },
            0,
            Some(1009),
        ),
        (
            "bomb-1009-stream",
            DeflateInput {
                limit: 1,
                stream_fragments: true,
                messages: vec![dm(false, compress(&[b'a'; 50_000], 9), vec![8, 8])],
                ..base.clone()
            },
            0,
            Some(1009),
        ),
        (
            "invalid-utf8-1007",
            DeflateInput {
                messages: vec![dm(true, compress(&invalid, 6), vec![])],
                ..base.clone()
            },
            0,
            Some(1007),
        ),
        (
            "invalid-utf8-fragmented-1007",
            DeflateInput {
                stream_fragments: true,
                messages: vec![dm(true, compress(&invalid, 6), vec![4, 4])],
                ..base.clone()
            },
            0,
            Some(1007),
        ),
        (
            "corrupt-1002",
            DeflateInput {
                messages: vec![dm(false, vec![0xff, 0xff, 0xff, 0xff], vec![])],
                ..base.clone()
            },
            0,
            Some(1002),
        ),
        (
            "masked-garbage-1002",
            DeflateInput {
                messages: vec![dm(true, masked_hello, vec![])],
                ..base.clone()
            },
            0,
            Some(1002),
        ),
        (
            "window-8-context",
            DeflateInput {
                server_max_window_bits: 0,
                messages: vec![
                    dm(true, compress(&json[..400], 6), vec![]),
                    dm(true, compress(&json[..400], 6), vec![]),
                ],
                ..base.clone()
            },
            2,
            None,
        ),
    ];
    let mut seeds = Vec::new();
    for (name, input, delivered, code) in cases {
        let bytes = deflate::encode(&input);
        assert_eq!(
            DeflateInput::arbitrary_take_rest(Unstructured::new(&bytes)).unwrap(),
            input
        );
        let outcome = deflate::check_bytes(&bytes);
        assert_eq!(
            outcome.delivered, delivered,
            "deflate seed {name}: {outcome:?}"
        );
        assert_eq!(outcome.close_code, code, "deflate seed {name}: {outcome:?}");
        seeds.push(seed("deflate", name, bytes));
    }
    seeds
}
