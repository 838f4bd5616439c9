//! The `tether` binary itself: configuration errors exit non-zero naming the key, `--help`
//! documents every option, and a real run serves `/health`, logs JSON and stops cleanly on
//! SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tether_gateway::config::KEYS;

fn tether() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tether"));
    // No TETHER_* variable of the environment the tests run in.
    cmd.env_clear();
    cmd
}

fn fails_naming(cmd: &mut Command, key: &str) {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("`{key}`")), "{stderr}");
}

#[test]
fn configuration_errors_exit_2_naming_the_key() {
    fails_naming(tether().env("TETHER_LIMITS__BURST", "0"), "limits.burst");
    fails_naming(tether().args(["--listen", "nowhere"]), "listen");
    fails_naming(tether().args(["--workers", "many"]), "workers");
    fails_naming(tether().args(["--dev", "false"]), "auth");
    fails_naming(
        tether().args(["--auth-public-key", "/nonexistent/key.pem"]),
        "auth.public_key",
    );
    let dir = std::env::temp_dir().join(format!("tether-binary-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(&file, "[limits]\nmax_connections = 0\n").unwrap();
    fails_naming(
        tether().arg("--config").arg(&file),
        "limits.max_connections",
    );
    std::fs::write(&file, "[auth]\nhmac_secrett = \"x\"\n").unwrap();
    let out = tether().arg("--config").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("hmac_secrett"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn help_documents_every_option() {
    let out = tether().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for key in KEYS {
        assert!(help.contains(&format!("--{}", key.flag())), "{}", key.path);
    }
    assert!(help.contains("--config"));
    assert!(
        help.contains("PROTOCOL.md") && help.contains("/api"),
        "{help}"
    );
}

#[test]
fn check_config_prints_the_resolved_configuration() {
    let out = tether()
        .args(["--check-config", "--limits-burst", "7"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("burst = 7"), "{text}");
}

#[test]
fn serves_and_stops_on_sigterm() {
    let mut child = tether()
        .args([
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--workers",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut dev_warning = false;
    let addr = loop {
        let line = lines
            .next()
            .expect("the server logs that it listens")
            .unwrap();
        let log: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("a JSON log line ({e}): {line}"));
        let message = log["fields"]["message"].as_str().unwrap_or("");
        dev_warning |= message.contains("DEV MODE");
        if message.starts_with("tether listening on") {
            break log["fields"]["addr"].as_str().unwrap().to_owned();
        }
    };
    assert!(dev_warning, "dev mode is logged loudly");

    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with(r#"{"status":"ok"}"#), "{response}");

    // (The shell's own `kill`: a minimal machine may have no procps.)
    let status = Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", child.id())])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "tether did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit:?}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        rest.iter().any(|l| l.contains("SIGTERM received")),
        "{rest:?}"
    );
}
