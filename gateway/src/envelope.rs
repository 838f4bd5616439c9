//! The client protocol's JSON envelope (see `PROTOCOL.md`).
//!
//! Every text message between a client and the gateway is one JSON object:
//!
//! ```json
//! {"type": "publish", "room": "chat:lobby", "content": {"text": "hi"}, "id": 7}
//! ```
//!
//! [`parse`] reads a client's message: it never panics, refuses input over the size limit
//! before looking at it, refuses unknown fields (a typo such as `"rom"` is an error, not a
//! message published nowhere) and drops the fields only the server sets (`from`, `ts`),
//! so a client can never speak for another user. `content` is kept as the raw JSON text it
//! came as ([`RawValue`]), so relaying a message does not re-encode it.
//!
//! ```
//! use tether_gateway::envelope::{parse, MessageType};
//!
//! let env = parse(br#"{"type":"publish","room":"r","content":{"a":1},"from":"mallory"}"#, 1024)
//!     .unwrap();
//! assert_eq!(env.kind, MessageType::Publish);
//! assert_eq!(env.content.as_deref().map(|c| c.get()), Some(r#"{"a":1}"#));
//! assert_eq!(env.from, None); // set by the server only
//! ```

use serde::de::{self, Deserializer, IgnoredAny, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use std::fmt;

/// The longest `type`, `room`, `to` or `epoch`, in bytes.
pub const MAX_NAME_LEN: usize = 256;
/// The longest string `id`, in bytes.
pub const MAX_ID_LEN: usize = 128;

/// What an envelope is: one of the protocol's types, or an application's own.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// Publish `content` to `room`.
    Publish,
    /// Send `content` to the user `to` (every session of the user); an empty or missing
    /// `to` broadcasts to everyone.
    Send,
    /// Join `room`.
    Join,
    /// Leave `room`.
    Leave,
    /// Keep-alive request; answered with `pong`.
    Ping,
    /// Answer to `ping`.
    Pong,
    /// Ask for the messages of `room` after `offset` in `epoch`.
    Recover,
    /// Ask who is in `room`; answered with a `presence` whose `content` lists them.
    Presence,
    /// Ask for the messages `room` keeps after `offset`; answered with a `history` whose
    /// `content` is their list.
    History,
    /// The server's acknowledgement of the request `id`.
    Ack,
    /// The server's refusal of the request `id` (`content`: [`ErrorContent`]).
    Error,
    /// An application's type (letters, digits, `_`, `-`, `.`, `:`), for handlers.
    App(String),
}

impl MessageType {
    /// The type's name on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            MessageType::Publish => "publish",
            MessageType::Send => "send",
            MessageType::Join => "join",
            MessageType::Leave => "leave",
            MessageType::Ping => "ping",
            MessageType::Pong => "pong",
            MessageType::Recover => "recover",
            MessageType::Presence => "presence",
            MessageType::History => "history",
            MessageType::Ack => "ack",
            MessageType::Error => "error",
            MessageType::App(name) => name,
        }
    }

    /// The type named `name`: a protocol type, or an application type when `name` is a
    /// valid one (1 to [`MAX_NAME_LEN`] bytes of letters, digits, `_`, `-`, `.`, `:`).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "publish" => MessageType::Publish,
            "send" => MessageType::Send,
            "join" => MessageType::Join,
            "leave" => MessageType::Leave,
            "ping" => MessageType::Ping,
            "pong" => MessageType::Pong,
            "recover" => MessageType::Recover,
            "presence" => MessageType::Presence,
            "history" => MessageType::History,
            "ack" => MessageType::Ack,
            "error" => MessageType::Error,
            _ if !name.is_empty()
                && name.len() <= MAX_NAME_LEN
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b)) =>
            {
                MessageType::App(name.to_owned())
            }
            _ => return None,
        })
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for MessageType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for MessageType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = MessageType;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a message type (letters, digits, _ - . :)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MessageType, E> {
                MessageType::from_name(v)
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
        d.deserialize_str(V)
    }
}

