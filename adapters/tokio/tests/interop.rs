//! Interop with real peers (issue #3): the tether-tokio client against the Python
//! `websockets` and Node.js `ws` echo servers of `scripts/interop/`, without and with
//! permessage-deflate (RFC 7692).
//!
//! Each test starts the peer's echo server as a child process on a free port (port 0; the
//! server prints the port it got), sends text (UTF-8 with 1- to 4-byte characters) and
//! binary messages of 0, 1, 125, 126, 65535, 65536 bytes, 1 MiB and 8 MiB (every payload
//! length encoding of RFC 6455 §5.2), checks that each comes back exactly, then closes with
//! 1000 and checks the closing handshake completed (RFC 6455 §7.1).
//!
//! Needs the peers that `bash scripts/setup.sh` installs (`.venv` with websockets,
//! `scripts/node/node_modules` with ws); the tests fail, naming that command, without them.
//! So they are not part of `cargo test --workspace`: they build only with the `interop`
//! feature, and scripts/test.sh runs them after the workspace tests with
//! `cargo test -p tether-tokio --features interop --test interop`.

use bytes::Bytes;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tether_tokio::{ClientRequest, CloseCode, CloseReason, Config, Message, Utf8Bytes};

/// Payload sizes: around the 7-bit, 16-bit and 64-bit length encodings, and large.
const SIZES: [usize; 8] = [0, 1, 125, 126, 65535, 65536, 1 << 20, 8 << 20];
/// Characters of 1, 2, 3 and 4 bytes in UTF-8.
const ALPHABET: [char; 12] = [
    'a', 'z', ' ', '~', 'é', 'ß', 'Ж', '€', '中', 'あ', '😀', '🎉',
];
/// Bound on one whole test (debug builds compress 8 MiB slowly).
const TEST_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a peer may take to print that it listens.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const SETUP_HINT: &str = "run `bash scripts/setup.sh` from the repository root first";

#[derive(Clone, Copy, Debug)]
enum Peer {
    /// `scripts/interop/py_echo_server.py` (Python `websockets`).
    Python,
    /// `scripts/interop/node_echo_server.js` (Node.js `ws`).
    Node,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root exists")
}

