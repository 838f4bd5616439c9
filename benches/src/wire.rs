//! The bytes a benchmark client writes and reads, built once: the upgrade request, masked
//! client frames, and the length of a server frame.

/// The `Sec-WebSocket-Key` every benchmark client sends (RFC 6455 §1.3's sample nonce).
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// A minimal upgrade request (RFC 6455 §4.1) for `host`, offering no extension.
pub fn upgrade_request(host: &str) -> Vec<u8> {
    upgrade_request_to(host, "/")
}

/// [`upgrade_request`] for the resource `path` (`/ws` for the fan-out peers).
pub fn upgrade_request_to(host: &str, path: &str) -> Vec<u8> {
    upgrade_request_with(host, path, "")
}

/// [`upgrade_request_to`] with `headers` added (each line ending in `\r\n`, e.g.
/// `Authorization: Bearer TOKEN\r\n`).
pub fn upgrade_request_with(host: &str, path: &str, headers: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{headers}\r\n"
    )
    .into_bytes()
}

/// Appends a masked text frame (client to server) carrying `text` to `out`.
pub fn client_text_frame(text: &[u8], out: &mut Vec<u8>) {
    masked_frame(0x81, text, out);
}

/// Appends a masked pong (client to server) answering a ping that carried `payload`.
pub fn pong_frame(payload: &[u8], out: &mut Vec<u8>) {
    masked_frame(0x8A, payload, out);
}

/// Appends a masked frame with first byte `b0` (FIN and opcode) carrying `payload`.
fn masked_frame(b0: u8, text: &[u8], out: &mut Vec<u8>) {
    let key = [0x12, 0x34, 0x56, 0x78];
    let size = text.len();
    out.push(b0);
    match size {
        0..=125 => out.push(0x80 | size as u8),
        126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(size as u16).to_be_bytes());
        }
        _ => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(size as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&key);
    out.extend(text.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
}

/// Where the head of an HTTP response ends in `buf` (just past the blank line), if it does.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// Whether an HTTP response head is `101 Switching Protocols`.
pub fn is_switching(head: &[u8]) -> bool {
    head.starts_with(b"HTTP/1.1 101")
}

/// A masked binary frame (client to server) carrying `size` bytes of printable payload.
pub fn client_frame(size: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
    let mut out = Vec::with_capacity(size + 14);
    masked_frame(0x82, &payload, &mut out);
    out
}

/// The source address of a load client's `i`-th connection: 127.x.y.z with x >= 1, varied
/// per run (by the process id), so that many connections to one port do not run out of
/// source ports on one address.
pub fn src_ip(i: usize) -> std::net::Ipv4Addr {
    let n = (std::process::id() as usize)
        .wrapping_mul(7919)
        .wrapping_add(i)
        % (250 * 250 * 250);
    std::net::Ipv4Addr::new(
        127,
        1 + (n / 62_500) as u8,
        ((n / 250) % 250) as u8,
        1 + (n % 250) as u8,
    )
}

/// The total length (header and payload) of the unmasked server frame at the front of
/// `buf`, or `None` when its header is not complete yet.
pub fn server_frame_len(buf: &[u8]) -> Option<usize> {
    let (&b1, rest) = buf.get(1).zip(buf.get(2..))?;
    let masked = if b1 & 0x80 != 0 { 4 } else { 0 };
    let (header, len) = match b1 & 0x7F {
        126 => (
            4,
            usize::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?)),
        ),
        127 => (
            10,
            u64::from_be_bytes(rest.get(..8)?.try_into().ok()?) as usize,
        ),
        n => (2, usize::from(n)),
    };
    Some(header + masked + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_lengths() {
        for size in [0, 20, 125, 126, 1024, 16384, 65535, 65536] {
            let f = client_frame(size);
            assert_eq!(server_frame_len(&f), Some(f.len()));
            // The same frame unmasked is 4 bytes shorter.
            let mut s = f.clone();
            s[1] &= 0x7F;
            assert_eq!(server_frame_len(&s), Some(f.len() - 4));
        }
    }
}
