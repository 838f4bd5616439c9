//! `Request::query`, `query_pairs` and `query_param`: the request target's query
//! (RFC 6455 §4.2.1 item 2: the resource name, path and query), decoded as
//! `application/x-www-form-urlencoded`.

use std::borrow::Cow;
use std::time::Instant;
use tether_core::{Config, Connection, Event, Request};

/// The request a server reports for an upgrade request to `target`.
fn request(target: &str) -> Box<Request> {
    let now = Instant::now();
    let mut server = Connection::server(Config::default(), now);
    let head = format!(
        "GET {target} HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    server.handle_input(now, head.as_bytes());
    match server.poll_event() {
        Some(Event::Request(r)) => r,
        other => panic!("{target}: {other:?}"),
    }
}

fn pairs(r: &Request) -> Vec<(String, String)> {
    r.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn owned(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn rfc6455_4_2_1_query_pairs_are_decoded_in_order() {
    let r = request("/chat?token=a%20b&x=1&token=2");
    assert_eq!(r.path(), "/chat");
    assert_eq!(r.query(), Some("token=a%20b&x=1&token=2"));
    assert_eq!(
        pairs(&r),
        owned(&[("token", "a b"), ("x", "1"), ("token", "2")])
    );
    // The first value wins.
    assert_eq!(r.query_param("token").as_deref(), Some("a b"));
    assert_eq!(r.query_param("x"), Some(Cow::Borrowed("1")));
    assert_eq!(r.query_param("missing"), None);
    // Names match after decoding, case-sensitively.
    assert_eq!(r.query_param("TOKEN"), None);
}

#[test]
fn rfc6455_4_2_1_plus_is_a_space_and_names_are_decoded() {
    let r = request("/?first+name=J%C3%BCrgen+M&a%26b=c%3Dd");
    assert_eq!(
        pairs(&r),
        owned(&[("first name", "Jürgen M"), ("a&b", "c=d")])
    );
    assert_eq!(r.query_param("first name").as_deref(), Some("Jürgen M"));
    assert_eq!(r.query_param("a&b").as_deref(), Some("c=d"));
}

#[test]
fn rfc6455_4_2_1_no_query() {
    let r = request("/chat");
    assert_eq!(r.query(), None);
    assert_eq!(r.query_pairs().count(), 0);
    assert_eq!(r.query_param("token"), None);
    // A `?` with nothing after it: an empty query, no pairs.
    let r = request("/chat?");
    assert_eq!(r.query(), Some(""));
    assert_eq!(r.query_pairs().count(), 0);
}

#[test]
fn rfc6455_4_2_1_empty_values_and_pairs() {
    let r = request("/?a=&b&&=v&c=1");
    assert_eq!(
        pairs(&r),
        owned(&[("a", ""), ("b", ""), ("", "v"), ("c", "1")])
    );
    assert_eq!(r.query_param("a").as_deref(), Some(""));
    assert_eq!(r.query_param("b").as_deref(), Some(""));
    assert_eq!(r.query_param("").as_deref(), Some("v"));
}

#[test]
fn rfc6455_4_2_1_invalid_percent_escapes_are_kept() {
    // Not a hex escape, a truncated one, and an escape that decodes to invalid UTF-8.
    let r = request("/?a=%zz&b=100%&c=%4&d=%FF");
    assert_eq!(r.query_param("a").as_deref(), Some("%zz"));
    assert_eq!(r.query_param("b").as_deref(), Some("100%"));
    assert_eq!(r.query_param("c").as_deref(), Some("%4"));
    assert_eq!(r.query_param("d").as_deref(), Some("\u{FFFD}"));
}
