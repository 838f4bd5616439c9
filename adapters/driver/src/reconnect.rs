//! A client that stays connected: [`ReconnectingClient`], its builder, events and handles.

use crate::config::Config;
use crate::error::Error;
use crate::runtime::{Runtime, Timer};
use crate::socket::WebSocket;
use crate::state::{set_waker, wake};
use bytes::Bytes;
use futures_core::Stream;
use futures_sink::Sink;
use std::collections::VecDeque;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tether_core::{
    ClientRequest, CloseCode, CloseFrame, CloseReason, Decision, Disconnect, GiveUpReason, Message,
    ReconnectConfig, ReconnectConfigError, ReconnectPolicy, Response, State, Timeout, Utf8Bytes,
};

/// Rounds of work in one poll of a connection before the client's task yields.
const BUDGET: usize = 32;

/// Shortest heartbeat interval; shorter settings are raised to it.
const MIN_HEARTBEAT: Duration = Duration::from_millis(1);

/// The future of one connection attempt, as a [`Dialer`] returns it.
pub type DialFuture = Pin<Box<dyn Future<Output = Result<(WebSocket, Response), Error>> + Send>>;

/// Opens one connection: DNS, TCP, TLS and the opening handshake (RFC 6455 §4.1), bounded by
/// the handshake timeout. Each adapter implements it with its `connect_with`; every
/// `Fn(ClientRequest, Config) -> DialFuture` is one.
pub trait Dialer: Send + Sync + 'static {
    /// Starts a dial; the future resolves to the open connection and the server's response.
    fn dial(&self, request: ClientRequest, config: Config) -> DialFuture;
}

impl<F> Dialer for F
where
    F: Fn(ClientRequest, Config) -> DialFuture + Send + Sync + 'static,
{
    fn dial(&self, request: ClientRequest, config: Config) -> DialFuture {
        self(request, config)
    }
}

/// Bounds of the outbox, where messages wait until a connection can take them.
///
/// The default is 1024 messages and 1 MiB of payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutboxLimits {
    /// Most messages waiting at once.
    pub max_messages: usize,
    /// Most payload bytes waiting at once; a single larger message is always refused.
    pub max_bytes: usize,
}

impl Default for OutboxLimits {
    fn default() -> Self {
        Self {
            max_messages: 1024,
            max_bytes: 1 << 20,
        }
    }
}

/// An application-level heartbeat: a text message sent every `interval` while connected;
/// if the expected reply does not arrive within `timeout` of a heartbeat, the connection
/// counts as dead, is closed with 1011 and redialled.
///
/// It complements the WebSocket keep-alive of [`Timeouts`](tether_core::Timeouts) for
/// servers and proxies that do not pass ping and pong frames on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    /// The text sent.
    pub message: Utf8Bytes,
    /// Time between heartbeats, from the connection's opening (at least 1 ms).
    pub interval: Duration,
    /// The text message that answers a heartbeat; such replies are not delivered as
    /// [`ClientEvent::Message`]. `None`: any data message counts as an answer (and is
    /// delivered).
    pub reply: Option<Utf8Bytes>,
    /// How long to wait for an answer after a heartbeat is sent.
    pub timeout: Duration,
}

impl Heartbeat {
    /// Sends `message` every `interval`; any data message within `interval` answers it.
    pub fn new(message: impl Into<Utf8Bytes>, interval: Duration) -> Self {
        Self {
            message: message.into(),
            interval,
            reply: None,
            timeout: interval,
        }
    }

    /// Only the text message `reply` answers a heartbeat.
    pub fn reply(mut self, reply: impl Into<Utf8Bytes>) -> Self {
        self.reply = Some(reply.into());
        self
    }

    /// Waits `timeout` for an answer to a heartbeat (default: the interval).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// What happened to a [`ReconnectingClient`], in order; see the [`ReconnectingClient`] docs.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ClientEvent {
    /// A dial starts. `attempt` 0 is the first dial of an outage (or of the client), then
    /// 1, 2, ... for the retries ([`ReconnectPolicy::attempt`]).
    Connecting {
        /// The number of this dial in the current outage.
        attempt: u32,
    },
    /// The opening handshake completed; the server's response.
    Connected(Box<Response>),
    /// A text or binary message from the server.
    Message(Message),
    /// A dial failed or the connection ended; the client decides next whether to dial again.
    Disconnected(DisconnectReason),
    /// The next dial is scheduled in `delay` (drawn by the policy in
    /// `[0, ReconnectConfig::backoff_cap(attempt)]`).
    Reconnecting {
        /// The number of the dial to come.
        attempt: u32,
        /// How long the client waits before it.
        delay: Duration,
    },
    /// The client stopped for good; the last event.
    GaveUp(GiveUpReason),
}

/// One line per event, for logs: `connecting (attempt 1)`, `connected (101)`,
/// `disconnected: ...`, `reconnecting (attempt 2) in 35 ms`, `gave up: ...`.
impl fmt::Display for ClientEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connecting { attempt } => write!(f, "connecting (attempt {attempt})"),
            Self::Connected(response) => write!(f, "connected ({})", response.status()),
            Self::Message(message) => write!(f, "message ({} bytes)", message.len()),
            Self::Disconnected(reason) => write!(f, "disconnected: {reason}"),
            Self::Reconnecting { attempt, delay } => {
                write!(
                    f,
                    "reconnecting (attempt {attempt}) in {} ms",
                    delay.as_millis()
                )
            }
            Self::GaveUp(reason) => write!(f, "gave up: {reason:?}"),
        }
    }
}

/// Why a dial failed or a connection ended.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The dial failed before the connection opened: DNS, TCP, TLS, the opening handshake
    /// or its timeout. A server's refusal carries its status ([`Error::status`]).
    DialFailed(Arc<Error>),
    /// The open connection ended, as the core tells: a closing handshake (with both close
    /// frames), a keep-alive pong timeout, a protocol violation, or an end without a
    /// closing handshake (1006).
    Closed(Arc<CloseReason>),
    /// The [`Heartbeat`] got no answer within its timeout.
    HeartbeatTimeout,
}

