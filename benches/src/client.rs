//! Opening a load client's connections: a TCP connection from a source address of
//! 127.0.0.0/8 ([`crate::wire::src_ip`]), an upgrade request, and the response head.

use std::io;
use std::net::SocketAddr;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

/// Connects from `src` (port chosen by the kernel) to `addr`, with a receive buffer of
/// `recv_buffer` bytes when given, and sends `request`. Returns the stream (`TCP_NODELAY`
/// set) and whatever followed the response head, once the head is a `101`; any other
/// status is an error whose message starts with the status line.
pub async fn upgrade(
    src: std::net::Ipv4Addr,
    addr: SocketAddr,
    request: &[u8],
    recv_buffer: Option<u32>,
) -> io::Result<(TcpStream, Vec<u8>)> {
    let sock = TcpSocket::new_v4()?;
    if let Some(size) = recv_buffer {
        sock.set_recv_buffer_size(size)?;
    }
    sock.bind(SocketAddr::new(src.into(), 0))?;
    let mut s = sock.connect(addr).await?;
    s.set_nodelay(true)?;
    s.write_all(request).await?;
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        s.readable().await?;
        let n = match s.try_read(&mut chunk) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = crate::wire::head_end(&buf) {
            if !crate::wire::is_switching(&buf[..end]) {
                let line = buf.split(|&b| b == b'\r').next().unwrap_or_default();
                return Err(io::Error::other(format!(
                    "{} (upgrade refused)",
                    String::from_utf8_lossy(line)
                )));
            }
            let rest = buf.split_off(end);
            return Ok((s, rest));
        }
        if buf.len() > 16 * 1024 {
            return Err(io::Error::other("response head too long"));
        }
    }
}
