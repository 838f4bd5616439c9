//! Single-threaded echo servers, one per library, each written the way that library's own
//! echo example does it: echo every text and binary message, answer pings, no compression.
//!
//! Each takes a bound listener and runs on the calling thread until the listener fails.

use std::io;
use std::net::TcpListener;

/// The adapters' echo examples' connection code (`crate::ws` is the driver).
#[allow(dead_code)]
#[path = "../../adapters/examples/echo.rs"]
mod echo;

/// One turn of a floor connection after a read of `$n` bytes: hands them to `$floor`,
/// awaits `$write` (a `write_all` of `$floor.out`, through whichever I/O traits the stream
/// has) when there are replies, and is `false` when the connection is done.
macro_rules! floor_turn {
    ($floor:ident, $n:expr, $write:expr) => {{
        let step = $floor.filled($n);
        if !$floor.out.is_empty() && $write.await.is_err() {
            false
        } else {
            !matches!(step, FloorStep::Close)
        }
    }};
}

/// A floor connection's whole life on `$stream`: `read` into a [`Floor`], write its replies
/// with `write_all`, until the stream or the floor ends it (`return`s from the enclosing
/// async block). The caller imports the `read` and `write_all` of the stream's I/O traits
/// (tokio's or futures-io's).
macro_rules! floor_echo {
    ($stream:ident) => {
        let mut floor = Floor::new();
        loop {
            let Ok(n) = $stream.read(floor.spare()).await else {
                return;
            };
            if !floor_turn!(floor, n, $stream.write_all(&floor.out)) {
                return;
            }
        }
    };
}

/// Accepts connections on the async-net `$listener` forever, each spawned on the executor
/// `$ex` as the future `$conn(stream)` (with `TCP_NODELAY`).
macro_rules! accept_each {
    ($listener:ident, $ex:ident, $conn:expr) => {
        loop {
            let (stream, _) = $listener.accept().await?;
            stream.set_nodelay(true)?;
            $ex.spawn(($conn)(stream)).detach();
        }
    };
}

/// Runs `future` on this thread the way `style` says, for the two styles on an
/// `Arc<Executor>`: [`AsyncIoStyle::BlockOn`] with `async_io::block_on`, otherwise
/// ([`AsyncIoStyle::ParkOnly`]) with `futures_lite::future::block_on`.
fn block_on_in<T>(style: AsyncIoStyle, future: impl std::future::Future<Output = T>) -> T {
    if style == AsyncIoStyle::BlockOn {
        async_io::block_on(future)
    } else {
        futures_lite::future::block_on(future)
    }
}

/// tokio-tungstenite: `accept_async`, then `next()` / `send()` (one flush per message).
pub fn tungstenite(listener: TcpListener) -> io::Result<()> {
    use futures_util::{SinkExt, StreamExt};
    serve_tokio(listener, true, |stream| async move {
        let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
            return;
        };
        while let Some(Ok(msg)) = ws.next().await {
            if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                break;
            }
        }
    })
}

/// Runs a current-thread tokio runtime on this thread (with its time driver when `time`)
/// that accepts connections on `listener` forever, sets `TCP_NODELAY` on each and spawns
/// `conn(stream)` as its task. `conn` itself runs in the accept loop, inside the runtime,
/// before the spawn.
fn serve_tokio<F, Fut>(listener: TcpListener, time: bool, mut conn: F) -> io::Result<()>
where
    F: FnMut(tokio::net::TcpStream) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_io();
    if time {
        builder.enable_time();
    }
    builder.build()?.block_on(async {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            tokio::spawn(conn(stream));
        }
    })
}

/// fastwebsockets: hyper's HTTP/1 server upgrades the connection, then a
/// `FragmentCollector` reads and writes frames, as in fastwebsockets' `echo_server`
/// example (including its `tokio::task::unconstrained`).
pub fn fastwebsockets(listener: TcpListener) -> io::Result<()> {
    use fastwebsockets::{FragmentCollector, OpCode, WebSocketError, upgrade};
    use http_body_util::Empty;
    use hyper::body::{Bytes, Incoming};
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper::{Request, Response};

    async fn handle(fut: upgrade::UpgradeFut) -> Result<(), WebSocketError> {
        let mut ws = FragmentCollector::new(fut.await?);
        loop {
            let frame = ws.read_frame().await?;
            match frame.opcode {
                OpCode::Close => break,
                OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
                _ => {}
            }
        }
        Ok(())
    }

    async fn upgrade_request(
        mut req: Request<Incoming>,
    ) -> Result<Response<Empty<Bytes>>, WebSocketError> {
        let (response, fut) = upgrade::upgrade(&mut req)?;
        tokio::spawn(async move {
            let _ = tokio::task::unconstrained(handle(fut)).await;
        });
        Ok(response)
    }

    serve_tokio(listener, false, |stream| async move {
        let io = hyper_util::rt::TokioIo::new(stream);
        let _ = http1::Builder::new()
            .serve_connection(io, service_fn(upgrade_request))
            .with_upgrades()
            .await;
    })
}

