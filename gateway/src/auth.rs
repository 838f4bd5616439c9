//! Authentication of WebSocket upgrades: JWT (the `jsonwebtoken` crate), and the dev mode's
//! anonymous and `?user_id=` identities.
//!
//! ## Keys and algorithms
//!
//! - `auth.hmac_secret`: HS256, HS384, HS512.
//! - `auth.public_key` (PEM): RS256/384/512 and PS256/384/512 (RSA), ES256/ES384 (EC), EdDSA
//!   (Ed25519).
//! - `auth.jwks_file`: public keys of any of those families; a token's `kid` picks its key,
//!   a token without `kid` is tried against every key of its algorithm's family. Symmetric
//!   (`oct`) keys are refused in a JWKS file.
//!
//! A token is checked against a key of its algorithm's family only, and only when that
//! algorithm is accepted (`auth.algorithms`, or by default every algorithm of the
//! configured keys' families): an HS256 token is never verified with a public key (the
//! classic algorithm confusion), and `alg: none` is refused.
//!
//! ## Claims
//!
//! `sub` is the user id (required, a non-empty string). `exp` is required unless
//! `auth.require_exp = false`; `exp` and `nbf` are checked with `auth.leeway_secs`; `iss` and
//! `aud` when `auth.issuer` and `auth.audience` are set. The claim named by
//! `auth.rooms_claim` (default `rooms`), when present, is a list of room patterns; the one
//! named by `auth.meta_claim` (default `meta`) is any JSON, kept as the user's metadata.
//!
//! ## Where the token comes from
//!
//! In this order:
//!
//! 1. `Authorization: Bearer <jwt>`;
//! 2. `Sec-WebSocket-Protocol`, for browsers (which cannot set headers on a WebSocket): the
//!    offer lists the entry `bearer.<jwt>` next to a real protocol, e.g.
//!    `new WebSocket(url, ["tether.v1", "bearer." + jwt])`. The 101 answers with the first
//!    offered entry that is not a token ([`choose_subprotocol`]); browsers fail a handshake
//!    whose answer has no protocol when they offered some, so offer one;
//! 3. `?token=<jwt>`, only when `auth.query_token = true` (query strings end up in logs).
//!
//! Without a token: in dev mode, `?user_id=NAME` is the identity when
//! `auth.dev_user_id = true`, and otherwise the connection is anonymous; outside dev mode
//! it is refused. Every refusal is a 401 with a JSON body `{"code", "message"}`.

use crate::config::{AuthConfig, Config, ConfigError, Requester};
use crate::error::HttpError;
use axum::http::{HeaderMap, StatusCode, Uri, header, request::Parts};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use serde_json::{Map, Value};
use std::fmt;

/// The prefix of a token entry in `Sec-WebSocket-Protocol`.
pub const PROTOCOL_TOKEN_PREFIX: &str = "bearer.";

/// The longest user id accepted (from `sub` or `?user_id=`), in bytes.
pub const MAX_USER_ID_LEN: usize = 256;

/// Who a connection is.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// The user id: the token's `sub`, the dev mode's `?user_id=`, or empty (anonymous).
    pub user_id: String,
    /// How the identity was established.
    pub source: IdentitySource,
    /// The room patterns of the token's rooms claim, if it had one.
    pub rooms: Option<Vec<String>>,
    /// The token's metadata claim, if it had one.
    pub meta: Option<Value>,
    /// The token's `exp` (seconds since the epoch), if it had one.
    pub expires_at: Option<u64>,
}

/// How an [`Identity`] was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentitySource {
    /// A verified JWT.
    Token,
    /// `?user_id=` in dev mode.
    DevUserId,
    /// No credentials, in dev mode.
    Anonymous,
}

impl Identity {
    /// An anonymous identity (dev mode without credentials).
    pub fn anonymous() -> Self {
        Identity {
            user_id: String::new(),
            source: IdentitySource::Anonymous,
            rooms: None,
            meta: None,
            expires_at: None,
        }
    }

    /// The identity as room permissions see it.
    pub fn requester(&self) -> Requester<'_> {
        Requester {
            identified: self.source != IdentitySource::Anonymous,
            rooms_claim: self.rooms.as_deref(),
        }
    }
}

/// Why a request is not authenticated. It answers as HTTP 401 (see [`AuthError::to_http`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthError {
    /// Stable code: `missing_token`, `invalid_token`, `token_expired`,
    /// `token_not_yet_valid`, `invalid_signature`, `algorithm_not_allowed`, `unknown_key`,
    /// `invalid_issuer`, `invalid_audience`, `query_token_disabled`, `user_id_disabled`,
    /// `invalid_user_id`.
    pub code: &'static str,
    /// What is wrong and what to do.
    pub message: String,
}

