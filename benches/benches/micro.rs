//! Criterion micro benchmarks of tether-core's hot paths (issue 7):
//! frame header decode, unmasking, frame encode, decoding and unmasking a small frame,
//! UTF-8 validation, deflate and inflate, a `Connection` decoding many small frames, and
//! the handshake parse.
//!
//! `cargo bench -p tether-bench --bench micro` (add `-- --quick` for a short run).
//!
//! The core's UTF-8 validator and its deflate streams are private, so those are measured
//! through a `Connection`: a text message against the same message sent as binary gives
//! the cost of validation; a server connection with permessage-deflate (no context
//! takeover, so that the same compressed frame can be fed again and again) gives deflate
//! (`send` + `poll_transmit`) and inflate (`handle_input` + `poll_event`).

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;
use tether_core::{
    Config, Connection, DeflateConfig, DeflateParams, Event, FrameDecoder, FrameHeader, Message,
    OpCode, Role, Utf8Bytes, apply_mask, encode_frame,
};

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A masked client frame carrying `payload`.
fn client_frame(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(FrameHeader::new(opcode, 0), Some(KEY), payload, &mut out);
    out
}

fn open(role: Role, deflate: Option<DeflateParams>, config: Config) -> Connection {
    Connection::open(Arc::new(config), role, deflate, [9; 32], Instant::now())
}

fn header_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame_header_decode");
    let small = client_frame(OpCode::Binary, &[0; 20]);
    let medium = client_frame(OpCode::Binary, &[0; 1024]);
    g.bench_function("masked_20B", |b| {
        b.iter(|| FrameHeader::decode(black_box(&small)))
    });
    g.bench_function("masked_16bit_len", |b| {
        b.iter(|| FrameHeader::decode(black_box(&medium)))
    });
    g.finish();
}

