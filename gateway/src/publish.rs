//! Publishing to a room: the one path shared by the WebSocket `publish` request and the
//! HTTP API.
//!
//! [`publish_to_room`] encodes the envelope once (the server sets `from` and `ts`), sets
//! up the room's history from its rule (`history_size`), and publishes: through the hub's
//! broker ([`Hub::publish_durable`](tether_hub::Hub::publish_durable)) in rooms with
//! history, so that members get `offset` and `epoch` and can recover, directly
//! otherwise. In raw rooms (`raw = true`) the content goes out bare, without an envelope
//! ([`publish_bytes`] publishes binary payloads there).
//!
//! It checks no permission: the caller does (the WebSocket requests by the room rules, the
//! HTTP API by its key).
//!
//! ```
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use serde_json::value::RawValue;
//! use tether_gateway::{AppState, config::Config, publish::publish_to_room};
//!
//! let state = AppState::new(Config::default())?;
//! let content = RawValue::from_string(r#"{"text":"hello"}"#.to_owned())?;
//! let published = publish_to_room(&state, "chat:lobby", Some("alice"), "publish", &content).await?;
//! assert_eq!(published.delivered, 0); // nobody is in the room
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(run()).unwrap();
//! ```

use crate::config::Config;
use crate::envelope::{Envelope, ErrorCode, MessageType};
use crate::server::AppState;
use serde_json::value::RawValue;
use std::fmt;
use tether_hub::{
    ConnectionId, HistoryOptions, HubError, Payload, Publication, SendOptions, Target,
};

/// What became of a publication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The room's members on this node that were handed the message: for a room with
    /// history, its members when it was published.
    pub delivered: usize,
    /// Its position in the room's history (rooms with `history_size > 0`).
    pub offset: Option<u64>,
    /// The epoch of that history.
    pub epoch: Option<String>,
}

/// Why a publication was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublishError {
    /// The room's name is not valid (empty, too long, control characters).
    InvalidRoom(String),
    /// `kind` is not a type that can be published (`publish` or an application's type).
    InvalidType(String),
    /// Bytes can only be published to a raw room (`raw = true`).
    NotRaw,
    /// The hub or its broker cannot publish now.
    Unavailable(String),
}

impl PublishError {
    /// The protocol's error code for it (`invalid_field`, `bad_request`, `unavailable`).
    pub fn code(&self) -> ErrorCode {
        match self {
            PublishError::InvalidRoom(_) | PublishError::InvalidType(_) => ErrorCode::InvalidField,
            PublishError::NotRaw => ErrorCode::BadRequest,
            PublishError::Unavailable(_) => ErrorCode::Unavailable,
        }
    }
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublishError::InvalidRoom(e) => write!(f, "invalid room name: {e}"),
            PublishError::InvalidType(t) => write!(
                f,
                "cannot publish a message of type `{t}`: use `publish` or an application type"
            ),
            PublishError::NotRaw => {
                f.write_str("binary payloads go to raw rooms only (a rule with raw = true)")
            }
            PublishError::Unavailable(e) => write!(f, "cannot publish now: {e}"),
        }
    }
}

impl std::error::Error for PublishError {}

impl From<HubError> for PublishError {
    fn from(e: HubError) -> Self {
        match e {
            HubError::InvalidRoomName(e) => PublishError::InvalidRoom(e.to_string()),
            e => PublishError::Unavailable(e.to_string()),
        }
    }
}

/// Publishes `content` (any JSON) to `room` as a message of type `kind` (`publish`, or an
/// application's type such as `order.created`) from the user `from` (`None`: from the
/// server). Members get `{"type", "room", "from", "content", "ts"}`, plus `offset` and
/// `epoch` in rooms with history; in a raw room they get the content bare (a JSON string's
/// text, or the JSON text of anything else) as a text message.
pub async fn publish_to_room(
    state: &AppState,
    room: &str,
    from: Option<&str>,
    kind: &str,
    content: &RawValue,
) -> Result<Published, PublishError> {
    publish(state, room, from, kind, content, None).await
}

