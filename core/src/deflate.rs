//! permessage-deflate (RFC 7692): the handshake negotiation and the bounded per-message
//! compressor and decompressor.
//!
//! The connection decides which messages carry RSV1 and feeds whole messages to
//! [`Compressor::compress`] and frame payloads to [`Decompressor::decompress`]; this module
//! knows nothing about frames.
//!
//! # Decisions
//!
//! - **Backend.** flate2 on zlib-rs, raw deflate (no zlib header). Heap held by one state
//!   (measured with a counting allocator, zlib-rs 0.6.8): a compressor holds about 380 KB at
//!   window 15 and 251 KB at window 9 (zlib-rs keeps its default memory level, whose hash
//!   table and literal buffer do not shrink with the window); a decompressor holds about
//!   47.5 KB whatever the window. A compressor + decompressor pair: about 428 KB at 15, 299 KB
//!   at 9. Both are allocated on first use only and can be released between messages.
//! - **Window bits 8** (RFC 7692 §7.1.2 allows 8 to 15). zlib refuses a raw deflate window
//!   of 8, and flate2 accepts only 9 to 15. A compressor that must stay within 8 bits uses a
//!   9-bit window instead, which is still legal: zlib's deflate never emits a match farther
//!   back than the window size minus `MIN_LOOKAHEAD` (262 bytes), that is 250 bytes for a
//!   512-byte window, within the 256 bytes the peer keeps (zlib itself turns a requested 8
//!   into 9 for zlib-wrapped streams). So both roles accept any value from 8 to 15, and a
//!   test decodes the output of every window size with a reference inflater and checks the
//!   longest distance used (250 bytes at windows 8 and 9, `2^bits - 262` above).
//! - **Decompression always uses a 15-bit window**, whatever was agreed: it decodes every
//!   stream made with a smaller window, and resets in place, where flate2 rebuilds the
//!   state on reset for any other size. It costs nothing: zlib-rs allocates a 32 KiB inflate
//!   window whatever `windowBits` says, and checks distances only against that, so a smaller
//!   setting would neither save memory nor catch a peer that exceeds the window it agreed
//!   to (this implementation does not catch it either).
//! - **Bounded output.** [`Decompressor::decompress`] never leaves more than `max_len` bytes
//!   in `out`, never grows `out`'s capacity beyond `max_len`, and stops inflating as soon as
//!   one byte more would be produced, so a small frame that would inflate to gigabytes costs
//!   at most `max_len` bytes and the CPU time to produce them.
//! - **BFINAL.** A message may contain a block with BFINAL set (RFC 7692 §7.2.3.4). The
//!   decompressor then starts a new deflate stream for what follows; a peer that ended its
//!   stream has reset its compressor, so nothing after refers back to the old window.
//! - **Empty payload.** A compressed message whose payload is empty (not even the single
//!   `0x00` byte of RFC 7692 §7.2.3.6) is read as an empty message, and the `00 00 ff ff`
//!   tail is not fed, so it cannot leave the decompressor inside a stored block.
//! - **Negotiation** is strict where the RFC says "MUST" and lenient where it costs nothing:
//!   a server declines a bad offer and tries the next one, and never fails the handshake; a
//!   client fails on any response that breaks RFC 7692 §7.1 or does not answer what it asked
//!   for. The client always offers `client_max_window_bits`, since it can honor any value.
//! - **Default: disabled.** With context takeover, both states live as long as the
//!   connection (about 428 KB at window 15), which would be an accident for a server with
//!   many idle connections. Use [`DeflateConfig::enabled`] to turn it on.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use std::borrow::Cow;
use std::fmt;

/// The extension token (RFC 7692 §7).
const EXTENSION_NAME: &str = "permessage-deflate";

/// The tail a sync flush ends with, removed by the sender and restored by the receiver
/// (RFC 7692 §7.2.1, §7.2.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Smallest and largest LZ77 window (RFC 7692 §7.1.2).
const MIN_WINDOW_BITS: u8 = 8;
const MAX_WINDOW_BITS: u8 = 15;

/// First reservation for inflated output when `out` has no spare capacity.
const MIN_OUTPUT_STEP: usize = 1024;

/// Stack buffer used when `out` already has more spare capacity than the limit allows.
const SCRATCH_LEN: usize = 8192;

/// Application configuration for permessage-deflate (RFC 7692), for both roles.
///
/// [`Default`] is [`DeflateConfig::disabled`]; [`DeflateConfig::enabled`] gives the
/// recommended settings. Window bits outside 8..=15 are clamped into that range, and a level
/// above 9 is read as 9.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// Client: offer the extension. Server: accept offers of it.
    pub enabled: bool,
    /// Client: ask the server not to keep its compression context between messages (RFC
    /// 7692 §7.1.1.1); a server that does not agree makes the handshake fail. Server: never
    /// keep our own context, and say so, whether or not the client asked.
    pub server_no_context_takeover: bool,
    /// Client: never keep our own context, and say so in the offer (RFC 7692 §7.1.1.2).
    /// Server: require the client not to keep its context.
    pub client_no_context_takeover: bool,
    /// Client: ask the server to use at most this window (offered when below 15; RFC 7692
    /// §7.1.2.1); a server that does not grant it makes the handshake fail. Server: the
    /// largest window our compressor uses.
    pub server_max_window_bits: u8,
    /// Client: the largest window our compressor uses (offered as a value when below 15;
    /// RFC 7692 §7.1.2.2). Server: ask the client to use at most this window, when the
    /// client's offer says it can.
    pub client_max_window_bits: u8,
    /// Compression level, 0 (store only) to 9 (smallest output). Default 6.
    pub compression_level: u32,
    /// Messages shorter than this many bytes are sent uncompressed. Default 32.
    pub threshold: usize,
}

impl DeflateConfig {
    /// Returns a configuration that neither offers nor accepts permessage-deflate.
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            ..Self::enabled()
        }
    }

    /// Returns the recommended configuration with permessage-deflate on: context takeover in
    /// both directions, 15-bit windows, level 6, threshold 32 bytes.
    pub fn enabled() -> Self {
        Self {
            enabled: true,
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: MAX_WINDOW_BITS,
            client_max_window_bits: MAX_WINDOW_BITS,
            compression_level: 6,
            threshold: 32,
        }
    }

    fn server_bits(&self) -> u8 {
        self.server_max_window_bits
            .clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS)
    }

    fn client_bits(&self) -> u8 {
        self.client_max_window_bits
            .clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS)
    }
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self::disabled()
    }
}

/// The parameters both ends agreed on in the handshake (RFC 7692 §7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeflateParams {
    /// The server resets its compression context after every message (§7.1.1.1).
    pub server_no_context_takeover: bool,
    /// The client resets its compression context after every message (§7.1.1.2).
    pub client_no_context_takeover: bool,
    /// Largest LZ77 window the server compresses with, 8 to 15 (§7.1.2.1).
    pub server_max_window_bits: u8,
    /// Largest LZ77 window the client compresses with, 8 to 15 (§7.1.2.2).
    pub client_max_window_bits: u8,
}

impl DeflateParams {
    /// Returns (window bits, no context takeover) for the compressor of the given role.
    pub fn compressor_for(&self, is_server: bool) -> (u8, bool) {
        if is_server {
            (self.server_max_window_bits, self.server_no_context_takeover)
        } else {
            (self.client_max_window_bits, self.client_no_context_takeover)
        }
    }

    /// Returns (window bits, no context takeover) for the decompressor of the given role,
    /// that is the peer's compressor settings.
    pub fn decompressor_for(&self, is_server: bool) -> (u8, bool) {
        self.compressor_for(!is_server)
    }
}

/// Why compressed data or a negotiation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeflateError {
    /// The inflated message would exceed the size limit (close code 1009).
    TooLarge,
    /// The compressed data is not valid deflate data.
    Corrupt,
    /// The server's `Sec-WebSocket-Extensions` answer breaks RFC 7692 §7.1 or our offer.
    InvalidNegotiation(&'static str),
}