/// A request's `id`, echoed in its `ack` or `error`: a string or a non-negative integer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MessageId {
    /// A number.
    Number(u64),
    /// A string of at most [`MAX_ID_LEN`] bytes.
    Text(String),
}

impl Serialize for MessageId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            MessageId::Number(n) => s.serialize_u64(*n),
            MessageId::Text(t) => s.serialize_str(t),
        }
    }
}

impl<'de> Deserialize<'de> for MessageId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = MessageId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    "a non-negative integer or a string of at most {MAX_ID_LEN} bytes"
                )
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<MessageId, E> {
                Ok(MessageId::Number(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MessageId, E> {
                if v.len() > MAX_ID_LEN {
                    return Err(E::invalid_length(v.len(), &self));
                }
                Ok(MessageId::Text(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

/// One message of the client protocol.
#[derive(Debug, Clone, Serialize)]
pub struct Envelope {
    /// `type`.
    #[serde(rename = "type")]
    pub kind: MessageType,
    /// The user a `send` goes to (empty or missing: everyone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The room of a `publish`, `join`, `leave`, `recover`, `presence` or `history`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// The sender's user id, set by the server from the authenticated identity; [`parse`]
    /// always leaves it `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The payload: any JSON, kept as it came.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<Box<RawValue>>,
    /// The client's id of a request, echoed in the `ack` or `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<MessageId>,
    /// Server time (milliseconds since the Unix epoch), set by the server; [`parse`] always
    /// leaves it `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ts: Option<u64>,
    /// Position of a message in a history room.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// The history's epoch (changes when the history is lost, so offsets restart).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<String>,
}

impl PartialEq for Envelope {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
            && self.to == other.to
            && self.room == other.room
            && self.from == other.from
            && self.content.as_deref().map(RawValue::get)
                == other.content.as_deref().map(RawValue::get)
            && self.id == other.id
            && self.ts == other.ts
            && self.offset == other.offset
            && self.epoch == other.epoch
    }
}

impl Envelope {
    /// An envelope of type `kind` and nothing else.
    pub fn new(kind: MessageType) -> Self {
        Envelope {
            kind,
            to: None,
            room: None,
            from: None,
            content: None,
            id: None,
            ts: None,
            offset: None,
            epoch: None,
        }
    }

    /// The `ack` of a request `id`.
    pub fn ack(id: Option<MessageId>) -> Self {
        Envelope {
            id,
            ..Envelope::new(MessageType::Ack)
        }
    }

    /// The `error` answering a request `id`, with `{"code", "number", "message"}` as content.
    pub fn error(code: ErrorCode, message: &str, id: Option<MessageId>) -> Self {
        let content = ErrorContent {
            code,
            number: code.number(),
            message: message.to_owned(),
        };
        Envelope {
            id,
            content: serde_json::value::to_raw_value(&content).ok(),
            ..Envelope::new(MessageType::Error)
        }
    }

    /// The JSON text of the envelope.
    pub fn encode(&self) -> String {
        // Serializing strings, numbers and valid raw JSON cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The client's view of an envelope: the same fields, the server's own ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Incoming {
    #[serde(rename = "type")]
    kind: MessageType,
    #[serde(default)]
    to: Option<Name>,
    #[serde(default)]
    room: Option<Name>,
    #[serde(default)]
    #[allow(dead_code)]
    from: Option<IgnoredAny>,
    #[serde(default, deserialize_with = "present")]
    content: Option<Box<RawValue>>,
    #[serde(default)]
    id: Option<MessageId>,
    #[serde(default)]
    #[allow(dead_code)]
    ts: Option<IgnoredAny>,
    #[serde(default)]
    offset: Option<u64>,
    #[serde(default)]
    epoch: Option<Name>,
}

/// A present `content`, `null` included (kept as the raw `null`, so it round-trips).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(d).map(Some)
}

/// A `to`, `room` or `epoch`: at most [`MAX_NAME_LEN`] bytes, no control characters.
struct Name(String);

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.len() > MAX_NAME_LEN || s.contains(char::is_control) {
            return Err(de::Error::custom(format_args!(
                "at most {MAX_NAME_LEN} bytes without control characters"
            )));
        }
        Ok(Name(s))
    }
}

/// Why a client's message is not an envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The error code to answer with: [`ErrorCode::TooLarge`], [`ErrorCode::Malformed`],
    /// [`ErrorCode::UnknownField`] or [`ErrorCode::InvalidField`].
    pub code: ErrorCode,
    /// What is wrong.
    pub message: String,
    /// The request's `id`, when it could be read, for the `error` envelope.
    pub id: Option<MessageId>,
}

impl ParseError {
    /// The `error` envelope that answers the message.
    pub fn to_envelope(&self) -> Envelope {
        Envelope::error(self.code, &self.message, self.id.clone())
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for ParseError {}

/// Parses a client's message of at most `max_size` bytes. Never panics; see the module's
/// documentation for what it refuses.
pub fn parse(input: &[u8], max_size: usize) -> Result<Envelope, ParseError> {
    if input.len() > max_size {
        return Err(ParseError {
            code: ErrorCode::TooLarge,
            message: format!(
                "the message is {} bytes, the limit is {max_size}",
                input.len()
            ),
            id: None,
        });
    }
    // serde would also read the struct from a JSON array (`["ping"]`): only objects are
    // envelopes.
    if input.trim_ascii_start().first() == Some(&b'[') {
        return Err(ParseError {
            code: ErrorCode::Malformed,
            message: "a message is a JSON object with a `type` (see PROTOCOL.md)".to_owned(),
            id: None,
        });
    }
    match serde_json::from_slice::<Incoming>(input) {
        Ok(m) => Ok(Envelope {
            kind: m.kind,
            to: m.to.map(|n| n.0),
            room: m.room.map(|n| n.0),
            from: None,
            content: m.content,
            id: m.id,
            ts: None,
            offset: m.offset,
            epoch: m.epoch.map(|n| n.0),
        }),
        Err(e) => {
            let message = e.to_string();
            let not_an_object = message.contains("expected struct Incoming");
            let code = match e.classify() {
                _ if not_an_object => ErrorCode::Malformed,
                serde_json::error::Category::Data if message.starts_with("unknown field") => {
                    ErrorCode::UnknownField
                }
                serde_json::error::Category::Data => ErrorCode::InvalidField,
                _ => ErrorCode::Malformed,
            };
            // Best effort: the id of a message that is an object with a valid `id`.
            #[derive(Deserialize)]
            struct JustId {
                id: Option<MessageId>,
            }
            let id = serde_json::from_slice::<JustId>(input)
                .ok()
                .and_then(|j| j.id);
            let message = if not_an_object {
                "a message is a JSON object with a `type` (see PROTOCOL.md)".to_owned()
            } else {
                message
            };
            Err(ParseError { code, message, id })
        }
    }
}

/// The error codes of `error` envelopes: a stable name (`code`) and number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 100: not JSON, or not an object.
    Malformed,
    /// 101: over the message size limit.
    TooLarge,
    /// 102: a field the protocol does not have.
    UnknownField,
    /// 103: a field with the wrong type or value, or `type` missing.
    InvalidField,
    /// 104: an application type no handler takes.
    UnknownType,
    /// 105: a request that lacks what its type needs (a `publish` without `room`...).
    BadRequest,
    /// 110: the connection's identity is not enough (anonymous, token expired).
    Unauthorized,
    /// 111: the room's rules do not allow it.
    Forbidden,
    /// 112: over the connection's rate limit.
    RateLimited,
    /// 113: no such room or user.
    NotFound,
    /// 120: the server failed.
    Internal,
    /// 121: the server cannot do it now (shutting down, broker down).
    Unavailable,
}

impl ErrorCode {
    /// Every code.
    pub const ALL: [ErrorCode; 12] = [
        ErrorCode::Malformed,
        ErrorCode::TooLarge,
        ErrorCode::UnknownField,
        ErrorCode::InvalidField,
        ErrorCode::UnknownType,
        ErrorCode::BadRequest,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::RateLimited,
        ErrorCode::NotFound,
        ErrorCode::Internal,
        ErrorCode::Unavailable,
    ];

    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Malformed => "malformed",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::UnknownField => "unknown_field",
            ErrorCode::InvalidField => "invalid_field",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Internal => "internal",
            ErrorCode::Unavailable => "unavailable",
        }
    }

    /// The stable number.
    pub fn number(self) -> u16 {
        match self {
            ErrorCode::Malformed => 100,
            ErrorCode::TooLarge => 101,
            ErrorCode::UnknownField => 102,
            ErrorCode::InvalidField => 103,
            ErrorCode::UnknownType => 104,
            ErrorCode::BadRequest => 105,
            ErrorCode::Unauthorized => 110,
            ErrorCode::Forbidden => 111,
            ErrorCode::RateLimited => 112,
            ErrorCode::NotFound => 113,
            ErrorCode::Internal => 120,
            ErrorCode::Unavailable => 121,
        }
    }

    /// The code named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The code numbered `number`.
    pub fn from_number(number: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.number() == number)
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        ErrorCode::from_name(&name)
            .ok_or_else(|| de::Error::custom(format_args!("unknown error code `{name}`")))
    }
}

