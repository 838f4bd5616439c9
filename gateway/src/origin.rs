//! The `Origin` check of WebSocket upgrades (cross-site WebSocket hijacking).
//!
//! - A request without `Origin` (not a browser) passes: the check protects browsers'
//!   cookies and ambient credentials, which other clients do not send on their own.
//! - Same-origin always passes: the `Origin`'s host and port equal the `Host` header's.
//! - Origins in the allowlist pass: exact (`https://app.example.com`, with the port if it is
//!   not the scheme's default) or wildcard subdomains (`https://*.example.com` matches
//!   `https://a.example.com` and `https://a.b.example.com`, not `https://example.com`);
//!   `*` alone allows every origin.
//! - In dev mode, `localhost`, `127.0.0.1` and `[::1]` on any port pass too.
//!
//! Anything else, `Origin: null` included, is refused with 403 and a JSON body.

use crate::error::HttpError;
use axum::http::{HeaderMap, StatusCode, header};

/// An allowlist entry: a scheme, a host (maybe `*.` + a domain) and an optional port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPattern {
    /// `*`: every origin.
    Any,
    /// One origin, or the subdomains of a domain.
    Site {
        /// `http` or `https`, lowercase.
        scheme: String,
        /// The host, lowercase; for a wildcard, the domain after `*.`.
        host: String,
        /// Whether the pattern was `scheme://*.host`.
        wildcard: bool,
        /// The port, when given and not the scheme's default.
        port: Option<u16>,
    },
}

impl OriginPattern {
    /// Parses an allowlist entry, with an error message saying what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text == "*" {
            return Ok(OriginPattern::Any);
        }
        let Some(origin) = Origin::parse(text.strip_suffix('/').unwrap_or(text)) else {
            return Err(format!(
                "`{text}` is not an origin: write scheme://host[:port], e.g. \
                 https://app.example.com or https://*.example.com"
            ));
        };
        let (host, wildcard) = match origin.host.strip_prefix("*.") {
            Some(domain) => (domain.to_owned(), true),
            None => (origin.host, false),
        };
        if host.is_empty() || host.contains('*') {
            return Err(format!(
                "`{text}`: a wildcard is only allowed as the first label (https://*.example.com)"
            ));
        }
        Ok(OriginPattern::Site {
            scheme: origin.scheme,
            host,
            wildcard,
            port: origin.port,
        })
    }

    /// Whether `origin` matches this pattern.
    pub fn matches(&self, origin: &Origin) -> bool {
        match self {
            OriginPattern::Any => true,
            OriginPattern::Site {
                scheme,
                host,
                wildcard,
                port,
            } => {
                *scheme == origin.scheme
                    && *port == origin.port
                    && if *wildcard {
                        origin
                            .host
                            .strip_suffix(host.as_str())
                            .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.'))
                    } else {
                        *host == origin.host
                    }
            }
        }
    }
}

/// A parsed `Origin` header value (RFC 6454): scheme, host, port (none when it is the
/// scheme's default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Lowercase scheme.
    pub scheme: String,
    /// Lowercase host (an IPv6 address keeps its brackets).
    pub host: String,
    /// The port if it is not the scheme's default.
    pub port: Option<u16>,
}

impl Origin {
    /// Parses `scheme://host[:port]`; `None` for anything else (a path, `null`, garbage).
    pub fn parse(text: &str) -> Option<Origin> {
        let (scheme, rest) = text.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        {
            return None;
        }
        let (host, port) = split_host_port(rest)?;
        let port = port.filter(|&p| Some(p) != default_port(&scheme));
        Some(Origin { scheme, host, port })
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

/// Splits `host[:port]` (the host may be `[v6]`), lowercasing the host; `None` when it is
/// not one (empty host, a path, a bad port).
fn split_host_port(text: &str) -> Option<(String, Option<u16>)> {
    if text.is_empty() || text.contains(['/', '?', '#', '@', ' ']) {
        return None;
    }
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &text[..end + 2];
        match &rest[end + 1..] {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None => None,
    };
    Some((host.to_ascii_lowercase(), port))
}

/// The origin policy: the parsed allowlist and whether dev mode adds localhost.
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    allowed: Vec<OriginPattern>,
    dev: bool,
}

impl OriginPolicy {
    /// The policy of `origins` (allowlist entries, see [`OriginPattern::parse`]) and `dev`.
    pub fn new(origins: &[String], dev: bool) -> Result<Self, String> {
        Ok(OriginPolicy {
            allowed: origins
                .iter()
                .map(|o| OriginPattern::parse(o))
                .collect::<Result<_, _>>()?,
            dev,
        })
    }

    /// The policy of a checked configuration (its origins parsed at validation).
    pub fn from_config(config: &crate::config::Config) -> Self {
        OriginPolicy::new(&config.origins, config.dev).unwrap_or_else(|_| OriginPolicy {
            allowed: Vec::new(),
            dev: config.dev,
        })
    }