impl AuthError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        AuthError {
            code,
            message: message.into(),
        }
    }

    /// The HTTP error: 401 with the body `{"code", "message"}`.
    pub fn to_http(&self) -> HttpError {
        HttpError::new(StatusCode::UNAUTHORIZED, self.code, self.message.clone())
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for AuthError {}

impl From<AuthError> for HttpError {
    fn from(e: AuthError) -> Self {
        e.to_http()
    }
}

struct PublicKey {
    kid: Option<String>,
    /// The JWK's `alg`: when set, the only algorithm the key verifies.
    alg: Option<Algorithm>,
    key: DecodingKey,
}

/// Verifies the credentials of upgrade requests, as the configuration says.
pub struct Authenticator {
    hmac: Option<DecodingKey>,
    /// Dev mode without an HMAC secret: the secret of this process's dev tokens
    /// ([`Authenticator::dev_token`]), random, never written anywhere.
    dev_secret: Option<Vec<u8>>,
    public: Vec<PublicKey>,
    algorithms: Vec<Algorithm>,
    dev: bool,
    auth: AuthConfig,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("hmac", &self.hmac.is_some())
            .field("public_keys", &self.public.len())
            .field("algorithms", &self.algorithms)
            .field("dev", &self.dev)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Reads the keys the configuration names and checks that the accepted algorithms have
    /// a key; the error names the key of the configuration at fault.
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        let auth = &config.auth;
        let hmac = match &auth.hmac_secret {
            Some(secret) => Some(DecodingKey::from_secret(secret.as_bytes()).map_err(|e| {
                ConfigError::key("auth.hmac_secret", format!("is not a usable secret: {e}"))
            })?),
            None => None,
        };
        let mut public = Vec::new();
        if let Some(path) = &auth.public_key {
            let pem = std::fs::read(path).map_err(|e| {
                ConfigError::key(
                    "auth.public_key",
                    format!("cannot read `{}`: {e}", path.display()),
                )
            })?;
            let key = DecodingKey::from_rsa_pem(&pem)
                .or_else(|_| DecodingKey::from_ec_pem(&pem))
                .or_else(|_| DecodingKey::from_ed_pem(&pem))
                .map_err(|_| {
                    ConfigError::key(
                        "auth.public_key",
                        format!(
                            "`{}` is not a PEM RSA, EC or Ed25519 public key (expected \
                             -----BEGIN PUBLIC KEY-----)",
                            path.display()
                        ),
                    )
                })?;
            public.push(PublicKey {
                kid: None,
                alg: None,
                key,
            });
        }
        if let Some(path) = &auth.jwks_file {
            let text = std::fs::read(path).map_err(|e| {
                ConfigError::key(
                    "auth.jwks_file",
                    format!("cannot read `{}`: {e}", path.display()),
                )
            })?;
            let set: JwkSet = serde_json::from_slice(&text).map_err(|e| {
                ConfigError::key(
                    "auth.jwks_file",
                    format!("`{}` is not a JWK set: {e}", path.display()),
                )
            })?;
            let before = public.len();
            for (i, jwk) in set.keys.iter().enumerate() {
                if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
                    return Err(ConfigError::key(
                        "auth.jwks_file",
                        format!(
                            "key {i} is a symmetric (oct) key: put HMAC secrets in \
                             auth.hmac_secret, the JWKS file is for public keys"
                        ),
                    ));
                }
                // Keys for encryption, or with an algorithm that is not a signature one
                // (RSA-OAEP...), never verify tokens.
                if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
                    continue;
                }
                let alg = match jwk.common.key_algorithm {
                    Some(alg) => match format!("{alg:?}").parse::<Algorithm>() {
                        Ok(alg) => Some(alg),
                        Err(_) => continue,
                    },
                    None => None,
                };
                let key = DecodingKey::from_jwk(jwk).map_err(|e| {
                    ConfigError::key("auth.jwks_file", format!("key {i} is not usable: {e}"))
                })?;
                if let Some(alg) = alg
                    && alg.family() != key.family()
                {
                    return Err(ConfigError::key(
                        "auth.jwks_file",
                        format!("key {i} says `alg: {alg:?}`, which is not for its key type"),
                    ));
                }
                public.push(PublicKey {
                    kid: jwk.common.key_id.clone(),
                    alg,
                    key,
                });
            }
            if public.len() == before {
                return Err(ConfigError::key(
                    "auth.jwks_file",
                    format!("`{}` has no signature key", path.display()),
                ));
            }
        }
        // Dev mode with no HMAC secret: one made up for this process, so that the demo page
        // can get a token for the name it picks (`GET /dev/token`).
        let dev_secret = match (&hmac, config.dev) {
            (None, true) => {
                let mut secret = vec![0u8; 32];
                getrandom::fill(&mut secret).map_err(|e| {
                    ConfigError::key("dev", format!("no randomness for the dev tokens: {e}"))
                })?;
                Some(secret)
            }
            _ => None,
        };
        let hmac = match &dev_secret {
            Some(secret) => Some(
                DecodingKey::from_secret(secret)
                    .map_err(|e| ConfigError::key("dev", format!("dev token key: {e}")))?,
            ),
            None => hmac,
        };
        let mut families: Vec<AlgorithmFamily> = public.iter().map(|k| k.key.family()).collect();
        if hmac.is_some() {
            families.push(AlgorithmFamily::Hmac);
        }
        let algorithms = if auth.algorithms.is_empty() {
            let mut all = Vec::new();
            for family in &families {
                for alg in family.algorithms() {
                    if !all.contains(alg) {
                        all.push(*alg);
                    }
                }
            }
            all
        } else {
            for alg in &auth.algorithms {
                if !families.contains(&alg.family()) {
                    return Err(ConfigError::key(
                        "auth.algorithms",
                        format!(
                            "lists {alg:?} but no key of its family is configured ({}); \
                             remove it or add the key",
                            match alg.family() {
                                AlgorithmFamily::Hmac => "auth.hmac_secret",
                                _ => "auth.public_key or auth.jwks_file",
                            }
                        ),
                    ));
                }
            }
            auth.algorithms.clone()
        };
        let algorithms = match &dev_secret {
            Some(_) if !algorithms.contains(&Algorithm::HS256) => {
                [algorithms, vec![Algorithm::HS256]].concat()
            }
            _ => algorithms,
        };
        Ok(Authenticator {
            hmac,
            dev_secret,
            public,
            algorithms,
            dev: config.dev,
            auth: auth.clone(),
        })
    }

    /// Dev mode without `auth.hmac_secret`: a token for `user` (HS256, an hour), signed
    /// with this process's random secret, what the demo page connects with. `None`
    /// outside dev mode, or with a configured secret (then tokens come from your issuer).
    pub fn dev_token(&self, user: &str) -> Option<Result<String, AuthError>> {
        let secret = self.dev_secret.as_ref()?;
        Some(check_user_id(user).and_then(|()| {
            let exp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
                + 3600;
            let claims = serde_json::json!({ "sub": user, "exp": exp });
            let cannot = |e: jsonwebtoken::errors::Error| {
                AuthError::new("invalid_token", format!("cannot sign a dev token: {e}"))
            };
            let key = jsonwebtoken::EncodingKey::from_secret(secret).map_err(cannot)?;
            jsonwebtoken::encode(&jsonwebtoken::Header::new(Algorithm::HS256), &claims, &key)
                .map_err(cannot)
        }))
    }

    /// The algorithms accepted.
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    /// [`authenticate`](Self::authenticate) with the request's parts.
    pub fn authenticate_parts(&self, parts: &Parts) -> Result<Identity, AuthError> {
        self.authenticate(&parts.headers, &parts.uri)
    }

    /// Authenticates an upgrade request by its headers and URI: the token from the
    /// `Authorization` header, the `Sec-WebSocket-Protocol` offer or `?token=` (when
    /// configured), or the dev mode's identities.
    pub fn authenticate(&self, headers: &HeaderMap, uri: &Uri) -> Result<Identity, AuthError> {
        if let Some(value) = headers.get(header::AUTHORIZATION) {
            let value = value.to_str().unwrap_or("");
            let token = value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    AuthError::new(
                        "invalid_token",
                        "the Authorization header is not `Bearer <token>`",
                    )
                })?;
            return self.verify(token);
        }
        if let Some(token) = protocol_token(headers) {
            return self.verify(token);
        }
        let query = uri.query().unwrap_or("");
        let param = |name: &str| {
            form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        if let Some(token) = param("token") {
            if !self.auth.query_token {
                return Err(AuthError::new(
                    "query_token_disabled",
                    "tokens in ?token= are not accepted here: send it in the Authorization \
                     header or in Sec-WebSocket-Protocol (bearer.<token>), or set \
                     auth.query_token = true",
                ));
            }
            return self.verify(&token);
        }
        if let Some(user_id) = param("user_id") {
            if !(self.dev && self.auth.dev_user_id) {
                return Err(AuthError::new(
                    "user_id_disabled",
                    "?user_id= is only accepted in dev mode with auth.dev_user_id = true: \
                     send a token instead",
                ));
            }
            check_user_id(&user_id)?;
            return Ok(Identity {
                user_id,
                source: IdentitySource::DevUserId,
                ..Identity::anonymous()
            });
        }
        if self.dev {
            return Ok(Identity::anonymous());
        }
        Err(AuthError::new(
            "missing_token",
            "no token: send `Authorization: Bearer <token>`, or offer `bearer.<token>` in \
             Sec-WebSocket-Protocol",
        ))
    }

    /// Verifies a JWT and returns its identity.
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| {
            if declares_alg_none(token) {
                AuthError::new(
                    "algorithm_not_allowed",
                    "tokens with `alg: none` are never accepted: sign the token",
                )
            } else {
                AuthError::new(
                    "invalid_token",
                    format!(
                        "the token is malformed ({e:?}): a JWT is three base64url parts, \
                         header.claims.signature"
                    ),
                )
            }
        })?;
        let alg = header.alg;
        if !self.algorithms.contains(&alg) {
            return Err(AuthError::new(
                "algorithm_not_allowed",
                format!(
                    "tokens signed with {alg:?} are not accepted here (accepted: {:?})",
                    self.algorithms
                ),
            ));
        }
        let mut validation = Validation::new(alg);
        validation.algorithms = vec![alg];
        validation.leeway = self.auth.leeway_secs;
        validation.validate_nbf = true;
        validation.validate_exp = true;
        // A configured `iss` or `aud` must be in the token: jsonwebtoken checks them only
        // when present otherwise.
        let mut required = vec!["sub"];
        if self.auth.require_exp {
            required.push("exp");
        }
        match &self.auth.issuer {
            Some(iss) => {
                validation.set_issuer(&[iss]);
                required.push("iss");
            }
            None => validation.iss = None,
        }
        match &self.auth.audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);

        let candidates: Vec<&DecodingKey> = if alg.family() == AlgorithmFamily::Hmac {
            self.hmac.iter().collect()
        } else {
            let of_family = self
                .public
                .iter()
                .filter(|k| k.key.family() == alg.family() && k.alg.is_none_or(|a| a == alg));
            match &header.kid {
                Some(kid) if self.public.iter().any(|k| k.kid.is_some()) => {
                    let keys: Vec<&DecodingKey> = of_family
                        .filter(|k| k.kid.as_deref() == Some(kid.as_str()))
                        .map(|k| &k.key)
                        .collect();
                    if keys.is_empty() {
                        return Err(AuthError::new(
                            "unknown_key",
                            format!("no key with kid `{kid}` for {alg:?} tokens"),
                        ));
                    }
                    keys
                }
                _ => of_family.map(|k| &k.key).collect(),
            }
        };
        let mut last = AuthError::new(
            "algorithm_not_allowed",
            format!("no key is configured for {alg:?} tokens"),
        );
        for key in candidates {
            match jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation) {
                Ok(data) => return self.identity(data.claims),
                Err(e) => {
                    last = map_error(e.kind());
                    if last.code != "invalid_signature" {
                        break;
                    }
                }
            }
        }
        Err(last)
    }

    fn identity(&self, mut claims: Map<String, Value>) -> Result<Identity, AuthError> {
        let user_id = match claims.remove("sub") {
            Some(Value::String(s)) => s,
            _ => {
                return Err(AuthError::new(
                    "invalid_token",
                    "the token's `sub` claim (the user id) must be a string",
                ));
            }
        };
        check_user_id(&user_id)?;
        let rooms = match claims.remove(&self.auth.rooms_claim) {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => Some(
                items
                    .into_iter()
                    .map(|item| match item {
                        Value::String(s) => Ok(s),
                        _ => Err(()),
                    })
                    .collect::<Result<Vec<_>, ()>>()
                    .map_err(|()| self.bad_rooms_claim())?,
            ),
            Some(_) => return Err(self.bad_rooms_claim()),
        };
        let meta = claims.remove(&self.auth.meta_claim);
        let expires_at = claims.get("exp").and_then(Value::as_u64);
        Ok(Identity {
            user_id,
            source: IdentitySource::Token,
            rooms,
            meta,
            expires_at,
        })
    }

    fn bad_rooms_claim(&self) -> AuthError {
        AuthError::new(
            "invalid_token",
            format!(
                "the token's `{}` claim must be a list of room patterns (strings)",
                self.auth.rooms_claim
            ),
        )
    }
}