fn unmask(c: &mut Criterion) {
    let mut g = c.benchmark_group("unmask");
    for (name, size) in [
        ("16B", 16),
        ("1KiB", 1024),
        ("16KiB", 16 * 1024),
        ("64KiB", 64 * 1024),
        ("1MiB", 1 << 20),
    ] {
        let mut buf = vec![0x5au8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(name, |b| {
            b.iter(|| apply_mask(black_box(&mut buf), black_box(KEY), 0))
        });
    }
    // A payload as it sits in a receive buffer: after a 2-byte header, so not aligned.
    let size = 64 * 1024;
    let mut buf = vec![0x5au8; size + 2];
    g.throughput(Throughput::Bytes(size as u64));
    g.bench_function("64KiB_unaligned", |b| {
        b.iter(|| apply_mask(black_box(&mut buf[2..]), black_box(KEY), 0))
    });
    // Ceilings for the 64 KiB rows. Where 64 KiB outgrows the L1 data cache, an in-place
    // unmask streams the buffer through L2: every line comes in from L2 and goes back dirty.
    // - `fill_reference`: filling the same buffer (`memset`) only stores, but each line still
    //   comes in from L2 (for ownership) and is written back: the same traffic as unmasking,
    //   with no loads or XORs, so a practical ceiling for any in-place unmask.
    // - `read_reference`: an XOR fold of 64 KiB, loads only (AVX2 when the CPU has it, like
    //   the unmask): what L2 delivers when nothing has to be written back. The gap to the fill
    //   row is the cost of the write-backs. The 64 KiB start on a cache line, as the unmask's
    //   bulk does (loads that straddle two lines took it from 107 to 65 GiB/s on a Xeon).
    // - `copy_reference`: `copy_from_slice` from another 64 KiB buffer into this one (128 KiB
    //   touched: two lines in and one written back per line of payload).
    // - `after_copy`: that copy, then the unmask, as the core does it: the payload has just
    //   been written forward (by `read` into the receive buffer, or by `poll_transmit` into
    //   the output before masking). Its time minus `copy_reference`'s is the unmask's share.
    // - `x16_rotating`: 16 buffers of 64 KiB unmasked in turn, so that nothing of a buffer
    //   is left in L1 from its last pass: the streaming rate with no reuse between calls,
    //   which the plain 64 KiB row should match.
    let mut buf = vec![0x5au8; size];
    g.bench_function("64KiB_fill_reference", |b| {
        b.iter(|| black_box(&mut buf).fill(black_box(0xa5)))
    });
    let raw = vec![0x5au8; size + 63];
    let start = raw.as_ptr().align_offset(64).min(63);
    let lines = &raw[start..start + size];
    g.bench_function("64KiB_read_reference", |b| {
        b.iter(|| xor_fold(black_box(lines)))
    });
    let src = vec![0xa5u8; size];
    g.bench_function("64KiB_copy_reference", |b| {
        b.iter(|| black_box(&mut buf).copy_from_slice(black_box(&src)))
    });
    g.bench_function("64KiB_after_copy", |b| {
        b.iter(|| {
            buf.copy_from_slice(black_box(&src));
            apply_mask(black_box(&mut buf), black_box(KEY), 0)
        })
    });
    let mut bufs = vec![vec![0x5au8; size]; 16];
    let mut next = 0;
    g.bench_function("64KiB_x16_rotating", |b| {
        b.iter(|| {
            next = (next + 1) % bufs.len();
            apply_mask(black_box(&mut bufs[next]), black_box(KEY), 0)
        })
    });
    g.finish();
}

/// XORs `buf` together as `u64` words (a read-only pass for the `read_reference` row),
/// compiled for AVX2 as well as the baseline like the core's unmask.
#[multiversion::multiversion(targets("x86_64+avx2"))]
fn xor_fold(buf: &[u8]) -> u64 {
    let mut acc = [0u64; 8];
    for block in buf.chunks_exact(64) {
        for (a, word) in acc.iter_mut().zip(block.chunks_exact(8)) {
            *a ^= u64::from_le_bytes(word.try_into().expect("8 bytes"));
        }
    }
    acc.iter().fold(0, |a, w| a ^ w)
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame_encode");
    let mut out = Vec::with_capacity(2048);
    let small = [b'x'; 20];
    let kib = [b'x'; 1024];
    g.bench_function("server_20B", |b| {
        b.iter(|| {
            out.clear();
            encode_frame(
                FrameHeader::new(OpCode::Binary, 0),
                None,
                black_box(&small),
                &mut out,
            );
        })
    });
    g.bench_function("client_masked_1KiB", |b| {
        b.iter(|| {
            out.clear();
            encode_frame(
                FrameHeader::new(OpCode::Binary, 0),
                Some(KEY),
                black_box(&kib),
                &mut out,
            );
        })
    });
    g.finish();
}

/// Decoding and unmasking one small (20-byte) masked frame with `FrameDecoder`, as ns per
/// frame over a buffer of 1000 (the buffer's refill is outside the timing).
fn decode_small_frame(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode_unmask_small_frame");
    let frame = client_frame(OpCode::Binary, &[b'y'; 20]);
    let input: Vec<u8> = frame
        .iter()
        .copied()
        .cycle()
        .take(frame.len() * 1000)
        .collect();
    let decoder = FrameDecoder::new(Role::Server, 1 << 20);
    g.throughput(Throughput::Elements(1000));
    g.bench_function("FrameDecoder_20B_x1000", |b| {
        b.iter_batched_ref(
            || BytesMut::from(&input[..]),
            |buf| {
                while let Some(f) = decoder.decode(buf).expect("valid") {
                    black_box(f);
                }
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// A server `Connection` decoding a buffer of 1000 small frames (handle_input_buf, then
/// every `poll_event`): ns per frame; and the same with each message echoed back
/// (`send` + one `poll_transmit` for the batch).
fn connection_many_frames(c: &mut Criterion) {
    let mut g = c.benchmark_group("connection_small_frames");
    let frame = client_frame(OpCode::Binary, &[b'z'; 20]);
    let input: Vec<u8> = frame
        .iter()
        .copied()
        .cycle()
        .take(frame.len() * 1000)
        .collect();
    g.throughput(Throughput::Elements(1000));
    let mut server = open(Role::Server, None, Config::default());
    g.bench_function("decode_20B_x1000", |b| {
        b.iter_batched_ref(
            || BytesMut::from(&input[..]),
            |buf| {
                let now = Instant::now();
                server.handle_input_buf(now, buf);
                let mut n = 0;
                while let Some(e) = server.poll_event() {
                    black_box(&e);
                    n += 1;
                }
                assert_eq!(n, 1000);
            },
            BatchSize::SmallInput,
        )
    });
    let mut out = Vec::new();
    g.bench_function("echo_20B_x1000", |b| {
        b.iter_batched_ref(
            || BytesMut::from(&input[..]),
            |buf| {
                let now = Instant::now();
                server.handle_input_buf(now, buf);
                while let Some(e) = server.poll_event() {
                    if let Event::Message(m) = e {
                        server.send(now, m).expect("send");
                    }
                }
                out.clear();
                while server.poll_transmit(&mut out).is_some() {}
                black_box(&out);
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn utf8(c: &mut Criterion) {
    let mut g = c.benchmark_group("utf8");
    let ascii: String = "The quick brown fox jumps over the lazy dog. "
        .chars()
        .cycle()
        .take(64 * 1024)
        .collect();
    let multi: String = "κόσμε 日本語テキスト 𝄞 Grüße "
        .chars()
        .cycle()
        .take(20_000)
        .collect();
    for (name, text) in [("ascii", &ascii), ("multibyte", &multi)] {
        let bytes = text.as_bytes();
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        // What the core's incremental validator runs on each piece.
        g.bench_function(format!("simdutf8_{name}_{}B", bytes.len()), |b| {
            b.iter(|| simdutf8::compat::from_utf8(black_box(bytes)).is_ok())
        });
        // Through a server Connection: a text frame (validated) against the same bytes as
        // binary (not validated).
        for (kind, opcode) in [("text", OpCode::Text), ("binary", OpCode::Binary)] {
            let frame = client_frame(opcode, bytes);
            let mut server = open(Role::Server, None, Config::default());
            g.bench_function(format!("connection_{kind}_{name}_{}B", bytes.len()), |b| {
                b.iter_batched_ref(
                    || BytesMut::from(&frame[..]),
                    |buf| {
                        server.handle_input_buf(Instant::now(), buf);
                        let Some(Event::Message(m)) = server.poll_event() else {
                            panic!("no message")
                        };
                        black_box(m);
                    },
                    BatchSize::SmallInput,
                )
            });
        }
    }
    g.finish();
}

fn deflate(c: &mut Criterion) {
    let mut g = c.benchmark_group("deflate");
    let params = DeflateParams {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    };
    let config = || {
        let mut config = Config::default();
        config.deflate = DeflateConfig::enabled();
        config.deflate.server_no_context_takeover = true;
        config.deflate.client_no_context_takeover = true;
        config
    };
    // A 16 KiB JSON-like text: compressible as real messages are.
    let mut text = String::new();
    let mut i = 0u32;
    while text.len() < 16 * 1024 {
        text.push_str(&format!(
            "{{\"id\":{i},\"user\":\"user{}\",\"price\":{}.{:02},\"tags\":[\"a{}\",\"b\"]}},",
            i % 97,
            i * 31 % 1000,
            i % 100,
            i % 13
        ));
        i += 1;
    }
    let text = Bytes::from(text);
    g.throughput(Throughput::Bytes(text.len() as u64));

    let mut server = open(Role::Server, Some(params), config());
    let mut out = Vec::new();
    g.bench_function("deflate_16KiB_json", |b| {
        b.iter(|| {
            let now = Instant::now();
            server
                .send(
                    now,
                    Message::Text(Utf8Bytes::try_from_bytes(text.clone()).expect("utf8")),
                )
                .expect("send");
            out.clear();
            while server.poll_transmit(&mut out).is_some() {}
            black_box(&out);
        })
    });

    // A compressed client frame, made once by a client connection.
    let mut client = open(Role::Client, Some(params), config());
    let now = Instant::now();
    client
        .send(
            now,
            Message::Text(Utf8Bytes::try_from_bytes(text.clone()).expect("utf8")),
        )
        .expect("send");
    let mut wire = Vec::new();
    while client.poll_transmit(&mut wire).is_some() {}
    assert!(wire.len() < text.len() / 2, "the frame is compressed");
    let mut server = open(Role::Server, Some(params), config());
    g.bench_function("inflate_16KiB_json", |b| {
        b.iter_batched_ref(
            || BytesMut::from(&wire[..]),
            |buf| {
                server.handle_input_buf(Instant::now(), buf);
                match server.poll_event() {
                    Some(Event::Message(m)) => assert_eq!(m.len(), text.len()),
                    other => panic!("{other:?}"),
                }
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn handshake(c: &mut Criterion) {
    let mut g = c.benchmark_group("handshake");
    let request: &[u8] = b"GET /chat?room=1 HTTP/1.1\r\nHost: example.com:8080\r\n\
        User-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0\r\n\
        Accept: */*\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate\r\n\
        Sec-WebSocket-Version: 13\r\nOrigin: https://example.com\r\n\
        Sec-WebSocket-Extensions: permessage-deflate\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nConnection: keep-alive, Upgrade\r\n\
        Cookie: session=0123456789abcdef\r\nPragma: no-cache\r\nCache-Control: no-cache\r\n\
        Upgrade: websocket\r\n\r\n";
    let config = Arc::new(Config::default());
    g.bench_function("parse_request", |b| {
        b.iter(|| {
            let now = Instant::now();
            let mut server = Connection::server(config.clone(), now);
            server.handle_input(now, black_box(request));
            match server.poll_event() {
                Some(Event::Request(r)) => black_box(r),
                other => panic!("{other:?}"),
            };
        })
    });
    let mut out = Vec::new();
    g.bench_function("parse_and_accept", |b| {
        b.iter(|| {
            let now = Instant::now();
            let mut server = Connection::server(config.clone(), now);
            server.handle_input(now, black_box(request));
            let Some(Event::Request(_)) = server.poll_event() else {
                panic!("no request")
            };
            server
                .accept(now, tether_core::Accept::new())
                .expect("accept");
            out.clear();
            while server.poll_transmit(&mut out).is_some() {}
            black_box(&out);
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    header_decode,
    unmask,
    encode,
    decode_small_frame,
    connection_many_frames,
    utf8,
    deflate,
    handshake
);
criterion_main!(benches);
