//! An embedded application's own message types: the [`Handler`] trait.
//!
//! The gateway answers the protocol's types itself (`join`, `publish`, `send`...). A
//! message of any other type (an *application type*: `order.created`, `cursor:move`) goes
//! to the application's handler, given with [`AppState::with_handler`]; without one it is
//! refused with an `error` envelope `unknown_type`.
//!
//! ```
//! use tether_gateway::{AppState, Context, Handler, Refusal, config::Config};
//! use tether_gateway::envelope::{Envelope, ErrorCode, MessageType};
//!
//! /// `order.created` is published to the user's own room; other types are refused.
//! struct Orders;
//!
//! impl Handler for Orders {
//!     async fn on_message(&self, cx: &Context, message: Envelope) -> Result<Option<Envelope>, Refusal> {
//!         let (MessageType::App(kind), Some(content)) = (&message.kind, &message.content) else {
//!             return Err(Refusal::new(ErrorCode::BadRequest, "an order needs content"));
//!         };
//!         if kind != "order.created" {
//!             return Err(Refusal::unknown_type(&message.kind));
//!         }
//!         let user = cx.user().ok_or(Refusal::new(ErrorCode::Unauthorized, "log in first"))?;
//!         let room = format!("orders:{user}");
//!         tether_gateway::publish::publish_to_room(cx.state(), &room, Some(user), kind, content)
//!             .await
//!             .map_err(|e| Refusal::new(e.code(), e.to_string()))?;
//!         Ok(None) // answered with an `ack` when the request has an `id`
//!     }
//! }
//!
//! let state = AppState::with_handler(Config::default(), Orders)?;
//! # Ok::<(), tether_gateway::config::ConfigError>(())
//! ```

use crate::auth::Identity;
use crate::envelope::{Envelope, ErrorCode, MessageType};
use crate::server::AppState;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tether_hub::{Hub, Session};

/// What a [`Handler`] gets with each call: the connection, who it is, and the gateway.
/// Cheap to clone.
#[derive(Clone)]
pub struct Context {
    pub(crate) state: AppState,
    pub(crate) session: Session,
    pub(crate) identity: Arc<Identity>,
}

impl Context {
    /// The connection's user id (a token's `sub`, or `?user_id=` in dev mode); `None` for
    /// an anonymous connection (dev mode).
    pub fn user(&self) -> Option<&str> {
        Some(self.identity.user_id.as_str()).filter(|u| !u.is_empty())
    }

    /// Who the connection is: its token's claims (`rooms`, `meta`, `exp`).
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The connection in the hub (its id, rooms, sender).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The gateway: its configuration, its hub.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The hub that holds every connection.
    pub fn hub(&self) -> &Hub {
        self.state.hub()
    }

    /// Sends an envelope to this connection, after what is queued for it already.
    pub fn send(&self, envelope: &Envelope) {
        self.hub().send_to(self.session.id(), envelope.encode());
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("session", &self.session)
            .field("user", &self.identity.user_id)
            .finish_non_exhaustive()
    }
}

/// A handler's refusal: the client gets an `error` envelope with this code and message
/// (and the request's `id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The error code.
    pub code: ErrorCode,
    /// What is wrong, for the client.
    pub message: String,
}

impl Refusal {
    /// A refusal with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
        }
    }

    /// The refusal of a type no handler takes (`unknown_type`).
    pub fn unknown_type(kind: &MessageType) -> Self {
        Refusal::new(
            ErrorCode::UnknownType,
            format!("no handler takes messages of type `{kind}`"),
        )
    }
}

/// An embedded application's hooks: its own message types, and the connections' start
/// and end. Every method has a default: accept the connection, refuse application types
/// (`unknown_type`), do nothing at the end. One handler serves every connection; the
/// calls for one connection come one at a time, in order.
pub trait Handler: Send + Sync + 'static {
    /// A connection is open (authenticated, registered in the hub, in no room yet). A
    /// refusal closes it with 1008 and the refusal's message as the reason.
    fn on_connect(&self, _cx: &Context) -> impl Future<Output = Result<(), Refusal>> + Send {
        async { Ok(()) }
    }

    /// A message of an application type (`message.kind` is [`MessageType::App`]), with
    /// `from` unset and `id` as the client sent it. `Ok(None)` answers with an `ack` (when
    /// the request has an `id`), `Ok(Some(envelope))` with that envelope (its `id` set to
    /// the request's when unset), `Err` with an `error` envelope.
    fn on_message(
        &self,
        _cx: &Context,
        message: Envelope,
    ) -> impl Future<Output = Result<Option<Envelope>, Refusal>> + Send {
        async move { Err(Refusal::unknown_type(&message.kind)) }
    }

    /// The connection has ended; it is still in the hub (its rooms can be read).
    fn on_close(&self, _cx: &Context) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// No application: every application type is refused.
impl Handler for () {}

/// A shared handler (the application keeps a clone, to read its state).
impl<H: Handler> Handler for Arc<H> {
    fn on_connect(&self, cx: &Context) -> impl Future<Output = Result<(), Refusal>> + Send {
        (**self).on_connect(cx)
    }

    fn on_message(
        &self,
        cx: &Context,
        message: Envelope,
    ) -> impl Future<Output = Result<Option<Envelope>, Refusal>> + Send {
        (**self).on_message(cx, message)
    }

    fn on_close(&self, cx: &Context) -> impl Future<Output = ()> + Send {
        (**self).on_close(cx)
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// [`Handler`] made object-safe, for [`AppState`] to hold any.
pub(crate) trait DynHandler: Send + Sync + 'static {
    fn on_connect<'a>(&'a self, cx: &'a Context) -> BoxFuture<'a, Result<(), Refusal>>;
    fn on_message<'a>(
        &'a self,
        cx: &'a Context,
        message: Envelope,
    ) -> BoxFuture<'a, Result<Option<Envelope>, Refusal>>;
    fn on_close<'a>(&'a self, cx: &'a Context) -> BoxFuture<'a, ()>;
}

impl<H: Handler> DynHandler for H {
    fn on_connect<'a>(&'a self, cx: &'a Context) -> BoxFuture<'a, Result<(), Refusal>> {
        Box::pin(Handler::on_connect(self, cx))
    }

    fn on_message<'a>(
        &'a self,
        cx: &'a Context,
        message: Envelope,
    ) -> BoxFuture<'a, Result<Option<Envelope>, Refusal>> {
        Box::pin(Handler::on_message(self, cx, message))
    }

    fn on_close<'a>(&'a self, cx: &'a Context) -> BoxFuture<'a, ()> {
        Box::pin(Handler::on_close(self, cx))
    }
}