impl DisconnectReason {
    /// The policy's view of this reason.
    fn disconnect(&self) -> Disconnect {
        match self {
            Self::DialFailed(error) => match &**error {
                Error::Rejected { status, .. } => Disconnect::HandshakeRejected { status: *status },
                Error::Handshake(_) | Error::Timeout(Timeout::Handshake) => {
                    Disconnect::HandshakeFailed
                }
                _ => Disconnect::DialFailed,
            },
            Self::Closed(reason) => Disconnect::from(&**reason),
            Self::HeartbeatTimeout => Disconnect::Abnormal,
        }
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DialFailed(error) => write!(f, "dial failed: {error}"),
            Self::Closed(reason) => match &**reason {
                CloseReason::Clean {
                    initiated_locally: true,
                    ..
                } => write!(f, "closed by us ({})", u16::from(reason.code())),
                CloseReason::Clean { .. } => {
                    write!(f, "closed by the server ({})", u16::from(reason.code()))
                }
                CloseReason::TimedOut(t) => write!(f, "timed out: {t:?}"),
                CloseReason::ProtocolError { error, .. } => write!(f, "protocol error: {error}"),
                _ => write!(f, "connection lost ({})", u16::from(reason.code())),
            },
            Self::HeartbeatTimeout => f.write_str("heartbeat not answered in time"),
        }
    }
}

/// A message the outbox did not take; the message is handed back.
#[derive(Debug)]
#[non_exhaustive]
pub enum OutboxError {
    /// The outbox is full ([`OutboxLimits`]), or the message alone is larger than
    /// `max_bytes`. Try again later, or drop it.
    Full(Message),
    /// The client was closed or gave up; nothing more is sent.
    Closed(Message),
    /// A close message: use [`ReconnectingClient::close`].
    CloseMessage(Message),
}

impl OutboxError {
    /// The message that was not queued.
    pub fn into_message(self) -> Message {
        match self {
            Self::Full(m) | Self::Closed(m) | Self::CloseMessage(m) => m,
        }
    }
}

impl fmt::Display for OutboxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Full(_) => "the outbox is full",
            Self::Closed(_) => "the client is closed",
            Self::CloseMessage(_) => "close messages are not queued; use close()",
        })
    }
}

impl std::error::Error for OutboxError {}

/// State shared by the client's task and its handles.
struct Shared {
    outbox: VecDeque<Message>,
    outbox_bytes: usize,
    limits: OutboxLimits,
    events: VecDeque<ClientEvent>,
    event_capacity: usize,
    /// The event stream (the [`ReconnectingClient`]) is alive.
    stream_alive: bool,
    connected: bool,
    /// While `connected`: the connection's write buffer is below its high-water mark
    /// ([`Config::write_high_water_mark`]), as the task last saw it. Awaiting sends wait
    /// while it is `false`.
    writable: bool,
    /// The connections' [`Config::write_high_water_mark`]: while connected, awaiting sends
    /// also wait while this much waits in the outbox, not yet taken by the connection.
    write_high_water_mark: usize,
    attempt: u32,
    /// The application asked to close, with this frame.
    close: Option<CloseFrame>,
    /// The policy gave up: sends fail.
    stopped: bool,
    /// The task is gone: the stream ends once drained.
    done: bool,
    task_waker: Option<Waker>,
    stream_waker: Option<Waker>,
    /// The awaiting sends ([`ClientSend`]) waiting for room, by id.
    send_waiters: Vec<(u64, Waker)>,
    /// The id of the next waiting send.
    next_waiter: u64,
}

/// What the outbox does with an offered message.
enum Offer {
    /// Queued.
    Queued,
    /// Refused for good.
    Refused(OutboxError),
    /// No room now (an awaiting send only): handed back, to be offered again.
    Wait(Message),
}

impl Shared {
    /// Queues `message` if the outbox takes it. `wait`: an awaiting send, which waits
    /// (rather than failing with [`OutboxError::Full`]) while the outbox is full, and while
    /// connected, while the connection's write buffer is at its high-water mark or the
    /// outbox holds that much itself (so that, connected, the outbox is no second buffer of
    /// its size in front of the connection's).
    fn offer(&mut self, message: Message, wait: bool) -> Offer {
        if matches!(message, Message::Close(_)) {
            return Offer::Refused(OutboxError::CloseMessage(message));
        }
        if self.stopped || self.close.is_some() {
            return Offer::Refused(OutboxError::Closed(message));
        }
        let len = message.len();
        if len > self.limits.max_bytes || self.limits.max_messages == 0 {
            // Never fits, however long one waits.
            return Offer::Refused(OutboxError::Full(message));
        }
        let fits = self.outbox.len() < self.limits.max_messages
            && self
                .outbox_bytes
                .checked_add(len)
                .is_some_and(|total| total <= self.limits.max_bytes);
        if !fits {
            return if wait {
                Offer::Wait(message)
            } else {
                Offer::Refused(OutboxError::Full(message))
            };
        }
        let backlog = self.outbox_bytes > 0 && self.outbox_bytes >= self.write_high_water_mark;
        if wait && self.connected && (!self.writable || backlog) {
            return Offer::Wait(message);
        }
        self.outbox_bytes += len;
        self.outbox.push_back(message);
        wake(&mut self.task_waker);
        Offer::Queued
    }

    /// Registers the waker of the waiting send `id` (a new id if `None` or no longer
    /// registered).
    fn wait_for_room(&mut self, id: &mut Option<u64>, waker: &Waker) {
        if let Some(id) = *id
            && let Some((_, w)) = self.send_waiters.iter_mut().find(|(i, _)| *i == id)
        {
            if !w.will_wake(waker) {
                *w = waker.clone();
            }
            return;
        }
        let new = self.next_waiter;
        self.next_waiter += 1;
        self.send_waiters.push((new, waker.clone()));
        *id = Some(new);
    }

    /// Forgets the waiting send `id`.
    fn stop_waiting(&mut self, id: Option<u64>) {
        if let Some(id) = id {
            self.send_waiters.retain(|(i, _)| *i != id);
        }
    }

    /// Wakes every waiting send: there may be room, or the client stopped.
    fn wake_senders(&mut self) {
        for (_, waker) in self.send_waiters.drain(..) {
            waker.wake();
        }
    }

    /// Records whether the connection's write buffer is below its high-water mark.
    fn set_writable(&mut self, writable: bool) {
        if writable && !self.writable {
            self.wake_senders();
        }
        self.writable = writable;
    }

