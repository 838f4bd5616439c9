//! The opening handshake (RFC 6455 §4), both roles: building and validating the HTTP/1.1
//! upgrade request and response, with incremental, bounded parsers.

use crate::config::Config;
use crate::deflate::{self, DeflateConfig, DeflateParams};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use sha1::{Digest, Sha1};
use std::borrow::Cow;
use std::fmt;
use std::mem::MaybeUninit;

const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Computes `Sec-WebSocket-Accept` for a key (RFC 6455 §4.2.2): base64(SHA-1(key ++ GUID)).
pub fn accept_key(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(GUID);
    BASE64.encode(sha.finalize())
}

/// Generates a `Sec-WebSocket-Key` from 16 random bytes (§4.1).
pub(crate) fn generate_key(random16: [u8; 16]) -> String {
    BASE64.encode(random16)
}

/// Limits on the opening handshake. Checked before buffering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HandshakeLimits {
    /// Largest request or response head, in bytes (431 for a request beyond it). Default 16 KiB.
    pub max_size: usize,
    /// Most header fields in a head (431 beyond it). Default 64.
    pub max_headers: usize,
    /// Largest body of a rejection response kept for the application; the rest is dropped.
    /// Default 64 KiB.
    pub max_body: usize,
}

impl Default for HandshakeLimits {
    fn default() -> Self {
        Self {
            max_size: 16 * 1024,
            max_headers: 64,
            max_body: 64 * 1024,
        }
    }
}

/// A header field. Names compare case-insensitively; values are bytes, as HTTP allows.
///
/// Its `Debug` output shows the value as text (invalid UTF-8 replaced by U+FFFD).
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    /// The field name as received or given.
    pub name: String,
    /// The field value.
    pub value: Vec<u8>,
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Header")
            .field("name", &self.name)
            .field("value", &String::from_utf8_lossy(&self.value))
            .finish()
    }
}

/// Why the opening handshake failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The URL is not a valid `ws://` or `wss://` URL.
    InvalidUrl(&'static str),
    /// The HTTP head could not be parsed.
    Malformed(&'static str),
    /// The head exceeded the size or header-count limit (431).
    TooLarge,
    /// The request violates RFC 6455 §4.2.1; the text names the rule (400).
    BadRequest(&'static str),
    /// The request's method is not GET (405).
    MethodNotAllowed,
    /// `Sec-WebSocket-Version` is not 13 (426, with `Sec-WebSocket-Version: 13`).
    UnsupportedVersion,
    /// The response lacks `Upgrade: websocket` or `Connection: upgrade` (§4.1).
    MissingUpgrade,
    /// The response's `Sec-WebSocket-Accept` does not match the key sent (§4.1).
    InvalidAccept,
    /// A subprotocol is invalid, or the server chose one the client did not offer.
    InvalidSubprotocol,
    /// The server's `Sec-WebSocket-Extensions` answer is invalid (RFC 7692 §7.1).
    InvalidExtension(String),
    /// A header name or value is not allowed (for example CR or LF in a value).
    InvalidHeader,
    /// The server answered with a status other than 101; the response is kept whole.
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The response, with headers and (up to `max_body` bytes of) body.
        response: Box<Response>,
    },
    /// The connection ended during the handshake.
    Eof,
    /// Server: `accept` was called on a plain HTTP request ([`Request::is_upgrade`] is
    /// false, see `Config::plain_http`); answer it with `reject` instead.
    NotAnUpgrade,
}

impl HandshakeError {
    /// The HTTP status a server answers this error with, if it is a request error.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::Malformed(_) | Self::BadRequest(_) | Self::InvalidHeader => Some(400),
            Self::TooLarge => Some(431),
            Self::MethodNotAllowed => Some(405),
            Self::UnsupportedVersion => Some(426),
            _ => None,
        }
    }

    /// The header fields a server's error response for this error must carry:
    /// `Sec-WebSocket-Version: 13` with 426 (RFC 6455 §4.4), `Allow: GET` with 405
    /// (RFC 9110 §15.5.6); none otherwise.
    pub fn response_headers(&self) -> &'static [(&'static str, &'static str)] {
        match self.http_status() {
            Some(426) => &[("Sec-WebSocket-Version", "13")],
            Some(405) => &[("Allow", "GET")],
            _ => &[],
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUrl(why) => write!(f, "invalid URL: {why}"),
            Self::Malformed(why) => write!(f, "malformed HTTP: {why}"),
            Self::TooLarge => f.write_str("handshake head too large"),
            Self::BadRequest(why) => write!(f, "bad upgrade request: {why}"),
            Self::MethodNotAllowed => f.write_str("upgrade request method is not GET"),
            Self::UnsupportedVersion => f.write_str("unsupported Sec-WebSocket-Version"),
            Self::MissingUpgrade => f.write_str("response is not a websocket upgrade"),
            Self::InvalidAccept => f.write_str("Sec-WebSocket-Accept does not match the key"),
            Self::InvalidSubprotocol => f.write_str("invalid subprotocol"),
            Self::InvalidExtension(why) => write!(f, "invalid extension response: {why}"),
            Self::InvalidHeader => f.write_str("invalid header name or value"),
            Self::Rejected { status, .. } => write!(f, "server rejected the upgrade: {status}"),
            Self::Eof => f.write_str("connection closed during the handshake"),
            Self::NotAnUpgrade => {
                f.write_str("the request is not a WebSocket upgrade: answer it with reject")
            }
        }
    }
}

impl std::error::Error for HandshakeError {}

fn find_header<'a>(headers: &'a [Header], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_slice())
}

fn count_headers(headers: &[Header], name: &str) -> usize {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .count()
}

/// Comma-separated values of every header named `name`, trimmed, empty items skipped.
fn header_list<'a>(headers: &'a [Header], name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name))
        .filter_map(|h| std::str::from_utf8(&h.value).ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn has_token(headers: &[Header], name: &str, token: &str) -> bool {
    header_list(headers, name).any(|t| t.eq_ignore_ascii_case(token))
}

/// RFC 7230 `token` characters.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn valid_value(v: &[u8]) -> bool {
    !v.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0)
}

// ---------------------------------------------------------------- client

/// What a client asks for: a `ws://` or `wss://` URL plus Origin, subprotocols and extra
/// headers (an auth token, cookies).
#[derive(Clone, Debug)]
pub struct ClientRequest {
    host: String,
    port: u16,
    tls: bool,
    path_and_query: String,
    origin: Option<String>,
    protocols: Vec<String>,
    headers: Vec<(String, String)>,
}

