//! `chat ADDR`: a chat server with users and rooms on the hub. Connect to
//! `ws://ADDR/chat?user=NAME` (no user: 401). Everyone starts in `lobby`. A client sends
//! `/join ROOM`, `/leave ROOM`, `/to USER TEXT` (to every session of a user), `/who ROOM`;
//! any other text goes to the rooms it is in, prefixed with its name.
//!
//! ```text
//! cargo run -p tether-hub --example chat -- 127.0.0.1:9003
//! ```

use tether_hub::{Handler, Hub, HubConfig, HubError, Identity, Payload, Policy, Session};
use tether_tokio::{Accept, Config, Reject, incoming};

struct Chat;

impl Handler for Chat {
    async fn on_connect(&self, hub: &Hub, session: &Session) -> Result<(), HubError> {
        hub.join(session.id(), "lobby")?;
        Ok(())
    }

    async fn on_message(&self, hub: &Hub, session: &Session, payload: Payload) {
        let (Some(text), Some(user)) = (payload.as_text(), session.user()) else {
            return;
        };
        let reply = |text: String| {
            hub.send_to(session.id(), text);
        };
        let mut words = text.splitn(3, ' ');
        match (words.next(), words.next(), words.next()) {
            (Some("/join"), Some(room), None) => match hub.join(session.id(), room) {
                Ok(_) => reply(format!("joined {room}")),
                Err(e) => reply(format!("error: {e}")),
            },
            (Some("/leave"), Some(room), None) => {
                hub.leave(session.id(), room);
                reply(format!("left {room}"))
            }
            (Some("/to"), Some(to), Some(text)) => {
                let sent = hub.send_to_user(to, format!("{user} (private): {text}"));
                reply(format!("sent to {} session(s) of {to}", sent.queued))
            }
            (Some("/who"), Some(room), None) => {
                let who: Vec<String> = hub
                    .members(room)
                    .iter()
                    .filter_map(|s| s.user().map(str::to_owned))
                    .collect();
                reply(format!("in {room}: {}", who.join(", ")))
            }
            _ => {
                for room in session.rooms() {
                    hub.publish(&room, format!("[{room}] {user}: {text}"));
                }
            }
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9003".to_owned());
    let mut config = HubConfig::default();
    config.policy = Policy::DropOldest;
    config.max_connections_per_user = 5;
    let hub = Hub::new(config);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("chat on ws://{}/chat?user=NAME", listener.local_addr()?);
    loop {
        let (stream, peer) = listener.accept().await?;
        let hub = hub.clone();
        tokio::spawn(async move {
            let Ok(request) = incoming(stream, Config::default()).peer_addr(peer).await else {
                return;
            };
            let user = request
                .request()
                .query_param("user")
                .map(|u| u.into_owned());
            let identity = match (request.request().path(), user) {
                ("/chat", Some(user)) if !user.is_empty() => {
                    Identity::new().with_user(user).with_peer_addr(peer)
                }
                _ => return drop(request.reject(Reject::new(401).body("?user=NAME is needed"))),
            };
            if let Err(e) = hub.check_admission(&identity) {
                return drop(request.reject(Reject::new(e.http_status()).body(e.to_string())));
            }
            let Ok(ws) = request.accept(Accept::new()) else {
                return;
            };
            let _ = hub.serve(ws, identity, Chat).await;
        });
    }
}