/// A peer's echo server, killed when dropped.
struct Server {
    child: Child,
    port: u16,
    name: &'static str,
    /// Everything the server printed to stderr, for failure messages.
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `peer`'s echo server on a free port and waits until it listens. Panics, with
    /// the setup hint, when the peer is not installed.
    fn start(peer: Peer, deflate: bool) -> Self {
        let root = repo_root();
        let (name, mut command) = match peer {
            Peer::Python => {
                let python = root.join(".venv/bin/python");
                let ok = Command::new(&python)
                    .args(["-c", "import websockets"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                assert!(
                    ok,
                    "Python websockets is missing ({} cannot import it): {SETUP_HINT}",
                    python.display()
                );
                let mut command = Command::new(python);
                command.arg(root.join("scripts/interop/py_echo_server.py"));
                ("py-echo-server", command)
            }
            Peer::Node => {
                let modules = root.join("scripts/node/node_modules");
                assert!(
                    modules.join("ws/package.json").is_file(),
                    "Node's ws is missing (no {}): {SETUP_HINT}",
                    modules.join("ws").display()
                );
                let node = Command::new("node")
                    .arg("--version")
                    .stdout(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                assert!(node, "`node` is not on PATH: {SETUP_HINT}");
                let mut command = Command::new("node");
                command
                    .arg(root.join("scripts/interop/node_echo_server.js"))
                    .current_dir(root.join("scripts/node"))
                    .env("NODE_PATH", &modules);
                ("node-echo-server", command)
            }
        };
        command.arg("0");
        if deflate {
            command.arg("--deflate");
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}; {SETUP_HINT}"));

        // Read stderr in a thread for as long as the server runs: the first line with the
        // port, then everything else into the log (so that the pipe never fills up).
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(String::new()));
        let (port_tx, port_rx) = mpsc::channel();
        let thread_log = log.clone();
        std::thread::spawn(move || {
            let mut port_tx = Some(port_tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let (Some(tx), Some(port)) = (&port_tx, listening_port(&line)) {
                    let _ = tx.send(port);
                    port_tx = None;
                }
                let mut log = thread_log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut server = Self {
            child,
            port: 0,
            name,
            log,
        };
        match port_rx.recv_timeout(START_TIMEOUT) {
            Ok(port) => server.port = port,
            Err(_) => panic!(
                "{name} did not report a listening port within {START_TIMEOUT:?} \
                 (exit status {:?}); its stderr:\n{}",
                server.child.try_wait(),
                server.log()
            ),
        }
        server
    }

    fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/", self.port)
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The port in a readiness line such as `... listening on 127.0.0.1:PORT (deflate on)`.
fn listening_port(line: &str) -> Option<u16> {
    let rest = line.split("listening on 127.0.0.1:").nth(1)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// A small deterministic generator (xorshift64*) for test payloads.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes(&mut self, n: usize) -> Bytes {
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(n);
        out.into()
    }

    /// A string of exactly `n` UTF-8 bytes mixing 1- to 4-byte characters: a random chunk,
    /// repeated, cut at a character boundary and padded with ASCII.
    fn text(&mut self, n: usize) -> String {
        let mut chunk = String::new();
        for _ in 0..16384 {
            chunk.push(ALPHABET[(self.next_u64() % ALPHABET.len() as u64) as usize]);
        }
        let mut text = chunk.repeat(n / chunk.len() + 1);
        let mut end = n;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.extend(std::iter::repeat_n('a', n - end));
        assert_eq!(text.len(), n);
        text
    }
}

fn describe(message: &Message) -> String {
    match message {
        Message::Text(t) => format!("text of {} bytes", t.len()),
        Message::Binary(b) => format!("binary of {} bytes", b.len()),
        other => format!("{other:?}"),
    }
}

/// Where two payloads first differ, for a failure message.
fn first_difference(a: &[u8], b: &[u8]) -> String {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => format!("first difference at byte {i}"),
        None => format!("lengths {} and {}", a.len(), b.len()),
    }
}

/// Connects to the echo server `name` at `url` with `config` (which decides whether
/// permessage-deflate is offered), echoes every size as text and binary, and closes with 1000.
/// Returns the summary line; panics on any mismatch.
async fn echo_session(name: &'static str, url: String, config: Config) -> String {
    let deflate = config.deflate.enabled;
    let request = ClientRequest::new(&url).expect("a valid URL");
    let (mut ws, response) = tether_tokio::connect_with(request, config)
        .await
        .unwrap_or_else(|e| panic!("connecting to {name} at {url}: {e}"));
    let extensions = response
        .header("sec-websocket-extensions")
        .map(|v| String::from_utf8_lossy(v).into_owned());
    assert_eq!(
        ws.deflate_params().is_some(),
        deflate,
        "permessage-deflate negotiated: {:?} (Sec-WebSocket-Extensions {extensions:?})",
        ws.deflate_params()
    );

    let mut rng = Rng(0x6455_7692_0000_0001);
    let mut count = 0;
    for size in SIZES {
        let text = Message::Text(Utf8Bytes::from(rng.text(size)));
        let binary = Message::Binary(rng.bytes(size));
        for sent in [text, binary] {
            ws.send(sent.clone())
                .await
                .unwrap_or_else(|e| panic!("sending {}: {e}", describe(&sent)));
            let echo = loop {
                match ws.recv().await {
                    // The peers' keep-alive pings are answered by the driver.
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(m)) => break m,
                    Some(Err(e)) => panic!("waiting for the echo of {}: {e}", describe(&sent)),
                    None => panic!(
                        "connection ended waiting for the echo of {}: {:?}",
                        describe(&sent),
                        ws.close_reason()
                    ),
                }
            };
            match (&sent, &echo) {
                (Message::Text(a), Message::Text(b)) if a == b => {}
                (Message::Binary(a), Message::Binary(b)) if a == b => {}
                (Message::Text(a), Message::Text(b)) => panic!(
                    "text of {size} bytes came back different: {}",
                    first_difference(a.as_bytes(), b.as_bytes())
                ),
                (Message::Binary(a), Message::Binary(b)) => panic!(
                    "binary of {size} bytes came back different: {}",
                    first_difference(a, b)
                ),
                _ => panic!("sent {}, got back {}", describe(&sent), describe(&echo)),
            }
            count += 1;
        }
    }

    // RFC 6455 §7.1.2: we start the closing handshake; the peer answers with its close
    // frame and closes TCP; the stream then ends without an error.
    let started = Instant::now();
    ws.close(1000, "")
        .await
        .unwrap_or_else(|e| panic!("sending the close frame: {e}"));
    while let Some(m) = ws.recv().await {
        match m {
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            Ok(other) => panic!("unexpected {} after our close frame", describe(&other)),
            Err(e) => panic!("closing handshake failed: {e}"),
        }
    }
    let elapsed = started.elapsed();
    let reason = ws.close_reason().expect("a closed connection has a reason");
    match &*reason {
        CloseReason::Clean {
            initiated_locally: true,
            local: Some(local),
            remote: Some(remote),
        } if local.code == CloseCode::NORMAL && remote.code == CloseCode::NORMAL => {}
        other => panic!("closing handshake did not complete cleanly with 1000: {other:?}"),
    }
    // The default close timeout is 5 s: finishing well before means the server closed TCP.
    assert!(
        elapsed < Duration::from_secs(4),
        "the closing handshake took {elapsed:?}"
    );

    let mut summary = format!(
        "interop tether-tokio-client -> {name} at {url}: {count} messages echoed exactly, "
    );
    match ws.deflate_params() {
        Some(p) => write!(summary, "deflate negotiated ({p:?})").unwrap(),
        None => summary.push_str("no deflate"),
    }
    summary.push_str(", clean close 1000");
    summary
}

/// Runs one interop session against `peer`, bounded by [`TEST_TIMEOUT`]; on failure the
/// server's stderr is shown.
fn interop(peer: Peer, deflate: bool) {
    let server = Server::start(peer, deflate);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let mut config = Config::default();
    config.deflate.enabled = deflate;
    let session = echo_session(server.name, server.url(), config);
    let result =
        runtime.block_on(async { tokio::time::timeout(TEST_TIMEOUT, tokio::spawn(session)).await });
    match result {
        Ok(Ok(summary)) => println!("{summary} ({:.1} s)", started.elapsed().as_secs_f64()),
        Ok(Err(e)) => {
            let message = match e.try_into_panic() {
                Ok(panic) => panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default(),
                Err(e) => e.to_string(),
            };
            panic!(
                "{peer:?} interop (deflate {deflate}) failed: {message}\n{} stderr:\n{}",
                server.name,
                server.log()
            )
        }
        Err(_) => panic!(
            "{peer:?} interop (deflate {deflate}) took more than {TEST_TIMEOUT:?}; {} stderr:\n{}",
            server.name,
            server.log()
        ),
    }
}

/// RFC 6455 §5.2 and §7.1 against Python `websockets`, without extensions.
#[test]
fn rfc6455_5_2_python_websockets_echoes_every_size_and_closes_cleanly() {
    interop(Peer::Python, false);
}

/// RFC 7692 against Python `websockets` (12-bit windows both ways).
#[test]
fn rfc7692_python_websockets_echoes_every_size_compressed() {
    interop(Peer::Python, true);
}

/// RFC 6455 §5.2 and §7.1 against Node.js `ws`, without extensions.
#[test]
fn rfc6455_5_2_node_ws_echoes_every_size_and_closes_cleanly() {
    interop(Peer::Node, false);
}

/// RFC 7692 against Node.js `ws` (its defaults: messages under 1 KiB go uncompressed).
#[test]
fn rfc7692_node_ws_echoes_every_size_compressed() {
    interop(Peer::Node, true);
}