fn check_user_id(user_id: &str) -> Result<(), AuthError> {
    if user_id.is_empty() || user_id.len() > MAX_USER_ID_LEN || user_id.contains(char::is_control) {
        return Err(AuthError::new(
            "invalid_user_id",
            format!("the user id must be 1 to {MAX_USER_ID_LEN} bytes without control characters"),
        ));
    }
    Ok(())
}

fn map_error(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::ExpiredSignature => {
            AuthError::new("token_expired", "the token has expired: get a new one")
        }
        ErrorKind::ImmatureSignature => AuthError::new(
            "token_not_yet_valid",
            "the token is not valid yet (nbf is in the future): check the clocks",
        ),
        ErrorKind::InvalidSignature => AuthError::new(
            "invalid_signature",
            "the token's signature does not verify with the configured key",
        ),
        ErrorKind::InvalidIssuer => AuthError::new(
            "invalid_issuer",
            "the token's `iss` is not the one configured",
        ),
        ErrorKind::InvalidAudience => AuthError::new(
            "invalid_audience",
            "the token's `aud` is not the one configured",
        ),
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => AuthError::new(
            "algorithm_not_allowed",
            "the token's algorithm does not match the key",
        ),
        ErrorKind::MissingRequiredClaim(claim) => AuthError::new(
            "invalid_token",
            format!("the token has no `{claim}` claim, which is required"),
        ),
        ErrorKind::InvalidClaimFormat(claim) => AuthError::new(
            "invalid_token",
            format!("the token's `{claim}` claim has the wrong type"),
        ),
        other => AuthError::new("invalid_token", format!("the token is invalid: {other:?}")),
    }
}