/// tether-tokio: the same code as `adapters/tokio/examples/echo_server.rs`.
pub fn tether_tokio(listener: TcpListener) -> io::Result<()> {
    use tether_tokio::{Accept, accept_with};
    let config = echo::config();
    serve_tokio(listener, true, move |stream| {
        // As in the example: the connection starts at once, its task awaits the handshake.
        echo::echo(accept_with(stream, config.clone(), |_| Ok(Accept::new())))
    })
}

/// tether-async-std: the same code as `adapters/async-std/examples/echo_server.rs`.
pub fn tether_async_std(listener: TcpListener) -> io::Result<()> {
    tether_async_std_with(listener, AsyncIoStyle::BlockOn)
}

/// One tether-async-std echo connection, as in the example.
fn tether_async_std_conn(
    stream: async_net::TcpStream,
    config: tether_driver::Config,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    use tether_async_std::{Accept, accept_with};
    // As in the example: the connection starts at once, its task awaits the handshake.
    echo::echo(accept_with(stream, config, |_| Ok(Accept::new())))
}

/// [`tether_async_std()`], with the executor run in `style`. The connections' background tasks
/// always run on the one `Arc<Executor>` given to `tether_async_std::set_executor`, on this
/// thread.
pub fn tether_async_std_with(listener: TcpListener, style: AsyncIoStyle) -> io::Result<()> {
    let ex = std::sync::Arc::new(async_executor::Executor::new());
    tether_async_std::set_executor(ex.clone())
        .map_err(|_| io::Error::other("tether-async-std's executor is already chosen"))?;
    let listener = async_net::TcpListener::try_from(listener)?;
    let config = echo::config();
    match style {
        AsyncIoStyle::BlockOn | AsyncIoStyle::ParkOnly => {
            let conn = |stream| tether_async_std_conn(stream, config.clone());
            block_on_in(style, ex.run(async { accept_each!(listener, ex, conn) }))
        }
        AsyncIoStyle::Local => {
            let local = async_executor::LocalExecutor::new();
            let conn = |stream| tether_async_std_conn(stream, config.clone());
            async_io::block_on(ex.run(local.run(async { accept_each!(listener, local, conn) })))
        }
    }
}

/// The sans-IO part of the floor servers ([`floor_tokio`], [`floor_async_io`]): the least
/// WebSocket work an echo can do. A minimal RFC 6455 server handshake (the request head up to
/// its blank line, `Sec-WebSocket-Accept` from `Sec-WebSocket-Key`, nothing else checked),
/// then every complete masked client frame of a read is unmasked and written back as an
/// unmasked server frame, all of them in one write; a partial frame waits for the next read.
/// Payloads up to 64 KiB (7- and 16-bit lengths); no UTF-8 check, no fragmentation rules, no
/// limits, no timers. The buffers grow to what the traffic needs (the read buffer to
/// [`Floor::BUF`] at most) and are reused, so that steady traffic allocates nothing.
struct Floor {
    /// Bytes read, `buf[start..end]` not yet used.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The length of the partial frame at `start`, when its header is complete.
    partial: usize,
    /// The bytes to write for this read (reused).
    out: Vec<u8>,
    upgraded: bool,
}

/// What a floor connection does after a read.
enum FloorStep {
    /// Nothing to write yet: read again.
    Read,
    /// Write `Floor::out`, then read again.
    Write,
    /// Write `Floor::out` (maybe empty), then close.
    Close,
}

impl Floor {
    /// The read buffer at most: room for the longest frame served (64 KiB payload, 8-byte
    /// header) and some more.
    const BUF: usize = 80 * 1024;
    /// The read buffer at first (an idle connection holds no more).
    const FIRST_BUF: usize = 4096;

    fn new() -> Self {
        Floor {
            buf: vec![0; Self::FIRST_BUF],
            start: 0,
            end: 0,
            partial: 0,
            out: Vec::new(),
            upgraded: false,
        }
    }

    /// Where the next read goes.
    fn spare(&mut self) -> &mut [u8] {
        &mut self.buf[self.end..]
    }