    /// Records that a connection opened (with an empty write buffer) or ended.
    fn set_connected(&mut self, connected: bool) {
        self.connected = connected;
        self.writable = true;
        if !connected {
            self.wake_senders();
        }
    }

    /// Drops the outbox for good: the client stopped.
    fn stop(&mut self) {
        self.stopped = true;
        self.outbox = VecDeque::new();
        self.outbox_bytes = 0;
        self.wake_senders();
    }

    fn push_event(&mut self, event: ClientEvent) {
        if self.stream_alive {
            self.events.push_back(event);
            wake(&mut self.stream_waker);
        }
    }

    fn has_room(&self) -> bool {
        !self.stream_alive || self.events.len() < self.event_capacity
    }

    fn pop_outbox(&mut self) -> Option<Message> {
        let message = self.outbox.pop_front()?;
        self.outbox_bytes -= message.len();
        self.wake_senders();
        Some(message)
    }

    fn take_outbox(&mut self) -> VecDeque<Message> {
        self.outbox_bytes = 0;
        self.wake_senders();
        std::mem::take(&mut self.outbox)
    }

    fn request_close(&mut self, frame: CloseFrame) {
        if self.close.is_none() {
            self.close = Some(frame);
            wake(&mut self.task_waker);
            self.wake_senders();
        }
    }
}

struct Inner {
    shared: Mutex<Shared>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Closes the client when the last handle is dropped.
struct Alive(Arc<Inner>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0
            .lock()
            .request_close(CloseFrame::new(CloseCode::NORMAL, ""));
    }
}

type Callback<T> = Option<Box<dyn FnMut(&T) + Send>>;
type MakeRequest = Box<dyn FnMut(u32) -> Result<ClientRequest, Error> + Send>;

struct Callbacks {
    on_connect: Callback<Response>,
    on_message: Callback<Message>,
    on_error: Callback<Error>,
    on_close: Callback<DisconnectReason>,
}

fn call<T>(callback: &mut Callback<T>, value: &T) {
    if let Some(f) = callback {
        f(value);
    }
}

/// Configures and starts a [`ReconnectingClient`]. The adapters' `reconnecting` functions
/// make one bound to their runtime.
pub struct ReconnectBuilder {
    runtime: Arc<dyn Runtime>,
    dialer: Box<dyn Dialer>,
    make_request: MakeRequest,
    config: Config,
    policy: ReconnectConfig,
    outbox: OutboxLimits,
    heartbeat: Option<Heartbeat>,
    seed: Option<u64>,
    event_capacity: usize,
    callbacks: Callbacks,
}

impl fmt::Debug for ReconnectBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReconnectBuilder")
            .field("policy", &self.policy)
            .field("outbox", &self.outbox)
            .field("heartbeat", &self.heartbeat)
            .finish_non_exhaustive()
    }
}

impl ReconnectBuilder {
    /// A client that runs on `runtime`, dials with `dialer`, and calls `make_request` with
    /// the attempt number ([`ClientEvent::Connecting`]) before every dial. An error from
    /// `make_request` counts as a failed dial.
    pub fn new<D, F, E>(runtime: Arc<dyn Runtime>, dialer: D, mut make_request: F) -> Self
    where
        D: Dialer,
        F: FnMut(u32) -> Result<ClientRequest, E> + Send + 'static,
        E: Into<Error>,
    {
        Self {
            runtime,
            dialer: Box::new(dialer),
            make_request: Box::new(move |attempt| make_request(attempt).map_err(Into::into)),
            config: Config::default(),
            policy: ReconnectConfig::default(),
            outbox: OutboxLimits::default(),
            heartbeat: None,
            seed: None,
            event_capacity: 1024,
            callbacks: Callbacks {
                on_connect: None,
                on_message: None,
                on_error: None,
                on_close: None,
            },
        }
    }

    /// The configuration of every connection (limits, keep-alive timers, compression).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The reconnect policy's settings (backoff, attempts, terminal statuses and codes).
    pub fn policy(mut self, policy: ReconnectConfig) -> Self {
        self.policy = policy;
        self
    }

    /// The outbox's bounds.
    pub fn outbox(mut self, limits: OutboxLimits) -> Self {
        self.outbox = limits;
        self
    }

    /// Turns on an application-level heartbeat.
    pub fn heartbeat(mut self, heartbeat: Heartbeat) -> Self {
        self.heartbeat = Some(heartbeat);
        self
    }

    /// Seeds the backoff jitter (default: from the operating system), for reproducible runs.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Most events waiting in the stream (at least 1; default 1024).
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity.max(1);
        self
    }

    /// Called with the server's response whenever a connection opens.
    pub fn on_connect(mut self, f: impl FnMut(&Response) + Send + 'static) -> Self {
        self.callbacks.on_connect = Some(Box::new(f));
        self
    }

    /// Called with every text and binary message received.
    pub fn on_message(mut self, f: impl FnMut(&Message) + Send + 'static) -> Self {
        self.callbacks.on_message = Some(Box::new(f));
        self
    }

    /// Called with every error: failed dials (and requests), connection failures (timeouts,
    /// protocol violations, transport errors) and messages the connection refused.
    pub fn on_error(mut self, f: impl FnMut(&Error) + Send + 'static) -> Self {
        self.callbacks.on_error = Some(Box::new(f));
        self
    }

    /// Called whenever a dial fails or a connection ends ([`ClientEvent::Disconnected`]).
    pub fn on_close(mut self, f: impl FnMut(&DisconnectReason) + Send + 'static) -> Self {
        self.callbacks.on_close = Some(Box::new(f));
        self
    }

    /// Starts the client's task, which dials at once. Fails only for an invalid policy.
    pub fn start(self) -> Result<ReconnectingClient, ReconnectConfigError> {
        let seed = match self.seed {
            Some(seed) => seed,
            None => {
                let mut bytes = [0u8; 8];
                // Without OS randomness the jitter is still spread by the clock.
                if getrandom::fill(&mut bytes).is_err() {
                    let nanos = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.subsec_nanos());
                    bytes[..4].copy_from_slice(&nanos.to_le_bytes());
                }
                u64::from_le_bytes(bytes)
            }
        };
        let policy = ReconnectPolicy::new(self.policy, seed)?;
        let inner = Arc::new(Inner {
            shared: Mutex::new(Shared {
                outbox: VecDeque::new(),
                outbox_bytes: 0,
                limits: self.outbox,
                events: VecDeque::new(),
                event_capacity: self.event_capacity,
                stream_alive: true,
                connected: false,
                writable: true,
                write_high_water_mark: self.config.write_high_water_mark,
                attempt: 0,
                close: None,
                stopped: false,
                done: false,
                task_waker: None,
                stream_waker: None,
                send_waiters: Vec::new(),
                next_waiter: 0,
            }),
        });
        let task = Task {
            guard: TaskGuard(inner.clone()),
            runtime: self.runtime.clone(),
            dialer: self.dialer,
            make_request: self.make_request,
            config: self.config,
            policy,
            heartbeat: self.heartbeat,
            callbacks: self.callbacks,
        };
        self.runtime.spawn(Box::pin(task.run()));
        Ok(ReconnectingClient {
            handle: ClientHandle {
                _alive: Arc::new(Alive(inner.clone())),
                inner,
            },
        })
    }
}

