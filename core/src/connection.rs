//! The connection state machine: opening handshake, data transfer, closing handshake, timers.

use crate::config::Config;
use crate::deflate::{self, Compressor, Decompressor, DeflateError, DeflateParams};
use crate::frame::{FrameDecoder, FrameError, FrameHeader, OpCode, Role, apply_mask};
use crate::handshake::{
    self, Accept, ClientRequest, HandshakeError, Reject, Request, RequestParser, Response,
    ResponseParser,
};
use crate::message::{CloseCode, CloseFrame, DataKind, Fragment, Message, Utf8Bytes};
use crate::timer::{TimerKind, Timers};
use crate::utf8::Utf8Validator;
use bytes::{Buf, Bytes, BytesMut};
use rand_chacha::ChaCha12Rng;
use rand_core::{Rng, SeedableRng};
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long [`Connection::linger`] keeps a closed connection's transport without a close
/// timeout.
const DEFAULT_LINGER: Duration = Duration::from_secs(10);

/// Where a connection is in its life (RFC 6455 §4, §7).
///
/// ```text
///  client:  Handshake ──101 validated──▶ Open
///  server:  Handshake ──request parsed──▶ Accepting ──accept()──▶ Open
///                                                  └──reject()──▶ Closed
///  Open ──close()──▶ Closing ──peer's close──▶ Closed
///  Open ──peer's close (echoed)──────────────▶ Closed
///  any ──protocol violation / EOF / timeout──▶ Closed
/// ```
///
/// A peer's close frame (or protocol violation) that arrives behind data messages not yet
/// taken with [`Connection::poll_event`] waits for them ([`Connection::has_deferred_end`]),
/// for at most the close timeout: the state stays `Open`, so replies to them are still
/// sent, before the echo (§5.5.1).
///
/// `Closed` means the WebSocket is closed; the transport is torn down once
/// [`Connection::poll_transmit`] yields [`Transmit::Shutdown`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Opening handshake in progress.
    Handshake,
    /// Server only: the request arrived; the application must [`Connection::accept`] or
    /// [`Connection::reject`] it.
    Accepting,
    /// Messages flow both ways.
    Open,
    /// This side sent a close frame and waits for the peer's (§7.1.2).
    Closing,
    /// The WebSocket is closed; a terminal [`Event::Closed`] was emitted.
    Closed,
}

/// A timer that ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Timeout {
    /// The opening handshake took too long.
    Handshake,
    /// A keep-alive ping got no answer: the peer is dead.
    Pong,
    /// No data message was sent or received for the idle timeout.
    Idle,
    /// The peer did not answer our close frame in time.
    Close,
}

/// A violation of the protocol by the peer. Each maps to the close code sent (§7.4.1).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The frame format was violated (§5.2).
    Frame(FrameError),
    /// A continuation frame arrived with no message in progress (§5.4).
    UnexpectedContinuation,
    /// A new data message started before the previous one finished (§5.4).
    ExpectedContinuation,
    /// RSV1 was set on a continuation or control frame (RFC 7692 §6).
    InvalidCompressionBit,
    /// A text message or close reason was not UTF-8 (§8.1): 1007.
    InvalidUtf8,
    /// A message exceeded the maximum message size: 1009.
    MessageTooLarge,
    /// More input was buffered than the connection allows: 1009.
    InputBufferFull,
    /// A close frame had a 1-byte body (§5.5.1).
    InvalidClosePayload,
    /// A close frame carried a code not allowed on the wire (§7.4).
    InvalidCloseCode(CloseCode),
    /// Compressed data could not be inflated (RFC 7692 §7.2.2).
    InvalidCompressedData,
}

impl ProtocolError {
    /// The close code to send for this error.
    pub fn close_code(&self) -> CloseCode {
        match self {
            Self::Frame(e) => e.close_code(),
            Self::InvalidUtf8 => CloseCode::INVALID_PAYLOAD,
            Self::MessageTooLarge | Self::InputBufferFull => CloseCode::MESSAGE_TOO_BIG,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Frame(e) => e.fmt(f),
            Self::UnexpectedContinuation => f.write_str("continuation frame without a message"),
            Self::ExpectedContinuation => f.write_str("new message before the last one ended"),
            Self::InvalidCompressionBit => f.write_str("RSV1 on a continuation or control frame"),
            Self::InvalidUtf8 => f.write_str("invalid UTF-8"),
            Self::MessageTooLarge => f.write_str("message too large"),
            Self::InputBufferFull => f.write_str("too much buffered input"),
            Self::InvalidClosePayload => f.write_str("close frame with a 1-byte body"),
            Self::InvalidCloseCode(c) => write!(f, "invalid close code {c}"),
            Self::InvalidCompressedData => f.write_str("invalid compressed data"),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Why a connection closed. Reported once, in the terminal [`Event::Closed`].
#[derive(Debug)]
#[non_exhaustive]
pub enum CloseReason {
    /// The closing handshake completed (§7.1.4): both close frames were exchanged.
    Clean {
        /// Whether this side sent its close frame first.
        initiated_locally: bool,
        /// The close frame this side sent (`None` for an empty body).
        local: Option<CloseFrame>,
        /// The close frame the peer sent (`None` for an empty body).
        remote: Option<CloseFrame>,
    },
    /// The peer violated the protocol; the connection was failed with `code` (§7.1.7).
    ProtocolError {
        /// What the peer did.
        error: ProtocolError,
        /// The code sent in our close frame.
        code: CloseCode,
    },
    /// A timer ran out.
    TimedOut(Timeout),
    /// The transport ended without a close frame (code 1006, §7.1.5).
    Abnormal,
    /// The opening handshake failed; a non-101 response is [`HandshakeError::Rejected`].
    HandshakeFailed(HandshakeError),
    /// Server: the application rejected the request with this HTTP status.
    Rejected {
        /// The status sent.
        status: u16,
    },
}

impl CloseReason {
    /// The close code that describes this outcome (§7.1.5): the peer's code for a clean
    /// close it started, ours otherwise; 1005 for a close without a code, 1006 when the
    /// connection ended without a closing handshake.
    pub fn code(&self) -> CloseCode {
        match self {
            Self::Clean { remote, .. } => remote.as_ref().map_or(CloseCode::NO_STATUS, |f| f.code),
            Self::ProtocolError { code, .. } => *code,
            Self::TimedOut(Timeout::Idle) => CloseCode::GOING_AWAY,
            _ => CloseCode::ABNORMAL,
        }
    }

    /// Whether the closing handshake completed.
    pub fn is_clean(&self) -> bool {
        matches!(self, Self::Clean { .. })
    }
}

/// An output of the connection, drained with [`Connection::poll_event`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// Server: a valid upgrade request arrived. Call [`Connection::accept`] or
    /// [`Connection::reject`]. With [`Config::plain_http`], also a plain HTTP request
    /// ([`Request::is_upgrade`] false), to answer with [`Connection::reject`].
    Request(Box<Request>),
    /// Client: the server accepted; the connection is open.
    Connected(Box<Response>),
    /// A whole text or binary message.
    Message(Message),
    /// A piece of a message, when [`Config::stream_fragments`] is set.
    Fragment(Fragment),
    /// A ping arrived (already answered).
    Ping(Bytes),
    /// A pong arrived.
    Pong(Bytes),
    /// Terminal: the WebSocket is closed. No event follows.
    Closed(CloseReason),
}

/// What [`Connection::poll_transmit`] asks the caller to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transmit {
    /// Bytes were appended to the buffer: write them to the transport.
    Data,
    /// Everything is written: close the transport (after writing what came before).
    Shutdown,
}

/// Local misuse of the API. A misbehaving peer never causes one of these.
#[derive(Debug)]
#[non_exhaustive]
pub enum SendError {
    /// The opening handshake has not completed.
    NotOpen,
    /// A close frame was already sent or the connection is closed (§5.5.1).
    Closed,
    /// A ping, pong or close payload was longer than 125 bytes (§5.5).
    ControlPayloadTooLong,
    /// The close code may not be sent on the wire (§7.4).
    InvalidCloseCode(CloseCode),
    /// `accept` or `reject` was called when no request is waiting for an answer.
    NotAccepting,
    /// The answer to the handshake was invalid (for example a subprotocol the client did
    /// not offer).
    Handshake(HandshakeError),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotOpen => f.write_str("the connection is not open yet"),
            Self::Closed => f.write_str("the connection is closing or closed"),
            Self::ControlPayloadTooLong => f.write_str("control payload longer than 125 bytes"),
            Self::InvalidCloseCode(c) => write!(f, "close code {c} may not be sent"),
            Self::NotAccepting => f.write_str("no handshake request is waiting for an answer"),
            Self::Handshake(e) => write!(f, "invalid handshake answer: {e}"),
        }
    }
}

impl std::error::Error for SendError {}

/// A message encoded once, to be sent on many connections (broadcast).
///
/// A server frame is not masked, so the encoded bytes are shared as [`Bytes`] by every
/// server connection it is queued on. A client connection masks the stored payload itself.
///
/// With [`PreparedFrame::compressed`], the payload is also deflated once without context
/// (RFC 7692 §7.2.1). That copy is used by connections that negotiated
/// `server_no_context_takeover` with a window at least as large; every other connection
/// with deflate compresses the message with its own context, and connections without
/// deflate send the plain frame.
#[derive(Clone, Debug)]
pub struct PreparedFrame {
    kind: DataKind,
    payload: Bytes,
    plain: Bytes,
    compressed: Option<(Bytes, u8)>,
}