    /// `n` bytes were read into [`Floor::spare`] (0: the peer closed).
    fn filled(&mut self, n: usize) -> FloorStep {
        if n == 0 {
            return FloorStep::Close;
        }
        self.end += n;
        let filled_up = self.end == self.buf.len();
        self.out.clear();
        self.partial = 0;
        let step = if self.upgraded {
            self.frames()
        } else {
            self.handshake()
        };
        // Keep what is left (a partial frame) at the front, so that a whole frame fits.
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        // Grow once a read filled the buffer or a frame does not fit.
        if (filled_up || self.partial > self.buf.len()) && self.buf.len() < Self::BUF {
            let len = (2 * self.buf.len()).max(self.partial).min(Self::BUF);
            self.buf.resize(len, 0);
        }
        step
    }

    fn handshake(&mut self) -> FloorStep {
        use base64::Engine as _;
        use sha1::{Digest, Sha1};
        let data = &self.buf[..self.end];
        let Some(head_end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
            // A head that does not fit in the largest buffer is refused.
            return if self.end == Self::BUF {
                FloorStep::Close
            } else {
                FloorStep::Read
            };
        };
        let key = data[..head_end].split(|&b| b == b'\n').find_map(|line| {
            let colon = line.iter().position(|&b| b == b':')?;
            line[..colon]
                .eq_ignore_ascii_case(b"sec-websocket-key")
                .then(|| line[colon + 1..].trim_ascii())
        });
        let Some(key) = key else {
            return FloorStep::Close;
        };
        let mut sha = Sha1::new();
        sha.update(key);
        sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
        let accept = base64::engine::general_purpose::STANDARD.encode(sha.finalize());
        self.out.extend_from_slice(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
              Connection: Upgrade\r\nSec-WebSocket-Accept: ",
        );
        self.out.extend_from_slice(accept.as_bytes());
        self.out.extend_from_slice(b"\r\n\r\n");
        self.upgraded = true;
        self.start = head_end + 4;
        // Frames may have come with the request.
        match self.frames() {
            FloorStep::Read => FloorStep::Write,
            step => step,
        }
    }

    /// Echoes every complete frame in `buf[start..end]`.
    fn frames(&mut self) -> FloorStep {
        loop {
            let data = &self.buf[self.start..self.end];
            let [b0, b1, ..] = *data else { break };
            if b1 & 0x80 == 0 {
                // Client frames must be masked.
                return FloorStep::Close;
            }
            let (header, len) = match b1 & 0x7F {
                126 => match data.get(2..4) {
                    Some(l) => (4, usize::from(u16::from_be_bytes([l[0], l[1]]))),
                    None => break,
                },
                127 => return FloorStep::Close,
                n => (2, usize::from(n)),
            };
            let total = header + 4 + len;
            if data.len() < total {
                self.partial = total;
                break;
            }
            let mask = [
                data[header],
                data[header + 1],
                data[header + 2],
                data[header + 3],
            ];
            let payload = &data[header + 4..total];
            let opcode = b0 & 0x0F;
            // A ping is answered with a pong, a close with a close; a pong is dropped.
            let reply = match opcode {
                0x9 => Some((b0 & 0xF0) | 0xA),
                0xA => None,
                _ => Some(b0),
            };
            if let Some(first) = reply {
                self.out.push(first);
                if header == 2 {
                    self.out.push(len as u8);
                } else {
                    self.out.push(126);
                    self.out.extend_from_slice(&(len as u16).to_be_bytes());
                }
                let at = self.out.len();
                self.out.extend_from_slice(payload);
                unmask(&mut self.out[at..], mask);
            }
            self.start += total;
            if opcode == 0x8 {
                return FloorStep::Close;
            }
        }
        if self.out.is_empty() {
            FloorStep::Read
        } else {
            FloorStep::Write
        }
    }
}

/// XORs `data` with the 4-byte `mask`, eight bytes at a time.
fn unmask(data: &mut [u8], mask: [u8; 4]) {
    let m = u32::from_ne_bytes(mask);
    let wide = u64::from(m) | (u64::from(m) << 32);
    let mut chunks = data.chunks_exact_mut(8);
    for c in &mut chunks {
        let v = u64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) ^ wide;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// A runtime floor on tokio: the minimal echo of the private `Floor` on a current-thread runtime and
/// `tokio::net::TcpStream`, one task per connection. Not a competitor: it shows what
/// tokio and the kernel cost per message when the WebSocket work is next to nothing.
pub fn floor_tokio(listener: TcpListener) -> io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    serve_tokio(listener, false, |mut stream| async move {
        floor_echo!(stream);
    })
}

