//! A WebSocket connection on the hub: the protocol's requests (`PROTOCOL.md`).
//!
//! [`Connection`] is the hub's [`Handler`](tether_hub::Handler) of one connection. Each
//! message takes a token of the connection's bucket (over the limit: an `error`
//! `rate_limited`); a text message is parsed as an envelope and answered (an `ack`, a
//! `pong`, an `error` with the request's `id`, never a close); a binary message is
//! published to the raw rooms the connection is in. Answers go through the connection's
//! hub queue, so they come after what the hub queued for it before (a `recover`'s
//! messages come before its `ack`).

use crate::auth::Identity;
use crate::config::{Action, Requester};
use crate::envelope::{self, Envelope, ErrorCode, MessageId, MessageType};
use crate::handler::{Context, Refusal};
use crate::publish;
use crate::ratelimit::TokenBucket;
use crate::server::AppState;
use crate::telemetry;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;
use tether_hub::{CloseReason, Hub, HubError, Payload, Session, StreamPosition};

/// The name whose room rule says who may broadcast (a `send` with an empty `to`).
pub const BROADCAST: &str = "$broadcast";

/// One connection's handler: its identity and its rate limit.
pub(crate) struct Connection {
    state: AppState,
    identity: Arc<Identity>,
    bucket: Mutex<TokenBucket>,
}

impl Connection {
    pub(crate) fn new(state: AppState, identity: Identity) -> Self {
        let limits = &state.config().limits;
        let bucket = TokenBucket::new(limits.messages_per_second, limits.burst, Instant::now());
        Connection {
            state,
            identity: Arc::new(identity),
            bucket: Mutex::new(bucket),
        }
    }

    fn cx(&self, session: &Session) -> Context {
        Context {
            state: self.state.clone(),
            session: session.clone(),
            identity: self.identity.clone(),
        }
    }

    fn user(&self) -> Option<&str> {
        Some(self.identity.user_id.as_str()).filter(|u| !u.is_empty())
    }