impl ClientRequest {
    /// Parses a `ws://` or `wss://` URL: host (a name, IPv4, or `[IPv6]`), optional port,
    /// path (default `/`) and query. Fragments and user info are refused (§3).
    pub fn new(url: &str) -> Result<Self, HandshakeError> {
        let (tls, rest) = if let Some(r) = strip_prefix_ci(url, "ws://") {
            (false, r)
        } else if let Some(r) = strip_prefix_ci(url, "wss://") {
            (true, r)
        } else {
            return Err(HandshakeError::InvalidUrl("scheme must be ws or wss"));
        };
        if url.contains('#') {
            return Err(HandshakeError::InvalidUrl("fragments are not allowed"));
        }
        if url.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(HandshakeError::InvalidUrl(
                "whitespace or control character",
            ));
        }
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.contains('@') {
            return Err(HandshakeError::InvalidUrl("user info is not supported"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let end = v6
                .find(']')
                .ok_or(HandshakeError::InvalidUrl("unterminated IPv6 address"))?;
            let host = &authority[..end + 2];
            (host, &v6[end + 1..])
        } else {
            match authority.find(':') {
                Some(i) => (&authority[..i], &authority[i..]),
                None => (authority, ""),
            }
        };
        if host.is_empty() || host == "[]" {
            return Err(HandshakeError::InvalidUrl("missing host"));
        }
        let port = match port {
            "" => {
                if tls {
                    443
                } else {
                    80
                }
            }
            p => p
                .strip_prefix(':')
                .and_then(|p| p.parse::<u16>().ok())
                .filter(|&p| p != 0)
                .ok_or(HandshakeError::InvalidUrl("invalid port"))?,
        };
        let path_and_query = if path.is_empty() {
            "/".to_string()
        } else if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_string()
        };
        Ok(Self {
            host: host.to_string(),
            port,
            tls,
            path_and_query,
            origin: None,
            protocols: Vec::new(),
            headers: Vec::new(),
        })
    }

    /// Sets the `Origin` header (browsers always send one; §4.1 point 8).
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// Offers a subprotocol; call once per protocol, in order of preference. Invalid names
    /// (not an RFC 7230 token) make encoding the request fail.
    pub fn subprotocol(mut self, protocol: impl Into<String>) -> Self {
        self.protocols.push(protocol.into());
        self
    }

    /// Adds a header, such as `Authorization`. A name that is not a token or a value with
    /// CR or LF makes encoding the request fail.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The host, as in the URL (IPv6 addresses keep their brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port (80 or 443 unless given).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the URL was `wss://`.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The request target: path and query.
    pub fn path_and_query(&self) -> &str {
        &self.path_and_query
    }

    /// The offered subprotocols.
    pub fn subprotocols(&self) -> &[String] {
        &self.protocols
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// Writes the upgrade request (§4.1) to `out`.
pub(crate) fn encode_request(
    req: &ClientRequest,
    key: &str,
    extensions: Option<&str>,
    out: &mut Vec<u8>,
) -> Result<(), HandshakeError> {
    if req.protocols.iter().any(|p| !is_token(p)) {
        return Err(HandshakeError::InvalidSubprotocol);
    }
    for (name, value) in &req.headers {
        if !is_token(name) || !valid_value(value.as_bytes()) {
            return Err(HandshakeError::InvalidHeader);
        }
    }
    if let Some(origin) = &req.origin
        && !valid_value(origin.as_bytes())
    {
        return Err(HandshakeError::InvalidHeader);
    }
    let default_port = if req.tls { 443 } else { 80 };
    let mut head = format!("GET {} HTTP/1.1\r\nHost: {}", req.path_and_query, req.host);
    if req.port != default_port {
        head.push_str(&format!(":{}", req.port));
    }
    head.push_str("\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ");
    head.push_str(key);
    head.push_str("\r\nSec-WebSocket-Version: 13\r\n");
    if let Some(origin) = &req.origin {
        head.push_str(&format!("Origin: {origin}\r\n"));
    }
    if !req.protocols.is_empty() {
        head.push_str(&format!(
            "Sec-WebSocket-Protocol: {}\r\n",
            req.protocols.join(", ")
        ));
    }
    if let Some(ext) = extensions {
        head.push_str(&format!("Sec-WebSocket-Extensions: {ext}\r\n"));
    }
    for (name, value) in &req.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    out.extend_from_slice(head.as_bytes());
    Ok(())
}

/// The server's response, as the client received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    status: u16,
    reason: String,
    headers: Vec<Header>,
    body: Bytes,
}

impl Response {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Every header, in order.
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        find_header(&self.headers, name)
    }

    /// The body (only for non-101 responses; at most `max_body` bytes).
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The subprotocol the server selected, if any.
    pub fn subprotocol(&self) -> Option<&str> {
        self.header("sec-websocket-protocol")
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::trim)
    }
}

/// Accumulates a head, finding its end in O(n) over any feeding pattern.
#[derive(Debug)]
struct HeadBuffer {
    buf: Vec<u8>,
    limits: HandshakeLimits,
    /// How far `buf` has been searched for the end of the head.
    searched: usize,
    #[cfg(test)]
    parses: usize,
}

impl HeadBuffer {
    fn new(limits: HandshakeLimits) -> Self {
        Self {
            buf: Vec::new(),
            limits,
            searched: 0,
            #[cfg(test)]
            parses: 0,
        }
    }

    /// Takes bytes up to the end of the head. Once the head is complete, returns it with how
    /// many bytes of `data` it took; otherwise keeps them (all of `data`) for the next call.
    /// A head that arrives whole in one `data` is returned from `data` without copying.
    fn push<'a>(&'a mut self, data: &'a [u8]) -> Result<Option<(&'a [u8], usize)>, HandshakeError> {
        if self.buf.is_empty() {
            let limit = data.len().min(self.limits.max_size);
            if let Some(pos) = find_head_end(&data[..limit]) {
                return Ok(Some((&data[..pos], pos)));
            }
        }
        let room = self.limits.max_size.saturating_sub(self.buf.len());
        let take = data.len().min(room);
        self.buf.extend_from_slice(&data[..take]);
        let from = self.searched.saturating_sub(3);
        if let Some(pos) = find_head_end(&self.buf[from..]) {
            let end = from + pos;
            // Give back what went beyond the head: it belongs to the next layer.
            let extra = self.buf.len() - end;
            self.buf.truncate(end);
            return Ok(Some((&self.buf, take - extra)));
        }
        self.searched = self.buf.len();
        if take < data.len() || self.buf.len() >= self.limits.max_size {
            return Err(HandshakeError::TooLarge);
        }
        Ok(None)
    }

    /// Forgets the head returned by [`HeadBuffer::push`] (and lets go of its memory).
    fn clear(&mut self) {
        self.buf = Vec::new();
        self.searched = 0;
    }
}