/// How a single-threaded async-io server runs its executor, for [`floor_async_io_with`] and
/// [`tether_async_std_with`] (compared in BENCHMARKS.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AsyncIoStyle {
    /// `async_io::block_on(ex.run(..))` on an `Arc<Executor>`, as the async-std
    /// `echo_server` example did: the thread waits on the reactor itself when it has
    /// nothing to run, but async-io's fallback "async-io" thread takes the reactor over
    /// whenever the reactor has not been polled for its back-off interval (50 µs at first).
    BlockOn,
    /// `async_io::block_on(local.run(..))` on a `LocalExecutor` (smol's single-threaded
    /// style). For tether-async-std, whose background tasks need a `Send` executor, the
    /// application's tasks run on the `LocalExecutor` inside `ex.run(..)`.
    Local,
    /// `futures_lite::future::block_on(ex.run(..))` (the style of async-executor's own
    /// examples): the thread only parks, and the "async-io" thread always polls the reactor.
    ParkOnly,
}

impl AsyncIoStyle {
    /// Every style, in the order of the comparison.
    pub const ALL: [AsyncIoStyle; 3] = [Self::BlockOn, Self::Local, Self::ParkOnly];

    /// The style's name on the command line (`block_on`, `local`, `park_only`).
    pub fn name(self) -> &'static str {
        match self {
            Self::BlockOn => "block_on",
            Self::Local => "local",
            Self::ParkOnly => "park_only",
        }
    }

    /// The style called `name` (see [`AsyncIoStyle::name`]).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The style named on a command line: [`AsyncIoStyle::BlockOn`] when none is, an
    /// `InvalidInput` error for a name that is not a style.
    pub fn parse(name: Option<&str>) -> io::Result<Self> {
        let Some(name) = name else {
            return Ok(Self::BlockOn);
        };
        Self::from_name(name).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("unknown style {name}"))
        })
    }
}

/// One floor connection on async-net: futures-io `read` and `write_all`, as
/// tether-async-std's transport uses the stream.
async fn floor_async_io_conn(mut stream: async_net::TcpStream) {
    use futures_util::{AsyncReadExt, AsyncWriteExt};
    floor_echo!(stream);
}

/// One floor connection that reads only when it knows there is something to read: after a
/// read that did not fill the buffer it waits for `Async::readable()` first, as tokio's
/// `TcpStream` does, instead of a read that fails with `WouldBlock`.
async fn floor_async_io_conn_ready_first(stream: async_net::TcpStream) {
    use futures_util::AsyncWriteExt;
    use std::io::Read;
    let stream: std::sync::Arc<async_io::Async<std::net::TcpStream>> = stream.into();
    let mut floor = Floor::new();
    let mut readable = false;
    loop {
        if !readable && stream.readable().await.is_err() {
            return;
        }
        let spare = floor.spare();
        let room = spare.len();
        let n = match stream.get_ref().read(spare) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                readable = false;
                continue;
            }
            Err(_) => return,
        };
        // A read that filled the buffer may have left more behind.
        readable = n == room;
        if !floor_turn!(floor, n, (&*stream).write_all(&floor.out)) {
            return;
        }
    }
}

/// [`floor_async_io`] with reads that wait for readiness after a short read (see
/// `floor_async_io_conn_ready_first`), run as [`AsyncIoStyle::BlockOn`]: how much of the
/// floor is the read that finds nothing.
pub fn floor_async_io_ready_first(listener: TcpListener) -> io::Result<()> {
    let listener = async_net::TcpListener::try_from(listener)?;
    let ex = std::sync::Arc::new(async_executor::Executor::new());
    async_io::block_on(
        ex.run(async { accept_each!(listener, ex, floor_async_io_conn_ready_first) }),
    )
}

/// A runtime floor on async-io: the minimal echo of the private `Floor` on `async_net::TcpStream` and
/// async-executor, everything on the calling thread, run the way
/// `adapters/async-std/examples/echo_server.rs` runs ([`AsyncIoStyle::BlockOn`]). Not a
/// competitor: it shows what async-io and the kernel cost per message when the WebSocket
/// work is next to nothing.
pub fn floor_async_io(listener: TcpListener) -> io::Result<()> {
    floor_async_io_with(listener, AsyncIoStyle::BlockOn)
}

/// [`floor_async_io`], with the executor run in `style`.
pub fn floor_async_io_with(listener: TcpListener, style: AsyncIoStyle) -> io::Result<()> {
    let listener = async_net::TcpListener::try_from(listener)?;
    match style {
        AsyncIoStyle::BlockOn | AsyncIoStyle::ParkOnly => {
            let ex = std::sync::Arc::new(async_executor::Executor::new());
            block_on_in(
                style,
                ex.run(async { accept_each!(listener, ex, floor_async_io_conn) }),
            )
        }
        AsyncIoStyle::Local => {
            let ex = async_executor::LocalExecutor::new();
            async_io::block_on(ex.run(async { accept_each!(listener, ex, floor_async_io_conn) }))
        }
    }
}