    fn requester(&self) -> Requester<'_> {
        self.identity.requester()
    }

    fn reply(&self, session: &Session, envelope: &Envelope) {
        self.state.hub().send_to(session.id(), envelope.encode());
        metrics::counter!(telemetry::MESSAGES_SENT).increment(1);
    }

    /// Refuses unless the room rules let this connection do `action` in `room`.
    fn allow(&self, room: &str, action: Action) -> Result<(), Refusal> {
        if self.state.config().allows(room, action, self.requester()) {
            return Ok(());
        }
        let verb = match action {
            Action::Join => "join",
            Action::Publish if room == BROADCAST => "broadcast (send to everyone)",
            Action::Publish => "publish to",
            Action::Presence => "see the presence of",
            Action::History => "read the history of",
        };
        let message = if room == BROADCAST {
            format!("you may not {verb}")
        } else {
            format!("you may not {verb} {room}")
        };
        Err(Refusal::new(ErrorCode::Forbidden, message))
    }

    fn take_token(&self) -> bool {
        self.bucket
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .try_take(Instant::now())
    }

    /// Answers a parsed request: `Ok(Some)` is sent (an `ack` only if the request has an
    /// `id`), `Ok(None)` sends nothing.
    async fn request(&self, session: &Session, env: Envelope) -> Result<Option<Envelope>, Refusal> {
        let hub = self.state.hub();
        let ack = Envelope::ack(env.id.clone());
        match env.kind {
            MessageType::Join => {
                let room = need_room(&env)?;
                self.allow(room, Action::Join)?;
                let history = publish::history_size(self.state.config(), room) > 0;
                hub.join(session.id(), room).map_err(hub_refusal)?;
                let mut ack = ack;
                if history && let Ok(h) = hub.broker().history(room, u64::MAX, 0).await {
                    ack.offset = Some(h.latest.offset);
                    ack.epoch = Some(h.latest.epoch.to_string());
                }
                Ok(Some(ack))
            }
            MessageType::Leave => {
                let room = need_room(&env)?;
                hub.leave(session.id(), room);
                Ok(Some(ack))
            }
            MessageType::Publish => {
                let room = need_room(&env)?;
                let content = need_content(&env)?;
                self.allow(room, Action::Publish)?;
                let published = publish::publish(
                    &self.state,
                    room,
                    self.user(),
                    "publish",
                    content,
                    Some(session.id()),
                )
                .await
                .map_err(|e| Refusal::new(e.code(), e.to_string()))?;
                metrics::counter!(telemetry::MESSAGES_SENT).increment(published.delivered as u64);
                Ok(Some(Envelope {
                    offset: published.offset,
                    epoch: published.epoch,
                    ..ack
                }))
            }
            MessageType::Send => {
                let content = need_content(&env)?;
                let to = env.to.as_deref().unwrap_or("");
                let message = Envelope {
                    to: Some(to.to_owned()).filter(|t| !t.is_empty()),
                    from: self.user().map(str::to_owned),
                    content: Some(content.to_owned()),
                    ts: Some(publish::now_millis()),
                    ..Envelope::new(MessageType::Send)
                }
                .encode();
                let report = if to.is_empty() {
                    self.allow(BROADCAST, Action::Publish)?;
                    hub.broadcast(message)
                } else {
                    if self.user().is_none() {
                        return Err(Refusal::new(
                            ErrorCode::Unauthorized,
                            "an anonymous connection cannot send to a user",
                        ));
                    }
                    let report = hub.send_to_user(to, message);
                    if report.recipients() == 0 {
                        return Err(Refusal::new(
                            ErrorCode::NotFound,
                            format!("the user {to} is not connected"),
                        ));
                    }
                    report
                };
                metrics::counter!(telemetry::MESSAGES_SENT).increment(report.queued as u64);
                Ok(Some(ack))
            }
            MessageType::Ping => Ok(Some(Envelope {
                id: env.id,
                ..Envelope::new(MessageType::Pong)
            })),
            MessageType::Pong => Ok(None),
            MessageType::Recover => {
                let room = need_room(&env)?;
                let (Some(offset), Some(epoch)) = (env.offset, env.epoch.as_deref()) else {
                    return Err(Refusal::new(
                        ErrorCode::BadRequest,
                        "a recover needs the room, and the offset and epoch of the last \
                         message the client has",
                    ));
                };
                self.allow(room, Action::Join)?;
                self.allow(room, Action::History)?;
                if publish::history_size(self.state.config(), room) == 0 {
                    return Err(Refusal::new(
                        ErrorCode::NotFound,
                        format!("{room} keeps no history: join it instead"),
                    ));
                }
                let since = StreamPosition {
                    offset,
                    epoch: epoch.into(),
                };
                match hub.recover(session.id(), room, &since).await {
                    Ok((_, latest)) => Ok(Some(Envelope {
                        offset: Some(latest.offset),
                        epoch: Some(latest.epoch.to_string()),
                        ..ack
                    })),
                    Err(e) => match &e {
                        // The client is in the room now and gets its new messages; it
                        // reloads what it missed, and next time recovers from here.
                        HubError::EpochChanged { latest } | HubError::TooFarBehind { latest } => {
                            let mut error = Envelope::error(
                                ErrorCode::NotFound,
                                &format!("{e}: reload the room's state"),
                                env.id.clone(),
                            );
                            error.room = Some(room.to_owned());
                            error.offset = Some(latest.offset);
                            error.epoch = Some(latest.epoch.to_string());
                            Ok(Some(error))
                        }
                        _ => Err(hub_refusal(e)),
                    },
                }
            }
            MessageType::Presence => {
                let room = need_room(&env)?;
                self.allow(room, Action::Presence)?;
                let members = hub.presence(room).await.map_err(hub_refusal)?;
                let content = presence_content(&members);
                Ok(Some(Envelope {
                    room: Some(room.to_owned()),
                    content: Some(content),
                    ..Envelope::new(MessageType::Presence)
                }))
            }
            MessageType::History => {
                let room = need_room(&env)?;
                self.allow(room, Action::History)?;
                let size = publish::history_size(self.state.config(), room);
                if size == 0 {
                    return Err(Refusal::new(
                        ErrorCode::NotFound,
                        format!("{room} keeps no history"),
                    ));
                }
                let since = env.offset.unwrap_or(0);
                let history = hub
                    .broker()
                    .history(room, since, size)
                    .await
                    .map_err(|e| hub_refusal(HubError::Broker(e)))?;
                let latest = &history.latest;
                let mut reply = if env.epoch.as_deref().is_some_and(|e| *e != *latest.epoch) {
                    Envelope::error(
                        ErrorCode::NotFound,
                        "the offset is from another epoch (the history was lost): reload the \
                         room's state",
                        None,
                    )
                } else {
                    let mut list = String::from("[");
                    for publication in &history.publications {
                        if let Some(text) = publish::positioned(publication).as_text() {
                            if list.len() > 1 {
                                list.push(',');
                            }
                            list.push_str(text);
                        }
                    }
                    list.push(']');
                    Envelope {
                        content: serde_json::value::RawValue::from_string(list).ok(),
                        ..Envelope::new(MessageType::History)
                    }
                };
                reply.room = Some(room.to_owned());
                reply.offset = Some(latest.offset);
                reply.epoch = Some(latest.epoch.to_string());
                Ok(Some(reply))
            }
            MessageType::Ack | MessageType::Error => Err(Refusal::new(
                ErrorCode::BadRequest,
                format!("`{}` is sent by the server only", env.kind),
            )),
            MessageType::App(_) => {
                let cx = self.cx(session);
                match self.state.handler().on_message(&cx, env).await? {
                    Some(reply) => Ok(Some(reply)),
                    None => Ok(Some(ack)),
                }
            }
        }
    }

    async fn text(&self, session: &Session, text: &[u8], allowed: bool) {
        let max = self.state.config().limits.max_message_size;
        let env = match envelope::parse(text, max) {
            Ok(env) => env,
            Err(e) if allowed => return self.reply(session, &e.to_envelope()),
            Err(e) => return self.rate_limited(session, e.id),
        };
        let id = env.id.clone();
        if !allowed {
            return self.rate_limited(session, id);
        }
        match self.request(session, env).await {
            Ok(None) => {}
            Ok(Some(reply)) if reply.kind == MessageType::Ack && reply.id.is_none() => {}
            Ok(Some(mut reply)) => {
                if reply.id.is_none() {
                    reply.id = id;
                }
                self.reply(session, &reply);
            }
            Err(refusal) => self.reply(
                session,
                &Envelope::error(refusal.code, &refusal.message, id),
            ),
        }
    }

    /// A binary message: to every raw room the connection is in and may publish to.
    fn binary(&self, session: &Session, data: Payload) {
        let config = self.state.config();
        let rooms: Vec<String> = session
            .rooms()
            .into_iter()
            .filter(|room| {
                publish::is_raw(config, room)
                    && config.allows(room, Action::Publish, self.requester())
            })
            .collect();
        if rooms.is_empty() {
            let e = Envelope::error(
                ErrorCode::BadRequest,
                "a binary message goes to the raw rooms the connection is in and may publish \
                 to: it is in none",
                None,
            );
            return self.reply(session, &e);
        }
        let hub = self.state.hub();
        for room in rooms {
            let options = tether_hub::SendOptions::new().exclude(session.id());
            let report = hub.send(tether_hub::Target::Room(&room), data.clone(), options);
            metrics::counter!(telemetry::MESSAGES_SENT).increment(report.queued as u64);
        }
    }

    fn rate_limited(&self, session: &Session, id: Option<MessageId>) {
        metrics::counter!(telemetry::RATE_LIMITED).increment(1);
        let e = Envelope::error(
            ErrorCode::RateLimited,
            "over the connection's rate limit: slow down",
            id,
        );
        self.reply(session, &e);
    }
}

