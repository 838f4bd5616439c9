//! Running a connection on the hub: [`Hub::serve`] and the application's [`Handler`].

use crate::error::HubError;
use crate::hub::Hub;
use crate::payload::Payload;
use crate::session::{Identity, Session};
use futures_util::future::{Either, select};
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use tether_driver::{CloseCode, CloseReason, WebSocket};

/// The application's hooks, called by [`Hub::serve`] for each connection. Every method
/// has a default that does nothing, so a handler implements only what it needs. The hub
/// routes bytes: messages arrive as [`Payload`]s, in no imposed format.
///
/// The hub holds no lock while a hook runs. A connection's messages are handed to
/// [`on_message`](Handler::on_message) one at a time, in order; meanwhile, messages for it
/// keep flowing out.
///
/// ```
/// use tether_hub::{Handler, Hub, Payload, Session};
///
/// /// Everything a client sends goes to every member of its rooms, the sender excluded.
/// struct Relay;
///
/// impl Handler for Relay {
///     async fn on_connect(&self, hub: &Hub, session: &Session) -> Result<(), tether_hub::HubError> {
///         hub.join(session.id(), "lobby").map(|_| ())
///     }
///
///     async fn on_message(&self, hub: &Hub, session: &Session, payload: Payload) {
///         for room in session.rooms() {
///             let options = tether_hub::SendOptions::new().exclude(session.id());
///             hub.send(tether_hub::Target::Room(&room), payload.clone(), options);
///         }
///     }
/// }
/// ```
pub trait Handler: Send + Sync + 'static {
    /// A connection has registered: authorize it, join its rooms. An error closes it with
    /// [`HubError::close_code`] and the error's text.
    fn on_connect(
        &self,
        _hub: &Hub,
        _session: &Session,
    ) -> impl Future<Output = Result<(), HubError>> + Send {
        async { Ok(()) }
    }

    /// The connection asks to join `room` (through [`Hub::request_join`]): an error
    /// refuses it. Joins made with [`Hub::join`] do not ask.
    fn on_join(
        &self,
        _hub: &Hub,
        _session: &Session,
        _room: &str,
    ) -> impl Future<Output = Result<(), HubError>> + Send {
        async { Ok(()) }
    }

    /// The connection sent a text or binary message. To refuse it, answer the client
    /// with [`Hub::send_to`] (in the application's format) or close it
    /// ([`Session::close`]).
    ///
    /// Every connection's [`Hub::serve`] future keeps room for this future, idle or not:
    /// if it is large (many awaits, big locals), box it (`Box::pin(handle(..)).await`)
    /// to keep idle connections small.
    fn on_message(
        &self,
        _hub: &Hub,
        _session: &Session,
        _payload: Payload,
    ) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// The connection has ended, with `reason`; it is still registered (its rooms can be
    /// read) and leaves the hub right after.
    fn on_disconnect(
        &self,
        _hub: &Hub,
        _session: &Session,
        _reason: &Arc<CloseReason>,
    ) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// No hooks: connections are registered and receive what is sent to them; what they send
/// is counted and dropped.
impl Handler for () {}

impl<H: Handler> Handler for Arc<H> {
    fn on_connect(
        &self,
        hub: &Hub,
        session: &Session,
    ) -> impl Future<Output = Result<(), HubError>> + Send {
        (**self).on_connect(hub, session)
    }

    fn on_join(
        &self,
        hub: &Hub,
        session: &Session,
        room: &str,
    ) -> impl Future<Output = Result<(), HubError>> + Send {
        (**self).on_join(hub, session, room)
    }

    fn on_message(
        &self,
        hub: &Hub,
        session: &Session,
        payload: Payload,
    ) -> impl Future<Output = ()> + Send {
        (**self).on_message(hub, session, payload)
    }

    fn on_disconnect(
        &self,
        hub: &Hub,
        session: &Session,
        reason: &Arc<CloseReason>,
    ) -> impl Future<Output = ()> + Send {
        (**self).on_disconnect(hub, session, reason)
    }
}

/// Removes the connection from the hub when the serve future ends or is dropped.
struct Registered<'a> {
    hub: &'a Hub,
    session: Session,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.hub.unregister(self.session.id());
    }
}

impl Hub {
    /// Joins a room on the connection's request, once [`Handler::on_join`] allows it (the
    /// room name is checked first). Returns `false` if it was a member already.
    pub async fn request_join<H: Handler>(
        &self,
        handler: &H,
        session: &Session,
        room: &str,
    ) -> Result<bool, HubError> {
        crate::room::validate_room_name(room)?;
        handler.on_join(self, session, room).await?;
        self.join_session(session, room)
    }

    /// A message received from `session` as a payload, counted; `None` for a ping or a
    /// pong (a heartbeat).
    fn payload(&self, session: &Session, message: tether_driver::Message) -> Option<Payload> {
        let len = message.len();
        let payload = Payload::from_message(message);
        match payload {
            Some(_) => self.received(session, len),
            None => self.heartbeat(session),
        }
        payload
    }

    /// Runs a connection on the hub until it ends: registers it with `identity` (its id
    /// is the WebSocket's), calls [`Handler::on_connect`], hands every text and binary
    /// message to [`Handler::on_message`], moves the messages the hub queues for it to the
    /// socket, and at the end calls [`Handler::on_disconnect`] and removes it from the
    /// registry, its user and its rooms. Spawn it on your runtime, one per connection.
    ///
    /// The connection leaves the hub whatever the reason it ends, also if this future is
    /// dropped. Resolves to how the connection ended, or to the error that refused it
    /// (the limits, shutdown, `on_connect`): the connection is then closed with
    /// [`HubError::close_code`].
    pub async fn serve<H: Handler>(
        &self,
        mut ws: WebSocket,
        identity: Identity,
        handler: H,
    ) -> Result<Arc<CloseReason>, HubError> {
        let session = match self.register(ws.sender(), identity) {
            Ok(s) => s,
            Err(e) => {
                let _ = ws.sender().close(e.close_code(), &e.to_string());
                return Err(e);
            }
        };
        let registered = Registered { hub: self, session };
        let session = &registered.session;
        // The session's (no sender of its own lives in this future).
        let sender = &session.conn.sender;
        if let Err(e) = handler.on_connect(self, session).await {
            let _ = sender.close(e.close_code(), &e.to_string());
            return Err(e);
        }
        {
            let drain = pin!(session.conn.queue.run(sender, self.flush()));
            // Nothing lives across the await of `on_message` but its future: the message
            // is turned into the payload in a function, and `let ... else` drops `recv`'s
            // output at once (a `while let` or `match` scrutinee would stay in the
            // future's state: 248 bytes instead of 112, in every idle connection).
            let receive = pin!(async {
                loop {
                    let Some(Ok(message)) = ws.recv().await else {
                        break;
                    };
                    let Some(payload) = self.payload(session, message) else {
                        continue;
                    };
                    crate::hub::set_serving(Some((session.id(), ws.messages_waiting() > 0)));
                    handler.on_message(self, session, payload).await;
                    crate::hub::set_serving(None);
                }
            });
            if let Either::Left(((), receive)) = select(drain, receive).await {
                receive.await;
            }
        }
        let reason = match ws.close_reason() {
            Some(reason) => reason,
            None => {
                let _ = sender.close(CloseCode::NORMAL, "");
                sender.closed().await
            }
        };
        self.ended(&reason);
        handler.on_disconnect(self, session, &reason).await;
        drop(registered);
        Ok(reason)
    }
}