/// Publishes `payload` as it is (a binary or text message) to the raw room `room`;
/// [`PublishError::NotRaw`] for any other room.
pub async fn publish_bytes(
    state: &AppState,
    room: &str,
    payload: impl Into<Payload>,
) -> Result<Published, PublishError> {
    tether_hub::validate_room_name(room).map_err(|e| PublishError::InvalidRoom(e.to_string()))?;
    if !is_raw(state.config(), room) {
        return Err(PublishError::NotRaw);
    }
    Ok(publish_bare(state, room, payload.into(), None))
}

/// [`publish_to_room`], leaving out the connection `exclude` in raw rooms (where a
/// client could not tell its own message from the others').
pub(crate) async fn publish(
    state: &AppState,
    room: &str,
    from: Option<&str>,
    kind: &str,
    content: &RawValue,
    exclude: Option<ConnectionId>,
) -> Result<Published, PublishError> {
    tether_hub::validate_room_name(room).map_err(|e| PublishError::InvalidRoom(e.to_string()))?;
    let kind = match MessageType::from_name(kind) {
        Some(kind @ (MessageType::Publish | MessageType::App(_))) => kind,
        _ => return Err(PublishError::InvalidType(kind.to_owned())),
    };
    if is_raw(state.config(), room) {
        let payload = match serde_json::from_str::<String>(content.get()) {
            Ok(text) => Payload::from(text),
            Err(_) => Payload::from(content.get().to_owned()),
        };
        return Ok(publish_bare(state, room, payload, exclude));
    }
    let envelope = Envelope {
        room: Some(room.to_owned()),
        from: from.map(str::to_owned),
        content: Some(content.to_owned()),
        ts: Some(now_millis()),
        ..Envelope::new(kind)
    };
    let text = envelope.encode();
    let hub = state.hub();
    if ensure_history(state, room) {
        let delivered = hub.member_count(room);
        let position = hub.publish_durable(room, text, SendOptions::new()).await?;
        Ok(Published {
            delivered,
            offset: Some(position.offset),
            epoch: Some(position.epoch.to_string()),
        })
    } else {
        let report = hub.send(Target::Room(room), text, SendOptions::new());
        Ok(Published {
            delivered: report.queued,
            offset: None,
            epoch: None,
        })
    }
}

fn publish_bare(
    state: &AppState,
    room: &str,
    payload: Payload,
    exclude: Option<ConnectionId>,
) -> Published {
    let mut options = SendOptions::new();
    if let Some(id) = exclude {
        options = options.exclude(id);
    }
    let report = state.hub().send(Target::Room(room), payload, options);
    Published {
        delivered: report.queued,
        offset: None,
        epoch: None,
    }
}

/// Whether `room`'s rule puts it in raw mode.
pub(crate) fn is_raw(config: &Config, room: &str) -> bool {
    config.room_rule(room).is_some_and(|rule| rule.raw)
}

/// The number of messages `room` keeps by its rule (0: no history; raw rooms keep none).
pub(crate) fn history_size(config: &Config, room: &str) -> usize {
    config
        .room_rule(room)
        .filter(|rule| !rule.raw)
        .map_or(0, |rule| rule.history_size)
}