impl tether_hub::Handler for Connection {
    async fn on_connect(&self, _hub: &Hub, session: &Session) -> Result<(), HubError> {
        tracing::debug!(user = %self.identity.user_id, id = ?session.id(), "connection open");
        match self.state.handler().on_connect(&self.cx(session)).await {
            Ok(()) => Ok(()),
            Err(refusal) => {
                session.close(
                    tether_hub::CloseCode::POLICY_VIOLATION,
                    truncate(&refusal.message, 123),
                );
                Err(HubError::Refused)
            }
        }
    }

    async fn on_message(&self, _hub: &Hub, session: &Session, payload: Payload) {
        metrics::counter!(telemetry::MESSAGES_RECEIVED).increment(1);
        let allowed = self.take_token();
        match payload {
            // Boxed: the request's future is large, and the hub keeps room for this one in
            // every connection's serve future, idle or not (about 3 KiB per connection).
            Payload::Text(text) => Box::pin(self.text(session, text.as_bytes(), allowed)).await,
            Payload::Binary(_) if !allowed => self.rate_limited(session, None),
            data @ Payload::Binary(_) => self.binary(session, data),
            _ => {}
        }
    }

    async fn on_disconnect(&self, _hub: &Hub, session: &Session, reason: &Arc<CloseReason>) {
        tracing::debug!(user = %self.identity.user_id, id = ?session.id(), code = ?reason.code(), "connection closed");
        self.state.handler().on_close(&self.cx(session)).await;
    }
}