/// A WebSocket client that stays connected.
///
/// It dials, and when the connection is lost or a dial fails it waits as the core's
/// [`ReconnectPolicy`] decides (exponential backoff with full jitter, RFC 6455 §7.2.3) and
/// dials again, building the request afresh each time so that credentials can change. It
/// stops for good on the policy's terminal outcomes: [`ReconnectingClient::close`], a
/// handshake refused with a status in [`ReconnectConfig::terminal_statuses`] (401 and 403
/// by default), a server close code in [`ReconnectConfig::terminal_close_codes`], or
/// [`ReconnectConfig::max_attempts`] failed retries in a row.
///
/// Dead peers are found two ways. The core's keep-alive ([`Timeouts`](tether_core::Timeouts):
/// a ping after `ping_interval` without input, then `pong_timeout` for any answer) ends a
/// connection whose server keeps TCP open but stopped answering within `ping_interval +
/// pong_timeout`. An optional [`Heartbeat`] does the same with an application message,
/// for servers and proxies that swallow control frames.
///
/// Messages go through a bounded outbox ([`OutboxLimits`]): while offline they wait there
/// and are sent in order after reconnecting. When it is full, [`send`](Self::send) (and
/// `send_text`, `send_binary`) waits for room; it also waits, while connected, while the
/// connection's write buffer (or the outbox) holds the connection's high-water mark, so a
/// producer that awaits its sends is held back to the server's pace. [`try_send`](Self::try_send) (and `try_send_text`,
/// `try_send_binary`) never waits: it hands the message back in [`OutboxError::Full`]
/// instead. Both are cancel-safe.
///
/// # Delivery guarantee
///
/// At most once. A message still in the outbox when a connection drops is kept for the next
/// one. A message already handed to a connection (queued in its write buffer or written to
/// the socket) when that connection dies is lost: it is not sent again, and nothing tells
/// whether the server got it. With a peer that silently died, that is everything sent
/// until the death is detected (up to `ping_interval + pong_timeout`, or the heartbeat's
/// interval and timeout), as long as the connection's write buffer took it. On
/// [`close`](Self::close) an open connection gets the whole outbox before the close frame;
/// messages still in the outbox when the client stops otherwise (it gave up, or was closed
/// while offline) are dropped. Applications that need every message must acknowledge them
/// in their own protocol and resend what was not acknowledged.
///
/// # Events and callbacks
///
/// The client is a [`Stream`] of [`ClientEvent`]s. For every dial it yields
/// [`Connecting`](ClientEvent::Connecting), then either a failed dial's
/// [`Disconnected`](ClientEvent::Disconnected) or [`Connected`](ClientEvent::Connected),
/// the connection's [`Message`](ClientEvent::Message)s and its `Disconnected`; then
/// [`Reconnecting`](ClientEvent::Reconnecting) with the drawn delay, or
/// [`GaveUp`](ClientEvent::GaveUp), after which the stream ends. The callbacks
/// [`on_connect`](ReconnectBuilder::on_connect), [`on_message`](ReconnectBuilder::on_message),
/// [`on_error`](ReconnectBuilder::on_error) and [`on_close`](ReconnectBuilder::on_close) run
/// on the client's task just before the matching event is queued.
///
/// At most [`ReconnectBuilder::event_capacity`] events wait in the stream: when it is full,
/// the client stops reading messages (TCP flow control then pushes back on the server) and
/// holds its lifecycle until the application takes an event. Applications that only use
/// callbacks should drop the stream with [`ReconnectingClient::into_handle`].
///
/// # Example
///
/// An adapter binds this module to its runtime (`tether_tokio::reconnecting` and
/// `tether_async_std::reconnecting` do); here the binding is written out:
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use tether_driver::{
///     ClientEvent, ClientRequest, Config, DialFuture, Heartbeat, OutboxLimits, ReconnectBuilder,
///     ReconnectConfig, ReconnectConfigError, ReconnectingClient, Runtime,
/// };
///
/// fn start(
///     runtime: Arc<dyn Runtime>,
///     dial: impl Fn(ClientRequest, Config) -> DialFuture + Send + Sync + 'static,
/// ) -> Result<ReconnectingClient, ReconnectConfigError> {
///     let token = Arc::new(std::sync::Mutex::new(String::from("first-token")));
///     ReconnectBuilder::new(runtime, dial, move |_attempt| {
///         // Built for every dial: a refreshed token is picked up on the next one.
///         let token = token.lock().map(|t| t.clone()).unwrap_or_default();
///         ClientRequest::new("ws://127.0.0.1:9001/feed")
///             .map(|r| r.header("authorization", format!("Bearer {token}")))
///     })
///     .policy(ReconnectConfig { max_delay: Duration::from_secs(10), ..Default::default() })
///     .outbox(OutboxLimits { max_messages: 100, max_bytes: 64 * 1024 })
///     .heartbeat(Heartbeat::new("ping", Duration::from_secs(15)).reply("pong"))
///     .on_message(|message| println!("recv: {message:?}"))
///     .start()
/// }
///
/// async fn run(mut client: ReconnectingClient) {
///     // Queued now, sent once connected (or after the next reconnection).
///     let _ = client.try_send_text("hello");
///     // Waits while the outbox is full (or, connected, while the connection's write buffer
///     // is at its high-water mark).
///     if client.send_text("hello again").await.is_err() {
///         return; // the client was closed
///     }
///     while let Some(event) = client.next_event().await {
///         if let ClientEvent::GaveUp(reason) = event {
///             eprintln!("gave up: {reason:?}");
///         }
///     }
/// }
/// ```
///
/// # Handles
///
/// The client is the [`Stream`] of [`ClientEvent`]s (also [`next_event`](Self::next_event)),
/// and sends through its outbox. [`handle`](Self::handle) gives cloneable handles for
/// sending from other tasks. Dropping the client and every handle closes it, as
/// [`close`](Self::close) with 1000.
pub struct ReconnectingClient {
    handle: ClientHandle,
}

/// A cloneable handle to a [`ReconnectingClient`]: sends, closes, observes.
#[derive(Clone)]
pub struct ClientHandle {
    inner: Arc<Inner>,
    _alive: Arc<Alive>,
}

impl ClientHandle {
    /// Queues a message in the outbox, waiting for room: it is sent in order when a
    /// connection can take it. Resolves once the message is queued, not once it is sent.
    ///
    /// Where [`try_send`](Self::try_send) fails with [`OutboxError::Full`], this waits: while
    /// the outbox is full ([`OutboxLimits`]), and, while connected, while the connection's
    /// write buffer is at its high-water mark ([`Config::write_high_water_mark`]) or the
    /// outbox itself holds that many bytes not yet taken by the connection. A producer that
    /// awaits every send thus runs no faster than the server reads, with at most about
    /// twice the high-water mark (plus one message) buffered. Offline, it waits until a
    /// connection drains the outbox (or the client stops).
    ///
    /// Fails with [`OutboxError::Closed`] once the client is closed or gave up (also while
    /// waiting), [`OutboxError::CloseMessage`] for a close message (use
    /// [`close`](Self::close)), and [`OutboxError::Full`] only for a message that can never
    /// fit: larger alone than [`OutboxLimits::max_bytes`] (or `max_messages` is 0).
    ///
    /// Cancel-safe: the message is queued only by the poll that returns `Ready(Ok(()))`. If
    /// the future is dropped before, the message was not queued and nothing else in the
    /// outbox changed. Concurrent senders are not served in the order they started waiting.
    pub fn send(&self, message: Message) -> ClientSendFuture<'_> {
        ClientSendFuture {
            inner: &self.inner,
            message: Some(message),
            waiter: None,
        }
    }

    /// Queues a text message, waiting for room; see [`send`](Self::send). Cancel-safe in
    /// the same way.
    pub fn send_text(&self, text: impl Into<Utf8Bytes>) -> ClientSendFuture<'_> {
        self.send(Message::Text(text.into()))
    }

    /// Queues a binary message, waiting for room; see [`send`](Self::send). Cancel-safe in
    /// the same way.
    pub fn send_binary(&self, data: impl Into<Bytes>) -> ClientSendFuture<'_> {
        self.send(Message::Binary(data.into()))
    }

    /// Queues a message in the outbox if it has room now; it is sent in order when a
    /// connection can take it. Never waits: a full outbox hands the message back
    /// ([`OutboxError::Full`]). Unlike [`send`](Self::send), it does not look at the
    /// connection's write buffer: the outbox holds what the connection does not take yet.
    pub fn try_send(&self, message: Message) -> Result<(), OutboxError> {
        match self.inner.lock().offer(message, false) {
            Offer::Queued => Ok(()),
            Offer::Refused(error) => Err(error),
            Offer::Wait(message) => Err(OutboxError::Full(message)),
        }
    }

    /// Queues a text message if the outbox has room; see [`try_send`](Self::try_send).
    pub fn try_send_text(&self, text: impl Into<Utf8Bytes>) -> Result<(), OutboxError> {
        self.try_send(Message::Text(text.into()))
    }

    /// Queues a binary message if the outbox has room; see [`try_send`](Self::try_send).
    pub fn try_send_binary(&self, data: impl Into<Bytes>) -> Result<(), OutboxError> {
        self.try_send(Message::Binary(data.into()))
    }

    /// Stops the client for good: a pending dial or wait is abandoned; an open connection
    /// gets the messages still in the outbox, then a close frame with `code` and `reason`
    /// (RFC 6455 §7.1.2; an unsendable code or a reason over 123 bytes becomes 1000). The
    /// events end with [`GiveUpReason::Terminal`]`(`[`Disconnect::ClosedByApplication`]`)`.
    /// Only the first call counts.
    pub fn close(&self, code: impl Into<CloseCode>, reason: &str) {
        self.inner
            .lock()
            .request_close(CloseFrame::new(code, reason));
    }

    /// Whether a connection is open now.
    pub fn is_connected(&self) -> bool {
        self.inner.lock().connected
    }

    /// The number of the current, scheduled or last successful dial of this outage (see
    /// [`ReconnectPolicy::attempt`]).
    pub fn attempt(&self) -> u32 {
        self.inner.lock().attempt
    }

    /// Messages waiting in the outbox.
    pub fn outbox_len(&self) -> usize {
        self.inner.lock().outbox.len()
    }

    /// Whether the client stopped for good (closed, or the policy gave up).
    pub fn is_stopped(&self) -> bool {
        let sh = self.inner.lock();
        sh.stopped || sh.done
    }
}