/// The `content` of an `error` envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorContent {
    /// The code's name.
    pub code: ErrorCode,
    /// The code's number.
    pub number: u16,
    /// What went wrong, for people.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAX: usize = 64 * 1024;

    fn err(input: &str) -> ParseError {
        parse(input.as_bytes(), MAX).unwrap_err()
    }

    #[test]
    fn every_type() {
        for (name, kind) in [
            ("publish", MessageType::Publish),
            ("send", MessageType::Send),
            ("join", MessageType::Join),
            ("leave", MessageType::Leave),
            ("ping", MessageType::Ping),
            ("pong", MessageType::Pong),
            ("recover", MessageType::Recover),
            ("presence", MessageType::Presence),
            ("history", MessageType::History),
            ("ack", MessageType::Ack),
            ("error", MessageType::Error),
            ("order.created", MessageType::App("order.created".into())),
        ] {
            let env = parse(format!(r#"{{"type":"{name}"}}"#).as_bytes(), MAX).unwrap();
            assert_eq!(env.kind, kind);
            assert_eq!(env.encode(), format!(r#"{{"type":"{name}"}}"#));
        }
    }

    #[test]
    fn all_fields() {
        let text = r#"{"type":"recover","to":"bob","room":"chat:1","content":[1, {"x": "y"}],"id":"a-1","offset":42,"epoch":"e7"}"#;
        let env = parse(text.as_bytes(), MAX).unwrap();
        assert_eq!(env.to.as_deref(), Some("bob"));
        assert_eq!(env.room.as_deref(), Some("chat:1"));
        assert_eq!(
            env.content.as_deref().unwrap().get(),
            r#"[1, {"x": "y"}]"#,
            "kept as sent"
        );
        assert_eq!(env.id, Some(MessageId::Text("a-1".into())));
        assert_eq!(env.offset, Some(42));
        assert_eq!(env.epoch.as_deref(), Some("e7"));
        assert_eq!(env.encode(), text);
        assert_eq!(
            parse(br#"{"type":"ping","id":7}"#, MAX).unwrap().id,
            Some(MessageId::Number(7))
        );
    }

    #[test]
    fn server_fields_are_dropped() {
        let env = parse(
            br#"{"type":"publish","room":"r","from":"admin","ts":1,"content":null}"#,
            MAX,
        )
        .unwrap();
        assert_eq!(env.from, None);
        assert_eq!(env.ts, None);
        assert_eq!(env.content.unwrap().get(), "null", "a null content is kept");
        let env = parse(br#"{"type":"send","from":{"any":["shape"]}}"#, MAX).unwrap();
        assert_eq!(env.from, None);
    }

    #[test]
    fn refusals() {
        let e = err(r#"{"type":"publish","rom":"x","id":3}"#);
        assert_eq!(e.code, ErrorCode::UnknownField);
        assert!(e.message.contains("rom"), "{}", e.message);
        assert_eq!(e.id, Some(MessageId::Number(3)), "the id is recovered");
        assert_eq!(err(r#"{"room":"x"}"#).code, ErrorCode::InvalidField);
        assert!(err(r#"{"room":"x"}"#).message.contains("type"));
        assert_eq!(err(r#"{"type":""}"#).code, ErrorCode::InvalidField);
        assert_eq!(err(r#"{"type":"has space"}"#).code, ErrorCode::InvalidField);
        assert_eq!(err(r#"{"type":5}"#).code, ErrorCode::InvalidField);
        assert_eq!(
            err(r#"{"type":"join","room":5}"#).code,
            ErrorCode::InvalidField
        );
        assert_eq!(
            err(r#"{"type":"join","id":-1}"#).code,
            ErrorCode::InvalidField
        );
        assert_eq!(
            err(r#"{"type":"join","id":1.5}"#).code,
            ErrorCode::InvalidField
        );
        assert_eq!(
            err(r#"{"type":"join","offset":"3"}"#).code,
            ErrorCode::InvalidField
        );
        let long = "r".repeat(MAX_NAME_LEN + 1);
        assert_eq!(
            err(&format!(r#"{{"type":"join","room":"{long}"}}"#)).code,
            ErrorCode::InvalidField
        );
        assert_eq!(
            err(r#"{"type":"join","room":"a\u0000b"}"#).code,
            ErrorCode::InvalidField
        );
        let long_id = "i".repeat(MAX_ID_LEN + 1);
        assert_eq!(
            err(&format!(r#"{{"type":"join","id":"{long_id}"}}"#)).code,
            ErrorCode::InvalidField
        );
        for bad in [
            "",
            "{",
            "[]",
            "[\"ping\"]",
            " [\"publish\", \"\", \"room\"]",
            "null",
            "\"publish\"",
            "{\"type\":\"ping\"} x",
            "\u{feff}{}",
        ] {
            assert_eq!(err(bad).code, ErrorCode::Malformed, "{bad:?}");
        }
        assert_eq!(
            err(r#"{"type":"ping","type":"pong"}"#).code,
            ErrorCode::InvalidField
        );
        let e = parse(br#"{"type":"ping"}"#, 5).unwrap_err();
        assert_eq!(e.code, ErrorCode::TooLarge);
        assert!(
            parse(br#"{"type":"ping"}"#, 15).is_ok(),
            "the limit is inclusive"
        );
        // Deep nesting neither overflows the stack nor is interpreted: `content` is kept
        // raw (the size limit bounds it), elsewhere it is an error.
        let open = "[".repeat(100_000);
        let close = "]".repeat(100_000);
        let deep = format!(r#"{{"type":"x","content":{open}{close}}}"#);
        let env = parse(deep.as_bytes(), usize::MAX).ok();
        assert_eq!(
            env.and_then(|e| e.content).map(|c| c.get().len()),
            Some(200_000)
        );
        let deep = format!(r#"{{"type":"x","room":{open}{close}}}"#);
        assert_eq!(
            parse(deep.as_bytes(), usize::MAX)
                .map(drop)
                .unwrap_err()
                .code,
            ErrorCode::InvalidField
        );
        let deep = format!(r#"{{"type":"x","from":{open}{close}}}"#);
        let env = parse(deep.as_bytes(), usize::MAX).ok();
        assert_eq!(env.map(|e| e.from), Some(None), "skipped, not interpreted");
    }

    #[test]
    fn error_envelopes() {
        let env = Envelope::error(
            ErrorCode::RateLimited,
            "slow down",
            Some(MessageId::Number(9)),
        );
        assert_eq!(
            env.encode(),
            r#"{"type":"error","content":{"code":"rate_limited","number":112,"message":"slow down"},"id":9}"#
        );
        let back = parse(env.encode().as_bytes(), MAX).unwrap();
        let content: ErrorContent = serde_json::from_str(back.content.unwrap().get()).unwrap();
        assert_eq!(content.code, ErrorCode::RateLimited);
        assert_eq!(Envelope::ack(None).encode(), r#"{"type":"ack"}"#);
        let e = err(r#"{"type":"x","id":"q","bad":1}"#).to_envelope();
        assert_eq!(e.kind, MessageType::Error);
        assert_eq!(e.id, Some(MessageId::Text("q".into())));
    }

    #[test]
    fn codes_are_stable_and_distinct() {
        let mut numbers: Vec<u16> = ErrorCode::ALL.iter().map(|c| c.number()).collect();
        numbers.sort_unstable();
        numbers.dedup();
        assert_eq!(numbers.len(), ErrorCode::ALL.len());
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_name(code.as_str()), Some(code));
            assert_eq!(ErrorCode::from_number(code.number()), Some(code));
        }
        assert_eq!(ErrorCode::Forbidden.number(), 111);
        assert_eq!(ErrorCode::TooLarge.as_str(), "too_large");
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(serde_json::Value::from),
            ".{0,12}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::btree_map(".{0,6}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn name() -> impl Strategy<Value = String> {
        "[^\\x00-\\x1f\\x7f-\\u{9f}]{0,20}"
    }

    fn message_type() -> impl Strategy<Value = MessageType> {
        prop_oneof![
            Just(MessageType::Publish),
            Just(MessageType::Send),
            Just(MessageType::Join),
            Just(MessageType::Leave),
            Just(MessageType::Ping),
            Just(MessageType::Pong),
            Just(MessageType::Recover),
            Just(MessageType::Presence),
            Just(MessageType::History),
            Just(MessageType::Ack),
            Just(MessageType::Error),
            "[a-zA-Z0-9_.:-]{1,20}".prop_map(|n| MessageType::from_name(&n).unwrap()),
        ]
    }

    fn envelope() -> impl Strategy<Value = Envelope> {
        (
            message_type(),
            prop::option::of(name()),
            prop::option::of(name()),
            prop::option::of(json_value()),
            prop::option::of(prop_oneof![
                any::<u64>().prop_map(MessageId::Number),
                ".{0,20}".prop_map(MessageId::Text),
            ]),
            prop::option::of(any::<u64>()),
            prop::option::of(name()),
        )
            .prop_map(|(kind, to, room, content, id, offset, epoch)| Envelope {
                kind,
                to,
                room,
                from: None,
                content: content.map(|c| serde_json::value::to_raw_value(&c).unwrap()),
                id,
                ts: None,
                offset,
                epoch,
            })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse(&bytes, MAX);
        }

        #[test]
        fn json_like_text_never_panics(text in "[{}\\[\\]\":,a-z0-9 .\\-\\\\u]{0,200}") {
            let _ = parse(text.as_bytes(), MAX);
        }

        #[test]
        fn encode_then_parse_round_trips(env in envelope()) {
            let text = env.encode();
            let back = parse(text.as_bytes(), usize::MAX).unwrap();
            prop_assert_eq!(&back, &env);
            prop_assert_eq!(back.encode(), text);
        }

        #[test]
        fn from_and_ts_never_survive(env in envelope(), from in name(), ts in any::<u64>()) {
            let mut sent = env.clone();
            sent.from = Some(from);
            sent.ts = Some(ts);
            let back = parse(sent.encode().as_bytes(), usize::MAX).unwrap();
            prop_assert_eq!(back, env);
        }
    }
}