impl fmt::Display for DeflateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge => f.write_str("decompressed message exceeds the size limit"),
            Self::Corrupt => f.write_str("invalid deflate data"),
            Self::InvalidNegotiation(why) => {
                write!(f, "invalid permessage-deflate response: {why}")
            }
        }
    }
}

impl std::error::Error for DeflateError {}

// ---- negotiation ----

/// The permessage-deflate parameters of one offer or response, as sent on the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct WireParams {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: the parameter without a value (only valid in an offer).
    client_max_window_bits: Option<Option<u8>>,
}

impl WireParams {
    /// Renders the extension with its parameters, e.g. `permessage-deflate; server_max_window_bits=10`.
    fn render(&self) -> String {
        let mut s = String::from(EXTENSION_NAME);
        if self.server_no_context_takeover {
            s.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            s.push_str("; client_no_context_takeover");
        }
        if let Some(bits) = self.server_max_window_bits {
            s.push_str(&format!("; server_max_window_bits={bits}"));
        }
        match self.client_max_window_bits {
            Some(Some(bits)) => s.push_str(&format!("; client_max_window_bits={bits}")),
            Some(None) => s.push_str("; client_max_window_bits"),
            None => {}
        }
        s
    }

    /// Reads the parameters of one permessage-deflate element (RFC 7692 §7.1). `offer`
    /// allows `client_max_window_bits` without a value.
    fn parse(ext: &Extension<'_>, offer: bool) -> Result<Self, &'static str> {
        let mut p = Self::default();
        let mut seen = [false; 4];
        for (name, value) in &ext.params {
            let index = match name.to_ascii_lowercase().as_str() {
                "server_no_context_takeover" => 0,
                "client_no_context_takeover" => 1,
                "server_max_window_bits" => 2,
                "client_max_window_bits" => 3,
                _ => return Err("unknown parameter"),
            };
            if std::mem::replace(&mut seen[index], true) {
                return Err("duplicate parameter");
            }
            match index {
                0 | 1 => {
                    if value.is_some() {
                        return Err("no_context_takeover takes no value");
                    }
                    if index == 0 {
                        p.server_no_context_takeover = true;
                    } else {
                        p.client_no_context_takeover = true;
                    }
                }
                2 => {
                    let bits = value.as_deref().and_then(parse_window_bits);
                    p.server_max_window_bits = Some(bits.ok_or("invalid server_max_window_bits")?);
                }
                _ => {
                    let bits = match value {
                        None if offer => None,
                        None => return Err("client_max_window_bits needs a value"),
                        Some(v) => {
                            Some(parse_window_bits(v).ok_or("invalid client_max_window_bits")?)
                        }
                    };
                    p.client_max_window_bits = Some(bits);
                }
            }
        }
        Ok(p)
    }
}

/// Parses a window size: a decimal integer from 8 to 15 without leading zeros (RFC 7692
/// §7.1.2.1).
fn parse_window_bits(value: &str) -> Option<u8> {
    if value.starts_with('0') || !(1..=2).contains(&value.len()) {
        return None;
    }
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let bits: u8 = value.parse().ok()?;
    (MIN_WINDOW_BITS..=MAX_WINDOW_BITS)
        .contains(&bits)
        .then_some(bits)
}

/// The offer a client with `cfg` sends, or `None` when deflate is disabled.
fn offer_params(cfg: &DeflateConfig) -> Option<WireParams> {
    if !cfg.enabled {
        return None;
    }
    let (server_bits, client_bits) = (cfg.server_bits(), cfg.client_bits());
    Some(WireParams {
        server_no_context_takeover: cfg.server_no_context_takeover,
        client_no_context_takeover: cfg.client_no_context_takeover,
        server_max_window_bits: (server_bits < MAX_WINDOW_BITS).then_some(server_bits),
        client_max_window_bits: Some((client_bits < MAX_WINDOW_BITS).then_some(client_bits)),
    })
}

/// Client: returns the `Sec-WebSocket-Extensions` value to offer (RFC 7692 §5, §7.1), or
/// `None` when deflate is disabled. For example `permessage-deflate; client_max_window_bits`.
pub(crate) fn client_offer(cfg: &DeflateConfig) -> Option<String> {
    offer_params(cfg).map(|p| p.render())
}

/// Server: picks the first acceptable permessage-deflate offer among all
/// `Sec-WebSocket-Extensions` values of the request, and returns the agreed parameters and
/// the response value (RFC 7692 §5, §7.1).
///
/// An offer with a malformed, unknown, duplicate or out-of-range parameter is declined and
/// the next one tried; unknown extensions are skipped. Returns `None` when deflate is
/// disabled or no offer is acceptable; the handshake goes on without compression.
pub(crate) fn server_negotiate(
    cfg: &DeflateConfig,
    offers: &[&str],
) -> Option<(DeflateParams, String)> {
    if !cfg.enabled {
        return None;
    }
    offers
        .iter()
        .flat_map(|value| parse_extension_list(value))
        .filter_map(Result::ok)
        .filter(|ext| ext.name.eq_ignore_ascii_case(EXTENSION_NAME))
        .find_map(|ext| {
            let offer = WireParams::parse(&ext, true).ok()?;
            Some(answer_offer(cfg, &offer))
        })
}

/// The server's answer to one valid offer.
fn answer_offer(cfg: &DeflateConfig, offer: &WireParams) -> (DeflateParams, String) {
    // §7.1.2.1: answer an offered limit with the same or a smaller value; without one, we
    // may still announce our own limit.
    let server_bits = match offer.server_max_window_bits {
        Some(asked) => asked.min(cfg.server_bits()),
        None => cfg.server_bits(),
    };
    let announce_server_bits =
        offer.server_max_window_bits.is_some() || server_bits < MAX_WINDOW_BITS;
    // §7.1.2.2: limit the client only when its offer carries client_max_window_bits.
    let client_bits = match offer.client_max_window_bits {
        Some(limit) => limit.unwrap_or(MAX_WINDOW_BITS).min(cfg.client_bits()),
        None => MAX_WINDOW_BITS,
    };
    let response = WireParams {
        server_no_context_takeover: offer.server_no_context_takeover
            || cfg.server_no_context_takeover,
        // A client that offers client_no_context_takeover does without it anyway;
        // echoing it lets our decompressor be released between messages.
        client_no_context_takeover: offer.client_no_context_takeover
            || cfg.client_no_context_takeover,
        server_max_window_bits: announce_server_bits.then_some(server_bits),
        client_max_window_bits: (offer.client_max_window_bits.is_some()
            && client_bits < MAX_WINDOW_BITS)
            .then_some(Some(client_bits)),
    };
    let params = DeflateParams {
        server_no_context_takeover: response.server_no_context_takeover,
        client_no_context_takeover: response.client_no_context_takeover,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
    };
    (params, response.render())
}

/// Client: checks the server's `Sec-WebSocket-Extensions` values against the offer made with
/// `cfg` (RFC 7692 §5, §7.1.1, §7.1.2).
///
/// Returns `Ok(None)` when the server declined (no extension in the answer), the agreed
/// parameters when it accepted, and an error (fail the connection) when the answer is
/// malformed, names an extension we did not offer, accepts permessage-deflate more than once,
/// or carries unknown, duplicate, out-of-range or unrequested parameters.
pub(crate) fn client_accept(
    cfg: &DeflateConfig,
    response_values: &[&str],
) -> Result<Option<DeflateParams>, DeflateError> {
    validate_response(offer_params(cfg).as_ref(), response_values)
}

/// [`client_accept`] for a given offer (`None`: nothing was offered).
fn validate_response(
    offer: Option<&WireParams>,
    response_values: &[&str],
) -> Result<Option<DeflateParams>, DeflateError> {
    let invalid = DeflateError::InvalidNegotiation;
    let mut accepted = None;
    for ext in response_values
        .iter()
        .flat_map(|value| parse_extension_list(value))
    {
        let ext = ext.map_err(|()| invalid("malformed Sec-WebSocket-Extensions"))?;
        if !ext.name.eq_ignore_ascii_case(EXTENSION_NAME) || offer.is_none() {
            return Err(invalid(
                "the server accepted an extension that was not offered",
            ));
        }
        if accepted.replace(ext).is_some() {
            return Err(invalid("permessage-deflate accepted more than once"));
        }
    }
    let (Some(ext), Some(offer)) = (accepted, offer) else {
        return Ok(None);
    };
    let response = WireParams::parse(&ext, false).map_err(invalid)?;
    if offer.server_no_context_takeover && !response.server_no_context_takeover {
        return Err(invalid(
            "server_no_context_takeover was requested but not granted",
        ));
    }
    let server_bits = match (
        offer.server_max_window_bits,
        response.server_max_window_bits,
    ) {
        (Some(asked), Some(got)) if got > asked => {
            return Err(invalid("server_max_window_bits larger than requested"));
        }
        (Some(_), None) => {
            return Err(invalid(
                "server_max_window_bits was requested but not granted",
            ));
        }
        (_, got) => got.unwrap_or(MAX_WINDOW_BITS),
    };
    let client_bits = match (
        offer.client_max_window_bits,
        response.client_max_window_bits,
    ) {
        (None, Some(_)) => return Err(invalid("client_max_window_bits was not offered")),
        (Some(Some(ours)), Some(Some(got))) if got > ours => {
            return Err(invalid("client_max_window_bits larger than offered"));
        }
        (_, Some(Some(got))) => got,
        (Some(Some(ours)), _) => ours,
        _ => MAX_WINDOW_BITS,
    };
    Ok(Some(DeflateParams {
        server_no_context_takeover: response.server_no_context_takeover,
        client_no_context_takeover: response.client_no_context_takeover
            || offer.client_no_context_takeover,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
    }))
}

// ---- Sec-WebSocket-Extensions syntax (RFC 6455 §9.1, RFC 7692 §5.1) ----

/// One element of an extension list: a token and its parameters, values unquoted.
#[derive(Debug, PartialEq, Eq)]
struct Extension<'a> {
    name: &'a str,
    params: Vec<(&'a str, Option<Cow<'a, str>>)>,
}