/// Runs the server called `name` (`tether-tokio`, `tether-async-std`, `tungstenite`,
/// `fastwebsockets`, `floor-tokio`, `floor-async-io`) on `listener`.
pub fn run(name: &str, listener: TcpListener) -> io::Result<()> {
    match name {
        "tether-tokio" => tether_tokio(listener),
        "tether-async-std" => tether_async_std(listener),
        "floor-tokio" => floor_tokio(listener),
        "floor-async-io" => floor_async_io(listener),
        "tungstenite" | "tokio-tungstenite" => tungstenite(listener),
        "fastwebsockets" => fastwebsockets(listener),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unknown server {other}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire;

    /// Feeds `bytes` to `floor` as one read.
    fn feed(floor: &mut Floor, bytes: &[u8]) -> FloorStep {
        floor.spare()[..bytes.len()].copy_from_slice(bytes);
        floor.filled(bytes.len())
    }

    fn upgraded() -> Floor {
        let mut floor = Floor::new();
        let step = feed(&mut floor, &wire::upgrade_request("localhost"));
        assert!(matches!(step, FloorStep::Write));
        floor
    }

    #[test]
    fn floor_handshake_accepts_the_rfc_sample_key() {
        let mut floor = Floor::new();
        let request = wire::upgrade_request("localhost");
        // The head in two reads.
        assert!(matches!(feed(&mut floor, &request[..10]), FloorStep::Read));
        assert!(matches!(feed(&mut floor, &request[10..]), FloorStep::Write));
        let response = std::str::from_utf8(&floor.out).unwrap();
        assert!(wire::is_switching(response.as_bytes()));
        // RFC 6455 §1.3.
        assert!(response.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(response.ends_with("\r\n\r\n"));
    }

    #[test]
    fn floor_echoes_every_whole_frame_and_keeps_a_partial_one() {
        for size in [0, 20, 125, 126, 1024, 16384, 65535] {
            let mut floor = upgraded();
            let frame = wire::client_frame(size);
            let expected: Vec<u8> = {
                let mut f = frame.clone();
                f[1] &= 0x7F;
                let header = wire::server_frame_len(&f).unwrap() - size;
                let payload = (0..size).map(|i| b'a' + (i % 26) as u8);
                f[..header].iter().copied().chain(payload).collect()
            };
            // Two whole frames and the start of a third in one read, then the rest.
            let input = frame.repeat(3);
            let cut = 2 * frame.len() + frame.len() / 2;
            if cut <= floor.spare().len() {
                assert!(matches!(feed(&mut floor, &input[..cut]), FloorStep::Write));
                assert_eq!(floor.out, expected.repeat(2), "size {size}");
                assert!(matches!(feed(&mut floor, &input[cut..]), FloorStep::Write));
                assert_eq!(floor.out, expected, "size {size}");
                assert_eq!((floor.start, floor.end), (0, 0));
            }
            // Reads of every length, as much as fits each time.
            for chunk in [1, 7, 1000, Floor::BUF] {
                let mut echoed = Vec::new();
                let mut at = 0;
                while at < input.len() {
                    let n = chunk.min(floor.spare().len()).min(input.len() - at);
                    feed(&mut floor, &input[at..at + n]);
                    echoed.extend_from_slice(&floor.out);
                    at += n;
                }
                assert_eq!(echoed, expected.repeat(3), "size {size}, reads of {chunk}");
                assert_eq!((floor.start, floor.end), (0, 0));
                assert!(floor.buf.len() <= Floor::BUF);
            }
        }
    }

    #[test]
    fn floor_answers_ping_and_close() {
        let mut floor = upgraded();
        let mut ping = wire::client_frame(3);
        ping[0] = 0x89;
        assert!(matches!(feed(&mut floor, &ping), FloorStep::Write));
        assert_eq!(floor.out, [0x8A, 3, b'a', b'b', b'c']);
        let mut close = wire::client_frame(0);
        close[0] = 0x88;
        assert!(matches!(feed(&mut floor, &close), FloorStep::Close));
        assert_eq!(floor.out, [0x88, 0]);
    }

    #[test]
    fn floor_closes_on_an_unmasked_frame() {
        let mut floor = upgraded();
        assert!(matches!(feed(&mut floor, &[0x82, 0]), FloorStep::Close));
    }
}