/// Whether the token's header says `"alg": "none"` (any case), for a clear refusal.
fn declares_alg_none(token: &str) -> bool {
    let Some(head) = token.split('.').next() else {
        return false;
    };
    URL_SAFE_NO_PAD
        .decode(head.trim_end_matches('='))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Map<String, Value>>(&bytes).ok())
        .and_then(|h| h.get("alg").and_then(Value::as_str).map(str::to_owned))
        .is_some_and(|alg| alg.eq_ignore_ascii_case("none"))
}

/// The entries of the `Sec-WebSocket-Protocol` offer, in order.
fn offered_protocols(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
}

/// The token of a `bearer.<jwt>` entry of the `Sec-WebSocket-Protocol` offer, if any.
pub fn protocol_token(headers: &HeaderMap) -> Option<&str> {
    offered_protocols(headers)
        .find_map(|p| p.strip_prefix(PROTOCOL_TOKEN_PREFIX))
        .filter(|t| !t.is_empty())
}

/// The subprotocol the 101 answers with: the first offered entry that is not a token
/// (`bearer.…`), so that a token is never echoed; `None` when there is none.
pub fn choose_subprotocol(headers: &HeaderMap) -> Option<&str> {
    offered_protocols(headers).find(|p| !p.starts_with(PROTOCOL_TOKEN_PREFIX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;
    use std::path::PathBuf;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn keys(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/keys")
            .join(name)
    }

    fn pem(name: &str) -> Vec<u8> {
        std::fs::read(keys(name)).unwrap()
    }

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    fn claims() -> Value {
        json!({"sub": "alice", "exp": now() + 600})
    }

    fn sign(alg: Algorithm, key: &EncodingKey, claims: &Value) -> String {
        jsonwebtoken::encode(&Header::new(alg), claims, key).unwrap()
    }

    fn hs(claims: &Value) -> String {
        sign(
            Algorithm::HS256,
            &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
            claims,
        )
    }

    fn production() -> Config {
        Config {
            dev: false,
            auth: AuthConfig {
                hmac_secret: Some(SECRET.to_owned()),
                ..AuthConfig::default()
            },
            ..Config::default()
        }
    }

    fn authenticator(config: &Config) -> Authenticator {
        Authenticator::from_config(config).unwrap()
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        h
    }

    fn code(result: Result<Identity, AuthError>) -> &'static str {
        result.unwrap_err().code
    }

    #[test]
    fn hmac_algorithms() {
        let a = authenticator(&production());
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let token = sign(
                alg,
                &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
                &json!({"sub": "alice", "exp": now() + 60, "rooms": ["chat:*"], "meta": {"name": "Alice"}}),
            );
            let id = a.verify(&token).unwrap();
            assert_eq!(id.user_id, "alice");
            assert_eq!(id.source, IdentitySource::Token);
            assert_eq!(id.rooms.as_deref(), Some(&["chat:*".to_owned()][..]));
            assert_eq!(id.meta, Some(json!({"name": "Alice"})));
            assert!(id.requester().identified);
        }
        let other = sign(
            Algorithm::HS256,
            &EncodingKey::from_secret(b"another secret, another secret!!").unwrap(),
            &claims(),
        );
        assert_eq!(code(a.verify(&other)), "invalid_signature");
    }

    #[test]
    fn public_keys_from_pem() {
        for (public, private, alg) in [
            ("es256_public.pem", "es256_private.pem", Algorithm::ES256),
            ("rsa_public.pem", "rsa_private.pem", Algorithm::RS256),
            ("rsa_public.pem", "rsa_private.pem", Algorithm::PS384),
            (
                "ed25519_public.pem",
                "ed25519_private.pem",
                Algorithm::EdDSA,
            ),
        ] {
            let mut config = production();
            config.auth.hmac_secret = None;
            config.auth.public_key = Some(keys(public));
            let a = authenticator(&config);
            let key = match alg.family() {
                AlgorithmFamily::Ec => EncodingKey::from_ec_pem(&pem(private)),
                AlgorithmFamily::Rsa => EncodingKey::from_rsa_pem(&pem(private)),
                _ => EncodingKey::from_ed_pem(&pem(private)),
            }
            .unwrap();
            let id = a.verify(&sign(alg, &key, &claims())).unwrap();
            assert_eq!(id.user_id, "alice", "{alg:?}");
            // An HS256 token is refused, also one whose secret is the public key itself
            // (algorithm confusion).
            let confused = sign(
                Algorithm::HS256,
                &EncodingKey::from_secret(&pem(public)).unwrap(),
                &claims(),
            );
            assert_eq!(
                code(a.verify(&confused)),
                "algorithm_not_allowed",
                "{alg:?}"
            );
        }
    }

    #[test]
    fn wrong_signing_key() {
        let mut config = production();
        config.auth.public_key = Some(keys("es256_public.pem"));
        let a = authenticator(&config);
        let other = EncodingKey::from_ec_pem(&pem("es256_other_private.pem")).unwrap();
        assert_eq!(
            code(a.verify(&sign(Algorithm::ES256, &other, &claims()))),
            "invalid_signature"
        );
    }

    #[test]
    fn confusion_with_both_key_kinds() {
        // With a secret and a public key, an HS256 token signed with the public key's bytes
        // is checked against the secret only.
        let mut config = production();
        config.auth.public_key = Some(keys("rsa_public.pem"));
        let a = authenticator(&config);
        let confused = sign(
            Algorithm::HS256,
            &EncodingKey::from_secret(&pem("rsa_public.pem")).unwrap(),
            &claims(),
        );
        assert_eq!(code(a.verify(&confused)), "invalid_signature");
        // An ES256 token against an RSA key: no key of that family.
        let es = EncodingKey::from_ec_pem(&pem("es256_private.pem")).unwrap();
        assert_eq!(
            code(a.verify(&sign(Algorithm::ES256, &es, &claims()))),
            "algorithm_not_allowed"
        );
    }

    #[test]
    fn configured_algorithms() {
        let mut config = production();
        config.auth.algorithms = vec![Algorithm::HS512];
        let a = authenticator(&config);
        assert_eq!(a.algorithms(), [Algorithm::HS512]);
        assert_eq!(code(a.verify(&hs(&claims()))), "algorithm_not_allowed");

        config.auth.algorithms = vec![Algorithm::RS256];
        let e = Authenticator::from_config(&config).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("auth.algorithms"));
    }

    #[test]
    fn alg_none_is_refused() {
        let a = authenticator(&production());
        let enc = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
        for alg in ["none", "None", "NONE"] {
            let token = format!(
                "{}.{}.",
                enc(json!({"alg": alg, "typ": "JWT"})),
                enc(claims())
            );
            assert_eq!(code(a.verify(&token)), "algorithm_not_allowed", "{alg}");
            let with_sig = format!("{token}c2ln");
            assert_eq!(code(a.verify(&with_sig)), "algorithm_not_allowed");
        }
    }

    #[test]
    fn jwks() {
        let mut config = production();
        config.auth.hmac_secret = None;
        config.auth.jwks_file = Some(keys("jwks.json"));
        let a = authenticator(&config);
        let key = EncodingKey::from_ec_pem(&pem("es256_private.pem")).unwrap();
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("test-es256".to_owned());
        let token = jsonwebtoken::encode(&header, &claims(), &key).unwrap();
        assert_eq!(a.verify(&token).unwrap().user_id, "alice");
        // Without kid: every key of the family is tried.
        assert!(a.verify(&sign(Algorithm::ES256, &key, &claims())).is_ok());
        header.kid = Some("other".to_owned());
        let token = jsonwebtoken::encode(&header, &claims(), &key).unwrap();
        assert_eq!(code(a.verify(&token)), "unknown_key");
        assert_eq!(code(a.verify(&hs(&claims()))), "algorithm_not_allowed");
        // A JWK's `alg` is the only algorithm it verifies: the same key marked ES384 does
        // not verify an ES256 token (same family).
        let text = std::fs::read_to_string(keys("jwks.json")).unwrap();
        let path = std::env::temp_dir().join(format!("tether-jwks-{}.json", std::process::id()));
        std::fs::write(&path, text.replace("\"ES256\"", "\"ES384\"")).unwrap();
        config.auth.jwks_file = Some(path.clone());
        let a = authenticator(&config);
        std::fs::remove_file(path).unwrap();
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("test-es256".to_owned());
        let token = jsonwebtoken::encode(&header, &claims(), &key).unwrap();
        assert_eq!(code(a.verify(&token)), "unknown_key");
    }

    #[test]
    fn bad_key_files() {
        let mut config = production();
        config.auth.public_key = Some(keys("jwks.json"));
        let e = Authenticator::from_config(&config).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("auth.public_key"), "{e}");
        let mut config = production();
        config.auth.jwks_file = Some(keys("es256_public.pem"));
        let e = Authenticator::from_config(&config).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("auth.jwks_file"), "{e}");
    }

    #[test]
    fn time_claims() {
        let a = authenticator(&production()); // leeway 5 s
        let t = now();
        assert_eq!(
            code(a.verify(&hs(&json!({"sub": "a", "exp": t - 60})))),
            "token_expired"
        );
        assert!(
            a.verify(&hs(&json!({"sub": "a", "exp": t - 2}))).is_ok(),
            "leeway"
        );
        assert_eq!(
            code(a.verify(&hs(&json!({"sub": "a", "exp": t + 600, "nbf": t + 60})))),
            "token_not_yet_valid"
        );
        assert!(
            a.verify(&hs(&json!({"sub": "a", "exp": t + 600, "nbf": t + 2})))
                .is_ok()
        );
        assert_eq!(code(a.verify(&hs(&json!({"sub": "a"})))), "invalid_token");
        assert_eq!(
            code(a.verify(&hs(&json!({"sub": "a", "exp": "tomorrow"})))),
            "invalid_token"
        );
        let mut config = production();
        config.auth.require_exp = false;
        config.auth.leeway_secs = 0;
        let a = authenticator(&config);
        assert!(a.verify(&hs(&json!({"sub": "a"}))).is_ok());
        assert_eq!(
            code(a.verify(&hs(&json!({"sub": "a", "exp": t - 2})))),
            "token_expired"
        );
    }

    #[test]
    fn issuer_and_audience() {
        let mut config = production();
        config.auth.issuer = Some("https://auth.example.com".to_owned());
        config.auth.audience = Some("tether".to_owned());
        let a = authenticator(&config);
        let t = now() + 60;
        let ok = json!({"sub": "a", "exp": t, "iss": "https://auth.example.com", "aud": "tether"});
        assert!(a.verify(&hs(&ok)).is_ok());
        let list = json!({"sub": "a", "exp": t, "iss": "https://auth.example.com", "aud": ["x", "tether"]});
        assert!(a.verify(&hs(&list)).is_ok());
        let bad_iss = json!({"sub": "a", "exp": t, "iss": "https://evil", "aud": "tether"});
        assert_eq!(code(a.verify(&hs(&bad_iss))), "invalid_issuer");
        let bad_aud =
            json!({"sub": "a", "exp": t, "iss": "https://auth.example.com", "aud": "other"});
        assert_eq!(code(a.verify(&hs(&bad_aud))), "invalid_audience");
        let no_iss = json!({"sub": "a", "exp": t, "aud": "tether"});
        assert_eq!(
            code(a.verify(&hs(&no_iss))),
            "invalid_token",
            "iss is required"
        );
        let no_aud = json!({"sub": "a", "exp": t, "iss": "https://auth.example.com"});
        assert_eq!(
            code(a.verify(&hs(&no_aud))),
            "invalid_token",
            "aud is required"
        );
        // Not configured: an aud in the token is not checked.
        let a = authenticator(&production());
        assert!(a.verify(&hs(&bad_aud)).is_ok());
    }

    #[test]
    fn claims_shapes() {
        let a = authenticator(&production());
        let t = now() + 60;
        assert_eq!(code(a.verify(&hs(&json!({"exp": t})))), "invalid_token");
        assert_eq!(
            code(a.verify(&hs(&json!({"sub": 5, "exp": t})))),
            "invalid_token"
        );
        assert_eq!(
            code(a.verify(&hs(&json!({"sub": "", "exp": t})))),
            "invalid_user_id"
        );
        assert_eq!(
            code(a.verify(&hs(&json!({"sub": "a", "exp": t, "rooms": "all"})))),
            "invalid_token"
        );
        assert_eq!(
            code(a.verify(&hs(&json!({"sub": "a", "exp": t, "rooms": [1]})))),
            "invalid_token"
        );
        let mut config = production();
        config.auth.rooms_claim = "channels".to_owned();
        config.auth.meta_claim = "info".to_owned();
        let id = authenticator(&config)
            .verify(&hs(
                &json!({"sub": "a", "exp": t, "channels": ["x"], "info": 3}),
            ))
            .unwrap();
        assert_eq!(id.rooms, Some(vec!["x".to_owned()]));
        assert_eq!(id.meta, Some(json!(3)));
        assert_eq!(id.expires_at, Some(t));
        for garbage in ["", "a", "a.b", "a.b.c", "....", "eyJ.eyJ.sig", "\u{0}"] {
            assert_eq!(code(a.verify(garbage)), "invalid_token", "{garbage:?}");
        }
    }

    #[test]
    fn token_sources() {
        let a = authenticator(&production());
        let token = hs(&claims());
        let uri: Uri = "/ws".parse().unwrap();
        assert_eq!(
            a.authenticate(&bearer(&token), &uri).unwrap().user_id,
            "alice"
        );
        assert_eq!(code(a.authenticate(&bearer("nope"), &uri)), "invalid_token");
        let mut basic = HeaderMap::new();
        basic.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic YTpi"),
        );
        assert_eq!(code(a.authenticate(&basic, &uri)), "invalid_token");
        assert_eq!(
            code(a.authenticate(&HeaderMap::new(), &uri)),
            "missing_token"
        );

        let mut proto = HeaderMap::new();
        proto.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_str(&format!("tether.v1, bearer.{token}")).unwrap(),
        );
        assert_eq!(a.authenticate(&proto, &uri).unwrap().user_id, "alice");
        assert_eq!(choose_subprotocol(&proto), Some("tether.v1"));
        assert_eq!(protocol_token(&proto), Some(token.as_str()));

        let query: Uri = format!("/ws?token={token}").parse().unwrap();
        assert_eq!(
            code(a.authenticate(&HeaderMap::new(), &query)),
            "query_token_disabled"
        );
        let mut config = production();
        config.auth.query_token = true;
        let a = authenticator(&config);
        assert_eq!(
            a.authenticate(&HeaderMap::new(), &query).unwrap().user_id,
            "alice"
        );
        let parts = axum::http::Request::get(query)
            .body(())
            .unwrap()
            .into_parts()
            .0;
        assert_eq!(a.authenticate_parts(&parts).unwrap().user_id, "alice");
    }

    #[test]
    fn subprotocol_never_echoes_a_token() {
        let mut h = HeaderMap::new();
        h.append(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("bearer.abc"),
        );
        assert_eq!(choose_subprotocol(&h), None);
        h.append(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("chat, tether.v1"),
        );
        assert_eq!(choose_subprotocol(&h), Some("chat"));
        assert_eq!(protocol_token(&h), Some("abc"));
        assert_eq!(choose_subprotocol(&HeaderMap::new()), None);
    }

    #[test]
    fn dev_mode() {
        let uri: Uri = "/ws?user_id=bob".parse().unwrap();
        let plain: Uri = "/ws".parse().unwrap();
        // Dev mode without dev_user_id: anonymous, and ?user_id= is refused.
        let a = authenticator(&Config::default());
        let anon = a.authenticate(&HeaderMap::new(), &plain).unwrap();
        assert_eq!(anon, Identity::anonymous());
        assert!(!anon.requester().identified);
        assert_eq!(
            code(a.authenticate(&HeaderMap::new(), &uri)),
            "user_id_disabled"
        );
        // With it.
        let mut config = Config::default();
        config.auth.dev_user_id = true;
        let a = authenticator(&config);
        let id = a.authenticate(&HeaderMap::new(), &uri).unwrap();
        assert_eq!(id.user_id, "bob");
        assert_eq!(id.source, IdentitySource::DevUserId);
        assert!(id.requester().identified);
        let empty: Uri = "/ws?user_id=".parse().unwrap();
        assert_eq!(
            code(a.authenticate(&HeaderMap::new(), &empty)),
            "invalid_user_id"
        );
        // Not outside dev mode, even with dev_user_id.
        let mut config = production();
        config.auth.dev_user_id = true;
        let a = authenticator(&config);
        assert_eq!(
            code(a.authenticate(&HeaderMap::new(), &uri)),
            "user_id_disabled"
        );
        // A bad token in dev mode is still refused (not downgraded to anonymous).
        let mut config = Config::default();
        config.auth.hmac_secret = Some(SECRET.to_owned());
        let a = authenticator(&config);
        assert_eq!(
            code(a.authenticate(&bearer("bad"), &plain)),
            "invalid_token"
        );
    }

    #[test]
    fn errors_are_401_json() {
        let e = AuthError::new("missing_token", "no token").to_http();
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
        assert_eq!(e.code, "missing_token");
    }
}