/// The future of [`ClientHandle::send`] (and of [`ReconnectingClient::send`] and the
/// `send_text` / `send_binary` variants): resolves once the message is in the outbox.
///
/// Cancel-safe: dropping it before it resolves leaves the message unqueued and the outbox
/// as it was.
#[must_use = "futures do nothing unless polled: the message is not queued"]
pub struct ClientSendFuture<'a> {
    inner: &'a Inner,
    /// The message, until queued or refused.
    message: Option<Message>,
    /// Its place among the waiting sends, while registered.
    waiter: Option<u64>,
}

impl Future for ClientSendFuture<'_> {
    type Output = Result<(), OutboxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some(message) = this.message.take() else {
            panic!("ClientSendFuture polled after it resolved");
        };
        let mut sh = this.inner.lock();
        let result = match sh.offer(message, true) {
            Offer::Queued => Ok(()),
            Offer::Refused(error) => Err(error),
            Offer::Wait(message) => {
                this.message = Some(message);
                sh.wait_for_room(&mut this.waiter, cx.waker());
                return Poll::Pending;
            }
        };
        sh.stop_waiting(this.waiter.take());
        Poll::Ready(result)
    }
}

impl Drop for ClientSendFuture<'_> {
    fn drop(&mut self) {
        if self.waiter.is_some() {
            self.inner.lock().stop_waiting(self.waiter.take());
        }
    }
}