impl PreparedFrame {
    /// Encodes a text or binary message once. Returns `None` for control messages.
    pub fn new(message: &Message) -> Option<Self> {
        let (kind, payload) = match message {
            Message::Text(t) => (DataKind::Text, t.as_bytes().clone()),
            Message::Binary(b) => (DataKind::Binary, b.clone()),
            _ => return None,
        };
        let mut plain = Vec::new();
        crate::frame::encode_frame(
            FrameHeader::new(data_opcode(kind), 0),
            None,
            &payload,
            &mut plain,
        );
        Some(Self {
            kind,
            payload,
            plain: Bytes::from(plain),
            compressed: None,
        })
    }

    /// Also deflates the message once, with `window_bits` (9 to 15) and `level` (0 to 9),
    /// for connections that negotiated `server_no_context_takeover`.
    pub fn compressed(mut self, window_bits: u8, level: u32) -> Self {
        let window_bits = window_bits.clamp(9, 15);
        let mut c = Compressor::new(window_bits, true, level);
        let mut body = Vec::new();
        c.compress(&self.payload, &mut body);
        let mut out = Vec::new();
        let header = FrameHeader {
            rsv1: true,
            ..FrameHeader::new(data_opcode(self.kind), 0)
        };
        crate::frame::encode_frame(header, None, &body, &mut out);
        self.compressed = Some((Bytes::from(out), window_bits));
        self
    }

    /// The encoded, uncompressed server frame.
    pub fn as_bytes(&self) -> &Bytes {
        &self.plain
    }

    /// The message's kind.
    pub fn kind(&self) -> DataKind {
        self.kind
    }
}

fn data_opcode(kind: DataKind) -> OpCode {
    match kind {
        DataKind::Text => OpCode::Text,
        DataKind::Binary => OpCode::Binary,
    }
}

enum Handshake {
    Client {
        key: String,
        protocols: Vec<String>,
        parser: ResponseParser,
    },
    Server {
        parser: RequestParser,
    },
    Accepting {
        /// The request's [`Request::offer`]: what `accept` answers.
        request: Box<Request>,
    },
}

#[derive(Clone, Copy)]
struct InFrame {
    header: FrameHeader,
    remaining: usize,
    received: usize,
}

struct Assembly {
    kind: DataKind,
    compressed: bool,
    data: Vec<u8>,
    utf8: Utf8Validator,
    /// Bytes of this message already delivered as fragments.
    delivered: usize,
    first_pending: bool,
}

struct Deflate {
    params: DeflateParams,
    compressor: Compressor,
    decompressor: Decompressor,
}

/// How a connection ends once the events in front of it are taken (see
/// [`Traffic::deferred`]).
enum DeferredEnd {
    /// A peer's violation: the connection fails (§7.1.7).
    Failure(ProtocolError),
    /// The peer's close frame (§5.5.1): it is echoed and the clean close reported.
    Close(Option<CloseFrame>),
}

/// What a connection holds only while data moves: partial input, the frame and message
/// being received, events not yet taken, frames not yet written, and a peer's violation or
/// close frame deferred behind events. An idle connection holds none: the box goes back to a small
/// per-thread pool once it is empty, and comes back with its queues' capacity, so a busy
/// connection allocates nothing per message.
#[derive(Default)]
struct Traffic {
    in_buf: BytesMut,
    frame: Option<InFrame>,
    msg: Option<Box<Assembly>>,
    events: VecDeque<Event>,
    /// Payload bytes of the messages in `events`.
    event_bytes: usize,
    out: VecDeque<OutItem>,
    /// Frames of at most [`INLINE_PAYLOAD`] bytes, encoded (and masked) as they were
    /// queued: the output that follows everything in `out`.
    tail: Vec<u8>,
    /// Bytes `out` and `tail` encode to.
    out_bytes: usize,
    /// A peer's violation or close frame found behind messages not yet taken: the
    /// connection ends once this many more events have been taken, so that replies to them
    /// still go out first. Input is discarded meanwhile.
    deferred: Option<(usize, DeferredEnd)>,
}

impl Traffic {
    fn is_idle(&self) -> bool {
        self.in_buf.is_empty()
            && self.frame.is_none()
            && self.msg.is_none()
            && self.events.is_empty()
            && self.out.is_empty()
            && self.tail.is_empty()
            && self.deferred.is_none()
    }

    /// Whether output waits to be taken by `poll_transmit`.
    fn has_output(&self) -> bool {
        !self.out.is_empty() || !self.tail.is_empty()
    }

    /// Moves the encoded frames of `tail` into `out`, so that an item queued next goes out
    /// after them.
    fn seal_tail(&mut self) {
        if !self.tail.is_empty() {
            let encoded = Bytes::from(std::mem::take(&mut self.tail));
            self.out.push_back(OutItem::Raw(encoded));
        }
    }
}

/// Payloads of up to this many bytes are encoded into the output as they are sent, instead
/// of queued as a frame to encode later: cheaper for small messages, and the payload is
/// copied once either way (into the bytes `poll_transmit` hands out). Larger payloads stay
/// shared with the sender (a message sent to many connections is not copied for each)
/// until they are taken.
const INLINE_PAYLOAD: usize = 4096;

/// Shared bytes of at least this many bytes are handed to a vectored writer as chunks of
/// their own ([`Connection::poll_transmit_vectored`]); shorter ones are copied, which costs
/// less than a slice of a vectored write (measured with a 20-byte broadcast to 1,000
/// connections, 50 messages per write: 1.3-1.4x the CPU per delivery of copying).
const SHARE_MIN: usize = 256;

/// The per-thread pool of idle [`Traffic`] boxes.
mod traffic_pool {
    use super::Traffic;
    use bytes::BytesMut;
    use std::cell::RefCell;

    /// Boxes a thread keeps at most.
    const MAX: usize = 64;
    /// Queue capacity a parked box keeps at most (items); larger queues are shrunk.
    const MAX_QUEUE: usize = 16;
    /// Capacity of encoded output a parked box keeps at most (bytes); more is freed.
    const MAX_TAIL: usize = 64 * 1024;

    thread_local! {
        // The boxes themselves are what is pooled: a connection takes one as it is.
        #[allow(clippy::vec_box)]
        static POOL: RefCell<Vec<Box<Traffic>>> = const { RefCell::new(Vec::new()) };
    }

    /// A parked box, or a new one.
    #[inline(never)]
    pub(super) fn take() -> Box<Traffic> {
        POOL.try_with(|p| p.try_borrow_mut().ok()?.pop())
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    /// Parks an idle box (or frees it if the pool is full or gone).
    pub(super) fn park(mut t: Box<Traffic>) {
        t.in_buf = BytesMut::new();
        t.events.shrink_to(MAX_QUEUE);
        t.out.shrink_to(MAX_QUEUE);
        if t.tail.capacity() > MAX_TAIL {
            t.tail = Vec::new();
        }
        t.tail.clear();
        t.event_bytes = 0;
        t.out_bytes = 0;
        let _ = POOL.try_with(|p| {
            if let Ok(mut p) = p.try_borrow_mut()
                && p.len() < MAX
            {
                p.push(t);
            }
        });
    }
}

enum OutItem {
    Raw(Bytes),
    Frame {
        header: FrameHeader,
        payload: Bytes,
    },
    /// The automatic answer to a ping: a later ping replaces it while it waits (§5.5.3).
    Pong {
        header: FrameHeader,
        payload: Bytes,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shutdown {
    No,
    Pending,
    Done,
}

/// A WebSocket connection, client or server, as a pure state machine.
///
/// It never touches a socket or reads the clock: feed it bytes with
/// [`handle_input`](Self::handle_input), end of stream with [`handle_eof`](Self::handle_eof)
/// and the time with [`handle_timeout`](Self::handle_timeout); after every input, drain
/// [`poll_transmit`](Self::poll_transmit) (bytes to write) and
/// [`poll_event`](Self::poll_event) (what happened) until they return `None`, then sleep
/// until [`poll_timeout`](Self::poll_timeout) or more input.
///
/// A peer that breaks the protocol never makes a method return `Err`: the connection queues
/// the right close frame, emits [`Event::Closed`] with [`CloseReason::ProtocolError`] and
/// ignores further input. `Err` is only for local misuse, such as sending after close.
pub struct Connection {
    role: Role,
    config: Arc<Config>,
    state: State,
    rng: Option<Box<ChaCha12Rng>>,
    handshake: Option<Box<Handshake>>,
    /// (Boxed twice: the box of a box is 8 bytes, and rarely there.)
    subprotocol: Option<Box<Box<str>>>,
    deflate: Option<Box<Deflate>>,
    /// Partial input, events not yet taken, frames not yet written: only while there are
    /// any (see [`Traffic`]).
    traffic: Option<Box<Traffic>>,
    /// The close frame this side sent, once it has (boxed: most of a connection's life
    /// has none).
    close_sent: Option<Box<Option<CloseFrame>>>,
    /// The caller stopped reading for its application's sake: keep-alive is suspended.
    input_paused: bool,
    /// This side started the closing handshake because the idle timer ran out: its end is
    /// reported as [`Timeout::Idle`].
    idle_close: bool,
    terminated: bool,
    shutdown: Shutdown,
    timers: Timers,
    /// When input last arrived while the keep-alive ran. Input does not move the
    /// keep-alive deadline (that would cost a timer update per message): when it comes, the
    /// keep-alive is re-armed from here if input arrived since it was armed. (An `Instant`,
    /// not an offset of `timers`: storing one costs nothing on every read.)
    last_input: Instant,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.role)
            .field("state", &self.state)
            .field("buffered_input", &self.buffered_input())
            .field("buffered_output", &self.buffered_output())
            .finish_non_exhaustive()
    }
}

impl Connection {
    fn new(role: Role, config: Arc<Config>, now: Instant) -> Self {
        let mut timers = Timers::new(now);
        timers.set_in(TimerKind::Handshake, now, config.timeouts.handshake);
        Self {
            role,
            config,
            state: State::Handshake,
            rng: None,
            handshake: None,
            subprotocol: None,
            deflate: None,
            traffic: None,
            close_sent: None,
            input_paused: false,
            idle_close: false,
            terminated: false,
            shutdown: Shutdown::No,
            timers,
            last_input: now,
        }
    }