/// The length of the head in `buf` up to and including its blank line, if it is there.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    memchr::memmem::find(buf, b"\r\n\r\n").map(|i| i + 4)
}

/// Up to this many header slots for httparse live on the stack (the default limit is 64).
const STACK_HEADERS: usize = 64;

/// Runs `parse` with httparse's slots for a head of at most `max` fields: on the stack up
/// to [`STACK_HEADERS`], and uninitialised (httparse writes each before reading it).
fn with_header_slots<'b, R>(
    max: usize,
    parse: impl FnOnce(&mut [MaybeUninit<httparse::Header<'b>>]) -> R,
) -> R {
    if max <= STACK_HEADERS {
        let mut slots = [const { MaybeUninit::uninit() }; STACK_HEADERS];
        parse(&mut slots[..max])
    } else {
        let mut slots: Vec<_> = std::iter::repeat_with(MaybeUninit::uninit)
            .take(max)
            .collect();
        parse(&mut slots)
    }
}

fn collect_headers(raw: &[httparse::Header<'_>]) -> Vec<Header> {
    raw.iter()
        .map(|h| Header {
            name: h.name.to_string(),
            value: h.value.to_vec(),
        })
        .collect()
}

fn map_httparse(e: httparse::Error) -> HandshakeError {
    match e {
        httparse::Error::TooManyHeaders => HandshakeError::TooLarge,
        httparse::Error::Version => HandshakeError::Malformed("HTTP version"),
        httparse::Error::Status => HandshakeError::Malformed("status"),
        httparse::Error::HeaderName => HandshakeError::Malformed("header name"),
        httparse::Error::HeaderValue => HandshakeError::Malformed("header value"),
        httparse::Error::Token => HandshakeError::Malformed("token"),
        _ => HandshakeError::Malformed("syntax"),
    }
}

/// Incremental parser of the server's response (client side).
#[derive(Debug)]
pub(crate) struct ResponseParser {
    head: HeadBuffer,
    /// A non-101 response whose body is being read: `Some(n)` for `Content-Length: n`,
    /// `None` for a body that runs until EOF.
    pending: Option<(Response, Option<usize>)>,
    body: Vec<u8>,
    received: usize,
}

impl ResponseParser {
    pub(crate) fn new(limits: HandshakeLimits) -> Self {
        Self {
            head: HeadBuffer::new(limits),
            pending: None,
            body: Vec::new(),
            received: 0,
        }
    }

    /// Feeds bytes. Returns the response once the head (and, for a non-101 status with a
    /// `Content-Length`, the body) is complete, with how many bytes of `data` belong to it;
    /// bytes after that are WebSocket frames.
    pub(crate) fn push(
        &mut self,
        data: &[u8],
    ) -> Result<Option<(Response, usize)>, HandshakeError> {
        let mut used = 0;
        if self.pending.is_none() {
            let max_headers = self.head.limits.max_headers;
            let Some((head, taken)) = self.head.push(data)? else {
                return Ok(None);
            };
            used = taken;
            // (httparse has no uninitialised variant for responses; a client parses one.)
            let mut stack = [httparse::EMPTY_HEADER; STACK_HEADERS];
            let mut heap = Vec::new();
            let slots = if max_headers <= STACK_HEADERS {
                &mut stack[..max_headers]
            } else {
                heap.resize(max_headers, httparse::EMPTY_HEADER);
                &mut heap[..]
            };
            let response = {
                let mut resp = httparse::Response::new(slots);
                match resp.parse(head).map_err(map_httparse)? {
                    httparse::Status::Complete(_) => {}
                    httparse::Status::Partial => return Err(HandshakeError::Malformed("head")),
                }
                Response {
                    status: resp.code.unwrap_or(0),
                    reason: resp.reason.unwrap_or("").to_string(),
                    headers: collect_headers(resp.headers),
                    body: Bytes::new(),
                }
            };
            #[cfg(test)]
            {
                self.head.parses += 1;
            }
            self.head.clear();
            let status = response.status;
            if status == 101 {
                return Ok(Some((response, used)));
            }
            let length = response
                .header("content-length")
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(|v| v.trim().parse::<usize>().ok());
            self.pending = Some((response, length));
        }
        let length = self.pending.as_ref().and_then(|(_, l)| *l);
        let rest = &data[used..];
        let take = match length {
            Some(n) => rest.len().min(n - self.received),
            None => rest.len(),
        };
        let room = self.head.limits.max_body.saturating_sub(self.body.len());
        self.body.extend_from_slice(&rest[..take.min(room)]);
        self.received += take;
        used += take;
        if length == Some(self.received) {
            let (mut response, _) = self.pending.take().expect("pending response");
            response.body = Bytes::from(std::mem::take(&mut self.body));
            return Ok(Some((response, used)));
        }
        Ok(None)
    }

    /// End of stream: a non-101 response whose body was being read is complete now (a
    /// body cut short of its `Content-Length` is returned as received).
    pub(crate) fn finish(&mut self) -> Result<Option<Response>, HandshakeError> {
        match self.pending.take() {
            Some((mut response, _)) => {
                response.body = Bytes::from(std::mem::take(&mut self.body));
                Ok(Some(response))
            }
            None => Err(HandshakeError::Eof),
        }
    }
}

/// What the client learned from a valid 101 response.
pub(crate) struct ClientAccepted {
    pub(crate) subprotocol: Option<String>,
    pub(crate) extensions: Vec<String>,
}

/// Validates the server's response (§4.1, the client's checks 1 to 6).
pub(crate) fn validate_response(
    resp: &Response,
    key: &str,
    offered: &[String],
) -> Result<ClientAccepted, HandshakeError> {
    if resp.status != 101 {
        return Err(HandshakeError::Rejected {
            status: resp.status,
            response: Box::new(resp.clone()),
        });
    }
    if !has_token(&resp.headers, "upgrade", "websocket")
        || !has_token(&resp.headers, "connection", "upgrade")
    {
        return Err(HandshakeError::MissingUpgrade);
    }
    let expected = accept_key(key.as_bytes());
    match resp.header("sec-websocket-accept") {
        // §11.3.3: the field must not appear more than once.
        Some(v)
            if v.trim_ascii() == expected.as_bytes()
                && count_headers(&resp.headers, "sec-websocket-accept") == 1 => {}
        _ => return Err(HandshakeError::InvalidAccept),
    }
    // A value that is not UTF-8 names no protocol we offered (§4.1 point 6).
    if resp.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("sec-websocket-protocol")
            && std::str::from_utf8(&h.value).is_err()
    }) {
        return Err(HandshakeError::InvalidSubprotocol);
    }
    let protocols: Vec<&str> = header_list(&resp.headers, "sec-websocket-protocol").collect();
    let subprotocol = match protocols.as_slice() {
        [] => None,
        [p] if offered.iter().any(|o| o == p) => Some(p.to_string()),
        _ => return Err(HandshakeError::InvalidSubprotocol),
    };
    let extensions = resp
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("sec-websocket-extensions"))
        .map(|h| String::from_utf8_lossy(&h.value).into_owned())
        .collect();
    Ok(ClientAccepted {
        subprotocol,
        extensions,
    })
}

