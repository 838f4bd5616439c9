//! What the fan-out peers (issue 22) share: counters every peer keeps the same way, reported
//! on standard error once a second while they change, and the handshake of the floor.
//!
//! Every peer sends each text or binary message any client sends to every connected client,
//! the sender included, and counts what it does with it:
//! `relayed` messages received and fanned out, `queued` deliveries handed to a socket or a
//! queue, `dropped` deliveries given up (a would-block write, a lagged receiver, a full
//! queue), `cut` connections the server closed or abandoned for it (a partial write).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// A fan-out peer's counters (atomics: some peers count from several tasks).
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections open now.
    pub conns: AtomicU64,
    /// Messages received from clients and fanned out.
    pub relayed: AtomicU64,
    /// Deliveries written or queued.
    pub queued: AtomicU64,
    /// Deliveries given up.
    pub dropped: AtomicU64,
    /// Connections cut for falling behind.
    pub cut: AtomicU64,
}

impl Counters {
    /// All zero, for a `static`.
    pub const fn new() -> Self {
        Self {
            conns: AtomicU64::new(0),
            relayed: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            cut: AtomicU64::new(0),
        }
    }

    /// Adds `n` to `counter`.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    /// Subtracts one from `counter`.
    pub fn sub_one(counter: &AtomicU64) {
        counter.fetch_sub(1, Relaxed);
    }

    /// `conns=… relayed=… queued=… dropped=… cut=…`.
    pub fn line(&self) -> String {
        format!(
            "conns={} relayed={} queued={} dropped={} cut={}",
            self.conns.load(Relaxed),
            self.relayed.load(Relaxed),
            self.queued.load(Relaxed),
            self.dropped.load(Relaxed),
            self.cut.load(Relaxed),
        )
    }
}

/// Prints `NAME: stats …` on standard error once a second while the counters change
/// (`scripts/bench-fanout.sh` keeps the last line). Spawn it on the peer's runtime.
pub async fn report(name: &'static str, counters: &'static Counters) {
    let mut last = String::new();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let line = counters.line();
        if line != last {
            eprintln!("{name}: stats {line}");
            last = line;
        }
    }
}

/// The `Sec-WebSocket-Accept` value for `key` (RFC 6455 §4.2.2).
pub fn accept_key(key: &[u8]) -> String {
    use base64::Engine as _;
    use sha1::{Digest, Sha1};
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// The `101 Switching Protocols` response to the request head `head`, or `None` when it
/// has no `Sec-WebSocket-Key`.
pub fn switching_response(head: &[u8]) -> Option<Vec<u8>> {
    let key = head.split(|&b| b == b'\n').find_map(|line| {
        let colon = line.iter().position(|&b| b == b':')?;
        line[..colon]
            .eq_ignore_ascii_case(b"sec-websocket-key")
            .then(|| line[colon + 1..].trim_ascii())
    })?;
    Some(
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            accept_key(key)
        )
        .into_bytes(),
    )
}

/// A client frame that is not masked (RFC 6455 §5.1: the server closes the connection).
#[derive(Debug, PartialEq, Eq)]
pub struct Unmasked;

/// A client frame parsed from the front of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct ClientFrame {
    /// The first byte (FIN, opcode).
    pub b0: u8,
    /// Where the payload starts.
    pub payload_at: usize,
    /// The payload's length.
    pub len: usize,
    /// The masking key.
    pub mask: [u8; 4],
}

impl ClientFrame {
    /// Parses the masked frame at the front of `buf`: `Ok(None)` when incomplete, `Err` when
    /// not masked.
    pub fn parse(buf: &[u8]) -> Result<Option<Self>, Unmasked> {
        let [b0, b1, ..] = *buf else { return Ok(None) };
        if b1 & 0x80 == 0 {
            return Err(Unmasked);
        }
        let (header, len) = match b1 & 0x7F {
            126 => match buf.get(2..4) {
                Some(l) => (4, usize::from(u16::from_be_bytes([l[0], l[1]]))),
                None => return Ok(None),
            },
            127 => match buf.get(2..10) {
                Some(l) => (
                    10,
                    u64::from_be_bytes(l.try_into().expect("8 bytes")) as usize,
                ),
                None => return Ok(None),
            },
            n => (2, usize::from(n)),
        };
        let Some(mask) = buf.get(header..header + 4) else {
            return Ok(None);
        };
        if buf.len() < header + 4 + len {
            return Ok(None);
        }
        Ok(Some(Self {
            b0,
            payload_at: header + 4,
            len,
            mask: mask.try_into().expect("4 bytes"),
        }))
    }

    /// The whole frame's length.
    pub fn total(&self) -> usize {
        self.payload_at + self.len
    }

    /// Appends the unmasked server frame carrying the same payload (from `buf`) to `out`.
    pub fn server_frame(&self, buf: &[u8], out: &mut Vec<u8>) {
        out.push(self.b0);
        match self.len {
            0..=125 => out.push(self.len as u8),
            126..=0xFFFF => {
                out.push(126);
                out.extend_from_slice(&(self.len as u16).to_be_bytes());
            }
            _ => {
                out.push(127);
                out.extend_from_slice(&(self.len as u64).to_be_bytes());
            }
        }
        let payload = &buf[self.payload_at..self.total()];
        out.extend(
            payload
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ self.mask[i & 3]),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_1_3_accept_key() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn client_frames_round_trip() {
        for size in [0, 20, 125, 126, 1024, 70_000] {
            let text = vec![b'a'; size];
            let mut f = Vec::new();
            crate::wire::client_text_frame(&text, &mut f);
            assert_eq!(ClientFrame::parse(&f[..f.len() - 1]), Ok(None));
            let frame = ClientFrame::parse(&f).unwrap().unwrap();
            assert_eq!(frame.total(), f.len());
            let mut out = Vec::new();
            frame.server_frame(&f, &mut out);
            assert_eq!(crate::wire::server_frame_len(&out), Some(out.len()));
            assert_eq!(&out[out.len() - size..], &text[..]);
        }
    }
}