/// Sets up `room`'s history in the hub from its rule, once; returns whether the room
/// keeps history. Called when publishing only, so that the hub holds settings for the
/// rooms that were published to, not for every name a client joins.
pub(crate) fn ensure_history(state: &AppState, room: &str) -> bool {
    let size = history_size(state.config(), room);
    if size == 0 {
        return false;
    }
    let hub = state.hub();
    if hub.room_history(room).is_none() {
        let options = HistoryOptions { size, ttl: None };
        if hub.set_room_history(room, options).is_err() {
            return false;
        }
    }
    true
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What a member of a room with history gets: the published envelope with its `offset`
/// and `epoch` (the hub's envelope function, [`Hub::set_envelope`](tether_hub::Hub::set_envelope)).
pub(crate) fn positioned(publication: &Publication) -> Payload {
    let (Some(position), Some(text)) = (&publication.position, publication.payload.as_text())
    else {
        return publication.payload.clone();
    };
    let Some(body) = text.strip_suffix('}') else {
        return publication.payload.clone();
    };
    let epoch = serde_json::to_string(&*position.epoch).unwrap_or_default();
    let mut out = String::with_capacity(text.len() + epoch.len() + 32);
    out.push_str(body);
    out.push_str(",\"offset\":");
    out.push_str(&position.offset.to_string());
    out.push_str(",\"epoch\":");
    out.push_str(&epoch);
    out.push('}');
    Payload::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RoomRule;
    use serde_json::Value;

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_owned()).unwrap()
    }

    fn state() -> AppState {
        let config = Config {
            rooms: vec![
                RoomRule {
                    pattern: "h:*".to_owned(),
                    history_size: 10,
                    ..RoomRule::default()
                },
                RoomRule {
                    pattern: "raw:*".to_owned(),
                    raw: true,
                    ..RoomRule::default()
                },
                RoomRule::default(),
            ],
            ..Config::default()
        };
        AppState::new(config).unwrap()
    }

    #[tokio::test]
    async fn history_rooms_number_their_messages() {
        let state = state();
        let content = raw(r#"{"n":1}"#);
        let a = publish_to_room(&state, "h:1", Some("alice"), "publish", &content)
            .await
            .unwrap();
        let b = publish_to_room(&state, "h:1", None, "order.created", &content)
            .await
            .unwrap();
        assert_eq!((a.offset, b.offset), (Some(1), Some(2)));
        assert_eq!(a.epoch, b.epoch);
        assert!(a.epoch.is_some());
        assert_eq!(a.delivered, 0);
        // The history holds the envelopes, delivered with their position.
        let history = state.hub().broker().history("h:1", 0, 10).await.unwrap();
        assert_eq!(history.publications.len(), 2);
        let first = positioned(&history.publications[0]);
        let first: Value = serde_json::from_str(first.as_text().unwrap()).unwrap();
        assert_eq!(first["type"], "publish");
        assert_eq!(first["room"], "h:1");
        assert_eq!(first["from"], "alice");
        assert_eq!(first["content"]["n"], 1);
        assert_eq!(first["offset"], 1);
        assert_eq!(first["epoch"], a.epoch.unwrap().as_str());
        assert!(first["ts"].as_u64().unwrap() > 1_700_000_000_000);
        let second: Value =
            serde_json::from_str(positioned(&history.publications[1]).as_text().unwrap()).unwrap();
        assert_eq!(second["type"], "order.created");
        assert!(second.get("from").is_none());

        let plain = publish_to_room(&state, "other", Some("a"), "publish", &content)
            .await
            .unwrap();
        assert_eq!((plain.offset, plain.epoch), (None, None));
    }

    #[tokio::test]
    async fn refusals() {
        let state = state();
        let content = raw("1");
        let e = publish_to_room(&state, "", None, "publish", &content)
            .await
            .unwrap_err();
        assert!(matches!(e, PublishError::InvalidRoom(_)), "{e}");
        for kind in ["join", "ack", "error", "bad type!", ""] {
            let e = publish_to_room(&state, "r", None, kind, &content)
                .await
                .unwrap_err();
            assert!(matches!(e, PublishError::InvalidType(_)), "{kind}: {e}");
            assert_eq!(e.code(), ErrorCode::InvalidField);
        }
        let e = publish_bytes(&state, "h:1", vec![1u8, 2])
            .await
            .unwrap_err();
        assert_eq!(e, PublishError::NotRaw);
        let ok = publish_bytes(&state, "raw:1", vec![1u8, 2]).await.unwrap();
        assert_eq!(ok.offset, None);
        // A raw room keeps no history, whatever a publication.
        assert!(!ensure_history(&state, "raw:1"));
        assert!(ensure_history(&state, "h:2"));
        assert_eq!(state.hub().room_history("h:2").unwrap().size, 10);
    }
}