// ---------------------------------------------------------------- server

/// A client's upgrade request, as the server application sees it (§4.2.1); or, when the
/// server's `Config::plain_http` is set, a plain HTTP request ([`is_upgrade`](Self::is_upgrade)
/// false).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    method: String,
    uri: String,
    headers: Vec<Header>,
    key: String,
    upgrade: bool,
}

impl Request {
    /// The method (always `GET` for an upgrade request).
    pub fn method(&self) -> &str {
        &self.method
    }

    /// Whether this is a WebSocket upgrade request (§4.2.1), to [`accept`] or [`reject`].
    /// `false` for a plain HTTP request, reported only with `Config::plain_http`, which can
    /// only be answered with [`reject`] (any status, headers and body).
    ///
    /// [`accept`]: crate::Connection::accept
    /// [`reject`]: crate::Connection::reject
    pub fn is_upgrade(&self) -> bool {
        self.upgrade
    }

    /// The raw request target.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.uri.split('?').next().unwrap_or("")
    }

    /// The raw query string, without `?` (`None` when the target has no `?`).
    pub fn query(&self) -> Option<&str> {
        self.uri.split_once('?').map(|(_, q)| q)
    }

    /// The query's `key=value` pairs, in order, decoded as
    /// `application/x-www-form-urlencoded` (WHATWG URL §5.1): `+` is a space, `%XX` escapes
    /// are decoded (an invalid escape is kept as it is, bytes that are not UTF-8 become
    /// U+FFFD), a pair without `=` has an empty value, and empty pairs are skipped. Empty
    /// when there is no query.
    pub fn query_pairs(&self) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> + '_ {
        form_urlencoded::parse(self.query().unwrap_or("").as_bytes())
    }

    /// The decoded value of the first query parameter named `name` (decoded too), as in
    /// [`query_pairs`](Self::query_pairs).
    pub fn query_param(&self, name: &str) -> Option<Cow<'_, str>> {
        self.query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    }

    /// Every header, in order.
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        find_header(&self.headers, name)
    }

    /// The first header with this name, if it is UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The `Host` header.
    pub fn host(&self) -> Option<&str> {
        self.header_str("host")
    }

    /// The `Origin` header (check it against an allow-list to stop cross-site hijacking, §10.2).
    pub fn origin(&self) -> Option<&str> {
        self.header_str("origin")
    }

    /// The subprotocols offered, in the client's order of preference.
    pub fn subprotocols(&self) -> Vec<&str> {
        header_list(&self.headers, "sec-websocket-protocol").collect()
    }

    /// Every `Sec-WebSocket-Extensions` header value.
    pub fn extensions(&self) -> Vec<String> {
        self.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("sec-websocket-extensions"))
            .map(|h| String::from_utf8_lossy(&h.value).into_owned())
            .collect()
    }

    /// The `Sec-WebSocket-Key` (empty for a plain HTTP request).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The permessage-deflate answer to the request's offers (RFC 7692 §5): the agreed
    /// parameters and the `Sec-WebSocket-Extensions` value, or `None` when `cfg` disables
    /// it or no offer is acceptable.
    pub(crate) fn negotiate_deflate(&self, cfg: &DeflateConfig) -> Option<(DeflateParams, String)> {
        if !cfg.enabled {
            return None;
        }
        let offers = self.extensions();
        let offers: Vec<&str> = offers.iter().map(String::as_str).collect();
        deflate::server_negotiate(cfg, &offers)
    }

    /// What answering the request needs (the key, the subprotocol and extension offers),
    /// without the other headers.
    pub(crate) fn offer(&self) -> Request {
        Request {
            method: String::new(),
            uri: String::new(),
            headers: self
                .headers
                .iter()
                .filter(|h| {
                    h.name.eq_ignore_ascii_case("sec-websocket-protocol")
                        || h.name.eq_ignore_ascii_case("sec-websocket-extensions")
                })
                .cloned()
                .collect(),
            key: self.key.clone(),
            upgrade: self.upgrade,
        }
    }
}

/// Incremental, bounded parser of the client's request (server side).
#[derive(Debug)]
pub(crate) struct RequestParser {
    head: HeadBuffer,
    plain_http: bool,
}

impl RequestParser {
    pub(crate) fn new(limits: HandshakeLimits) -> Self {
        Self {
            head: HeadBuffer::new(limits),
            plain_http: false,
        }
    }

    /// Also hands out well-formed requests that are not WebSocket upgrades (see
    /// `Config::plain_http`).
    pub(crate) fn plain_http(mut self, on: bool) -> Self {
        self.plain_http = on;
        self
    }

    /// Feeds bytes. Total work over any feeding pattern is linear in the head's size, and
    /// memory is bounded by `max_size`. Returns the validated request and how many bytes of
    /// `data` it used; the rest are frames.
    pub(crate) fn push(&mut self, data: &[u8]) -> Result<Option<(Request, usize)>, HandshakeError> {
        let max_headers = self.head.limits.max_headers;
        let plain_http = self.plain_http;
        let Some((head, used)) = self.head.push(data)? else {
            return Ok(None);
        };
        let request = with_header_slots(max_headers, |slots| {
            let mut req = httparse::Request::new(&mut []);
            match req
                .parse_with_uninit_headers(head, slots)
                .map_err(map_httparse)?
            {
                httparse::Status::Complete(_) => {}
                httparse::Status::Partial => return Err(HandshakeError::Malformed("head")),
            }
            if plain_http && !has_token_raw(req.headers, "upgrade", "websocket") {
                return validate_plain_request(&req);
            }
            validate_request(&req)
        })?;
        #[cfg(test)]
        {
            self.head.parses += 1;
        }
        self.head.clear();
        Ok(Some((request, used)))
    }
}