impl fmt::Debug for ClientSendFuture<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSendFuture")
            .field("message", &self.message)
            .field("waiting", &self.waiter.is_some())
            .finish()
    }
}

impl fmt::Debug for ClientHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sh = self.inner.lock();
        f.debug_struct("ClientHandle")
            .field("connected", &sh.connected)
            .field("attempt", &sh.attempt)
            .field("outbox", &sh.outbox.len())
            .field("stopped", &sh.stopped)
            .finish_non_exhaustive()
    }
}

impl ReconnectingClient {
    /// Waits for the next event; `None` after [`ClientEvent::GaveUp`]. Cancel-safe.
    pub async fn next_event(&mut self) -> Option<ClientEvent> {
        poll_fn(|cx| self.poll_next_event(cx)).await
    }

    /// Polls for the next event; see [`next_event`](Self::next_event).
    pub fn poll_next_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<ClientEvent>> {
        let mut sh = self.handle.inner.lock();
        if let Some(event) = sh.events.pop_front() {
            wake(&mut sh.task_waker);
            return Poll::Ready(Some(event));
        }
        if sh.done {
            return Poll::Ready(None);
        }
        set_waker(&mut sh.stream_waker, cx.waker());
        Poll::Pending
    }

    /// A cloneable handle for sending and closing from elsewhere.
    pub fn handle(&self) -> ClientHandle {
        self.handle.clone()
    }

    /// Drops the event stream, keeping the client running (for callback-only use).
    pub fn into_handle(self) -> ClientHandle {
        self.handle.clone()
    }

    /// Queues a message, waiting for room; see [`ClientHandle::send`]. Cancel-safe.
    pub fn send(&self, message: Message) -> ClientSendFuture<'_> {
        self.handle.send(message)
    }

    /// Queues a text message, waiting for room; see [`ClientHandle::send`]. Cancel-safe.
    pub fn send_text(&self, text: impl Into<Utf8Bytes>) -> ClientSendFuture<'_> {
        self.handle.send_text(text)
    }

    /// Queues a binary message, waiting for room; see [`ClientHandle::send`]. Cancel-safe.
    pub fn send_binary(&self, data: impl Into<Bytes>) -> ClientSendFuture<'_> {
        self.handle.send_binary(data)
    }

    /// Queues a message if the outbox has room; see [`ClientHandle::try_send`].
    pub fn try_send(&self, message: Message) -> Result<(), OutboxError> {
        self.handle.try_send(message)
    }

    /// Queues a text message if the outbox has room; see [`ClientHandle::try_send`].
    pub fn try_send_text(&self, text: impl Into<Utf8Bytes>) -> Result<(), OutboxError> {
        self.handle.try_send_text(text)
    }

    /// Queues a binary message if the outbox has room; see [`ClientHandle::try_send`].
    pub fn try_send_binary(&self, data: impl Into<Bytes>) -> Result<(), OutboxError> {
        self.handle.try_send_binary(data)
    }

    /// Stops the client for good; see [`ClientHandle::close`].
    pub fn close(&self, code: impl Into<CloseCode>, reason: &str) {
        self.handle.close(code, reason)
    }

    /// Whether a connection is open now.
    pub fn is_connected(&self) -> bool {
        self.handle.is_connected()
    }

    /// The number of the current dial; see [`ClientHandle::attempt`].
    pub fn attempt(&self) -> u32 {
        self.handle.attempt()
    }

    /// Messages waiting in the outbox.
    pub fn outbox_len(&self) -> usize {
        self.handle.outbox_len()
    }

    /// Whether the client stopped for good; see [`ClientHandle::is_stopped`].
    pub fn is_stopped(&self) -> bool {
        self.handle.is_stopped()
    }
}

impl fmt::Debug for ReconnectingClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ReconnectingClient")
            .field(&self.handle)
            .finish()
    }
}

impl Drop for ReconnectingClient {
    /// The stream is gone: events are no longer kept, and never wait for room.
    fn drop(&mut self) {
        let mut sh = self.handle.inner.lock();
        sh.stream_alive = false;
        sh.events = VecDeque::new();
        wake(&mut sh.task_waker);
    }
}

impl Stream for ReconnectingClient {
    type Item = ClientEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ClientEvent>> {
        self.get_mut().poll_next_event(cx)
    }
}

/// Ends the event stream however the task ends (even if the runtime drops it).
struct TaskGuard(Arc<Inner>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        let mut sh = self.0.lock();
        sh.done = true;
        sh.connected = false;
        sh.stop();
        wake(&mut sh.stream_waker);
    }
}

/// How a dial came out.
enum Dialed {
    Open(WebSocket, Box<Response>),
    Failed(Error),
    /// The application closed the client meanwhile.
    Cancelled,
}

/// How a connection's session ended.
enum End {
    /// The connection ended (`recv` returned `None`).
    Closed,
    /// The heartbeat was not answered in time.
    Heartbeat,
}

/// The client's background task: the reconnect loop.
struct Task {
    guard: TaskGuard,
    runtime: Arc<dyn Runtime>,
    dialer: Box<dyn Dialer>,
    make_request: MakeRequest,
    config: Config,
    policy: ReconnectPolicy,
    heartbeat: Option<Heartbeat>,
    callbacks: Callbacks,
}

impl Task {
    fn inner(&self) -> &Inner {
        &self.guard.0
    }

