//! [`Hooks`]: a [`Handler`] made of closures.

use crate::error::HubError;
use crate::hub::Hub;
use crate::payload::Payload;
use crate::serve::Handler;
use crate::session::Session;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tether_driver::CloseReason;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Hook<A, T> = Arc<dyn Fn(Hub, Session, A) -> BoxFuture<T> + Send + Sync>;

/// A [`Handler`] made of closures, for applications that prefer them to a trait: each
/// closure gets the hub and the session (cheap clones) and returns a future. Cheap to
/// clone; pass a clone to each [`Hub::serve`]. Hooks left unset do what the trait's
/// defaults do.
///
/// ```
/// use tether_hub::{Hooks, HubError};
///
/// let hooks = Hooks::new()
///     .on_connect(|hub, session| async move {
///         hub.join(session.id(), "lobby").map(|_| ())
///     })
///     .on_message(|hub, _session, payload| async move {
///         hub.publish("lobby", payload);
///     })
///     .on_join(|_hub, _session, room: String| async move {
///         if room.starts_with("admin") { Err(HubError::Refused) } else { Ok(()) }
///     });
/// ```
#[derive(Clone, Default)]
pub struct Hooks {
    connect: Option<Hook<(), Result<(), HubError>>>,
    join: Option<Hook<String, Result<(), HubError>>>,
    message: Option<Hook<Payload, ()>>,
    disconnect: Option<Hook<Arc<CloseReason>, ()>>,
}

impl Hooks {
    /// No hooks yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`Handler::on_connect`].
    pub fn on_connect<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(Hub, Session) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HubError>> + Send + 'static,
    {
        self.connect = Some(Arc::new(move |hub, session, ()| Box::pin(f(hub, session))));
        self
    }

    /// Sets [`Handler::on_join`] (the room's name is the third argument).
    pub fn on_join<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(Hub, Session, String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HubError>> + Send + 'static,
    {
        self.join = Some(Arc::new(move |hub, session, room| {
            Box::pin(f(hub, session, room))
        }));
        self
    }

    /// Sets [`Handler::on_message`].
    pub fn on_message<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(Hub, Session, Payload) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.message = Some(Arc::new(move |hub, session, payload| {
            Box::pin(f(hub, session, payload))
        }));
        self
    }

    /// Sets [`Handler::on_disconnect`] (how the connection ended is the third argument).
    pub fn on_disconnect<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(Hub, Session, Arc<CloseReason>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.disconnect = Some(Arc::new(move |hub, session, reason| {
            Box::pin(f(hub, session, reason))
        }));
        self
    }
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("on_connect", &self.connect.is_some())
            .field("on_join", &self.join.is_some())
            .field("on_message", &self.message.is_some())
            .field("on_disconnect", &self.disconnect.is_some())
            .finish()
    }
}

impl Handler for Hooks {
    async fn on_connect(&self, hub: &Hub, session: &Session) -> Result<(), HubError> {
        match &self.connect {
            Some(f) => f(hub.clone(), session.clone(), ()).await,
            None => Ok(()),
        }
    }

    async fn on_join(&self, hub: &Hub, session: &Session, room: &str) -> Result<(), HubError> {
        match &self.join {
            Some(f) => f(hub.clone(), session.clone(), room.to_owned()).await,
            None => Ok(()),
        }
    }

    async fn on_message(&self, hub: &Hub, session: &Session, payload: Payload) {
        if let Some(f) = &self.message {
            f(hub.clone(), session.clone(), payload).await;
        }
    }

    async fn on_disconnect(&self, hub: &Hub, session: &Session, reason: &Arc<CloseReason>) {
        if let Some(f) = &self.disconnect {
            f(hub.clone(), session.clone(), reason.clone()).await;
        }
    }
}