/// The checks of §4.2.1.
fn validate_request(req: &httparse::Request<'_, '_>) -> Result<Request, HandshakeError> {
    let method = req.method.unwrap_or("");
    if method != "GET" {
        return Err(HandshakeError::MethodNotAllowed);
    }
    if req.version != Some(1) {
        return Err(HandshakeError::BadRequest("HTTP/1.1 or later required"));
    }
    let uri = req.path.unwrap_or("");
    if !(uri.starts_with('/') || uri.starts_with("http://") || uri.starts_with("https://")) {
        return Err(HandshakeError::BadRequest("request target"));
    }
    let headers = collect_headers(req.headers);
    match count_headers(&headers, "host") {
        0 => return Err(HandshakeError::BadRequest("missing Host")),
        1 => {}
        // RFC 7230 §5.4: more than one Host is a 400.
        _ => return Err(HandshakeError::BadRequest("more than one Host")),
    }
    upgrade_request(method, uri, headers)
}

/// The checks of §4.2.1 on the method and the header fields (the request line and `Host`
/// are the HTTP server's business): the validated request.
fn upgrade_request(
    method: &str,
    uri: &str,
    headers: Vec<Header>,
) -> Result<Request, HandshakeError> {
    if method != "GET" {
        return Err(HandshakeError::MethodNotAllowed);
    }
    if !has_token(&headers, "upgrade", "websocket") {
        return Err(HandshakeError::BadRequest("missing Upgrade: websocket"));
    }
    if !has_token(&headers, "connection", "upgrade") {
        return Err(HandshakeError::BadRequest("missing Connection: Upgrade"));
    }
    // §11.3.1, §11.3.5: these fields must not appear more than once in a request.
    if count_headers(&headers, "sec-websocket-key") > 1 {
        return Err(HandshakeError::BadRequest(
            "more than one Sec-WebSocket-Key",
        ));
    }
    if count_headers(&headers, "sec-websocket-version") > 1 {
        return Err(HandshakeError::BadRequest(
            "more than one Sec-WebSocket-Version",
        ));
    }
    let key = find_header(&headers, "sec-websocket-key")
        .ok_or(HandshakeError::BadRequest("missing Sec-WebSocket-Key"))?
        .trim_ascii();
    match BASE64.decode(key) {
        Ok(k) if k.len() == 16 => {}
        _ => {
            return Err(HandshakeError::BadRequest(
                "Sec-WebSocket-Key is not 16 bytes",
            ));
        }
    }
    let version = find_header(&headers, "sec-websocket-version").map(<[u8]>::trim_ascii);
    if version != Some(b"13".as_slice()) {
        return Err(HandshakeError::UnsupportedVersion);
    }
    let has_body = find_header(&headers, "transfer-encoding").is_some()
        || find_header(&headers, "content-length").is_some_and(|v| v.trim_ascii() != b"0");
    if has_body {
        return Err(HandshakeError::BadRequest("upgrade request with a body"));
    }
    let key = String::from_utf8_lossy(key).into_owned();
    Ok(Request {
        method: method.to_string(),
        uri: uri.to_string(),
        key,
        headers,
        upgrade: true,
    })
}

/// Whether a raw header `name` lists `token` (comma-separated, case-insensitive).
fn has_token_raw(headers: &[httparse::Header<'_>], name: &str, token: &str) -> bool {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .filter_map(|h| std::str::from_utf8(h.value).ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// The checks of a plain HTTP request (RFC 9112 §3, RFC 9110 §7.2), for `Config::plain_http`:
/// HTTP/1.0 or 1.1, a request target in origin or absolute form (or `*` for `OPTIONS`),
/// and one `Host` header (HTTP/1.1 requires it; HTTP/1.0 may omit it). A body is not read:
/// the answer closes the connection.
fn validate_plain_request(req: &httparse::Request<'_, '_>) -> Result<Request, HandshakeError> {
    let method = req.method.unwrap_or("");
    let uri = req.path.unwrap_or("");
    let target_ok = uri.starts_with('/')
        || uri.starts_with("http://")
        || uri.starts_with("https://")
        || (uri == "*" && method == "OPTIONS");
    if !target_ok {
        return Err(HandshakeError::BadRequest("request target"));
    }
    let headers = collect_headers(req.headers);
    match (count_headers(&headers, "host"), req.version) {
        (0, Some(0)) | (1, _) => {}
        (0, _) => return Err(HandshakeError::BadRequest("missing Host")),
        _ => return Err(HandshakeError::BadRequest("more than one Host")),
    }
    Ok(Request {
        method: method.to_string(),
        uri: uri.to_string(),
        key: String::new(),
        headers,
        upgrade: false,
    })
}

/// The application's acceptance of a request: a subprotocol and extra response headers.
#[derive(Clone, Debug, Default)]
pub struct Accept {
    subprotocol: Option<String>,
    headers: Vec<(String, String)>,
}

impl Accept {
    /// Accepts with no subprotocol and no extra headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Selects a subprotocol; it must be one the client offered.
    pub fn subprotocol(mut self, protocol: impl Into<String>) -> Self {
        self.subprotocol = Some(protocol.into());
        self
    }

    /// Adds a response header (for example `Set-Cookie`).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The selected subprotocol.
    pub fn chosen_subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref()
    }
}

/// The application's refusal of a request: an HTTP status, headers and a body.
#[derive(Clone, Debug)]
pub struct Reject {
    status: u16,
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl Reject {
    /// A response with this status: a final status (200 to 599) is sent as it is, anything
    /// else becomes 500. For an upgrade request this is usually a 4xx or 5xx code (or a 3xx
    /// redirect, §4.1); for a plain HTTP request (see [`Request::is_upgrade`]) any answer,
    /// such as `200` for a health check.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// Adds a header (for example `WWW-Authenticate`).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// The status that will be sent.
    pub fn status(&self) -> u16 {
        if (200..=599).contains(&self.status) {
            self.status
        } else {
            500
        }
    }
}

/// Checks the application's [`Accept`] against the request: the subprotocol must be one
/// the client offered (§4.2.2), the extra headers valid field names and values.
fn check_accept(req: &Request, accept: &Accept) -> Result<(), HandshakeError> {
    if let Some(p) = &accept.subprotocol
        && !req.subprotocols().contains(&p.as_str())
    {
        return Err(HandshakeError::InvalidSubprotocol);
    }
    for (name, value) in &accept.headers {
        if !is_token(name) || !valid_value(value.as_bytes()) {
            return Err(HandshakeError::InvalidHeader);
        }
    }
    Ok(())
}

/// Calls `field` with every header field of the 101 response (§4.2.2), in order, after the
/// `Upgrade` and `Connection` fields (the caller writes those): `Sec-WebSocket-Accept`, the
/// chosen subprotocol, the negotiated extensions, then the application's extra headers.
fn accept_fields(
    req: &Request,
    accept: &Accept,
    extensions: Option<&str>,
    mut field: impl FnMut(&str, &str),
) {
    field("Sec-WebSocket-Accept", &accept_key(req.key.as_bytes()));
    if let Some(p) = &accept.subprotocol {
        field("Sec-WebSocket-Protocol", p);
    }
    if let Some(ext) = extensions {
        field("Sec-WebSocket-Extensions", ext);
    }
    for (name, value) in &accept.headers {
        field(name, value);
    }
}

/// Writes the 101 response (§4.2.2).
pub(crate) fn encode_accept(
    req: &Request,
    accept: &Accept,
    extensions: Option<&str>,
    out: &mut Vec<u8>,
) -> Result<(), HandshakeError> {
    check_accept(req, accept)?;
    // Written straight into `out`: this runs for every connection a server accepts.
    out.reserve(160);
    out.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
    );
    accept_fields(req, accept, extensions, |name, value| {
        for part in [name, ": ", value, "\r\n"] {
            out.extend_from_slice(part.as_bytes());
        }
    });
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// What the `101 Switching Protocols` response to an upgrade request must carry, and what
/// the connection then runs with; made by [`negotiate_upgrade`] for a request that another
/// HTTP server (hyper, axum) parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpgradeResponse {
    headers: Vec<Header>,
    subprotocol: Option<String>,
    deflate: Option<DeflateParams>,
}

impl UpgradeResponse {
    /// The header fields of the 101 response, in order: `Upgrade`, `Connection`,
    /// `Sec-WebSocket-Accept`, then `Sec-WebSocket-Protocol` and `Sec-WebSocket-Extensions`
    /// when a subprotocol was chosen and an extension negotiated, then the [`Accept`]'s
    /// extra headers.
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// The subprotocol chosen by the [`Accept`], if any.
    pub fn subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref()
    }

    /// The permessage-deflate parameters negotiated (RFC 7692 §7.1), if any: pass them on to
    /// the connection (`Connection::open`) once the transport is upgraded.
    pub fn deflate_params(&self) -> Option<DeflateParams> {
        self.deflate
    }
}