    /// Starts a client connection: queues the upgrade request for `request` (RFC 6455 §4.1).
    ///
    /// `seed` seeds the generator of the handshake key and of every masking key; give it 32
    /// bytes from a cryptographically secure source (§10.3), or a fixed value in tests.
    pub fn client(
        config: impl Into<Arc<Config>>,
        request: &ClientRequest,
        seed: [u8; 32],
        now: Instant,
    ) -> Result<Self, HandshakeError> {
        let mut conn = Self::new(Role::Client, config.into(), now);
        let mut rng = Box::new(ChaCha12Rng::from_seed(seed));
        let mut nonce = [0u8; 16];
        rng.fill_bytes(&mut nonce);
        let key = handshake::generate_key(nonce);
        let offer = deflate::client_offer(&conn.config.deflate);
        let mut head = Vec::new();
        handshake::encode_request(request, &key, offer.as_deref(), &mut head)?;
        conn.push_raw(Bytes::from(head));
        conn.rng = Some(rng);
        conn.handshake = Some(Box::new(Handshake::Client {
            key,
            protocols: request.subprotocols().to_vec(),
            parser: ResponseParser::new(conn.config.limits.handshake),
        }));
        Ok(conn)
    }

    /// Starts a server connection that waits for the client's upgrade request (§4.2).
    pub fn server(config: impl Into<Arc<Config>>, now: Instant) -> Self {
        let mut conn = Self::new(Role::Server, config.into(), now);
        conn.handshake = Some(Box::new(Handshake::Server {
            parser: RequestParser::new(conn.config.limits.handshake)
                .plain_http(conn.config.plain_http),
        }));
        conn
    }

    /// A connection whose opening handshake was done elsewhere (for example by an HTTP
    /// server that upgraded the request), open from the start. `deflate` is what that
    /// handshake negotiated; a client needs a `seed` for its masking keys.
    pub fn open(
        config: impl Into<Arc<Config>>,
        role: Role,
        deflate: Option<DeflateParams>,
        seed: [u8; 32],
        now: Instant,
    ) -> Self {
        let mut conn = Self::new(role, config.into(), now);
        if role == Role::Client {
            conn.rng = Some(Box::new(ChaCha12Rng::from_seed(seed)));
        }
        conn.set_deflate(deflate);
        conn.enter_open(now);
        conn
    }

    /// For a connection made with [`open`](Self::open): records the subprotocol that the
    /// handshake done elsewhere agreed (RFC 6455 §1.9), for [`subprotocol`](Self::subprotocol).
    pub fn with_subprotocol(mut self, protocol: Option<&str>) -> Self {
        self.subprotocol = protocol.map(|p| Box::new(Box::from(p)));
        self
    }

    // ---- getters ----

    /// Client or server.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The `now` the connection was created with (its age is counted from it).
    pub fn created_at(&self) -> Instant {
        self.timers.base()
    }

    /// The subprotocol agreed in the handshake, if any.
    pub fn subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref().map(|s| &**s)
    }

    /// The permessage-deflate parameters agreed in the handshake, if any.
    pub fn deflate_params(&self) -> Option<DeflateParams> {
        self.deflate.as_ref().map(|d| d.params)
    }

    /// Bytes queued for sending and not yet taken by [`poll_transmit`](Self::poll_transmit).
    /// Adapters compare it with their high-water mark for backpressure.
    pub fn buffered_output(&self) -> usize {
        self.traffic.as_ref().map_or(0, |t| t.out_bytes)
    }

    /// Received bytes held inside the connection: partial frames, a message being
    /// reassembled, and message payloads not yet taken with [`poll_event`](Self::poll_event).
    pub fn buffered_input(&self) -> usize {
        self.traffic.as_ref().map_or(0, |t| {
            t.in_buf.len() + t.msg.as_ref().map_or(0, |m| m.data.len()) + t.event_bytes
        })
    }

    /// How many events [`poll_event`](Self::poll_event) has waiting, and the payload bytes
    /// of the messages among them. An adapter that leaves received messages in the
    /// connection until its application takes them compares these with its own limit, and
    /// stops reading before [`Limits::max_buffered_input`](crate::Limits) is reached.
    pub fn pending_events(&self) -> (usize, usize) {
        self.traffic
            .as_ref()
            .map_or((0, 0), |t| (t.events.len(), t.event_bytes))
    }

    /// Heap capacity held by the connection's own read and write buffers (not counting
    /// message payloads already handed out). Zero for an idle open connection.
    pub fn buffer_capacity(&self) -> usize {
        self.traffic.as_ref().map_or(0, |t| {
            t.in_buf.capacity()
                + t.msg.as_ref().map_or(0, |m| m.data.capacity())
                + t.out.capacity() * std::mem::size_of::<OutItem>()
                + t.tail.capacity()
                + t.events.capacity() * std::mem::size_of::<Event>()
        })
    }

    /// Whether compressor or decompressor state (hundreds of KiB with zlib) is allocated.
    /// It is allocated on first use, and released after a quiet ping interval when the
    /// negotiated parameters let it be rebuilt (no context takeover).
    pub fn has_compression_state(&self) -> bool {
        self.deflate
            .as_ref()
            .is_some_and(|d| d.compressor.is_allocated() || d.decompressor.is_allocated())
    }

    /// Whether the connection is finished: closed, and the transport shutdown was handed
    /// out. The caller can drop it.
    pub fn is_finished(&self) -> bool {
        self.shutdown == Shutdown::Done && self.traffic.as_ref().is_none_or(|t| !t.has_output())
    }

    /// How long a driver keeps the transport once the connection is [`State::Closed`], to
    /// write what is left (the close frame included) and see the peer's end of stream,
    /// before it drops the transport whatever remains: the close timeout, or 10 seconds
    /// without one. A peer that reads nothing thus cannot hold a closed connection's
    /// transport and buffers for longer.
    pub fn linger(&self) -> Duration {
        self.config.timeouts.close.unwrap_or(DEFAULT_LINGER)
    }

    /// Every handle of the application is gone (the driver's "close on drop"): an open
    /// connection starts a normal closing handshake (1000) and runs until it ends; one
    /// still in its opening handshake is given up. Returns whether the caller should drop
    /// the transport at once (the opening handshake was not finished).
    pub fn abandon(&mut self, now: Instant) -> bool {
        match self.state {
            State::Open => {
                let _ = self.close(now, CloseCode::NORMAL, "");
                false
            }
            State::Handshake | State::Accepting => true,
            State::Closing | State::Closed => false,
        }
    }

    /// Whether [`poll_event`](Self::poll_event) has an event to return now.
    pub fn has_events(&self) -> bool {
        self.traffic
            .as_ref()
            .is_some_and(|t| !t.events.is_empty() || matches!(t.deferred, Some((0, _))))
    }

    /// Whether the end of the connection waits behind events not yet taken with
    /// [`poll_event`](Self::poll_event): a peer's protocol violation (the connection fails
    /// once they are taken, RFC 6455 §7.1.7) or the peer's close frame (echoed once they are
    /// taken, §5.5.1; until then the state stays [`State::Open`] and messages can still be
    /// sent). Input is discarded meanwhile. An adapter that moves events to a queue of its
    /// own stops moving them while this is true and lets the application take the rest, so
    /// that its replies to them are sent before the close frame.
    pub fn has_deferred_end(&self) -> bool {
        self.traffic.as_ref().is_some_and(|t| t.deferred.is_some())
    }

    /// Tells the connection that the caller stopped (`true`) or resumed (`false`) reading
    /// from the transport because its application is behind: backpressure, not silence.
    ///
    /// While paused, the keep-alive ping and the pong deadline are suspended: the peer's
    /// bytes wait unread in the transport, so its silence proves nothing, and a live peer
    /// must not be declared dead because the application is slow. On resume, the
    /// keep-alive interval starts again from `now`. Other timers (close, idle) run as
    /// usual.
    pub fn set_input_paused(&mut self, now: Instant, paused: bool) {
        if self.input_paused == paused {
            return;
        }
        self.input_paused = paused;
        if !matches!(self.state, State::Open | State::Closing) {
            return;
        }
        if paused {
            self.timers.stop(TimerKind::Pong);
            self.timers.stop(TimerKind::KeepAlive);
        } else if self.state == State::Open && !self.has_deferred_end() {
            let interval = self.config.timeouts.ping_interval;
            self.timers.set_in(TimerKind::KeepAlive, now, interval);
        }
    }