    async fn run(mut self) {
        let reason = loop {
            let attempt = self.policy.attempt();
            self.inner().lock().attempt = attempt;
            emit(&self.guard.0, ClientEvent::Connecting { attempt }).await;
            self.policy.handle_dial_started(self.runtime.now());
            let why = match self.dial(attempt).await {
                Dialed::Cancelled => Disconnect::ClosedByApplication,
                Dialed::Failed(error) => {
                    call(&mut self.callbacks.on_error, &error);
                    self.disconnected(DisconnectReason::DialFailed(Arc::new(error)), false)
                        .await
                }
                Dialed::Open(ws, response) => {
                    self.policy.handle_connected(self.runtime.now());
                    self.inner().lock().set_connected(true);
                    call(&mut self.callbacks.on_connect, &response);
                    emit(&self.guard.0, ClientEvent::Connected(response)).await;
                    let (reason, closing) = self.session(ws).await;
                    self.inner().lock().set_connected(false);
                    self.disconnected(reason, closing).await
                }
            };
            match self.policy.handle_disconnect(self.runtime.now(), why) {
                Decision::DialAt { at, attempt, delay } => {
                    self.inner().lock().attempt = attempt;
                    emit(&self.guard.0, ClientEvent::Reconnecting { attempt, delay }).await;
                    if !wait_until(&*self.runtime, &self.guard.0, at).await {
                        let now = self.runtime.now();
                        if let Decision::GiveUp(reason) = self
                            .policy
                            .handle_disconnect(now, Disconnect::ClosedByApplication)
                        {
                            break reason;
                        }
                    }
                }
                Decision::GiveUp(reason) => break reason,
            }
        };
        self.inner().lock().stop();
        emit(&self.guard.0, ClientEvent::GaveUp(reason)).await;
        // Dropping the task (and its guard) ends the stream.
    }

    /// Reports a failed dial or an ended connection; returns the policy's view of it.
    /// `closing`: the application had asked to close.
    async fn disconnected(&mut self, reason: DisconnectReason, closing: bool) -> Disconnect {
        let why = if closing || self.inner().lock().close.is_some() {
            Disconnect::ClosedByApplication
        } else {
            reason.disconnect()
        };
        call(&mut self.callbacks.on_close, &reason);
        emit(&self.guard.0, ClientEvent::Disconnected(reason)).await;
        why
    }

    /// Builds the request and dials, unless the application closes the client meanwhile.
    async fn dial(&mut self, attempt: u32) -> Dialed {
        let request = match (self.make_request)(attempt) {
            Ok(request) => request,
            Err(error) => return Dialed::Failed(error),
        };
        let mut dial = self.dialer.dial(request, self.config.clone());
        let inner = &self.guard.0;
        poll_fn(|cx| {
            {
                let mut sh = inner.lock();
                if sh.close.is_some() {
                    return Poll::Ready(Dialed::Cancelled);
                }
                set_waker(&mut sh.task_waker, cx.waker());
            }
            dial.as_mut().poll(cx).map(|result| match result {
                Ok((ws, response)) => Dialed::Open(ws, Box::new(response)),
                Err(error) => Dialed::Failed(error),
            })
        })
        .await
    }

    /// Runs one open connection until it ends; returns why, and whether the application
    /// had asked to close it.
    async fn session(&mut self, ws: WebSocket) -> (DisconnectReason, bool) {
        let start = self.runtime.now();
        let mut session = Session {
            ws,
            heartbeat: self.heartbeat.clone().map(|mut h| {
                h.interval = h.interval.max(MIN_HEARTBEAT);
                h
            }),
            next_beat: None,
            reply_by: None,
            timer: None,
            timer_at: None,
            closing: false,
        };
        session.next_beat = session
            .heartbeat
            .as_ref()
            .and_then(|h| start.checked_add(h.interval));
        let end = poll_fn(|cx| session.poll(cx, self)).await;
        let reason = match end {
            End::Closed => DisconnectReason::Closed(
                session
                    .ws
                    .close_reason()
                    .unwrap_or_else(|| Arc::new(CloseReason::Abnormal)),
            ),
            End::Heartbeat => {
                let frame = CloseFrame::new(CloseCode::INTERNAL_ERROR, "heartbeat timeout");
                // Dropping the connection below lets its task finish the closing handshake,
                // bounded by the close timeout.
                let _ = Pin::new(&mut session.ws).start_send(Message::Close(Some(frame)));
                DisconnectReason::HeartbeatTimeout
            }
        };
        (reason, session.closing)
    }
}

/// Queues an event, waiting while the stream is full.
async fn emit(inner: &Inner, event: ClientEvent) {
    let mut event = Some(event);
    poll_fn(|cx| {
        let mut sh = inner.lock();
        if sh.has_room() {
            if let Some(event) = event.take() {
                sh.push_event(event);
            }
            return Poll::Ready(());
        }
        set_waker(&mut sh.task_waker, cx.waker());
        Poll::Pending
    })
    .await
}

/// Waits until `at`; `false` if the application closed the client first.
async fn wait_until(runtime: &dyn Runtime, inner: &Inner, at: Instant) -> bool {
    let mut timer = runtime.timer(at);
    poll_fn(|cx| {
        {
            let mut sh = inner.lock();
            if sh.close.is_some() {
                return Poll::Ready(false);
            }
            set_waker(&mut sh.task_waker, cx.waker());
        }
        timer.as_mut().poll_expired(cx).map(|()| true)
    })
    .await
}

/// One open connection of the client.
struct Session {
    ws: WebSocket,
    heartbeat: Option<Heartbeat>,
    /// When the next heartbeat is due.
    next_beat: Option<Instant>,
    /// When an unanswered heartbeat counts as lost.
    reply_by: Option<Instant>,
    timer: Option<Pin<Box<dyn Timer>>>,
    timer_at: Option<Instant>,
    /// The application's close frame was sent.
    closing: bool,
}

impl Session {
    fn send(&mut self, message: Message) -> Result<(), Error> {
        Pin::new(&mut self.ws).start_send(message)
    }

    fn is_open(&self) -> bool {
        self.ws.inner().lock().conn.state() == State::Open
    }

