//! Property tests over the output queue: whatever mix of small messages (encoded as they
//! are sent), large ones (queued and encoded when taken), frames prepared once, and
//! automatic pongs a side queues, and whenever `poll_transmit` is called (into an empty
//! buffer or after bytes already in it), the peer receives the messages in the order they
//! were sent, each ping's answer comes after what was queued before it, and
//! `buffered_output` is exactly what `poll_transmit` hands out. The same holds when the
//! output is taken with `poll_transmit_vectored` (shared bytes as chunks), or a mix of
//! both.

mod util;

use bytes::Bytes;
use proptest::prelude::*;
use tether_core::{Event, Message, PreparedFrame, Transmit};
use util::{Pair, Side};

#[derive(Clone, Debug)]
enum Op {
    /// Sends a message of this many bytes (binary, or text when the flag is set).
    Send(usize, bool),
    /// Sends a message of this many bytes through a `PreparedFrame`.
    SendPrepared(usize),
    /// The peer pings with this many bytes (4 or more: each ping's data is its own); this
    /// side takes it in (and queues the pong).
    PeerPing(usize),
    /// This side's output goes to the peer, taken into a buffer that already holds this
    /// many unrelated bytes; with `poll_transmit_vectored` when the flag is set.
    Transmit(usize, bool),
}

fn op() -> impl Strategy<Value = Op> {
    // Sizes around the inline limit (4,096 bytes of payload) and the length encodings.
    let size = prop_oneof![0usize..=130, 4000usize..=4200, 60_000usize..=70_000];
    prop_oneof![
        4 => (size.clone(), any::<bool>()).prop_map(|(n, t)| Op::Send(n, t)),
        1 => size.prop_map(Op::SendPrepared),
        2 => (4usize..=125).prop_map(Op::PeerPing),
        2 => (0usize..=64, any::<bool>()).prop_map(|(j, v)| Op::Transmit(j, v)),
    ]
}

/// The `i`-th message of a run: its bytes say which one it is.
fn message(i: usize, len: usize, text: bool) -> Message {
    let tag = format!("{i}:");
    let body: String = tag.chars().cycle().take(len).collect();
    if text {
        Message::text(body)
    } else {
        Message::Binary(Bytes::from(body))
    }
}

/// Takes the output of `from` into a buffer holding `junk` bytes first, checks it against
/// `buffered_output`, and feeds it to `to`.
fn transmit(from: &mut Side, to: &mut Side, junk: usize, vectored: bool, now: std::time::Instant) {
    let expected = from.conn.buffered_output();
    let mut buf = vec![0xEE; junk];
    let mut rounds = 0;
    if vectored {
        let mut chunks = Vec::new();
        while let Some(t) = from.conn.poll_transmit_vectored(&mut buf, &mut chunks) {
            assert_eq!(t, Transmit::Data, "no shutdown while open");
            rounds += 1;
            assert!(rounds < 3, "poll_transmit_vectored keeps handing out data");
        }
        // Splice the chunks in where they belong.
        let mut spliced = buf[..junk].to_vec();
        let mut at = junk;
        for (offset, bytes) in &chunks {
            assert!(
                *offset >= at && *offset <= buf.len(),
                "chunk offsets out of order"
            );
            spliced.extend_from_slice(&buf[at..*offset]);
            spliced.extend_from_slice(bytes);
            at = *offset;
        }
        spliced.extend_from_slice(&buf[at..]);
        buf = spliced;
    } else {
        while let Some(t) = from.conn.poll_transmit(&mut buf) {
            assert_eq!(t, Transmit::Data, "no shutdown while open");
            rounds += 1;
            assert!(rounds < 3, "poll_transmit keeps handing out data");
        }
    }
    assert!(
        buf[..junk].iter().all(|&b| b == 0xEE),
        "bytes before the output were changed"
    );
    assert_eq!(
        buf.len() - junk,
        expected,
        "buffered_output disagrees with the output"
    );
    assert_eq!(from.conn.buffered_output(), 0);
    to.conn.handle_input(now, &buf[junk..]);
    to.drain_events();
}