/// Server: validates an upgrade request that another HTTP server parsed (RFC 6455 §4.2.1)
/// and answers it (§4.2.2) as [`Connection::accept`](crate::Connection::accept) would: same
/// checks, same subprotocol rule, same permessage-deflate negotiation with
/// `config.deflate`.
///
/// `method` is the request's method and `headers` its header fields as (name, value) pairs,
/// in order (names compare case-insensitively; a repeated field counts as a list). The
/// request line and `Host` are left to the HTTP server.
///
/// Returns the 101 response's headers and the negotiated parameters, or the error to
/// answer with: [`HandshakeError::http_status`] (400, 405, or 426) and
/// [`HandshakeError::response_headers`] (`Sec-WebSocket-Version: 13` with 426). An
/// [`Accept`] whose subprotocol the client did not offer is
/// [`HandshakeError::InvalidSubprotocol`], one with an invalid extra header
/// [`HandshakeError::InvalidHeader`]: mistakes of the application (answer 500).
///
/// ```
/// use tether_core::{Accept, Config, negotiate_upgrade};
///
/// let headers: [(&str, &[u8]); 5] = [
///     ("upgrade", b"websocket"),
///     ("connection", b"Upgrade"),
///     ("sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
///     ("sec-websocket-version", b"13"),
///     ("sec-websocket-extensions", b"permessage-deflate"),
/// ];
/// let mut config = Config::default();
/// config.deflate.enabled = true;
/// let answer = negotiate_upgrade("GET", headers, &config, &Accept::new()).unwrap();
/// assert!(answer.headers().iter().any(|h| h.name == "Sec-WebSocket-Accept"
///     && h.value == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
/// assert!(answer.deflate_params().is_some());
///
/// let err = negotiate_upgrade("GET", [("upgrade", &b"websocket"[..])], &config, &Accept::new())
///     .unwrap_err();
/// assert_eq!(err.http_status(), Some(400));
/// ```
pub fn negotiate_upgrade<'a, I>(
    method: &str,
    headers: I,
    config: &Config,
    accept: &Accept,
) -> Result<UpgradeResponse, HandshakeError>
where
    I: IntoIterator<Item = (&'a str, &'a [u8])>,
{
    let headers = headers
        .into_iter()
        .map(|(name, value)| Header {
            name: name.to_owned(),
            value: value.to_vec(),
        })
        .collect();
    let request = upgrade_request(method, "", headers)?;
    check_accept(&request, accept)?;
    let negotiated = request.negotiate_deflate(&config.deflate);
    let mut headers = Vec::with_capacity(5 + accept.headers.len());
    let mut field = |name: &str, value: &str| {
        headers.push(Header {
            name: name.to_owned(),
            value: value.as_bytes().to_vec(),
        })
    };
    field("Upgrade", "websocket");
    field("Connection", "Upgrade");
    accept_fields(
        &request,
        accept,
        negotiated.as_ref().map(|(_, v)| v.as_str()),
        field,
    );
    Ok(UpgradeResponse {
        headers,
        subprotocol: accept.subprotocol.clone(),
        deflate: negotiated.map(|(p, _)| p),
    })
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ if status >= 400 => "Error",
        // (The reason phrase may be empty, RFC 9112 §4.)
        _ => "",
    }
}

fn encode_status(status: u16, headers: &[(String, String)], body: &[u8], out: &mut Vec<u8>) {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nConnection: close\r\n",
        reason_phrase(status)
    );
    // RFC 9110 §6.4.1, §8.6: a 204 or 304 response has no content, nor a Content-Length.
    let body = if matches!(status, 204 | 304) {
        &[][..]
    } else {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        body
    };
    for (name, value) in headers {
        if is_token(name) && valid_value(value.as_bytes()) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str("\r\n");
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(body);
}