    /// Checks an upgrade request's headers: `Ok` or a 403 with code `origin_not_allowed`.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), HttpError> {
        let Some(value) = headers.get(header::ORIGIN) else {
            return Ok(());
        };
        let text = value.to_str().unwrap_or("");
        if let Some(origin) = Origin::parse(text)
            && (self.same_origin(&origin, headers)
                || self.allowed.iter().any(|p| p.matches(&origin))
                || (self.dev && is_localhost(&origin.host)))
        {
            return Ok(());
        }
        Err(HttpError::new(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            format!(
                "Origin `{}` is not allowed: add it to the `origins` setting (TETHER_ORIGINS), \
                 or connect from the server's own origin",
                text.escape_debug()
            ),
        ))
    }

    fn same_origin(&self, origin: &Origin, headers: &HeaderMap) -> bool {
        let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
            return false;
        };
        let Some((host, port)) = split_host_port(host) else {
            return false;
        };
        let port = port.filter(|&p| Some(p) != default_port(&origin.scheme));
        host == origin.host && port == origin.port
    }
}

fn is_localhost(host: &str) -> bool {
    host == "localhost" || host.ends_with(".localhost") || host == "127.0.0.1" || host == "[::1]"
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        h
    }

    fn policy(origins: &[&str], dev: bool) -> OriginPolicy {
        let origins: Vec<String> = origins.iter().map(|s| s.to_string()).collect();
        OriginPolicy::new(&origins, dev).unwrap()
    }

    #[test]
    fn no_origin_passes() {
        assert!(policy(&[], false).check(&headers(None, "x.com")).is_ok());
    }

    #[test]
    fn same_origin_by_default() {
        let p = policy(&[], false);
        assert!(
            p.check(&headers(
                Some("https://chat.example.com"),
                "chat.example.com"
            ))
            .is_ok()
        );
        assert!(
            p.check(&headers(
                Some("https://chat.example.com"),
                "Chat.Example.com:443"
            ))
            .is_ok()
        );
        assert!(
            p.check(&headers(Some("http://a.com:8080"), "a.com:8080"))
                .is_ok()
        );
        assert!(
            p.check(&headers(Some("http://a.com:8080"), "a.com:9090"))
                .is_err()
        );
        assert!(
            p.check(&headers(Some("https://evil.com"), "chat.example.com"))
                .is_err()
        );
        assert!(
            p.check(&headers(Some("http://localhost:3000"), "a.com"))
                .is_err(),
            "not in production"
        );
        assert!(p.check(&headers(Some("null"), "a.com")).is_err());
        assert!(p.check(&headers(Some("garbage"), "a.com")).is_err());
    }

    #[test]
    fn localhost_in_dev_mode() {
        let p = policy(&[], true);
        for o in [
            "http://localhost:3000",
            "http://127.0.0.1",
            "https://[::1]:8443",
            "http://app.localhost:1",
        ] {
            assert!(
                p.check(&headers(Some(o), "tether.example.com")).is_ok(),
                "{o}"
            );
        }
        assert!(
            p.check(&headers(Some("http://localhost.evil.com"), "a.com"))
                .is_err()
        );
        assert!(p.check(&headers(Some("http://evil.com"), "a.com")).is_err());
    }

    #[test]
    fn allowlist() {
        let p = policy(
            &[
                "https://app.example.com",
                "https://*.example.org",
                "http://x.io:8080",
            ],
            false,
        );
        let ok = |o: &str| p.check(&headers(Some(o), "gateway.internal")).is_ok();
        assert!(ok("https://app.example.com"));
        assert!(ok("https://APP.example.com:443"));
        assert!(!ok("http://app.example.com"), "scheme matters");
        assert!(!ok("https://app.example.com:8443"), "port matters");
        assert!(!ok("https://evil-app.example.com"));
        assert!(ok("https://a.example.org"));
        assert!(ok("https://a.b.example.org"));
        assert!(!ok("https://example.org"), "a wildcard needs a subdomain");
        assert!(!ok("https://evilexample.org"));
        assert!(!ok("https://example.org.evil.com"));
        assert!(ok("http://x.io:8080"));
        assert!(!ok("http://x.io"));
        assert!(
            policy(&["*"], false)
                .check(&headers(Some("https://any.where"), "a"))
                .is_ok()
        );
    }

    #[test]
    fn refusal_is_403_json() {
        let e = policy(&[], false)
            .check(&headers(Some("https://evil.com"), "a.com"))
            .unwrap_err();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        assert_eq!(e.code, "origin_not_allowed");
        assert!(e.message.contains("https://evil.com"));
    }

    #[test]
    fn bad_patterns() {
        for bad in [
            "example.com",
            "https://",
            "https://a.com/path",
            "https://a.*.com",
            "https://*",
            "https://a.com:99999",
        ] {
            assert!(OriginPattern::parse(bad).is_err(), "{bad}");
        }
        assert!(OriginPattern::parse("https://a.com/").is_ok());
    }
}