/// Splits a header value into its elements and parses each; a malformed element is
/// `Err(())` and does not affect the others. Empty elements are skipped (RFC 7230 §7).
fn parse_extension_list(value: &str) -> impl Iterator<Item = Result<Extension<'_>, ()>> {
    split_unquoted(value, b',')
        .into_iter()
        .filter(|element| !trim_ows(element).is_empty())
        .map(parse_extension)
}

/// `extension = extension-token *( ";" extension-param )`,
/// `extension-param = token [ "=" (token | quoted-string) ]`, with optional whitespace.
fn parse_extension(element: &str) -> Result<Extension<'_>, ()> {
    let mut parts = split_unquoted(element, b';').into_iter();
    let name = trim_ows(parts.next().unwrap_or_default());
    if !is_token(name) {
        return Err(());
    }
    let mut params = Vec::new();
    for part in parts {
        let (key, value) = match part.split_once('=') {
            Some((key, value)) => (trim_ows(key), Some(parse_param_value(trim_ows(value))?)),
            None => (trim_ows(part), None),
        };
        if !is_token(key) {
            return Err(());
        }
        params.push((key, value));
    }
    Ok(Extension { name, params })
}

/// A token, or a quoted-string with its quotes and escapes removed. RFC 7692 §7.1 requires
/// the unquoted value to be a token too.
fn parse_param_value(value: &str) -> Result<Cow<'_, str>, ()> {
    let Some(inner) = value.strip_prefix('"') else {
        return if is_token(value) {
            Ok(Cow::Borrowed(value))
        } else {
            Err(())
        };
    };
    let inner = inner.strip_suffix('"').ok_or(())?;
    let unquoted = if inner.contains('\\') {
        let mut s = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            s.push(if c == '\\' {
                chars.next().ok_or(())?
            } else {
                c
            });
        }
        Cow::Owned(s)
    } else {
        Cow::Borrowed(inner)
    };
    if is_token(&unquoted) {
        Ok(unquoted)
    } else {
        Err(())
    }
}

/// Splits at `sep` outside quoted strings. An unterminated quote runs to the end, making
/// the last piece malformed.
fn split_unquoted(s: &str, sep: u8) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, b) in s.bytes().enumerate() {
        if quoted {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                quoted = false;
            }
        } else if b == b'"' {
            quoted = true;
        } else if b == sep {
            parts.push(&s[start..i]);
            start = i + 1;
        }
    }
    parts.push(&s[start..]);
    parts
}

fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// `token = 1*tchar` (RFC 7230 §3.2.6).
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

// ---- compression ----

/// Compresses whole messages (RFC 7692 §7.2.1): raw deflate ended by a sync flush, with the
/// trailing `00 00 ff ff` removed.
///
/// The zlib state is allocated on first use and, with no context takeover, reset after
/// every message; [`release`](Self::release) frees it.
pub(crate) struct Compressor {
    state: Option<Compress>,
    window_bits: u8,
    no_context_takeover: bool,
    level: u32,
}

impl Compressor {
    /// Returns a compressor whose window stays within `window_bits` (8 to 15, clamped) and
    /// that forgets every message when `no_context_takeover`. Allocates nothing yet.
    pub fn new(window_bits: u8, no_context_takeover: bool, level: u32) -> Self {
        Self {
            state: None,
            window_bits: window_bits.clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS),
            no_context_takeover,
            level: level.min(9),
        }
    }

    /// Appends the compressed payload of the message `data` to `out`.
    pub fn compress(&mut self, data: &[u8], out: &mut Vec<u8>) {
        if data.is_empty() {
            // RFC 7692 §7.2.3.6: an empty stored block. zlib would emit nothing for a second
            // sync flush in a row, and an empty payload is not valid deflate data.
            out.push(0x00);
            return;
        }
        // Window 8 is served by a 9-bit zlib window: see the module docs.
        let bits = self.window_bits.max(9);
        let level = Compression::new(self.level);
        let state = self
            .state
            .get_or_insert_with(|| Compress::new_with_window_bits(level, false, bits));
        let start = out.len();
        if deflate_sync(state, data, out).is_err() {
            // zlib-rs fails only on a corrupted state. Start over, and send the message as
            // stored blocks: the peer may keep it in its window, but a fresh compressor
            // never refers back to it.
            self.state = None;
            out.truncate(start);
            stored_blocks(data, out);
            return;
        }
        if out[start..].ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if self.no_context_takeover {
            state.reset();
        }
    }

    /// Frees the zlib state; it is rebuilt on the next message. Always safe: with context
    /// takeover the next message just cannot refer to earlier ones. Call it on idle
    /// connections.
    pub fn release(&mut self) {
        self.state = None;
    }

    /// Returns true while the zlib state is allocated.
    pub fn is_allocated(&self) -> bool {
        self.state.is_some()
    }
}

/// Feeds all of `data` and a sync flush to `state`, appending the output to `out`.
fn deflate_sync(
    state: &mut Compress,
    data: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), flate2::CompressError> {
    let start_in = state.total_in();
    out.reserve(data.len() / 4 + 64);
    loop {
        let consumed = (state.total_in() - start_in) as usize;
        if out.len() == out.capacity() {
            out.reserve((data.len() - consumed) / 2 + 1024);
        }
        let room = out.capacity() - out.len();
        let before = out.len();
        state.compress_vec(&data[consumed..], out, FlushCompress::Sync)?;
        let consumed = (state.total_in() - start_in) as usize;
        // The flush is complete once all input is in and zlib stopped with room to spare.
        if consumed == data.len() && out.len() - before < room {
            return Ok(());
        }
    }
}