/// Writes a rejection response with `Content-Length` and `Connection: close`.
pub(crate) fn encode_reject(reject: &Reject, out: &mut Vec<u8>) {
    encode_status(reject.status(), &reject.headers, &reject.body, out);
}

/// Writes the response a server sends for a request error (400, 405, 426, 431).
pub(crate) fn encode_error_response(err: &HandshakeError, out: &mut Vec<u8>) {
    let status = err.http_status().unwrap_or(400);
    let headers: Vec<_> = err
        .response_headers()
        .iter()
        .map(|&(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    encode_status(status, &headers, format!("{err}\n").as_bytes(), out);
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn request_bytes(extra: &str) -> Vec<u8> {
        format!(
            "GET /chat?x=1 HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
        )
        .into_bytes()
    }

    /// A request with `extra` headers, then a masked client frame; and the head's length.
    fn request_then_frame(extra: &str) -> (Vec<u8>, usize) {
        let mut bytes = request_bytes(extra);
        let head_len = bytes.len();
        bytes.extend_from_slice(&[0x81, 0x80, 1, 2, 3, 4]);
        (bytes, head_len)
    }

    fn parse(bytes: &[u8]) -> Result<Option<(Request, usize)>, HandshakeError> {
        RequestParser::new(HandshakeLimits::default()).push(bytes)
    }

    #[test]
    fn rfc6455_4_2_2_accept_key_example() {
        assert_eq!(accept_key(KEY.as_bytes()), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn rfc6455_4_1_request_round_trip() {
        let req = ClientRequest::new("ws://example.com:8080/a/b?c=d")
            .unwrap()
            .origin("http://example.com")
            .subprotocol("chat")
            .subprotocol("superchat")
            .header("Authorization", "Bearer t");
        let mut out = Vec::new();
        encode_request(&req, KEY, Some("permessage-deflate"), &mut out).unwrap();
        let (parsed, used) = parse(&out).unwrap().unwrap();
        assert_eq!(used, out.len());
        assert_eq!(parsed.path(), "/a/b");
        assert_eq!(parsed.query(), Some("c=d"));
        assert_eq!(parsed.host(), Some("example.com:8080"));
        assert_eq!(parsed.origin(), Some("http://example.com"));
        assert_eq!(parsed.subprotocols(), ["chat", "superchat"]);
        assert_eq!(parsed.extensions(), ["permessage-deflate"]);
        assert_eq!(parsed.header_str("AUTHORIZATION"), Some("Bearer t"));
        assert_eq!(parsed.key(), KEY);
    }

    #[test]
    fn rfc6455_4_2_1_violations_get_the_right_status() {
        let cases: [(&[u8], u16); 8] = [
            (b"POST / HTTP/1.1\r\nHost: x\r\n\r\n", 405),
            (b"GET / HTTP/1.0\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n", 426),
            (b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nContent-Length: 5\r\n\r\n", 400),
        ];
        for (bytes, status) in cases {
            let err = parse(bytes).unwrap_err();
            assert_eq!(err.http_status(), Some(status), "{err}");
            let mut out = Vec::new();
            encode_error_response(&err, &mut out);
            assert!(out.starts_with(format!("HTTP/1.1 {status} ").as_bytes()));
            if status == 426 {
                assert!(String::from_utf8_lossy(&out).contains("Sec-WebSocket-Version: 13"));
            }
        }
    }

    #[test]
    fn rfc6455_4_2_1_token_lists_are_case_insensitive() {
        let bytes = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        assert!(parse(bytes).unwrap().is_some());
    }

    #[test]
    fn byte_at_a_time_is_linear_and_equal() {
        let mut filler = String::new();
        while filler.len() < 12 * 1024 {
            filler.push_str("X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        let bytes = request_bytes(&filler);
        let limits = HandshakeLimits {
            max_headers: 1000,
            ..Default::default()
        };
        let mut p = RequestParser::new(limits);
        let mut result = None;
        for b in &bytes {
            if let Some(r) = p.push(std::slice::from_ref(b)).unwrap() {
                result = Some(r);
            }
        }
        let (req, used) = result.unwrap();
        assert_eq!(used, 1);
        assert_eq!(
            p.head.parses, 1,
            "httparse runs once, when the head is complete"
        );
        let whole = RequestParser::new(limits).push(&bytes).unwrap().unwrap().0;
        assert_eq!(req, whole);
    }

    #[test]
    fn a_head_split_in_two_anywhere_parses_as_when_whole() {
        let (bytes, head_len) =
            request_then_frame("Sec-WebSocket-Protocol: chat\r\nX-Long: 0123456789\r\n");
        let (whole, used) = parse(&bytes).unwrap().unwrap();
        assert_eq!(used, head_len);
        for split in 1..bytes.len() {
            let mut p = RequestParser::new(HandshakeLimits::default());
            let (req, used) = match p.push(&bytes[..split]).unwrap() {
                Some(done) => done,
                None => {
                    let (req, used) = p.push(&bytes[split..]).unwrap().unwrap();
                    (req, split + used)
                }
            };
            assert_eq!((&req, used), (&whole, head_len), "split at {split}");
            assert!(p.head.buf.is_empty() && p.head.buf.capacity() == 0);
        }
    }

    #[test]
    fn oversized_head_is_431_with_bounded_buffer() {
        let mut p = RequestParser::new(HandshakeLimits::default());
        let chunk = vec![b'a'; 4096];
        p.push(b"GET / HTTP/1.1\r\nX: ").unwrap();
        let mut err = None;
        for _ in 0..256 {
            match p.push(&chunk) {
                Ok(None) => assert!(p.head.buf.len() <= 16 * 1024),
                Ok(Some(_)) => panic!(),
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        assert_eq!(err.unwrap().http_status(), Some(431));
        assert!(p.head.buf.capacity() <= 32 * 1024);
    }

    #[test]
    fn too_many_headers_is_431() {
        let mut extra = String::new();
        for i in 0..100 {
            extra.push_str(&format!("X-{i}: v\r\n"));
        }
        assert_eq!(
            parse(&request_bytes(&extra)).unwrap_err().http_status(),
            Some(431)
        );
    }

    #[test]
    fn bytes_after_the_head_are_left_for_frames() {
        let (bytes, head_len) = request_then_frame("");
        let (_, used) = parse(&bytes).unwrap().unwrap();
        assert_eq!(used, head_len);

        let mut resp = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            accept_key(KEY.as_bytes())
        )
        .into_bytes();
        let head_len = resp.len();
        resp.extend_from_slice(&[0x81, 0x02, b'h', b'i']);
        let mut p = ResponseParser::new(HandshakeLimits::default());
        // Split inside the head and inside the frame.
        assert!(p.push(&resp[..10]).unwrap().is_none());
        let (r, used) = p.push(&resp[10..]).unwrap().unwrap();
        assert_eq!(used + 10, head_len);
        validate_response(&r, KEY, &[]).unwrap();
    }

    #[test]
    fn rfc6455_4_1_response_validation() {
        let ok = accept_key(KEY.as_bytes());
        let make = |extra: &str| {
            let bytes = format!("HTTP/1.1 101 Switching Protocols\r\n{extra}\r\n");
            ResponseParser::new(HandshakeLimits::default())
                .push(bytes.as_bytes())
                .unwrap()
                .unwrap()
                .0
        };
        let good =
            format!("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {ok}\r\n");
        assert!(validate_response(&make(&good), KEY, &[]).is_ok());
        assert!(matches!(
            validate_response(
                &make(&format!(
                    "Connection: Upgrade\r\nSec-WebSocket-Accept: {ok}\r\n"
                )),
                KEY,
                &[]
            ),
            Err(HandshakeError::MissingUpgrade)
        ));
        assert!(matches!(
            validate_response(
                &make(
                    "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAA\r\n"
                ),
                KEY,
                &[]
            ),
            Err(HandshakeError::InvalidAccept)
        ));
        let with_proto = format!("{good}Sec-WebSocket-Protocol: chat\r\n");
        assert!(matches!(
            validate_response(&make(&with_proto), KEY, &[]),
            Err(HandshakeError::InvalidSubprotocol)
        ));
        let accepted = validate_response(&make(&with_proto), KEY, &["chat".to_string()]).unwrap();
        assert_eq!(accepted.subprotocol.as_deref(), Some("chat"));
    }

    #[test]
    fn non_101_responses_keep_status_headers_and_body() {
        let bytes = b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\nContent-Length: 9\r\n\r\nno token!";
        for cut in 0..bytes.len() {
            let mut p = ResponseParser::new(HandshakeLimits::default());
            let first = p.push(&bytes[..cut]).unwrap();
            let (r, _) = match first {
                Some(r) => r,
                None => p.push(&bytes[cut..]).unwrap().unwrap(),
            };
            assert_eq!(r.status(), 401);
            assert_eq!(r.header("www-authenticate"), Some(&b"Bearer"[..]));
            assert_eq!(&r.body()[..], b"no token!");
        }
        // Without Content-Length, the body runs to EOF.
        let mut p = ResponseParser::new(HandshakeLimits::default());
        assert!(
            p.push(b"HTTP/1.1 503 Busy\r\n\r\ntry later")
                .unwrap()
                .is_none()
        );
        let r = p.finish().unwrap().unwrap();
        assert_eq!((r.status(), &r.body()[..]), (503, &b"try later"[..]));
        // An empty body with Content-Length: 0 completes at once.
        let mut p = ResponseParser::new(HandshakeLimits::default());
        let (r, _) = p
            .push(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(r.status(), 404);
    }

    #[test]
    fn urls() {
        let r = ClientRequest::new("ws://[::1]:9001/x?y").unwrap();
        assert_eq!(
            (r.host(), r.port(), r.path_and_query()),
            ("[::1]", 9001, "/x?y")
        );
        let r = ClientRequest::new("wss://example.com").unwrap();
        assert_eq!(
            (r.host(), r.port(), r.is_tls(), r.path_and_query()),
            ("example.com", 443, true, "/")
        );
        let r = ClientRequest::new("ws://h?q=1").unwrap();
        assert_eq!(r.path_and_query(), "/?q=1");
        for bad in [
            "http://x/",
            "ws://",
            "ws://x:0/",
            "ws://x:99999/",
            "ws://x/#frag",
            "ws://u@x/",
            "ws://x /",
        ] {
            assert!(ClientRequest::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn header_injection_is_refused() {
        let r = ClientRequest::new("ws://x/")
            .unwrap()
            .header("X-A", "v\r\nEvil: 1");
        assert!(matches!(
            encode_request(&r, KEY, None, &mut Vec::new()),
            Err(HandshakeError::InvalidHeader)
        ));
        let r = ClientRequest::new("ws://x/")
            .unwrap()
            .subprotocol("bad proto");
        assert!(matches!(
            encode_request(&r, KEY, None, &mut Vec::new()),
            Err(HandshakeError::InvalidSubprotocol)
        ));
    }

    #[test]
    fn accept_only_offered_subprotocols() {
        let (req, _) = parse(&request_bytes("Sec-WebSocket-Protocol: a, b\r\n"))
            .unwrap()
            .unwrap();
        let mut out = Vec::new();
        assert!(encode_accept(&req, &Accept::new().subprotocol("b"), None, &mut out).is_ok());
        assert!(String::from_utf8_lossy(&out).contains("Sec-WebSocket-Protocol: b\r\n"));
        assert!(
            encode_accept(&req, &Accept::new().subprotocol("c"), None, &mut Vec::new()).is_err()
        );
    }

    #[test]
    fn real_browser_request_parses() {
        let chromium = b"GET /chat HTTP/1.1\r\nHost: localhost:9001\r\nConnection: Upgrade\r\nPragma: no-cache\r\nCache-Control: no-cache\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36\r\nUpgrade: websocket\r\nOrigin: http://localhost:8000\r\nSec-WebSocket-Version: 13\r\nAccept-Encoding: gzip, deflate, br, zstd\r\nAccept-Language: en-US,en;q=0.9\r\nSec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";
        let (req, _) = parse(chromium).unwrap().unwrap();
        assert_eq!(
            req.extensions(),
            ["permessage-deflate; client_max_window_bits"]
        );
        let firefox = b"GET / HTTP/1.1\r\nHost: localhost:9001\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0\r\nAccept: */*\r\nSec-WebSocket-Version: 13\r\nOrigin: null\r\nSec-WebSocket-Extensions: permessage-deflate\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nConnection: keep-alive, Upgrade\r\nSec-Fetch-Mode: websocket\r\nPragma: no-cache\r\nCache-Control: no-cache\r\nUpgrade: websocket\r\n\r\n";
        assert!(parse(firefox).unwrap().is_some());
    }
}