    fn poll(&mut self, cx: &mut Context<'_>, task: &mut Task) -> Poll<End> {
        for _ in 0..BUDGET {
            let now = task.runtime.now();
            let mut progress = false;

            // The application asked to close: hand over the outbox, then the close frame.
            let close = {
                let mut sh = task.inner().lock();
                set_waker(&mut sh.task_waker, cx.waker());
                match &sh.close {
                    Some(frame) if !self.closing => Some((frame.clone(), sh.take_outbox())),
                    _ => None,
                }
            };
            if let Some((frame, outbox)) = close {
                self.closing = true;
                progress = true;
                for message in outbox {
                    if let Err(error) = self.send(message) {
                        call(&mut task.callbacks.on_error, &error);
                    }
                }
                if self.send(Message::Close(Some(frame))).is_err() {
                    let _ = self.send(Message::Close(Some(CloseFrame::new(CloseCode::NORMAL, ""))));
                }
            }

            // The outbox, in order, as fast as the connection's write buffer takes it. Whether
            // the buffer is below its high-water mark is published for awaiting sends: looked
            // at whenever there is something to send, after a send, and while it is not (the
            // connection then wakes this task when it is).
            let mut sent = false;
            while !self.closing {
                let (empty, writable) = {
                    let sh = task.inner().lock();
                    (sh.outbox.is_empty(), sh.writable)
                };
                if empty && writable && !sent {
                    break;
                }
                let ready = matches!(Pin::new(&mut self.ws).poll_ready(cx), Poll::Ready(Ok(())))
                    && self.is_open();
                task.inner().lock().set_writable(ready);
                if !ready || empty {
                    break;
                }
                // Only this task takes from the outbox: its front stays put until popped.
                let Some(message) = task.inner().lock().outbox.front().cloned() else {
                    break;
                };
                progress = true;
                sent = true;
                let result = self.send(message);
                if result.is_err() && !self.is_open() {
                    // The connection is ending: the message stays for the next one.
                    break;
                }
                task.inner().lock().pop_outbox();
                if let Err(error) = result {
                    call(&mut task.callbacks.on_error, &error);
                }
            }

            // The application-level heartbeat.
            if let (Some(hb), false) = (&self.heartbeat, self.closing) {
                if self.next_beat.is_some_and(|at| at <= now) {
                    let message = Message::Text(hb.message.clone());
                    self.next_beat = now.checked_add(hb.interval);
                    if self.reply_by.is_none() {
                        self.reply_by = now.checked_add(hb.timeout);
                    }
                    let _ = self.send(message);
                    progress = true;
                }
                if self.reply_by.is_some_and(|at| at <= now) {
                    return Poll::Ready(End::Heartbeat);
                }
            }

            // Incoming messages, while the event stream has room.
            if task.inner().lock().has_room() {
                match self.ws.poll_recv(cx) {
                    Poll::Ready(Some(Ok(message))) => {
                        progress = true;
                        self.received(message, task);
                    }
                    Poll::Ready(Some(Err(error))) => {
                        progress = true;
                        call(&mut task.callbacks.on_error, &error);
                    }
                    Poll::Ready(None) => return Poll::Ready(End::Closed),
                    Poll::Pending => {}
                }
            }

            // Heartbeat timers.
            let deadline = if self.closing {
                None
            } else {
                [self.next_beat, self.reply_by].into_iter().flatten().min()
            };
            if let Some(at) = deadline {
                let timer = match &mut self.timer {
                    Some(timer) => {
                        if self.timer_at != Some(at) {
                            timer.as_mut().reset(at);
                        }
                        timer
                    }
                    None => self.timer.insert(task.runtime.timer(at)),
                };
                self.timer_at = Some(at);
                if timer.as_mut().poll_expired(cx).is_ready() {
                    progress = true;
                }
            }

            if !progress {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Hands a received message to the application, or takes it as a heartbeat's answer.
    fn received(&mut self, message: Message, task: &mut Task) {
        if !matches!(message, Message::Text(_) | Message::Binary(_)) {
            return; // pings are answered by the connection; pongs only matter to it
        }
        if let Some(hb) = &self.heartbeat {
            match (&hb.reply, &message) {
                (Some(reply), Message::Text(text)) if text == reply => {
                    self.reply_by = None;
                    return;
                }
                (None, _) => self.reply_by = None,
                _ => {}
            }
        }
        call(&mut task.callbacks.on_message, &message);
        task.inner()
            .lock()
            .push_event(ClientEvent::Message(message));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    fn closed(reason: CloseReason) -> Disconnect {
        DisconnectReason::Closed(Arc::new(reason)).disconnect()
    }

    #[test]
    fn rfc6455_7_4_close_reasons_map_to_the_policy_view() {
        let remote = CloseReason::Clean {
            initiated_locally: false,
            local: Some(CloseFrame::new(1008, "")),
            remote: Some(CloseFrame::new(1008, "go away")),
        };
        assert_eq!(
            closed(remote),
            Disconnect::Closed {
                code: Some(CloseCode::POLICY_VIOLATION),
                initiated_locally: false
            }
        );
        let local = CloseReason::Clean {
            initiated_locally: true,
            local: Some(CloseFrame::new(1001, "")),
            remote: None,
        };
        assert_eq!(
            closed(local),
            Disconnect::Closed {
                code: Some(CloseCode::GOING_AWAY),
                initiated_locally: true
            }
        );
        assert_eq!(
            closed(CloseReason::TimedOut(Timeout::Pong)),
            Disconnect::Abnormal
        );
        assert_eq!(closed(CloseReason::Abnormal), Disconnect::Abnormal);
        assert_eq!(
            DisconnectReason::HeartbeatTimeout.disconnect(),
            Disconnect::Abnormal
        );
    }

    #[test]
    fn rfc6455_4_1_dial_errors_map_to_the_policy_view() {
        let dial = |e: Error| DisconnectReason::DialFailed(Arc::new(e)).disconnect();
        assert_eq!(
            dial(Error::Io(io::ErrorKind::ConnectionRefused.into())),
            Disconnect::DialFailed
        );
        assert_eq!(
            dial(Error::Timeout(Timeout::Handshake)),
            Disconnect::HandshakeFailed
        );
        assert_eq!(dial(Error::Abnormal), Disconnect::DialFailed);
    }

    #[test]
    fn heartbeat_builder_and_event_lines() {
        let hb = Heartbeat::new("ping", Duration::from_secs(5))
            .reply("pong")
            .timeout(Duration::from_secs(2));
        assert_eq!(hb.message, "ping");
        assert_eq!(hb.reply.as_ref().map(|r| r.as_str()), Some("pong"));
        assert_eq!(hb.timeout, Duration::from_secs(2));
        let line = ClientEvent::Reconnecting {
            attempt: 3,
            delay: Duration::from_millis(35),
        }
        .to_string();
        assert_eq!(line, "reconnecting (attempt 3) in 35 ms");
        assert_eq!(
            ClientEvent::Connecting { attempt: 0 }.to_string(),
            "connecting (attempt 0)"
        );
    }
}