/// A `presence` answer's content: `{"connections": n, "users": [{"user", "meta"}]}`, each
/// user once (sorted), with the metadata claim of its token when it had one.
fn presence_content(members: &[tether_hub::PresenceInfo]) -> Box<serde_json::value::RawValue> {
    let mut users: std::collections::BTreeMap<&str, Option<&str>> = Default::default();
    for member in members {
        let Some(user) = member.user.as_deref() else {
            continue;
        };
        let meta = member
            .labels
            .iter()
            .find(|(name, _)| &**name == "meta")
            .map(|(_, value)| &**value);
        let entry = users.entry(user).or_default();
        *entry = entry.or(meta);
    }
    let users: Vec<serde_json::Value> = users
        .into_iter()
        .map(|(user, meta)| {
            let mut entry = serde_json::json!({ "user": user });
            if let Some(meta) = meta.and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok())
            {
                entry["meta"] = meta;
            }
            entry
        })
        .collect();
    let content = serde_json::json!({ "connections": members.len(), "users": users });
    serde_json::value::to_raw_value(&content).expect("JSON values serialize")
}

fn need_room(env: &Envelope) -> Result<&str, Refusal> {
    env.room.as_deref().ok_or_else(|| {
        Refusal::new(
            ErrorCode::BadRequest,
            format!("a `{}` needs a `room`", env.kind),
        )
    })
}

fn need_content(env: &Envelope) -> Result<&serde_json::value::RawValue, Refusal> {
    env.content.as_deref().ok_or_else(|| {
        Refusal::new(
            ErrorCode::BadRequest,
            format!("a `{}` needs a `content`", env.kind),
        )
    })
}

/// The refusal of a hub error.
fn hub_refusal(e: HubError) -> Refusal {
    let code = match e {
        HubError::InvalidRoomName(_) => ErrorCode::InvalidField,
        HubError::TooManyRooms | HubError::RoomFull => ErrorCode::Forbidden,
        HubError::EpochChanged { .. } | HubError::TooFarBehind { .. } => ErrorCode::NotFound,
        HubError::AlreadyRecovering => ErrorCode::BadRequest,
        HubError::ShuttingDown | HubError::Broker(_) => ErrorCode::Unavailable,
        _ => ErrorCode::Internal,
    };
    Refusal::new(code, e.to_string())
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