/// Appends `data` as stored (uncompressed) deflate blocks in the RFC 7692 §7.2.3.3 form,
/// ending with the header byte of the empty block whose rest is the removed tail.
fn stored_blocks(data: &[u8], out: &mut Vec<u8>) {
    for chunk in data.chunks(usize::from(u16::MAX)) {
        let len = chunk.len() as u16;
        out.push(0x00);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.push(0x00);
}

// ---- decompression ----

/// Decompresses messages frame by frame, with a hard limit on the output (RFC 7692 §7.2.2).
///
/// Call [`decompress`](Self::decompress) with each frame's payload (or any part of it) as
/// it arrives, then [`finish_message`](Self::finish_message) after the last frame.
pub(crate) struct Decompressor {
    state: Option<Decompress>,
    no_context_takeover: bool,
    /// Input fed since the last block boundary we know of (message start, stream end).
    pending: bool,
}

impl Decompressor {
    /// Returns a decompressor for a peer that forgets every message when
    /// `no_context_takeover`. Allocates nothing yet.
    ///
    /// The peer's window size is not needed: inflation always uses a 15-bit window, which
    /// reads every smaller one (see the module docs).
    pub fn new(_window_bits: u8, no_context_takeover: bool) -> Self {
        Self {
            state: None,
            no_context_takeover,
            pending: false,
        }
    }

    /// Inflates `input` (part of a compressed message), appending to `out`.
    ///
    /// Returns [`DeflateError::TooLarge`] as soon as `out.len()` would exceed `max_len`
    /// (then `out.len() <= max_len`; the message must be abandoned), and
    /// [`DeflateError::Corrupt`] for invalid data. Either error leaves the context unusable:
    /// fail the connection.
    pub fn decompress(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        max_len: usize,
    ) -> Result<(), DeflateError> {
        if input.is_empty() {
            return Ok(());
        }
        self.pending = true;
        if self.feed(input, false, out, max_len)? == Some(input.len()) {
            // The input ended exactly where a deflate stream did (BFINAL): nothing pending.
            self.pending = false;
        }
        Ok(())
    }

    /// Ends the message: feeds the `00 00 ff ff` tail removed by the sender (RFC 7692
    /// §7.2.2), and resets the context when the peer does not keep it.
    pub fn finish_message(
        &mut self,
        out: &mut Vec<u8>,
        max_len: usize,
    ) -> Result<(), DeflateError> {
        if self.pending && self.feed(&TAIL, true, out, max_len)?.is_some() {
            // The tail completed a final block; its remaining bytes belong to no stream.
            self.reset();
        }
        self.pending = false;
        if self.no_context_takeover {
            self.reset();
        }
        Ok(())
    }

    /// Frees the zlib state between messages when the peer does not keep its context (it is
    /// rebuilt on the next message). With context takeover, or in the middle of a message,
    /// it does nothing: the window is still needed.
    pub fn release(&mut self) {
        if self.no_context_takeover && !self.pending {
            self.state = None;
        }
    }

    /// Returns true while the zlib state is allocated.
    pub fn is_allocated(&self) -> bool {
        self.state.is_some()
    }

    /// Inflates `input`; returns where the last deflate stream in it ended, if one did.
    /// With `tail`, the input is the `00 00 ff ff` we appended: once a stream ends in it,
    /// the rest is ours, not the peer's, and is not read as the start of a new stream.
    /// After an error the state is dropped: the next message starts afresh.
    fn feed(
        &mut self,
        input: &[u8],
        tail: bool,
        out: &mut Vec<u8>,
        max_len: usize,
    ) -> Result<Option<usize>, DeflateError> {
        let state = self
            .state
            .get_or_insert_with(|| Decompress::new_with_window_bits(false, MAX_WINDOW_BITS));
        let result = inflate_bounded(state, input, tail, out, max_len);
        if result.is_err() {
            self.state = None;
            self.pending = false;
        }
        result
    }

    fn reset(&mut self) {
        if let Some(state) = &mut self.state {
            state.reset(false);
        }
    }
}

/// Inflates all of `input` into `out`, never leaving `out` longer than `max_len` nor growing
/// its capacity beyond `max_len`. Returns the input position after the last end of a
/// deflate stream (a BFINAL block), where a new stream starts; with `stop_at_end`, stops
/// there instead.
fn inflate_bounded(
    state: &mut Decompress,
    input: &[u8],
    stop_at_end: bool,
    out: &mut Vec<u8>,
    max_len: usize,
) -> Result<Option<usize>, DeflateError> {
    let mut pos = 0;
    let mut stream_end = None;
    loop {
        let remaining = max_len.saturating_sub(out.len());
        let spare = out.capacity() - out.len();
        let before_in = state.total_in();
        let (status, produced, room) = if remaining == 0 || spare > remaining {
            // Either a probe (is there one byte more?) or `out` has more room than the
            // limit allows: go through a small buffer.
            let mut scratch = [0u8; SCRATCH_LEN];
            let room = remaining.clamp(1, SCRATCH_LEN);
            let before_out = state.total_out();
            let status = state
                .decompress(&input[pos..], &mut scratch[..room], FlushDecompress::None)
                .map_err(|_| DeflateError::Corrupt)?;
            let produced = (state.total_out() - before_out) as usize;
            if produced > remaining {
                return Err(DeflateError::TooLarge);
            }
            out.extend_from_slice(&scratch[..produced]);
            (status, produced, room)
        } else {
            if spare == 0 {
                let step = out
                    .len()
                    .max(input.len().saturating_mul(2))
                    .max(MIN_OUTPUT_STEP);
                out.reserve_exact(step.min(remaining));
            }
            let room = out.capacity() - out.len();
            let before_out = out.len();
            let status = state
                .decompress_vec(&input[pos..], out, FlushDecompress::None)
                .map_err(|_| DeflateError::Corrupt)?;
            if out.len() > max_len {
                out.truncate(max_len);
                return Err(DeflateError::TooLarge);
            }
            (status, out.len() - before_out, room)
        };
        let consumed = (state.total_in() - before_in) as usize;
        pos += consumed;
        if status == Status::StreamEnd {
            // A block with BFINAL set (RFC 7692 §7.2.3.4): what follows is a new stream.
            state.reset(false);
            stream_end = Some(pos);
            if pos == input.len() || stop_at_end {
                return Ok(stream_end);
            }
            continue;
        }
        if produced < room {
            // zlib stopped with room to spare: it needs more input.
            return if pos == input.len() {
                Ok(stream_end)
            } else if consumed == 0 {
                Err(DeflateError::Corrupt)
            } else {
                continue;
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: [u8; 7] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];

    fn compress_one(c: &mut Compressor, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        c.compress(data, &mut out);
        out
    }

    fn inflate_message(
        d: &mut Decompressor,
        payload: &[u8],
        max: usize,
    ) -> Result<Vec<u8>, DeflateError> {
        let mut out = Vec::new();
        d.decompress(payload, &mut out, max)?;
        d.finish_message(&mut out, max)?;
        Ok(out)
    }

    /// Deterministic pseudo-random bytes (xorshift), mixed with repeats so they compress.
    fn sample(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        let mut v = Vec::with_capacity(len);
        while v.len() < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x % 3 == 0 && v.len() > 40 {
                let back = (x >> 8) as usize % v.len().min(40_000) + 1;
                let n = ((x >> 24) as usize % 30 + 3).min(len - v.len());
                for _ in 0..n {
                    v.push(v[v.len() - back]);
                }
            } else {
                v.push(b"abcdefghij klmnop{}\":,0123"[(x >> 40) as usize % 26]);
            }
        }
        v
    }

    // ---- RFC 7692 §7.2.3 examples ----

    #[test]
    fn rfc7692_7_2_3_1_hello_compresses_to_the_rfc_bytes() {
        for level in 1..=9 {
            let mut c = Compressor::new(15, false, level);
            assert_eq!(compress_one(&mut c, b"Hello"), HELLO, "level {level}");
        }
        let mut d = Decompressor::new(15, false);
        assert_eq!(inflate_message(&mut d, &HELLO, 100).unwrap(), b"Hello");
    }

    #[test]
    fn rfc7692_7_2_3_2_context_takeover_shares_the_window() {
        let second = [0xf2, 0x00, 0x11, 0x00, 0x00];
        let mut c = Compressor::new(15, false, 6);
        assert_eq!(compress_one(&mut c, b"Hello"), HELLO);
        assert_eq!(compress_one(&mut c, b"Hello"), second);
        let mut d = Decompressor::new(15, false);
        assert_eq!(inflate_message(&mut d, &HELLO, 100).unwrap(), b"Hello");
        assert_eq!(inflate_message(&mut d, &second, 100).unwrap(), b"Hello");
    }

    #[test]
    fn rfc7692_7_2_3_2_no_context_takeover_repeats_the_first_form() {
        let mut c = Compressor::new(15, true, 6);
        assert_eq!(compress_one(&mut c, b"Hello"), HELLO);
        assert_eq!(compress_one(&mut c, b"Hello"), HELLO);
        let mut d = Decompressor::new(15, true);
        assert_eq!(inflate_message(&mut d, &HELLO, 100).unwrap(), b"Hello");
        assert_eq!(inflate_message(&mut d, &HELLO, 100).unwrap(), b"Hello");
        // Without the shared window the RFC's second message refers to nothing.
        assert_eq!(
            inflate_message(&mut d, &[0xf2, 0x00, 0x11, 0x00, 0x00], 100),
            Err(DeflateError::Corrupt)
        );
    }

    #[test]
    fn rfc7692_7_2_3_3_stored_block() {
        let stored = [
            0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ];
        let mut d = Decompressor::new(15, false);
        assert_eq!(inflate_message(&mut d, &stored, 100).unwrap(), b"Hello");
        let mut out = Vec::new();
        stored_blocks(b"Hello", &mut out);
        assert_eq!(out, stored);
        let mut c = Compressor::new(15, false, 0);
        assert_eq!(compress_one(&mut c, b"Hello"), stored);
    }

    #[test]
    fn rfc7692_7_2_3_4_bfinal_block_then_more_messages() {
        let bfinal = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
        let mut d = Decompressor::new(15, false);
        assert_eq!(inflate_message(&mut d, &bfinal, 100).unwrap(), b"Hello");
        assert_eq!(inflate_message(&mut d, &HELLO, 100).unwrap(), b"Hello");
        // The stream ending exactly at the end of the message: the tail is not fed.
        let mut d = Decompressor::new(15, false);
        assert_eq!(
            inflate_message(&mut d, &bfinal[..7], 100).unwrap(),
            b"Hello"
        );
        assert_eq!(inflate_message(&mut d, &HELLO, 100).unwrap(), b"Hello");
    }

    #[test]
    fn rfc7692_7_2_3_4_final_block_completed_by_the_tail() {
        // The end-of-block code of this BFINAL block only completes with the tail's first
        // byte; the rest of the tail must not linger in the context.
        let cut = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07];
        let mut d = Decompressor::new(15, false);
        assert_eq!(inflate_message(&mut d, &cut, 100).unwrap(), b"Hello");
        assert_eq!(inflate_message(&mut d, &HELLO, 100).unwrap(), b"Hello");
        assert_eq!(inflate_message(&mut d, &HELLO, 100).unwrap(), b"Hello");
        // Found by the `deflate` fuzz target: a final block whose end-of-block code needs
        // the tail, after which the rest of the tail (`00 ff ff`) was read as a new stream
        // and failed the connection.
        let mut d = Decompressor::new(15, false);
        assert_eq!(
            inflate_message(&mut d, &[0xe3, 0x48, 0xcd, 0xc9], 100).unwrap(),
            [0x08, b'e', b'l', b'h']
        );
        assert_eq!(inflate_message(&mut d, &HELLO, 100).unwrap(), b"Hello");
    }

    #[test]
    fn rfc7692_7_2_3_5_two_blocks_in_one_message() {
        let two = [
            0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
        ];
        let mut d = Decompressor::new(15, false);
        assert_eq!(inflate_message(&mut d, &two, 100).unwrap(), b"Hello");
    }

    #[test]
    fn rfc7692_7_2_3_6_empty_message() {
        let mut c = Compressor::new(15, false, 6);
        assert_eq!(compress_one(&mut c, b""), [0x00]);
        assert!(!c.is_allocated());
        assert_eq!(compress_one(&mut c, b"Hello"), HELLO);
        // Also right after another message, when a second sync flush would emit nothing.
        assert_eq!(compress_one(&mut c, b""), [0x00]);
        assert_eq!(
            compress_one(&mut c, b"Hello"),
            [0xf2, 0x00, 0x11, 0x00, 0x00]
        );
        let mut d = Decompressor::new(15, false);
        assert_eq!(inflate_message(&mut d, &[], 100).unwrap(), b"");
        assert!(!d.is_allocated());
        assert_eq!(inflate_message(&mut d, &[0x00], 100).unwrap(), b"");
        // An empty payload leaves the context intact.
        assert_eq!(inflate_message(&mut d, &[], 100).unwrap(), b"");
        assert_eq!(inflate_message(&mut d, &HELLO, 100).unwrap(), b"Hello");
        assert_eq!(inflate_message(&mut d, &[], 100).unwrap(), b"");
        assert_eq!(
            inflate_message(&mut d, &[0xf2, 0x00, 0x11, 0x00, 0x00], 100).unwrap(),
            b"Hello"
        );
    }

    // ---- round trips, limits, chunking ----

    #[test]
    fn rfc7692_7_2_round_trip_every_window_and_takeover_mode() {
        let messages: Vec<Vec<u8>> = (0..6)
            .map(|i| sample(3000 + i * 5000, i as u64 + 7))
            .collect();
        for bits in 8..=15 {
            for no_takeover in [false, true] {
                for level in [0, 1, 6, 9] {
                    let mut c = Compressor::new(bits, no_takeover, level);
                    let mut d = Decompressor::new(bits, no_takeover);
                    for m in &messages {
                        let z = compress_one(&mut c, m);
                        let back = inflate_message(&mut d, &z, m.len()).unwrap();
                        assert!(
                            back == *m,
                            "bits {bits} no_takeover {no_takeover} level {level}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn rfc7692_7_2_1_context_takeover_shrinks_repeated_messages() {
        let m = sample(2000, 3);
        let mut with = Compressor::new(15, false, 6);
        let mut without = Compressor::new(15, true, 6);
        let first = compress_one(&mut with, &m);
        assert_eq!(compress_one(&mut without, &m), first);
        assert!(compress_one(&mut with, &m).len() < first.len() / 4);
        assert_eq!(compress_one(&mut without, &m), first);
    }

    #[test]
    fn rfc7692_7_1_2_compressor_stays_within_its_window() {
        // Data that repeats at distances up to ~40 KB, which every window would like to use.
        let data = sample(80_000, 11);
        for bits in 8..=15u8 {
            for level in [1, 6, 9] {
                let mut c = Compressor::new(bits, false, level);
                let mut z = compress_one(&mut c, &data);
                z.extend_from_slice(&TAIL);
                let (plain, max_dist) = reference::inflate(&z).expect("valid deflate");
                assert!(plain == data, "bits {bits} level {level}");
                assert!(
                    max_dist <= 1 << bits,
                    "bits {bits} level {level}: distance {max_dist}"
                );
                if bits == 15 {
                    assert!(max_dist > 1 << 9, "the checker sees long distances");
                }
            }
        }
    }

    #[test]
    fn rfc7692_7_2_2_bomb_stops_at_the_limit() {
        let mut c = Compressor::new(15, false, 9);
        let zeros = vec![0u8; 10 << 20];
        let z = compress_one(&mut c, &zeros);
        assert!(z.len() < 20_000);
        let max = 1 << 20;
        let mut d = Decompressor::new(15, false);
        let mut out = Vec::new();
        assert_eq!(d.decompress(&z, &mut out, max), Err(DeflateError::TooLarge));
        assert!(out.len() <= max);
        assert!(out.capacity() <= max);
        // Also when `out` arrives with more capacity than the limit.
        let mut d = Decompressor::new(15, false);
        let mut out = Vec::with_capacity(4 * max);
        out.extend_from_slice(b"earlier");
        assert_eq!(d.decompress(&z, &mut out, max), Err(DeflateError::TooLarge));
        assert!(out.len() <= max);
        assert_eq!(out.capacity(), 4 * max);
        // And when fed in small pieces.
        let mut d = Decompressor::new(15, false);
        let mut out = Vec::new();
        let mut result = Ok(());
        for piece in z.chunks(7) {
            result = d.decompress(piece, &mut out, max);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(DeflateError::TooLarge));
        assert!(out.len() <= max && out.capacity() <= max);
    }

    #[test]
    fn rfc7692_7_2_2_limit_is_inclusive() {
        let m = sample(50_000, 5);
        let z = compress_one(&mut Compressor::new(15, false, 6), &m);
        let mut d = Decompressor::new(15, true);
        assert_eq!(inflate_message(&mut d, &z, m.len()).unwrap(), m);
        assert_eq!(
            inflate_message(&mut d, &z, m.len() - 1),
            Err(DeflateError::TooLarge)
        );
        let mut d = Decompressor::new(15, true);
        assert_eq!(inflate_message(&mut d, &z, 0), Err(DeflateError::TooLarge));
        // Output of the tail counts too: a message whose last bytes only come with it.
        let mut d = Decompressor::new(15, true);
        let mut out = Vec::new();
        d.decompress(&z, &mut out, m.len()).unwrap();
        d.finish_message(&mut out, m.len()).unwrap();
        assert_eq!(out, m);
    }

    #[test]
    fn rfc7692_7_2_2_any_split_gives_the_same_output() {
        let messages = [sample(3000, 21), sample(700, 22), sample(5000, 23)];
        let mut c = Compressor::new(15, false, 6);
        let payloads: Vec<Vec<u8>> = messages.iter().map(|m| compress_one(&mut c, m)).collect();
        for split in 0..=payloads[0].len() {
            let mut d = Decompressor::new(15, false);
            for (i, (p, m)) in payloads.iter().zip(&messages).enumerate() {
                let mut out = Vec::new();
                let k = if i == 0 { split } else { split.min(p.len()) };
                d.decompress(&p[..k], &mut out, 1 << 20).unwrap();
                d.decompress(&p[k..], &mut out, 1 << 20).unwrap();
                d.finish_message(&mut out, 1 << 20).unwrap();
                assert!(out == *m, "split {split} message {i}");
            }
        }
        // One byte at a time.
        let mut d = Decompressor::new(15, false);
        for (p, m) in payloads.iter().zip(&messages) {
            let mut out = Vec::new();
            for b in p.chunks(1) {
                d.decompress(b, &mut out, 1 << 20).unwrap();
            }
            d.finish_message(&mut out, 1 << 20).unwrap();
            assert_eq!(out, *m);
        }
    }

    #[test]
    fn rfc7692_7_2_2_invalid_data_is_corrupt() {
        let mut d = Decompressor::new(15, false);
        // BTYPE 11 is reserved.
        assert_eq!(
            inflate_message(&mut d, &[0xff, 0xff, 0xff], 100),
            Err(DeflateError::Corrupt)
        );
        // A stored block whose NLEN is not the complement of LEN.
        let mut d = Decompressor::new(15, false);
        assert_eq!(
            inflate_message(&mut d, &[0x00, 0x05, 0x00, 0x00, 0x00, b'H'], 100),
            Err(DeflateError::Corrupt)
        );
        // A distance before the start of the window.
        let mut d = Decompressor::new(15, true);
        assert_eq!(
            inflate_message(&mut d, &[0xf2, 0x00, 0x11, 0x00, 0x00], 100),
            Err(DeflateError::Corrupt)
        );
        // After an error the decompressor starts over.
        assert_eq!(inflate_message(&mut d, &HELLO, 100).unwrap(), b"Hello");
    }

    #[test]
    fn stored_blocks_fallback_round_trips() {
        for len in [0, 1, 65_535, 65_536, 200_000] {
            let data = sample(len, 9);
            let mut z = Vec::new();
            stored_blocks(&data, &mut z);
            let mut d = Decompressor::new(15, false);
            assert_eq!(inflate_message(&mut d, &z, len).unwrap(), data);
            assert_eq!(inflate_message(&mut d, &HELLO, 100).unwrap(), b"Hello");
        }
    }

    #[test]
    fn state_is_lazy_and_released() {
        let mut c = Compressor::new(15, false, 6);
        assert!(!c.is_allocated());
        let z = compress_one(&mut c, b"Hello");
        assert!(c.is_allocated());
        c.release();
        assert!(!c.is_allocated());
        // Context takeover: after a release the next message is still readable by a peer
        // that kept its window.
        let mut d = Decompressor::new(15, false);
        assert!(!d.is_allocated());
        assert_eq!(inflate_message(&mut d, &z, 100).unwrap(), b"Hello");
        assert!(d.is_allocated());
        d.release();
        assert!(d.is_allocated(), "the window is still needed");
        assert_eq!(
            inflate_message(&mut d, &compress_one(&mut c, b"Hello"), 100).unwrap(),
            b"Hello"
        );

        let mut d = Decompressor::new(15, true);
        let mut out = Vec::new();
        d.decompress(&HELLO[..3], &mut out, 100).unwrap();
        d.release();
        assert!(d.is_allocated(), "not in the middle of a message");
        d.decompress(&HELLO[3..], &mut out, 100).unwrap();
        d.finish_message(&mut out, 100).unwrap();
        assert_eq!(out, b"Hello");
        d.release();
        assert!(!d.is_allocated());
        assert_eq!(inflate_message(&mut d, &HELLO, 100).unwrap(), b"Hello");
    }

    #[test]
    fn out_of_range_settings_are_clamped() {
        let mut c = Compressor::new(3, false, 42);
        let mut d = Decompressor::new(99, false);
        let m = sample(10_000, 1);
        assert_eq!(
            inflate_message(&mut d, &compress_one(&mut c, &m), m.len()).unwrap(),
            m
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn rfc7692_7_2_chunking_never_changes_the_output(
            seed in 0u64..1000,
            len in 0usize..20_000,
            cuts in proptest::collection::vec(0usize..20_000, 0..8),
            bits in 8u8..=15,
            no_takeover in proptest::bool::ANY,
        ) {
            let mut c = Compressor::new(bits, no_takeover, 6);
            let mut d = Decompressor::new(bits, no_takeover);
            for round in 0..2 {
                let m = sample(len, seed + round);
                let z = compress_one(&mut c, &m);
                let mut cuts: Vec<usize> = cuts.iter().map(|&k| k % (z.len() + 1)).collect();
                cuts.push(0);
                cuts.push(z.len());
                cuts.sort_unstable();
                let mut out = Vec::new();
                for w in cuts.windows(2) {
                    d.decompress(&z[w[0]..w[1]], &mut out, len).unwrap();
                }
                d.finish_message(&mut out, len).unwrap();
                proptest::prop_assert_eq!(out, m);
            }
        }
    }

    // ---- negotiation ----

    fn cfg() -> DeflateConfig {
        DeflateConfig::enabled()
    }

    fn params(snct: bool, cnct: bool, sbits: u8, cbits: u8) -> DeflateParams {
        DeflateParams {
            server_no_context_takeover: snct,
            client_no_context_takeover: cnct,
            server_max_window_bits: sbits,
            client_max_window_bits: cbits,
        }
    }

    #[test]
    fn rfc7692_5_default_is_disabled() {
        let c = DeflateConfig::default();
        assert!(!c.enabled);
        assert_eq!(c, DeflateConfig::disabled());
        assert_eq!(client_offer(&c), None);
        assert_eq!(server_negotiate(&c, &["permessage-deflate"]), None);
        assert!(client_accept(&c, &[]).unwrap().is_none());
        assert!(client_accept(&c, &["permessage-deflate"]).is_err());
    }

    #[test]
    fn rfc7692_7_1_client_offers() {
        assert_eq!(
            client_offer(&cfg()).unwrap(),
            "permessage-deflate; client_max_window_bits"
        );
        let all = DeflateConfig {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: 10,
            client_max_window_bits: 8,
            ..cfg()
        };
        assert_eq!(
            client_offer(&all).unwrap(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=10; client_max_window_bits=8"
        );
        let clamped = DeflateConfig {
            server_max_window_bits: 3,
            client_max_window_bits: 20,
            ..cfg()
        };
        assert_eq!(
            client_offer(&clamped).unwrap(),
            "permessage-deflate; server_max_window_bits=8; client_max_window_bits"
        );
    }

    #[test]
    fn rfc7692_5_plain_offer_is_accepted_plainly() {
        let (p, response) = server_negotiate(&cfg(), &["permessage-deflate"]).unwrap();
        assert_eq!(p, params(false, false, 15, 15));
        assert_eq!(response, "permessage-deflate");
        assert_eq!(client_accept(&cfg(), &[&response]).unwrap(), Some(p));
    }

    #[test]
    fn rfc7692_7_1_offers_and_answers() {
        let cases: &[(&str, DeflateParams, &str)] = &[
            (
                "permessage-deflate; client_max_window_bits",
                params(false, false, 15, 15),
                "permessage-deflate",
            ),
            (
                "permessage-deflate; server_no_context_takeover",
                params(true, false, 15, 15),
                "permessage-deflate; server_no_context_takeover",
            ),
            (
                "permessage-deflate; client_no_context_takeover",
                params(false, true, 15, 15),
                "permessage-deflate; client_no_context_takeover",
            ),
            (
                "permessage-deflate; server_max_window_bits=10",
                params(false, false, 10, 15),
                "permessage-deflate; server_max_window_bits=10",
            ),
            (
                "permessage-deflate; server_max_window_bits=8",
                params(false, false, 8, 15),
                "permessage-deflate; server_max_window_bits=8",
            ),
            (
                "permessage-deflate; client_max_window_bits=10",
                params(false, false, 15, 10),
                "permessage-deflate; client_max_window_bits=10",
            ),
            (
                "permessage-deflate;client_max_window_bits=\"10\" ;  server_max_window_bits = \"12\"",
                params(false, false, 12, 10),
                "permessage-deflate; server_max_window_bits=12; client_max_window_bits=10",
            ),
            (
                "PerMessage-Deflate; Server_No_Context_Takeover",
                params(true, false, 15, 15),
                "permessage-deflate; server_no_context_takeover",
            ),
        ];
        for (offer, want, response) in cases {
            let (p, r) = server_negotiate(&cfg(), &[offer]).unwrap_or_else(|| panic!("{offer}"));
            assert_eq!((p, r.as_str()), (*want, *response), "{offer}");
        }
    }

    #[test]
    fn rfc7692_7_1_server_limits_apply() {
        let server = DeflateConfig {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: 11,
            client_max_window_bits: 9,
            ..cfg()
        };
        // Client supports client_max_window_bits: limit it.
        let (p, r) =
            server_negotiate(&server, &["permessage-deflate; client_max_window_bits"]).unwrap();
        assert_eq!(p, params(true, true, 11, 9));
        assert_eq!(
            r,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=11; client_max_window_bits=9"
        );
        // It does not: it may not be limited (§7.1.2.2), and must not be asked.
        let (p, r) = server_negotiate(&server, &["permessage-deflate"]).unwrap();
        assert_eq!(p, params(true, true, 11, 15));
        assert!(!r.contains("client_max_window_bits"));
        // The smaller of the offered and configured server window wins.
        let (p, _) =
            server_negotiate(&server, &["permessage-deflate; server_max_window_bits=13"]).unwrap();
        assert_eq!(p.server_max_window_bits, 11);
        let (p, _) =
            server_negotiate(&server, &["permessage-deflate; server_max_window_bits=8"]).unwrap();
        assert_eq!(p.server_max_window_bits, 8);
        // The client's own offered limit is kept when below ours.
        let (p, r) =
            server_negotiate(&cfg(), &["permessage-deflate; client_max_window_bits=8"]).unwrap();
        assert_eq!(p.client_max_window_bits, 8);
        assert!(r.ends_with("client_max_window_bits=8"));
    }

    #[test]
    fn rfc7692_5_multiple_offers_first_acceptable_wins() {
        let offers = [
            "x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; client_max_window_bits=10, permessage-deflate",
        ];
        let (p, _) = server_negotiate(&cfg(), &offers).unwrap();
        assert_eq!(p.client_max_window_bits, 10);
        // A comma inside a quoted string does not split elements.
        let (p, _) = server_negotiate(
            &cfg(),
            &["foo; bar=\"a,b\", permessage-deflate; server_max_window_bits=9"],
        )
        .unwrap();
        assert_eq!(p.server_max_window_bits, 9);
        // Only unknown extensions: nothing.
        assert_eq!(server_negotiate(&cfg(), &["foo, bar; baz=1"]), None);
        assert_eq!(server_negotiate(&cfg(), &[]), None);
    }

    #[test]
    fn rfc7692_7_server_declines_bad_offers() {
        let bad = [
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_max_window_bits=10; client_max_window_bits=11",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=08",
            "permessage-deflate; server_max_window_bits=",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=1x",
            "permessage-deflate; client_max_window_bits=\"16\"",
            "permessage-deflate; client_max_window_bits=\"10",
            "permessage-deflate; client_max_window_bits=\"1 0\"",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_no_context_takeover=\"\"",
            "permessage-deflate; unknown_param",
            "permessage-deflate;",
            "permessage-deflate; =10",
            "permessage deflate",
        ];
        for offer in bad {
            assert_eq!(server_negotiate(&cfg(), &[offer]), None, "{offer}");
            // The next, valid offer is taken instead.
            let (p, _) = server_negotiate(
                &cfg(),
                &[offer, "permessage-deflate; server_max_window_bits=12"],
            )
            .unwrap_or_else(|| panic!("{offer}"));
            assert_eq!(p.server_max_window_bits, 12, "{offer}");
        }
    }

    #[test]
    fn rfc7692_7_1_client_accepts_valid_answers() {
        let c = cfg();
        let ok: &[(&str, DeflateParams)] = &[
            ("permessage-deflate", params(false, false, 15, 15)),
            (
                "permessage-deflate; server_no_context_takeover",
                params(true, false, 15, 15),
            ),
            (
                "permessage-deflate; client_no_context_takeover",
                params(false, true, 15, 15),
            ),
            (
                "permessage-deflate; server_max_window_bits=9",
                params(false, false, 9, 15),
            ),
            (
                "permessage-deflate; client_max_window_bits=8",
                params(false, false, 15, 8),
            ),
            (
                "permessage-deflate; client_max_window_bits=\"12\"",
                params(false, false, 15, 12),
            ),
            (
                " permessage-deflate ; server_max_window_bits = 10 ",
                params(false, false, 10, 15),
            ),
        ];
        for (answer, want) in ok {
            assert_eq!(client_accept(&c, &[answer]), Ok(Some(*want)), "{answer}");
        }
        assert_eq!(client_accept(&c, &[]), Ok(None));
        assert_eq!(client_accept(&c, &["", " , "]), Ok(None));

        let limited = DeflateConfig {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: 10,
            client_max_window_bits: 12,
            ..cfg()
        };
        assert_eq!(
            client_accept(
                &limited,
                &["permessage-deflate; server_no_context_takeover; server_max_window_bits=9"]
            ),
            Ok(Some(params(true, true, 9, 12)))
        );
        assert_eq!(
            client_accept(
                &limited,
                &[
                    "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits=11"
                ]
            ),
            Ok(Some(params(true, true, 10, 11)))
        );
    }

    #[test]
    fn rfc7692_7_1_client_fails_invalid_answers() {
        let c = cfg();
        let bad = [
            "x-webkit-deflate-frame",
            "permessage-deflate, permessage-deflate",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; client_max_window_bits=99",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_no_context_takeover=yes",
            "permessage-deflate; mystery",
            "permessage-deflate; client_max_window_bits=\"10",
            "permessage-deflate, foo",
        ];
        for answer in bad {
            assert!(
                matches!(
                    client_accept(&c, &[answer]),
                    Err(DeflateError::InvalidNegotiation(_))
                ),
                "{answer}"
            );
        }
        // Two header lines each accepting it.
        assert!(client_accept(&c, &["permessage-deflate", "permessage-deflate"]).is_err());

        let limited = DeflateConfig {
            server_no_context_takeover: true,
            server_max_window_bits: 10,
            client_max_window_bits: 12,
            ..cfg()
        };
        for answer in [
            // server_no_context_takeover asked for, not granted.
            "permessage-deflate; server_max_window_bits=10",
            // server window not granted, or larger than asked.
            "permessage-deflate; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=11",
            // client window larger than we offered.
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits=13",
        ] {
            assert!(client_accept(&limited, &[answer]).is_err(), "{answer}");
        }

        // client_max_window_bits in the answer when the offer did not carry it.
        let offer = WireParams::default();
        assert_eq!(
            validate_response(
                Some(&offer),
                &["permessage-deflate; client_max_window_bits=10"]
            ),
            Err(DeflateError::InvalidNegotiation(
                "client_max_window_bits was not offered"
            ))
        );
        assert_eq!(
            validate_response(Some(&offer), &["permessage-deflate"]),
            Ok(Some(params(false, false, 15, 15)))
        );
    }

    #[test]
    fn rfc7692_7_1_negotiated_pair_interoperates() {
        let client = DeflateConfig {
            client_no_context_takeover: true,
            server_max_window_bits: 8,
            ..cfg()
        };
        let server = DeflateConfig {
            client_max_window_bits: 9,
            ..cfg()
        };
        let offer = client_offer(&client).unwrap();
        let (sp, response) = server_negotiate(&server, &[&offer]).unwrap();
        let cp = client_accept(&client, &[&response]).unwrap().unwrap();
        assert_eq!(sp, cp);
        assert_eq!(cp, params(false, true, 8, 9));
        let (cbits, cnt) = cp.compressor_for(false);
        let (dbits, dnt) = sp.decompressor_for(true);
        assert_eq!((cbits, cnt), (dbits, dnt));
        let mut c = Compressor::new(cbits, cnt, 6);
        let mut d = Decompressor::new(dbits, dnt);
        for i in 0..3 {
            let m = sample(4000, i);
            assert_eq!(
                inflate_message(&mut d, &compress_one(&mut c, &m), 4000).unwrap(),
                m
            );
        }
    }

    #[test]
    fn params_pick_the_role() {
        let p = params(true, false, 9, 12);
        assert_eq!(p.compressor_for(true), (9, true));
        assert_eq!(p.decompressor_for(true), (12, false));
        assert_eq!(p.compressor_for(false), (12, false));
        assert_eq!(p.decompressor_for(false), (9, true));
    }

    #[test]
    fn error_display() {
        assert_eq!(
            DeflateError::TooLarge.to_string(),
            "decompressed message exceeds the size limit"
        );
        assert_eq!(DeflateError::Corrupt.to_string(), "invalid deflate data");
        assert!(
            DeflateError::InvalidNegotiation("x")
                .to_string()
                .ends_with(": x")
        );
    }

    /// A small reference inflater (RFC 1951) that also reports the longest match distance,
    /// to check that a compressor stays within its window.
    mod reference {
        struct Bits<'a> {
            data: &'a [u8],
            pos: usize,
        }

        impl Bits<'_> {
            fn take(&mut self, n: u32) -> Option<u32> {
                let mut v = 0;
                for i in 0..n {
                    let byte = *self.data.get(self.pos / 8)?;
                    v |= u32::from((byte >> (self.pos % 8)) & 1) << i;
                    self.pos += 1;
                }
                Some(v)
            }
        }

        /// Canonical Huffman code: symbol counts per length and symbols in code order.
        struct Huffman {
            counts: [u16; 16],
            symbols: Vec<u16>,
        }

        impl Huffman {
            fn new(lengths: &[u8]) -> Self {
                let mut counts = [0u16; 16];
                for &l in lengths {
                    counts[usize::from(l)] += 1;
                }
                counts[0] = 0;
                let mut symbols = Vec::new();
                for len in 1..16u8 {
                    for (sym, &l) in lengths.iter().enumerate() {
                        if l == len {
                            symbols.push(sym as u16);
                        }
                    }
                }
                Self { counts, symbols }
            }

            fn decode(&self, bits: &mut Bits<'_>) -> Option<u16> {
                let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
                for len in 1..16 {
                    code |= bits.take(1)? as i32;
                    let count = i32::from(self.counts[len]);
                    if code - first < count {
                        return self.symbols.get((index + code - first) as usize).copied();
                    }
                    index += count;
                    first = (first + count) << 1;
                    code <<= 1;
                }
                None
            }
        }

        const LEN_BASE: [u16; 29] = [
            3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99,
            115, 131, 163, 195, 227, 258,
        ];
        const LEN_EXTRA: [u8; 29] = [
            0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
        ];
        const DIST_BASE: [u16; 30] = [
            1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025,
            1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
        ];
        const DIST_EXTRA: [u8; 30] = [
            0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12,
            12, 13, 13,
        ];

        /// Inflates raw deflate data that ends on a block boundary; returns the output and
        /// the longest distance used.
        pub fn inflate(data: &[u8]) -> Option<(Vec<u8>, usize)> {
            let mut bits = Bits { data, pos: 0 };
            let mut out = Vec::new();
            let mut max_dist = 0;
            while bits.pos < data.len() * 8 {
                let last = bits.take(1)?;
                match bits.take(2)? {
                    0 => {
                        bits.pos = bits.pos.div_ceil(8) * 8;
                        let len = bits.take(16)?;
                        let nlen = bits.take(16)?;
                        if len != !nlen & 0xffff {
                            return None;
                        }
                        let start = bits.pos / 8;
                        out.extend_from_slice(data.get(start..start + len as usize)?);
                        bits.pos += len as usize * 8;
                    }
                    kind @ (1 | 2) => {
                        let (lit, dist) = if kind == 1 {
                            let mut l = [8u8; 288];
                            l[144..256].fill(9);
                            l[256..280].fill(7);
                            (Huffman::new(&l), Huffman::new(&[5; 30]))
                        } else {
                            dynamic_tables(&mut bits)?
                        };
                        loop {
                            let sym = lit.decode(&mut bits)?;
                            match sym {
                                0..=255 => out.push(sym as u8),
                                256 => break,
                                _ => {
                                    let i = usize::from(sym - 257);
                                    let len = usize::from(*LEN_BASE.get(i)?)
                                        + bits.take(u32::from(LEN_EXTRA[i]))? as usize;
                                    let d = usize::from(dist.decode(&mut bits)?);
                                    let distance = usize::from(*DIST_BASE.get(d)?)
                                        + bits.take(u32::from(DIST_EXTRA[d]))? as usize;
                                    if distance > out.len() {
                                        return None;
                                    }
                                    max_dist = max_dist.max(distance);
                                    for _ in 0..len {
                                        out.push(out[out.len() - distance]);
                                    }
                                }
                            }
                        }
                    }
                    _ => return None,
                }
                if last == 1 {
                    break;
                }
            }
            Some((out, max_dist))
        }

        fn dynamic_tables(bits: &mut Bits<'_>) -> Option<(Huffman, Huffman)> {
            const ORDER: [usize; 19] = [
                16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
            ];
            let hlit = bits.take(5)? as usize + 257;
            let hdist = bits.take(5)? as usize + 1;
            let hclen = bits.take(4)? as usize + 4;
            let mut cl = [0u8; 19];
            for &i in &ORDER[..hclen] {
                cl[i] = bits.take(3)? as u8;
            }
            let cl = Huffman::new(&cl);
            let mut lengths = Vec::with_capacity(hlit + hdist);
            while lengths.len() < hlit + hdist {
                match cl.decode(bits)? {
                    sym @ 0..=15 => lengths.push(sym as u8),
                    16 => {
                        let prev = *lengths.last()?;
                        let n = 3 + bits.take(2)? as usize;
                        lengths.extend(std::iter::repeat_n(prev, n));
                    }
                    17 => {
                        let n = 3 + bits.take(3)? as usize;
                        lengths.extend(std::iter::repeat_n(0, n));
                    }
                    _ => {
                        let n = 11 + bits.take(7)? as usize;
                        lengths.extend(std::iter::repeat_n(0, n));
                    }
                }
            }
            Some((
                Huffman::new(&lengths[..hlit]),
                Huffman::new(&lengths[hlit..hlit + hdist]),
            ))
        }
    }
}
