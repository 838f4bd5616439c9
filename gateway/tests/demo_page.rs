//! The demo chat at `/`: every file of gateway/static/ is served with its content type, is
//! the one embedded in the binary (byte for byte the file in the repository), and refers to
//! nothing outside the gateway (no CDN). Its behaviour in a browser is checked by
//! scripts/interop/demo.sh (headless Chromium against the `tether` binary).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tether_gateway::config::Config;
use tether_gateway::server::DEMO_FILES;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const TIMEOUT: Duration = Duration::from_secs(10);

struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// `GET path` with `Connection: close`, read to the end.
async fn get(addr: SocketAddr, path: &str) -> Reply {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut raw))
        .await
        .expect("the response within the timeout")
        .unwrap();
    let text = String::from_utf8(raw).expect("a UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    Reply {
        status: head[9..12].parse().unwrap(),
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

async fn serve() -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(tether_gateway::server::serve(
        Config::default(),
        listener,
        async {
            let _ = stopped.await;
        },
    ));
    (addr, stop)
}

fn static_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("static")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn the_demo_files_are_served_with_their_content_types() {
    let (addr, _stop) = serve().await;
    let expected = [
        ("/", "text/html; charset=utf-8", "index.html"),
        ("/app.js", "text/javascript; charset=utf-8", "app.js"),
        (
            "/tether-client.js",
            "text/javascript; charset=utf-8",
            "tether-client.js",
        ),
        ("/style.css", "text/css; charset=utf-8", "style.css"),
    ];
    assert_eq!(
        DEMO_FILES.len(),
        expected.len(),
        "every embedded file is checked here"
    );
    for (path, content_type, file) in expected {
        let reply = get(addr, path).await;
        assert_eq!(reply.status, 200, "GET {path}");
        assert_eq!(
            reply.header("content-type"),
            Some(content_type),
            "GET {path}"
        );
        assert_eq!(
            reply.header("x-content-type-options"),
            Some("nosniff"),
            "GET {path}"
        );
        assert_eq!(
            reply.body,
            static_file(file),
            "GET {path}: the embedded {file}"
        );
    }
    // Not a file server: anything else is the JSON 404.
    for path in [
        "/index.html",
        "/static/app.js",
        "/app.js/x",
        "/../Cargo.toml",
    ] {
        let reply = get(addr, path).await;
        assert_eq!(reply.status, 404, "GET {path}");
        assert_eq!(
            reply.header("content-type"),
            Some("application/json"),
            "GET {path}"
        );
    }
}

#[test]
fn the_page_uses_only_the_embedded_files() {
    let html = static_file("index.html");
    assert!(html.contains(r#"<script type="module" src="/app.js"></script>"#));
    assert!(html.contains(r#"<link rel="stylesheet" href="/style.css">"#));
    assert!(
        static_file("app.js").contains("from './tether-client.js'"),
        "app.js imports the client module"
    );
    assert!(static_file("tether-client.js").contains("export class TetherClient"));
    for (path, _, body) in DEMO_FILES {
        // No other host: no CDN, no font or analytics service (the protocol-relative `//`
        // included). The WebSocket URL is built from `location`.
        for needle in [
            "http://",
            "https://",
            "src=\"//",
            "href=\"//",
            "url(//",
            "cdn",
        ] {
            assert!(
                !body.to_ascii_lowercase().contains(needle),
                "{path} refers to `{needle}`"
            );
        }
    }
}