    /// The traffic state, taken from the pool if the connection holds none.
    #[inline]
    fn tr(&mut self) -> &mut Traffic {
        self.traffic.get_or_insert_with(traffic_pool::take)
    }

    /// Gives the traffic state back to the pool once it holds nothing.
    #[inline]
    fn settle(&mut self) {
        if self.traffic.as_ref().is_some_and(|t| t.is_idle()) {
            self.park_traffic();
        }
    }

    /// [`settle`](Self::settle)'s work, kept out of line: the check is what runs most.
    #[inline(never)]
    fn park_traffic(&mut self) {
        if let Some(t) = self.traffic.take() {
            traffic_pool::park(t);
        }
    }

    /// Drops partial input and the frame and message being received.
    fn drop_input(&mut self) {
        if let Some(t) = &mut self.traffic {
            t.in_buf = BytesMut::new();
            t.frame = None;
            t.msg = None;
        }
    }

    // ---- inputs ----

    /// Feeds bytes read from the transport. Copies them; see
    /// [`handle_input_buf`](Self::handle_input_buf) to hand over a buffer without copying.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        if data.is_empty() || self.state == State::Closed || self.has_deferred_end() {
            return;
        }
        let t = self.tr();
        let before = t.events.len();
        t.in_buf.extend_from_slice(data);
        self.process(now);
        self.hold_for_reply(now, before);
        self.settle();
    }

    /// Feeds bytes read from the transport, taking all of `data` (it is left empty, with any
    /// spare capacity it had). Message payloads are then slices of that same allocation, so
    /// a reader that reuses its buffer (`BytesMut::reserve` reclaims it once the messages
    /// are dropped) receives without allocating.
    pub fn handle_input_buf(&mut self, now: Instant, data: &mut BytesMut) {
        if data.is_empty() || self.state == State::Closed || self.has_deferred_end() {
            data.clear();
            return;
        }
        let t = self.tr();
        let before = t.events.len();
        if !t.in_buf.is_empty() {
            t.in_buf.extend_from_slice(data);
            data.clear();
            self.process(now);
            self.hold_for_reply(now, before);
            self.settle();
            return;
        }
        // Nothing held: the frames are read from the caller's buffer itself, which goes
        // back with its spare capacity once they are taken (a reference to the allocation
        // is neither added nor dropped: the messages' payloads are its only new ones).
        std::mem::swap(&mut t.in_buf, data);
        self.process_input(now);
        if let Some(t) = self.traffic.as_deref_mut() {
            if t.in_buf.is_empty() {
                std::mem::swap(&mut t.in_buf, data);
                if t.in_buf.capacity() != 0 {
                    t.in_buf = BytesMut::new();
                }
            } else {
                // A partial frame stays here; the caller keeps the room after it.
                *data = t.in_buf.split_off(t.in_buf.len());
            }
        }
        self.hold_for_reply(now, before);
        self.settle();
    }

    /// Whether the caller should hold further input for now: the last read brought events
    /// (messages, pings) and the application has neither sent anything since nor come back
    /// for more with nothing left to take (a [`poll_event`](Self::poll_event) that returned
    /// `None`), and [`Timeouts::reply_grace`](crate::Timeouts) has not passed (the hold
    /// then ends by [`handle_timeout`](Self::handle_timeout)). A driver that respects it
    /// sends the application's replies before anything later input causes: a close frame
    /// for a protocol violation right behind a message (RFC 6455 §7.1.7) goes out after
    /// the reply to that message, as with a blocking request/reply loop. It also spares a
    /// read that would find nothing while the application works on what it got.
    #[inline]
    pub fn input_held(&self) -> bool {
        self.timers.is_armed(TimerKind::Reply)
    }

    /// After input: holds further input for the application's reply (see
    /// [`input_held`](Self::input_held)) if it brought events, counted from `before`.
    #[inline]
    fn hold_for_reply(&mut self, now: Instant, before: usize) {
        if let Some(grace) = self.config.timeouts.reply_grace
            && self
                .traffic
                .as_ref()
                .is_some_and(|t| t.events.len() > before)
            && self.state == State::Open
            && !self.timers.is_armed(TimerKind::Reply)
            && !self.has_deferred_end()
        {
            self.timers.set_in(TimerKind::Reply, now, Some(grace));
        }
    }

    /// The application is back: it sent something with nothing left to take, or asked for
    /// an event and found none. Input is no longer held for it.
    #[inline]
    fn app_returned(&mut self) {
        if self.timers.is_armed(TimerKind::Reply)
            && self.traffic.as_ref().is_none_or(|t| t.events.is_empty())
        {
            self.timers.stop(TimerKind::Reply);
        }
    }

    /// The transport reached end of stream (§7.1.5): without a closing handshake this is an
    /// abnormal closure (1006); after one, the expected end.
    pub fn handle_eof(&mut self, _now: Instant) {
        if self.has_deferred_end() {
            // The pending failure closes the transport once the events before it are taken.
            return;
        }
        match self.state {
            State::Handshake => {
                let err = match self.handshake.as_deref_mut() {
                    Some(Handshake::Client { parser, .. }) => match parser.finish() {
                        Ok(Some(resp)) => HandshakeError::Rejected {
                            status: resp.status(),
                            response: Box::new(resp),
                        },
                        Ok(None) => HandshakeError::Eof,
                        Err(e) => e,
                    },
                    _ => HandshakeError::Eof,
                };
                self.terminate(CloseReason::HandshakeFailed(err));
            }
            State::Accepting | State::Open | State::Closing => {
                self.terminate(CloseReason::Abnormal);
            }
            State::Closed => self.begin_shutdown(),
        }
        self.settle();
    }

    /// Fires the timers due at `now`; a no-op if none is. Afterwards no deadline is at or
    /// before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(kind) = self.timers.take_expired(now) {
            self.on_timer(now, kind);
        }
        self.settle();
    }

    // ---- commands ----

    /// Server: accepts the request reported by [`Event::Request`] and opens the connection,
    /// negotiating permessage-deflate when the configuration allows it. A plain HTTP request
    /// ([`Request::is_upgrade`] false) cannot be accepted: this returns
    /// [`SendError::Handshake`]`(`[`HandshakeError::NotAnUpgrade`]`)` and the request still
    /// waits for [`reject`](Self::reject).
    pub fn accept(&mut self, now: Instant, accept: Accept) -> Result<(), SendError> {
        let request = match self.handshake.as_deref() {
            Some(Handshake::Accepting { request }) if self.state == State::Accepting => request,
            _ => return Err(SendError::NotAccepting),
        };
        if !request.is_upgrade() {
            return Err(SendError::Handshake(HandshakeError::NotAnUpgrade));
        }
        let negotiated = request.negotiate_deflate(&self.config.deflate);
        let mut head = Vec::new();
        handshake::encode_accept(
            request,
            &accept,
            negotiated.as_ref().map(|(_, v)| v.as_str()),
            &mut head,
        )
        .map_err(SendError::Handshake)?;
        self.subprotocol = accept.chosen_subprotocol().map(|s| Box::new(Box::from(s)));
        self.handshake = None;
        self.push_raw(Bytes::from(head));
        self.set_deflate(negotiated.map(|(p, _)| p));
        self.enter_open(now);
        self.process(now);
        Ok(())
    }

    /// Server: answers the request with an HTTP response (see [`Reject`]) and closes: a
    /// refused upgrade, or the answer to a plain HTTP request.
    pub fn reject(&mut self, _now: Instant, reject: Reject) -> Result<(), SendError> {
        if self.state != State::Accepting {
            return Err(SendError::NotAccepting);
        }
        let mut head = Vec::new();
        handshake::encode_reject(&reject, &mut head);
        self.push_raw(Bytes::from(head));
        self.handshake = None;
        self.terminate(CloseReason::Rejected {
            status: reject.status(),
        });
        Ok(())
    }

    /// Sends a message: text and binary (compressed when deflate was negotiated and the
    /// message reaches the threshold), ping, pong, or close (same as [`close`](Self::close)).
    ///
    /// A frame with up to 4 KiB of payload is encoded into the output at once, and the
    /// message's bytes are let go; a larger payload is held (shared, not copied) until
    /// [`poll_transmit`](Self::poll_transmit) takes it.
    pub fn send(&mut self, now: Instant, message: Message) -> Result<(), SendError> {
        self.send_inner(now, message, true)
    }

    /// Sends a text or binary message without compressing it (a per-message opt-out, for
    /// data that is already compressed); other messages as [`send`](Self::send).
    pub fn send_uncompressed(&mut self, now: Instant, message: Message) -> Result<(), SendError> {
        self.send_inner(now, message, false)
    }

    /// Queues a message encoded once for many connections.
    pub fn send_prepared(&mut self, now: Instant, frame: &PreparedFrame) -> Result<(), SendError> {
        self.check_can_send()?;
        self.app_returned();
        self.touch_idle(now);
        if self.role == Role::Server {
            if let Some(d) = &self.deflate {
                let (bits, no_takeover) = d.params.compressor_for(true);
                match &frame.compressed {
                    Some((bytes, w)) if no_takeover && *w <= bits.max(9) => {
                        self.push_shared(bytes);
                        return Ok(());
                    }
                    _ => {
                        self.send_data(frame.kind, frame.payload.clone(), true);
                        return Ok(());
                    }
                }
            }
            if self
                .config
                .max_outgoing_frame_size
                .is_none_or(|m| frame.payload.len() <= m)
            {
                self.push_shared(&frame.plain);
                return Ok(());
            }
        }
        self.send_data(frame.kind, frame.payload.clone(), true);
        Ok(())
    }

    /// Sends a ping with up to 125 bytes of data (§5.5.2).
    pub fn ping(&mut self, now: Instant, data: Bytes) -> Result<(), SendError> {
        self.send(now, Message::Ping(data))
    }

    /// Starts the closing handshake (§7.1.2) with a code and a reason of at most 123 bytes.
    /// The connection reports [`Event::Closed`] when the peer answers or the close timeout
    /// runs out.
    pub fn close(&mut self, now: Instant, code: CloseCode, reason: &str) -> Result<(), SendError> {
        self.send(now, Message::Close(Some(CloseFrame::new(code, reason))))
    }

    // ---- outputs ----

    /// Appends the bytes to write to `buf`. Returns [`Transmit::Data`] when bytes were
    /// appended, [`Transmit::Shutdown`] once when the transport should be closed (after
    /// everything before it is written), and `None` when there is nothing to do.
    #[inline]
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> Option<Transmit> {
        if self.traffic.as_deref().is_some_and(Traffic::has_output)
            || self.shutdown == Shutdown::Pending
        {
            return self.transmit(buf);
        }
        // Drained: the traffic state goes back to the pool if nothing else is in it.
        self.settle();
        None
    }

    /// [`poll_transmit`](Self::poll_transmit) for a caller that writes with vectored I/O
    /// (`writev`): bytes shared with other connections or with the sender are not copied
    /// into `buf` but handed over as chunks. Each `(offset, bytes)` pushed to `chunks` is
    /// to be written after `buf[..offset]` and before `buf[offset..]`; offsets do not
    /// decrease. What goes out as chunks, when it is at least 256 bytes long (shorter
    /// bytes are cheaper to copy than to write as a slice of their own): messages queued
    /// with [`send_prepared`](Self::send_prepared) (and other pre-encoded output), and the
    /// payloads of unmasked frames over 4 KiB. Everything else is encoded into `buf`, as
    /// by `poll_transmit`.
    #[inline]
    pub fn poll_transmit_vectored(
        &mut self,
        buf: &mut Vec<u8>,
        chunks: &mut Vec<(usize, Bytes)>,
    ) -> Option<Transmit> {
        if self.traffic.as_deref().is_some_and(Traffic::has_output)
            || self.shutdown == Shutdown::Pending
        {
            return self.transmit_into(buf, Some(chunks));
        }
        self.settle();
        None
    }

    /// [`poll_transmit`](Self::poll_transmit) with something to hand out.
    #[inline]
    fn transmit(&mut self, buf: &mut Vec<u8>) -> Option<Transmit> {
        self.transmit_into(buf, None)
    }

    /// Hands out the output: shared bytes as `chunks` when given, copied into `buf`
    /// otherwise (see [`poll_transmit_vectored`](Self::poll_transmit_vectored)).
    #[inline(never)]
    fn transmit_into(
        &mut self,
        buf: &mut Vec<u8>,
        mut chunks: Option<&mut Vec<(usize, Bytes)>>,
    ) -> Option<Transmit> {
        if let Some(t) = self.traffic.as_deref_mut()
            && t.has_output()
        {
            if t.out.is_empty() && buf.is_empty() {
                // Only encoded frames: hand over their buffer, and keep the caller's
                // (with its capacity) for the next ones.
                std::mem::swap(buf, &mut t.tail);
                t.out_bytes = 0;
                return Some(Transmit::Data);
            }
            if chunks.is_none() {
                buf.reserve(t.out_bytes);
            }
            while let Some(item) = t.out.pop_front() {
                match (item, chunks.as_deref_mut()) {
                    (OutItem::Raw(bytes), Some(chunks)) if bytes.len() >= SHARE_MIN => {
                        chunks.push((buf.len(), bytes));
                    }
                    (OutItem::Raw(bytes), _) => buf.extend_from_slice(&bytes),
                    (OutItem::Frame { header, payload }, Some(chunks))
                        if header.mask.is_none() && payload.len() >= SHARE_MIN =>
                    {
                        header.write(buf);
                        chunks.push((buf.len(), payload));
                    }
                    (OutItem::Frame { header, payload } | OutItem::Pong { header, payload }, _) => {
                        header.write(buf);
                        let start = buf.len();
                        buf.extend_from_slice(&payload);
                        if let Some(key) = header.mask {
                            apply_mask(&mut buf[start..], key, 0);
                        }
                    }
                }
            }
            buf.extend_from_slice(&t.tail);
            t.tail.clear();
            t.out_bytes = 0;
            return Some(Transmit::Data);
        }
        self.shutdown = Shutdown::Done;
        Some(Transmit::Shutdown)
    }

    /// The next event, or `None` when there is none until more input or a timeout.
    #[inline]
    pub fn poll_event(&mut self) -> Option<Event> {
        let Some(t) = self.traffic.as_deref_mut() else {
            return self.drained();
        };
        if t.deferred.is_some() {
            return self.poll_event_deferred();
        }
        let Some(event) = t.events.pop_front() else {
            return self.drained();
        };
        match &event {
            Event::Message(m) => t.event_bytes -= m.len(),
            Event::Fragment(f) => t.event_bytes -= f.data.len(),
            _ => {}
        }
        Some(event)
    }

    /// [`poll_event`](Self::poll_event) with nothing to return (out of line: the common
    /// call returns an event): the application came back, and the traffic state goes back
    /// to the pool if nothing else is in it.
    #[inline(never)]
    fn drained(&mut self) -> Option<Event> {
        self.app_returned();
        self.settle();
        None
    }

    /// [`poll_event`](Self::poll_event) while the end waits behind events: it counts them
    /// down, and ends the connection once they are taken.
    #[inline(never)]
    fn poll_event_deferred(&mut self) -> Option<Event> {
        let t = self.traffic.as_deref_mut()?;
        if let Some((0, _)) = t.deferred {
            self.end_deferred(None);
        }
        let t = self.traffic.as_deref_mut()?;
        let Some(event) = t.events.pop_front() else {
            self.settle();
            return None;
        };
        if let Some((n, _)) = &mut t.deferred {
            *n -= 1;
        }
        match &event {
            Event::Message(m) => t.event_bytes -= m.len(),
            Event::Fragment(f) => t.event_bytes -= f.data.len(),
            _ => {}
        }
        Some(event)
    }

    /// The earliest deadline at which [`handle_timeout`](Self::handle_timeout) has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// [`poll_timeout`](Self::poll_timeout) as the time after
    /// [`created_at`](Self::created_at), for a driver that keeps its own deadlines that way:
    /// cheaper to compare than an `Instant`, and `Some` even for a deadline too far away to
    /// be one.
    pub fn poll_timeout_since_start(&self) -> Option<Duration> {
        self.timers.next_after_base()
    }

    // ---- internals: state transitions ----

    fn set_deflate(&mut self, params: Option<DeflateParams>) {
        self.deflate = params.map(|params| {
            let is_server = self.role == Role::Server;
            let (cbits, cnt) = params.compressor_for(is_server);
            let (dbits, dnt) = params.decompressor_for(is_server);
            Box::new(Deflate {
                params,
                compressor: Compressor::new(cbits, cnt, self.config.deflate.compression_level),
                decompressor: Decompressor::new(dbits, dnt),
            })
        });
    }

    fn enter_open(&mut self, now: Instant) {
        self.state = State::Open;
        self.timers.stop(TimerKind::Handshake);
        let t = self.config.timeouts;
        self.timers
            .set_in(TimerKind::KeepAlive, now, t.ping_interval);
        self.timers.set_in(TimerKind::Idle, now, t.idle);
    }

    /// Emits the terminal event once, and moves to `Closed`. A closing handshake started by
    /// the idle timer ends as [`Timeout::Idle`] whether the peer answered or the close timer
    /// ran out.
    fn report_closed(&mut self, reason: CloseReason) {
        self.state = State::Closed;
        if !self.terminated {
            self.terminated = true;
            let reason = match reason {
                CloseReason::Clean { .. } | CloseReason::TimedOut(Timeout::Close)
                    if self.idle_close =>
                {
                    CloseReason::TimedOut(Timeout::Idle)
                }
                other => other,
            };
            self.tr().events.push_back(Event::Closed(reason));
        }
    }

    /// Closed for good: report, drop receive state, and close the transport.
    fn terminate(&mut self, reason: CloseReason) {
        self.report_closed(reason);
        self.begin_shutdown();
    }

    fn begin_shutdown(&mut self) {
        self.state = State::Closed;
        self.timers.stop_all();
        self.drop_input();
        self.handshake = None;
        if self.shutdown == Shutdown::No {
            self.shutdown = Shutdown::Pending;
        }
    }

    /// Fails the connection (§7.1.7) for a peer's violation. When messages decoded before
    /// the violation are still waiting to be taken, the failure waits for them (see
    /// [`defer_end`](Self::defer_end)), so that the application's replies to them are sent
    /// before the close frame.
    fn fail(&mut self, now: Instant, error: ProtocolError) {
        if self.messages_waiting() {
            self.defer_end(now, DeferredEnd::Failure(error));
        } else {
            self.fail_now(error);
        }
    }

    /// Whether data messages (or fragments) wait to be taken with `poll_event`.
    fn messages_waiting(&self) -> bool {
        self.traffic.as_ref().is_some_and(|t| {
            t.events
                .iter()
                .any(|e| matches!(e, Event::Message(_) | Event::Fragment(_)))
        })
    }

    /// Puts the end of the connection behind the events waiting now: input is discarded
    /// from here on, the keep-alive, pong and idle timers stop mattering, and the close
    /// timer (if not already running) bounds how long the application may take. The end
    /// comes with the next `poll_event` after those events, or when the close timer fires.
    fn defer_end(&mut self, now: Instant, end: DeferredEnd) {
        let t = self.tr();
        t.deferred = Some((t.events.len(), end));
        self.drop_input();
        self.timers.stop(TimerKind::KeepAlive);
        self.timers.stop(TimerKind::Pong);
        self.timers.stop(TimerKind::Idle);
        if !self.timers.is_armed(TimerKind::Close) {
            self.timers
                .set_in(TimerKind::Close, now, self.config.timeouts.close);
        }
    }

    /// Ends the connection as deferred: `timed_out` is the time the close timer fired, or
    /// `None` when the events in front of the end were taken. Events still waiting stay in
    /// front of the terminal one.
    fn end_deferred(&mut self, timed_out: Option<Instant>) {
        let Some((_, end)) = self.traffic.as_deref_mut().and_then(|t| t.deferred.take()) else {
            return;
        };
        match end {
            DeferredEnd::Failure(error) => self.fail_now(error),
            DeferredEnd::Close(remote) => {
                self.finish_peer_close(remote);
                if self.role == Role::Client {
                    // The client waits for the server to close TCP, for what is left of the
                    // close timeout armed when the close was deferred.
                    if timed_out.is_some() || !self.timers.is_armed(TimerKind::Close) {
                        self.begin_shutdown();
                    }
                }
            }
        }
    }

    /// Fails the connection now: sends a close frame with the error's code unless one was
    /// sent, reports, and closes the transport.
    fn fail_now(&mut self, error: ProtocolError) {
        let code = error.close_code();
        if self.close_sent.is_none() {
            let frame = CloseFrame::new(code, "");
            self.push_close(Some(frame));
        }
        self.terminate(CloseReason::ProtocolError { error, code });
    }

    fn on_timer(&mut self, now: Instant, kind: TimerKind) {
        let t = self.config.timeouts;
        if self.has_deferred_end() {
            // Only the close timer bounds a deferred end (see `defer_end`).
            if kind == TimerKind::Close {
                self.end_deferred(Some(now));
            }
            return;
        }
        match kind {
            TimerKind::Handshake => {
                if matches!(self.state, State::Handshake | State::Accepting) {
                    self.terminate(CloseReason::TimedOut(Timeout::Handshake));
                }
            }
            TimerKind::KeepAlive => {
                if let Some(interval) = t.ping_interval
                    && self.timers.rearm_if_later(
                        TimerKind::KeepAlive,
                        self.timers.offset(self.last_input),
                        interval,
                        now,
                    )
                {
                    // Input came during the interval: not quiet, wait a full one from it.
                    return;
                }
                // Quiet for a whole ping interval: give back compression state that does
                // not carry over between messages (it is rebuilt on first use).
                if let Some(d) = self.deflate.as_deref_mut() {
                    d.compressor.release();
                    d.decompressor.release();
                }
                if self.state == State::Open {
                    self.push_frame(true, false, OpCode::Ping, Bytes::new());
                    match t.pong_timeout {
                        Some(d) => self.timers.set_in(TimerKind::Pong, now, Some(d)),
                        None => self
                            .timers
                            .set_in(TimerKind::KeepAlive, now, t.ping_interval),
                    }
                }
            }
            TimerKind::Pong => {
                if matches!(self.state, State::Open | State::Closing) {
                    if self.close_sent.is_none() {
                        self.push_close(Some(CloseFrame::new(
                            CloseCode::INTERNAL_ERROR,
                            "keepalive ping timeout",
                        )));
                    }
                    self.terminate(CloseReason::TimedOut(Timeout::Pong));
                }
            }
            TimerKind::Idle => {
                if self.state == State::Open {
                    // Closed(TimedOut(Idle)) is reported when the closing handshake ends.
                    self.idle_close = true;
                    self.start_close(now, Some(CloseFrame::new(CloseCode::GOING_AWAY, "idle")));
                }
            }
            TimerKind::Close => match self.state {
                State::Closing => self.terminate(CloseReason::TimedOut(Timeout::Close)),
                _ => self.begin_shutdown(),
            },
            // The grace for the application's reply is over: input flows again.
            TimerKind::Reply => {}
        }
    }

    // ---- internals: receiving ----

    fn process(&mut self, now: Instant) {
        self.process_input(now);
        if let Some(t) = self.traffic.as_deref_mut()
            && t.in_buf.is_empty()
        {
            // Even with no spare capacity, an empty view keeps the last read's allocation
            // alive.
            t.in_buf = BytesMut::new();
        }
    }

    /// [`Connection::process`], leaving an empty input buffer as it is.
    fn process_input(&mut self, now: Instant) {
        if matches!(self.state, State::Handshake) {
            self.process_handshake(now);
        }
        if matches!(self.state, State::Open | State::Closing) {
            if self.config.timeouts.ping_interval.is_some() && !self.input_paused {
                let t = self.config.timeouts;
                self.timers.stop(TimerKind::Pong);
                if self.state == State::Open {
                    if self.timers.is_armed(TimerKind::KeepAlive) {
                        // (The deadline moves when it comes, see `last_input`.)
                        self.last_input = now;
                    } else {
                        self.timers
                            .set_in(TimerKind::KeepAlive, now, t.ping_interval);
                    }
                }
            }
            self.process_frames(now);
            if matches!(self.state, State::Open | State::Closing)
                && !self.has_deferred_end()
                && self.buffered_input() > self.config.limits.max_buffered_input
            {
                self.fail(now, ProtocolError::InputBufferFull);
            }
        }
    }

    fn process_handshake(&mut self, now: Instant) {
        let t = self.traffic.get_or_insert_with(traffic_pool::take);
        let Some(hs) = self.handshake.as_deref_mut() else {
            return;
        };
        match hs {
            Handshake::Server { parser } => match parser.push(&t.in_buf) {
                Ok(None) => t.in_buf.clear(),
                Ok(Some((request, consumed))) => {
                    t.in_buf.advance(consumed);
                    self.state = State::Accepting;
                    // `accept` needs only the key and the offers: no copy of every header.
                    let offer = Box::new(request.offer());
                    t.events.push_back(Event::Request(Box::new(request)));
                    let too_large = t.in_buf.len() > self.config.limits.max_buffered_input;
                    self.handshake = Some(Box::new(Handshake::Accepting { request: offer }));
                    if too_large {
                        self.fail_handshake(HandshakeError::TooLarge);
                    }
                }
                Err(e) => self.fail_handshake(e),
            },
            Handshake::Client {
                key,
                protocols,
                parser,
            } => match parser.push(&t.in_buf) {
                Ok(None) => t.in_buf.clear(),
                Ok(Some((response, consumed))) => {
                    t.in_buf.advance(consumed);
                    let accepted = match handshake::validate_response(&response, key, protocols) {
                        Ok(a) => a,
                        Err(e) => return self.fail_handshake(e),
                    };
                    let values: Vec<&str> =
                        accepted.extensions.iter().map(|s| s.as_str()).collect();
                    let params = if values.is_empty() {
                        None
                    } else {
                        match deflate::client_accept(&self.config.deflate, &values) {
                            Ok(p) => p,
                            Err(e) => {
                                return self.fail_handshake(HandshakeError::InvalidExtension(
                                    e.to_string(),
                                ));
                            }
                        }
                    };
                    self.subprotocol = accepted.subprotocol.map(|s| Box::new(s.into_boxed_str()));
                    self.handshake = None;
                    self.set_deflate(params);
                    self.enter_open(now);
                    self.tr()
                        .events
                        .push_back(Event::Connected(Box::new(response)));
                }
                Err(e) => self.fail_handshake(e),
            },
            Handshake::Accepting { .. } => {}
        }
    }

    fn fail_handshake(&mut self, error: HandshakeError) {
        if self.role == Role::Server && self.state == State::Handshake {
            let mut out = Vec::new();
            handshake::encode_error_response(&error, &mut out);
            self.push_raw(Bytes::from(out));
        }
        self.terminate(CloseReason::HandshakeFailed(error));
    }

    fn decoder(&self) -> FrameDecoder {
        FrameDecoder::new(self.role, self.config.limits.max_frame_size as u64)
            .allow_rsv1(self.deflate.is_some())
    }

    fn process_frames(&mut self, now: Instant) {
        self.small_frames(now);
        loop {
            if !matches!(self.state, State::Open | State::Closing) || self.has_deferred_end() {
                return;
            }
            let max_input = self.config.limits.max_buffered_input;
            let t = self.tr();
            // Decoded data waiting for the application counts against the input limit as
            // it is produced, not only once the whole read is processed.
            let decoded = t.event_bytes + t.msg.as_ref().map_or(0, |m| m.data.len());
            if decoded > max_input {
                return self.fail(now, ProtocolError::InputBufferFull);
            }
            // The frame being received, as a copy: written back (or cleared) below.
            let mut frame = match t.frame {
                Some(f) => f,
                None => {
                    let (header, len) = match FrameHeader::decode(&t.in_buf) {
                        Ok(Some(h)) => h,
                        Ok(None) => return,
                        Err(e) => return self.fail(now, ProtocolError::Frame(e)),
                    };
                    t.in_buf.advance(len);
                    if let Err(e) = self.begin_frame(&header) {
                        return self.fail(now, e);
                    }
                    InFrame {
                        header,
                        remaining: header.payload_len as usize,
                        received: 0,
                    }
                }
            };
            let header = frame.header;
            let stream_fragments = self.config.stream_fragments;
            let t = self.tr();
            if header.opcode.is_control() {
                if t.in_buf.len() < frame.remaining {
                    t.frame = Some(frame);
                    return;
                }
                let mut payload = t.in_buf.split_to(frame.remaining);
                t.frame = None;
                if let Some(key) = header.mask {
                    apply_mask(&mut payload, key, 0);
                }
                self.on_control(now, header.opcode, payload.freeze());
                continue;
            }
            // Fast path: a whole, uncompressed, unfragmented message in the buffer.
            if t.msg.is_none()
                && header.fin
                && !header.rsv1
                && !stream_fragments
                && t.in_buf.len() >= frame.remaining
            {
                let mut payload = t.in_buf.split_to(frame.remaining);
                t.frame = None;
                if let Some(key) = header.mask {
                    apply_mask(&mut payload, key, 0);
                }
                if !self.deliver_whole(now, header.opcode == OpCode::Text, payload.freeze()) {
                    return;
                }
                continue;
            }
            let take = frame.remaining.min(t.in_buf.len());
            if take == 0 && frame.remaining > 0 {
                t.frame = Some(frame);
                return;
            }
            let mut chunk = t.in_buf.split_to(take);
            if let Some(key) = header.mask {
                apply_mask(&mut chunk, key, frame.received);
            }
            frame.received += take;
            frame.remaining -= take;
            let frame_done = frame.remaining == 0;
            t.frame = (!frame_done).then_some(frame);
            if let Err(e) = self.on_data(now, &chunk, frame_done, header.fin) {
                return self.fail(now, e);
            }
        }
    }

    /// The usual case on its own short path: whole, final, uncompressed text and binary
    /// frames of up to 125 bytes, one after another, with no message being reassembled.
    /// It stops at the first frame that is anything else (or incomplete, or over a limit),
    /// which [`process_frames`](Self::process_frames) then takes with every check; the
    /// checks made here are the same ones, in short.
    fn small_frames(&mut self, now: Instant) {
        if self.state != State::Open || self.config.stream_fragments {
            return;
        }
        let masked = self.role == Role::Server;
        let limits = self.config.limits;
        let max_len = limits.max_frame_size.min(limits.max_message_size).min(125);
        let header_len = if masked { 6 } else { 2 };
        loop {
            let Some(t) = self.traffic.as_deref_mut() else {
                return;
            };
            if t.frame.is_some() || t.msg.is_some() || t.deferred.is_some() {
                return;
            }
            let [b0, b1, ..] = t.in_buf[..] else {
                return;
            };
            let len = usize::from(b1 & 0x7F);
            // FIN, no RSV bit, text (1) or binary (2); the mask bit as the role requires.
            let text = match b0 {
                0x81 => true,
                0x82 => false,
                _ => return,
            };
            if (b1 & 0x80 != 0) != masked
                || len > max_len
                || t.in_buf.len() < header_len + len
                || t.event_bytes + len > limits.max_buffered_input
            {
                return;
            }
            let key = masked.then(|| [t.in_buf[2], t.in_buf[3], t.in_buf[4], t.in_buf[5]]);
            t.in_buf.advance(header_len);
            let mut payload = t.in_buf.split_to(len);
            if let Some(key) = key {
                apply_mask(&mut payload, key, 0);
            }
            if !self.deliver_whole(now, text, payload.freeze()) {
                return;
            }
        }
    }

    /// Delivers a message that arrived whole in one frame, after checking that a text
    /// message is UTF-8. Returns `false` when it was not and the connection failed.
    #[inline]
    fn deliver_whole(&mut self, now: Instant, text: bool, payload: Bytes) -> bool {
        let message = if text {
            if simdutf8::basic::from_utf8(&payload).is_err() {
                self.fail(now, ProtocolError::InvalidUtf8);
                return false;
            }
            Message::Text(Utf8Bytes::from_validated(payload))
        } else {
            Message::Binary(payload)
        };
        self.deliver(now, Event::Message(message));
        true
    }

    /// Checks a new frame header against the role, extensions, limits and message sequence.
    fn begin_frame(&mut self, header: &FrameHeader) -> Result<(), ProtocolError> {
        self.decoder().check(header).map_err(ProtocolError::Frame)?;
        if header.opcode.is_control() {
            if header.rsv1 {
                return Err(ProtocolError::InvalidCompressionBit);
            }
            return Ok(());
        }
        let limit = self.config.limits.max_message_size;
        let in_buf = self.traffic.as_ref().map_or(0, |t| t.in_buf.len());
        match (
            header.opcode,
            self.traffic.as_ref().and_then(|t| t.msg.as_deref()),
        ) {
            (OpCode::Continuation, None) => Err(ProtocolError::UnexpectedContinuation),
            (OpCode::Continuation, Some(msg)) => {
                if header.rsv1 {
                    return Err(ProtocolError::InvalidCompressionBit);
                }
                let so_far = msg.delivered + msg.data.len();
                if !msg.compressed && so_far as u64 + header.payload_len > limit as u64 {
                    return Err(ProtocolError::MessageTooLarge);
                }
                Ok(())
            }
            (_, Some(_)) => Err(ProtocolError::ExpectedContinuation),
            (opcode, None) => {
                if !header.rsv1 && header.payload_len > limit as u64 {
                    return Err(ProtocolError::MessageTooLarge);
                }
                let fast = header.fin && !header.rsv1 && !self.config.stream_fragments;
                if !fast || in_buf < header.payload_len as usize {
                    self.tr().msg = Some(Box::new(Assembly {
                        kind: if opcode == OpCode::Text {
                            DataKind::Text
                        } else {
                            DataKind::Binary
                        },
                        compressed: header.rsv1,
                        data: Vec::new(),
                        utf8: Utf8Validator::default(),
                        delivered: 0,
                        first_pending: true,
                    }));
                }
                Ok(())
            }
        }
    }

    /// Handles a piece of a data frame's (unmasked) payload.
    fn on_data(
        &mut self,
        now: Instant,
        chunk: &[u8],
        frame_done: bool,
        fin: bool,
    ) -> Result<(), ProtocolError> {
        let limit = self.config.limits.max_message_size;
        let stream_fragments = self.config.stream_fragments;
        let Some(msg) = self
            .traffic
            .as_deref_mut()
            .and_then(|t| t.msg.as_deref_mut())
        else {
            return Ok(());
        };
        let start = msg.data.len();
        if msg.compressed {
            let d = self
                .deflate
                .as_deref_mut()
                .ok_or(ProtocolError::InvalidCompressionBit)?;
            let max = msg.data.len() + (limit - msg.delivered - msg.data.len());
            d.decompressor
                .decompress(chunk, &mut msg.data, max)
                .map_err(map_deflate)?;
            if frame_done && fin {
                d.decompressor
                    .finish_message(&mut msg.data, max)
                    .map_err(map_deflate)?;
            }
        } else {
            msg.data.extend_from_slice(chunk);
        }
        if msg.kind == DataKind::Text {
            msg.utf8
                .feed(&msg.data[start..])
                .map_err(|_| ProtocolError::InvalidUtf8)?;
            if frame_done && fin {
                msg.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
            }
        }
        if !frame_done {
            return Ok(());
        }
        if stream_fragments {
            let data = Bytes::from(std::mem::take(&mut msg.data));
            msg.delivered += data.len();
            let fragment = Fragment {
                kind: msg.kind,
                first: std::mem::replace(&mut msg.first_pending, false),
                last: fin,
                data,
            };
            if fin {
                self.tr().msg = None;
            }
            self.deliver(now, Event::Fragment(fragment));
        } else if fin {
            let msg = self.tr().msg.take().expect("message in progress");
            let data = Bytes::from(msg.data);
            let message = match msg.kind {
                DataKind::Text => Message::Text(Utf8Bytes::from_validated(data)),
                DataKind::Binary => Message::Binary(data),
            };
            self.deliver(now, Event::Message(message));
        }
        Ok(())
    }

    #[inline]
    fn deliver(&mut self, now: Instant, event: Event) {
        if self.terminated {
            // Nothing may follow the terminal event.
            return;
        }
        self.touch_idle(now);
        let t = self.tr();
        match &event {
            Event::Message(m) => t.event_bytes += m.len(),
            Event::Fragment(f) => t.event_bytes += f.data.len(),
            _ => {}
        }
        t.events.push_back(event);
    }

    fn on_control(&mut self, now: Instant, opcode: OpCode, payload: Bytes) {
        match opcode {
            OpCode::Ping => {
                if self.close_sent.is_none() {
                    self.push_pong(payload.clone());
                }
                if !self.terminated {
                    self.tr().events.push_back(Event::Ping(payload));
                }
            }
            OpCode::Pong if !self.terminated => self.tr().events.push_back(Event::Pong(payload)),
            OpCode::Pong => {}
            OpCode::Close => self.on_close(now, payload),
            _ => unreachable!("data opcodes are not control frames"),
        }
    }

    /// A close frame arrived (§5.5.1, §7.1.3).
    fn on_close(&mut self, now: Instant, payload: Bytes) {
        let remote = match payload.len() {
            0 => None,
            1 => return self.fail(now, ProtocolError::InvalidClosePayload),
            _ => {
                let code = CloseCode(u16::from_be_bytes([payload[0], payload[1]]));
                if !code.is_sendable() {
                    return self.fail(now, ProtocolError::InvalidCloseCode(code));
                }
                let Ok(reason) = Utf8Bytes::try_from_bytes(payload.slice(2..)) else {
                    return self.fail(now, ProtocolError::InvalidUtf8);
                };
                Some(CloseFrame { code, reason })
            }
        };
        if self.state == State::Open && self.messages_waiting() {
            // The application has not taken the messages in front of the close: its
            // replies to them go out before the echo.
            return self.defer_end(now, DeferredEnd::Close(remote));
        }
        self.finish_peer_close(remote);
        if self.role == Role::Client {
            // The client waits for the server to close TCP, for at most the close timeout.
            match self.config.timeouts.close {
                Some(d) => self.timers.set_in(TimerKind::Close, now, Some(d)),
                None => self.begin_shutdown(),
            }
        }
    }

    /// Completes the closing handshake with the peer's close frame: echoes it unless this
    /// side sent one, reports the clean close, and (server, §7.1.1) closes the transport. A
    /// client keeps only its close timer, if armed, to wait for the server to close TCP.
    fn finish_peer_close(&mut self, remote: Option<CloseFrame>) {
        let initiated_locally = self.close_sent.is_some();
        let local = match self.close_sent.take() {
            Some(sent) => *sent,
            None => {
                let echo = remote.as_ref().map(|f| CloseFrame::new(f.code, ""));
                self.push_close(echo.clone());
                echo
            }
        };
        self.close_sent = Some(Box::new(local.clone()));
        self.report_closed(CloseReason::Clean {
            initiated_locally,
            local,
            remote,
        });
        self.drop_input();
        match self.role {
            // §7.1.1: the server closes the TCP connection first.
            Role::Server => self.begin_shutdown(),
            Role::Client => {
                for kind in TimerKind::ALL {
                    if kind != TimerKind::Close {
                        self.timers.stop(kind);
                    }
                }
            }
        }
    }

    // ---- internals: sending ----

    fn check_can_send(&self) -> Result<(), SendError> {
        match self.state {
            State::Open => Ok(()),
            State::Handshake | State::Accepting => Err(SendError::NotOpen),
            State::Closing | State::Closed => Err(SendError::Closed),
        }
    }

    #[inline]
    fn touch_idle(&mut self, now: Instant) {
        if let Some(d) = self.config.timeouts.idle
            && self.state == State::Open
        {
            self.timers.set_in(TimerKind::Idle, now, Some(d));
        }
    }

    fn send_inner(
        &mut self,
        now: Instant,
        message: Message,
        compress: bool,
    ) -> Result<(), SendError> {
        self.check_can_send()?;
        self.app_returned();
        match message {
            Message::Text(t) => {
                self.touch_idle(now);
                self.send_data(DataKind::Text, t.into_bytes(), compress);
            }
            Message::Binary(b) => {
                self.touch_idle(now);
                self.send_data(DataKind::Binary, b, compress);
            }
            Message::Ping(p) | Message::Pong(p) if p.len() > 125 => {
                return Err(SendError::ControlPayloadTooLong);
            }
            Message::Ping(p) => self.push_frame(true, false, OpCode::Ping, p),
            Message::Pong(p) => self.push_frame(true, false, OpCode::Pong, p),
            Message::Close(frame) => {
                if let Some(f) = &frame {
                    if !f.code.is_sendable() {
                        return Err(SendError::InvalidCloseCode(f.code));
                    }
                    if f.reason.len() > 123 {
                        return Err(SendError::ControlPayloadTooLong);
                    }
                }
                self.start_close(now, frame);
            }
        }
        Ok(())
    }

    fn start_close(&mut self, now: Instant, frame: Option<CloseFrame>) {
        self.push_close(frame);
        self.state = State::Closing;
        self.timers.stop(TimerKind::KeepAlive);
        self.timers.stop(TimerKind::Idle);
        self.timers
            .set_in(TimerKind::Close, now, self.config.timeouts.close);
    }

    fn push_close(&mut self, frame: Option<CloseFrame>) {
        let payload = match &frame {
            None => Bytes::new(),
            Some(f) => {
                let mut p = Vec::with_capacity(2 + f.reason.len());
                p.extend_from_slice(&f.code.0.to_be_bytes());
                p.extend_from_slice(f.reason.as_bytes());
                Bytes::from(p)
            }
        };
        self.push_frame(true, false, OpCode::Close, payload);
        self.close_sent = Some(Box::new(frame));
    }

    #[inline]
    fn send_data(&mut self, kind: DataKind, payload: Bytes, compress: bool) {
        let opcode = data_opcode(kind);
        let (payload, rsv1) = match self.deflate.as_deref_mut() {
            Some(d) if compress && payload.len() >= self.config.deflate.threshold => {
                let mut out = Vec::new();
                d.compressor.compress(&payload, &mut out);
                (Bytes::from(out), true)
            }
            _ => (payload, false),
        };
        match self.config.max_outgoing_frame_size {
            Some(max) if payload.len() > max && max > 0 => {
                let mut first = true;
                let mut rest = payload;
                while !rest.is_empty() {
                    let part = rest.split_to(max.min(rest.len()));
                    let op = if first { opcode } else { OpCode::Continuation };
                    self.push_frame(rest.is_empty(), rsv1 && first, op, part);
                    first = false;
                }
            }
            _ => self.push_frame(true, rsv1, opcode, payload),
        }
    }

    /// Queues the answer to a ping. Once [`PONG_BACKLOG`] bytes wait to be taken by
    /// `poll_transmit`, a new answer replaces the last one if that is still waiting: only
    /// the most recent ping is answered (§5.5.3), so a peer that floods pings and reads
    /// nothing cannot make the output grow. Below it every ping gets its pong.
    fn push_pong(&mut self, payload: Bytes) {
        let t = self.tr();
        if t.out_bytes >= PONG_BACKLOG
            && t.tail.is_empty()
            && let Some(OutItem::Pong {
                header,
                payload: queued,
            }) = t.out.back_mut()
        {
            t.out_bytes -= header.encoded_len() + queued.len();
            header.payload_len = payload.len() as u64;
            t.out_bytes += header.encoded_len() + payload.len();
            *queued = payload;
            return;
        }
        let header = self.frame_header(true, false, OpCode::Pong, payload.len());
        let t = self.tr();
        t.out_bytes += header.encoded_len() + payload.len();
        t.seal_tail();
        t.out.push_back(OutItem::Pong { header, payload });
    }

    fn frame_header(&mut self, fin: bool, rsv1: bool, opcode: OpCode, len: usize) -> FrameHeader {
        let mask = self.rng.as_deref_mut().map(|rng| {
            let mut key = [0u8; 4];
            rng.fill_bytes(&mut key);
            key
        });
        FrameHeader {
            fin,
            rsv1,
            rsv2: false,
            rsv3: false,
            opcode,
            mask,
            payload_len: len as u64,
        }
    }

    #[inline]
    fn push_frame(&mut self, fin: bool, rsv1: bool, opcode: OpCode, payload: Bytes) {
        let header = self.frame_header(fin, rsv1, opcode, payload.len());
        let t = self.tr();
        let len = header.encoded_len() + payload.len();
        t.out_bytes += len;
        if payload.len() <= INLINE_PAYLOAD {
            t.tail.reserve(len);
            header.write(&mut t.tail);
            let start = t.tail.len();
            t.tail.extend_from_slice(&payload);
            if let Some(key) = header.mask {
                apply_mask(&mut t.tail[start..], key, 0);
            }
            return;
        }
        t.seal_tail();
        t.out.push_back(OutItem::Frame { header, payload });
    }

    /// Queues bytes encoded once for many connections: shared (not copied) from
    /// [`SHARE_MIN`] bytes on, copied into the encoded output below (as a small frame sent
    /// on its own would be, and cheaper than a slice of a vectored write of its own).
    fn push_shared(&mut self, bytes: &Bytes) {
        if bytes.len() >= SHARE_MIN {
            self.push_raw(bytes.clone());
            return;
        }
        let t = self.tr();
        t.out_bytes += bytes.len();
        t.tail.extend_from_slice(bytes);
    }

    fn push_raw(&mut self, bytes: Bytes) {
        let t = self.tr();
        t.out_bytes += bytes.len();
        t.seal_tail();
        t.out.push_back(OutItem::Raw(bytes));
    }
}

/// Output waiting in the connection beyond which the answer to a ping replaces the last
/// answer still waiting, instead of queueing another (see `Connection::push_pong`).
const PONG_BACKLOG: usize = 16 * 1024;

fn map_deflate(e: DeflateError) -> ProtocolError {
    match e {
        DeflateError::TooLarge => ProtocolError::MessageTooLarge,
        _ => ProtocolError::InvalidCompressedData,
    }
}