fn run(ops: &[Op], server_sends: bool) {
    let mut pair = Pair::open();
    let now = pair.now;
    let (me, peer) = if server_sends {
        (&mut pair.server, &mut pair.client)
    } else {
        (&mut pair.client, &mut pair.server)
    };
    let mut sent = Vec::new();
    let mut pings = Vec::new();
    // How many messages were sent before each ping.
    let mut sent_before = Vec::new();
    for op in ops {
        match *op {
            Op::Send(len, text) => {
                let m = message(sent.len(), len, text);
                me.conn.send(now, m.clone()).expect("send");
                sent.push(m);
            }
            Op::SendPrepared(len) => {
                let m = message(sent.len(), len, false);
                let frame = PreparedFrame::new(&m).expect("a data message");
                me.conn.send_prepared(now, &frame).expect("send_prepared");
                sent.push(m);
            }
            Op::PeerPing(len) => {
                let payload = Bytes::from(format!("{:04}", pings.len()).repeat(len / 4 + 1));
                let payload = payload.slice(..len);
                peer.conn.ping(now, payload.clone()).expect("ping");
                let mut wire = Vec::new();
                while peer.conn.poll_transmit(&mut wire).is_some() {}
                me.conn.handle_input(now, &wire);
                me.drain_events();
                pings.push(payload);
                sent_before.push(sent.len());
            }
            Op::Transmit(junk, vectored) => transmit(me, peer, junk, vectored, now),
        }
    }
    transmit(me, peer, 0, false, now);
    assert_eq!(
        peer.messages(),
        sent,
        "messages lost, changed or out of order"
    );
    // Every pong answers one of the pings, in order, and after the messages sent before
    // that ping; the last ping is always answered (a later ping may replace an answer
    // still waiting behind a large backlog).
    let mut received = 0;
    let mut answered = Vec::new();
    for e in &peer.events {
        match e {
            Event::Message(_) => received += 1,
            Event::Pong(p) => {
                let n = pings
                    .iter()
                    .position(|q| q == p)
                    .expect("a pong answers a ping");
                assert!(
                    answered.last().is_none_or(|&last| n > last),
                    "pongs out of order"
                );
                assert!(
                    received >= sent_before[n],
                    "a pong overtook messages sent before"
                );
                answered.push(n);
            }
            _ => {}
        }
    }
    if !pings.is_empty() {
        assert_eq!(
            answered.last(),
            Some(&(pings.len() - 1)),
            "the last ping unanswered"
        );
    }
    assert!(peer.closed().is_none(), "{:?}", peer.events);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn the_output_keeps_its_order_from_a_server(ops in prop::collection::vec(op(), 1..40)) {
        run(&ops, true);
    }

    #[test]
    fn the_output_keeps_its_order_from_a_client(ops in prop::collection::vec(op(), 1..40)) {
        run(&ops, false);
    }
}

/// A frame prepared once goes out of every server connection as the prepared bytes
/// themselves (no copy), and a large unmasked payload as the sender's bytes; bytes shorter
/// than 256 (a small prepared frame, frames encoded as they were sent) are copied, which
/// costs less than a slice of their own; a client masks, so it copies.
#[test]
fn vectored_output_shares_prepared_frames_and_large_payloads_without_copying() {
    let mut pairs: Vec<util::Pair> = (0..3).map(|_| util::Pair::open()).collect();
    let frame = PreparedFrame::new(&Message::text("t".repeat(300))).expect("a data message");
    let small = PreparedFrame::new(&Message::text("tick")).expect("a data message");
    let large = Bytes::from(vec![7u8; 10_000]);
    for pair in &mut pairs {
        let now = pair.now;
        pair.server.conn.send(now, Message::text("small")).unwrap();
        pair.server.conn.send_prepared(now, &frame).unwrap();
        pair.server.conn.send_prepared(now, &small).unwrap();
        pair.server
            .conn
            .send(now, Message::Binary(large.clone()))
            .unwrap();
        let mut buf = Vec::new();
        let mut chunks = Vec::new();
        assert_eq!(
            pair.server
                .conn
                .poll_transmit_vectored(&mut buf, &mut chunks),
            Some(Transmit::Data)
        );
        // The small frame, encoded when it was sent, is copied; then the prepared frame
        // is shared; then the small prepared frame and the large payload's header are
        // copied, and the large payload is shared.
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].1.as_ptr(), frame.as_bytes().as_ptr(), "copied");
        assert_eq!(chunks[1].1.as_ptr(), large.as_ptr(), "copied");
        assert_eq!(&buf[..7], b"\x81\x05small");
        assert_eq!(&buf[7..13], b"\x81\x04tick");
        assert_eq!(buf.len(), 7 + 6 + 4);
        assert_eq!(chunks.iter().map(|c| c.0).collect::<Vec<_>>(), [7, 17]);
        pair.client
            .conn
            .send(now, Message::Binary(large.clone()))
            .unwrap();
        let (mut buf, mut chunks) = (Vec::new(), Vec::new());
        pair.client
            .conn
            .poll_transmit_vectored(&mut buf, &mut chunks);
        assert!(chunks.is_empty(), "a client's frames are masked: encoded");
        assert_eq!(buf.len(), 8 + large.len());
    }
}
