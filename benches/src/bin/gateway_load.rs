//! `gateway_load`: the load client of the gateway benchmark (issue 23), driven by
//! `scripts/bench-gateway.sh`. One current-thread tokio runtime; every mode prints one
//! `mode=MODE key=value …` line on standard output and a summary on standard error.
//!
//! ```text
//! gateway_load keygen DIR                     # es256_private.pem, es256_public.pem in DIR
//! gateway_load handshake --addr A --pid PID --conns 20000 --concurrency 64 [--hs256-secret S | --es256-key PEM]
//! gateway_load idle      --addr A --pid PID --conns 10000 --hs256-secret S --room bench
//! gateway_load broadcast --addr A --pid PID --conns 19000 --hs256-secret S --rounds 20
//! gateway_load api       --addr A --pid PID --conns 10000 --hs256-secret S --api-key K --rounds 20
//! ```
//!
//! - Tokens (`sub` = `u<i>`, `exp` in an hour) are signed by the client before anything is
//!   timed: HS256 with `--hs256-secret`, ES256 with `--es256-key` (a PKCS#8 PEM private
//!   key; 2,000 distinct tokens, reused in turn, since signing is slow), none without
//!   either. They go in `Authorization: Bearer`.
//! - `handshake`: `--conns` upgrades to `/ws`, `--concurrency` at a time, each connection
//!   dropped as soon as its `101` arrived (after `--warmup` untimed ones). Handshakes per
//!   second, the upgrade latency (connect to `101`), and the server's CPU (utime + stime,
//!   and schedstat run time) per handshake, from the first connect to `--settle` seconds
//!   after the last `101` (so that the server's work on the closes is counted).
//! - `idle`: opens `--conns` connections; each joins `--room` (`{"type":"join",...,"id":1}`)
//!   and waits for its `ack` (`--room ''`: no join; `--room '' --ping 1`: a `ping` and its
//!   `pong` instead, one message received outside any room). After `--settle` seconds, the growth of
//!   the server's `VmRSS` since before the first connection, per connection.
//! - `broadcast`: `idle`, then `--rounds` broadcasts `--interval` seconds apart, each a
//!   `{"type":"send","to":"","content":"gwb:ROUND"}` from connection 0 (to everyone, the
//!   sender included). For each round: the time from the write of the send to the arrival
//!   of the message on the last connection (waiting at most `--timeout` seconds), and the
//!   p50 / p99 of the arrivals across connections. The times are the client's: they
//!   include its own reading of every socket on one thread.
//! - `api`: the same with `POST /api/broadcast` (`X-API-Key: --api-key`, body
//!   `{"type":"bench","content":"gwb:ROUND"}`, a new HTTP connection per call), timed from
//!   before the connect. The path is probed first: a `404` ends the run with
//!   `skipped=api_not_found` (the HTTP API is not in this build).
//!
//! Connections bind source addresses spread over 127.0.0.0/8; the open-files limit must allow
//! `--conns` sockets (`ulimit -n $(ulimit -Hn)`). Every phase is bounded.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tether_bench::stats::{Histogram, fd_limit, fmt_ms};
use tether_bench::{client, proc, wire};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Mutex, Notify};

#[derive(Clone, Debug)]
struct Args {
    mode: String,
    addr: SocketAddr,
    pid: Option<u32>,
    label: String,
    conns: usize,
    concurrency: usize,
    warmup: usize,
    hs256_secret: Option<String>,
    es256_key: Option<String>,
    room: String,
    ping: bool,
    rounds: usize,
    interval: f64,
    timeout: f64,
    settle: f64,
    api_key: String,
}

fn parse_args(argv: Vec<String>) -> Args {
    let mut it = argv.into_iter();
    let mut a = Args {
        mode: it.next().unwrap_or_else(|| usage("a mode")),
        addr: "127.0.0.1:8080".parse().expect("addr"),
        pid: None,
        label: "-".into(),
        conns: 1000,
        concurrency: 64,
        warmup: 0,
        hs256_secret: None,
        es256_key: None,
        room: "bench".into(),
        ping: false,
        rounds: 20,
        interval: 0.25,
        timeout: 10.0,
        settle: 1.0,
        api_key: String::new(),
    };
    while let Some(k) = it.next() {
        let v = it
            .next()
            .unwrap_or_else(|| usage(&format!("a value for {k}")));
        match k.as_str() {
            "--addr" => a.addr = v.parse().expect("--addr"),
            "--pid" => a.pid = Some(v.parse().expect("--pid")),
            "--label" => a.label = v,
            "--conns" => a.conns = v.parse().expect("--conns"),
            "--concurrency" => a.concurrency = v.parse().expect("--concurrency"),
            "--warmup" => a.warmup = v.parse().expect("--warmup"),
            "--hs256-secret" => a.hs256_secret = Some(v),
            "--es256-key" => a.es256_key = Some(v),
            "--room" => a.room = v,
            "--ping" => a.ping = v == "1",
            "--rounds" => a.rounds = v.parse().expect("--rounds"),
            "--interval" => a.interval = v.parse().expect("--interval"),
            "--timeout" => a.timeout = v.parse().expect("--timeout"),
            "--settle" => a.settle = v.parse().expect("--settle"),
            "--api-key" => a.api_key = v,
            _ => usage(&format!("a known option, not {k}")),
        }
    }
    assert!(
        a.conns >= 1 && a.concurrency >= 1,
        "--conns and --concurrency ≥ 1"
    );
    a
}

fn usage(what: &str) -> ! {
    eprintln!(
        "gateway_load: expected {what}\nusage: gateway_load keygen DIR | \
         gateway_load handshake|idle|broadcast|api [--addr A] [--pid PID] [--conns N] ..."
    );
    std::process::exit(2)
}

/// Writes a fresh ES256 (P-256) key pair to `dir`: `es256_private.pem` (PKCS#8, for the
/// client) and `es256_public.pem` (SPKI, for the gateway's `auth.public_key`).
fn keygen(dir: &str) -> io::Result<()> {
    let key =
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(io::Error::other)?;
    std::fs::create_dir_all(dir)?;
    std::fs::write(format!("{dir}/es256_private.pem"), key.serialize_pem())?;
    std::fs::write(format!("{dir}/es256_public.pem"), key.public_key_pem())?;
    Ok(())
}

/// The upgrade request of every connection (`None` for the ones that share one), and the
/// request of connection `i`: the tokens are signed here, before anything is timed.
struct Requests {
    all: Vec<Vec<u8>>,
}

impl Requests {
    fn new(args: &Args, n: usize) -> io::Result<Self> {
        use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
        let host = args.addr.to_string();
        let (key, alg, distinct) = if let Some(secret) = &args.hs256_secret {
            (
                Some(EncodingKey::from_secret(secret.as_bytes()).map_err(io::Error::other)?),
                Algorithm::HS256,
                n,
            )
        } else if let Some(path) = &args.es256_key {
            let pem = std::fs::read(path)?;
            let key = EncodingKey::from_ec_pem(&pem).map_err(io::Error::other)?;
            (Some(key), Algorithm::ES256, n.min(2000))
        } else {
            (None, Algorithm::HS256, 1)
        };
        let exp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            + 3600;
        let mut all = Vec::with_capacity(distinct.max(1));
        for i in 0..distinct.max(1) {
            let headers = match &key {
                None => String::new(),
                Some(key) => {
                    let claims = serde_json::json!({"sub": format!("u{i}"), "exp": exp});
                    let token =
                        encode(&Header::new(alg), &claims, key).map_err(io::Error::other)?;
                    format!("Authorization: Bearer {token}\r\n")
                }
            };
            all.push(wire::upgrade_request_with(&host, "/ws", &headers));
        }
        Ok(Self { all })
    }

    fn get(&self, i: usize) -> &[u8] {
        &self.all[i % self.all.len()]
    }
}

/// The server's counters at one moment: CPU ticks, schedstat run time, and the client's own
/// CPU ticks.
struct Cpu {
    ticks: u64,
    ns: u64,
    me: u64,
    at: Instant,
}

impl Cpu {
    fn now(pid: Option<u32>) -> Self {
        Self {
            ticks: pid.and_then(proc::cpu_ticks).unwrap_or(0),
            ns: pid.and_then(proc::cpu_ns).unwrap_or(0),
            me: proc::cpu_ticks(std::process::id()).unwrap_or(0),
            at: Instant::now(),
        }
    }

    /// ` server_cpu_pct=… cpu_us_per_X=… sched_us_per_X=… client_cpu_pct=…` from `self`
    /// to `end`, per `count` operations called `what`; the percentages over `busy` seconds
    /// (the time the operations took, without a settling pause after them), or the whole
    /// span without.
    fn since(&self, end: &Cpu, count: u64, what: &str, busy: Option<f64>) -> String {
        let tick = proc::clock_ticks() as f64;
        let secs = busy
            .unwrap_or_else(|| (end.at - self.at).as_secs_f64())
            .max(1e-9);
        let cpu_us = (end.ticks - self.ticks) as f64 * 1e6 / tick;
        let me_us = (end.me - self.me) as f64 * 1e6 / tick;
        let n = count.max(1) as f64;
        format!(
            " server_cpu_pct={:.1} cpu_us_per_{what}={:.2} sched_us_per_{what}={:.2} \
             client_cpu_pct={:.1}",
            cpu_us / secs / 1e4,
            cpu_us / n,
            end.ns.saturating_sub(self.ns) as f64 / 1e3 / n,
            me_us / secs / 1e4,
        )
    }
}

/// `--conns` handshakes, `--concurrency` at a time, each connection dropped after its 101.
async fn handshakes(args: &Args) -> io::Result<String> {
    let requests = Rc::new(Requests::new(args, args.warmup + args.conns)?);
    // Untimed warm-up, then the run; the source addresses of the two do not overlap.
    let _ = handshake_batch(args, &requests, 0, args.warmup).await;
    let cpu0 = Cpu::now(args.pid);
    let t0 = Instant::now();
    let (ok, errors, hist, first_error) =
        handshake_batch(args, &requests, args.warmup, args.conns).await;
    let secs = t0.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs_f64(args.settle)).await;
    let cpu1 = Cpu::now(args.pid);
    let mut line = format!(
        "mode=handshake label={} conns={} concurrency={} ok={ok} errors={errors} secs={secs:.3} \
         hs_per_s={:.0} p50_ms={} p99_ms={} max_ms={}",
        args.label,
        args.conns,
        args.concurrency,
        ok as f64 / secs,
        fmt_ms(hist.quantile(0.5)),
        fmt_ms(hist.quantile(0.99)),
        fmt_ms((hist.n > 0).then_some(hist.max)),
    );
    line.push_str(&cpu0.since(&cpu1, ok, "hs", Some(secs)));
    if let Some(e) = first_error {
        line.push_str(&format!(" first_error={}", e.replace(' ', "_")));
    }
    Ok(line)
}

/// Handshakes `from..from + n`: how many succeeded and failed, the latency histogram, the
/// first error.
async fn handshake_batch(
    args: &Args,
    requests: &Rc<Requests>,
    from: usize,
    n: usize,
) -> (u64, u64, Histogram, Option<String>) {
    let ok = Rc::new(Cell::new(0u64));
    let errors = Rc::new(Cell::new(0u64));
    let hist = Rc::new(RefCell::new(Histogram::new()));
    let first_error: Rc<RefCell<Option<String>>> = Rc::default();
    let next = Rc::new(Cell::new(0usize));
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency.min(n) {
        let (ok, errors, hist, first_error, next, requests) = (
            ok.clone(),
            errors.clone(),
            hist.clone(),
            first_error.clone(),
            next.clone(),
            requests.clone(),
        );
        let addr = args.addr;
        tasks.push(tokio::task::spawn_local(async move {
            while let Some(i) = tether_bench::take_next(&next, n) {
                let i = from + i;
                let t = Instant::now();
                match client::upgrade(wire::src_ip(i), addr, requests.get(i), None).await {
                    Ok((s, _)) => {
                        hist.borrow_mut().record(t.elapsed().as_micros() as u64);
                        ok.set(ok.get() + 1);
                        drop(s);
                    }
                    Err(e) => {
                        errors.set(errors.get() + 1);
                        first_error.borrow_mut().get_or_insert(e.to_string());
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let hist = std::mem::take(&mut *hist.borrow_mut());
    let first_error = first_error.borrow_mut().take();
    (ok.get(), errors.get(), hist, first_error)
}

/// A connection's write half, shared by its reader (pongs) and the broadcaster.
type Writer = Rc<Mutex<OwnedWriteHalf>>;

/// What the open connections share while broadcasts go out.
#[derive(Default)]
struct Round {
    /// The marker of the broadcast in flight (`gwb:SEQ`), 0 between rounds.
    seq: Cell<u64>,
    sent_at: Cell<Option<Instant>>,
    /// Arrival latencies of this round, µs.
    arrivals: RefCell<Vec<u64>>,
    /// Connections the round must reach.
    expected: Cell<usize>,
    complete: Notify,
    /// Arrivals of a round other than the one in flight (late or repeated).
    stray: Cell<u64>,
    /// Connections the server ended (or that failed) after they were open.
    closed: Cell<u64>,
}

/// Complete frames at the front of `buf`: (opcode, payload range); returns their end.
fn frames(buf: &[u8], out: &mut Vec<(u8, std::ops::Range<usize>)>) -> usize {
    let mut pos = 0;
    while let Some(n) = wire::server_frame_len(&buf[pos..]) {
        if buf.len() - pos < n {
            break;
        }
        let header = match buf[pos + 1] & 0x7F {
            126 => 4,
            127 => 10,
            _ => 2,
        };
        out.push((buf[pos] & 0x0F, pos + header..pos + n));
        pos += n;
    }
    pos
}

/// The `SEQ` of the first `gwb:SEQ` in `payload`.
fn marker(payload: &[u8]) -> Option<u64> {
    let at = payload.windows(4).position(|w| w == b"gwb:")? + 4;
    let digits = payload[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    std::str::from_utf8(&payload[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

/// Opens connection `i` and, with a room, joins it and waits for the `ack`.
async fn open_joined(
    i: usize,
    args: &Args,
    request: &[u8],
) -> io::Result<(OwnedReadHalf, OwnedWriteHalf, Vec<u8>)> {
    let (mut s, mut rest) = client::upgrade(wire::src_ip(i), args.addr, request, None).await?;
    // A join answered by an `ack`, or (with `--ping 1` and no room) a ping answered by a
    // `pong`: one message received either way.
    let (first, answer): (String, &[u8]) = if !args.room.is_empty() {
        (
            format!(r#"{{"type":"join","room":"{}","id":1}}"#, args.room),
            br#""ack""#,
        )
    } else if args.ping {
        (r#"{"type":"ping","id":1}"#.to_owned(), br#""pong""#)
    } else {
        let (r, w) = s.into_split();
        return Ok((r, w, rest));
    };
    let mut out = Vec::new();
    wire::client_text_frame(first.as_bytes(), &mut out);
    s.write_all(&out).await?;
    let mut found = Vec::new();
    loop {
        found.clear();
        let used = frames(&rest, &mut found);
        for (op, range) in &found {
            let text = &rest[range.clone()];
            if *op == 0x1 && text.windows(7).any(|w| w == br#""error""#) {
                return Err(io::Error::other(format!(
                    "refused: {}",
                    String::from_utf8_lossy(text)
                )));
            }
            if *op == 0x1 && text.windows(answer.len()).any(|w| w == answer) {
                rest.drain(..used);
                let (r, w) = s.into_split();
                return Ok((r, w, rest));
            }
            if *op == 0x8 {
                return Err(io::Error::other("closed before the answer"));
            }
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        rest.extend_from_slice(&chunk[..n]);
    }
}

/// Reads connection `r` until it ends: answers pings, records the arrival of broadcasts.
async fn reader(mut r: OwnedReadHalf, mut buf: Vec<u8>, w: Writer, round: Rc<Round>) {
    let mut found = Vec::new();
    let mut pongs = Vec::new();
    let mut chunk = vec![0u8; 4096];
    loop {
        found.clear();
        let used = frames(&buf, &mut found);
        let now = Instant::now();
        for (op, range) in &found {
            let payload = &buf[range.clone()];
            match op {
                0x1 | 0x2 => match marker(payload) {
                    Some(seq) if seq == round.seq.get() => {
                        let sent = round.sent_at.get().unwrap_or(now);
                        let mut arrivals = round.arrivals.borrow_mut();
                        arrivals.push((now - sent).as_micros() as u64);
                        if arrivals.len() >= round.expected.get() {
                            round.complete.notify_one();
                        }
                    }
                    Some(_) => round.stray.set(round.stray.get() + 1),
                    None => {}
                },
                0x9 => wire::pong_frame(payload, &mut pongs),
                0x8 => {
                    round.closed.set(round.closed.get() + 1);
                    return;
                }
                _ => {}
            }
        }
        buf.drain(..used);
        if !pongs.is_empty() {
            if w.lock().await.write_all(&pongs).await.is_err() {
                round.closed.set(round.closed.get() + 1);
                return;
            }
            pongs.clear();
        }
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => {
                round.closed.set(round.closed.get() + 1);
                return;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Opens `--conns` connections (each joined to `--room`), with readers; returns the writers
/// (`None` for those that failed), the start of the line (memory per connection), and the
/// round state the readers report to.
async fn open_all(args: &Args) -> io::Result<(Vec<Option<Writer>>, String, Rc<Round>)> {
    let n = args.conns;
    if let Some(limit) = fd_limit().filter(|&l| l < n + 64) {
        eprintln!(
            "gateway_load: the open-files limit ({limit}) is below {n} connections; raise it \
             with `ulimit -n $(ulimit -Hn)`"
        );
    }
    let requests = Rc::new(Requests::new(args, n)?);
    let round = Rc::new(Round::default());
    let writers: Rc<RefCell<Vec<Option<Writer>>>> = Rc::new(RefCell::new(vec![None; n]));
    let errors = Rc::new(Cell::new(0usize));
    let first_error: Rc<RefCell<Option<String>>> = Rc::default();
    let next = Rc::new(Cell::new(0usize));
    let rss0 = args.pid.and_then(proc::rss_kib).unwrap_or(0);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency.min(n) {
        let (requests, round, writers, errors, first_error, next, args) = (
            requests.clone(),
            round.clone(),
            writers.clone(),
            errors.clone(),
            first_error.clone(),
            next.clone(),
            args.clone(),
        );
        tasks.push(tokio::task::spawn_local(async move {
            while let Some(i) = tether_bench::take_next(&next, n) {
                match open_joined(i, &args, requests.get(i)).await {
                    Ok((r, w, rest)) => {
                        let w = Rc::new(Mutex::new(w));
                        writers.borrow_mut()[i] = Some(w.clone());
                        tokio::task::spawn_local(reader(r, rest, w, round.clone()));
                    }
                    Err(e) => {
                        errors.set(errors.get() + 1);
                        first_error.borrow_mut().get_or_insert(e.to_string());
                    }
                }
            }
        }));
    }
    let bound = Duration::from_secs(120);
    for t in tasks {
        if tokio::time::timeout(bound.saturating_sub(start.elapsed()), t)
            .await
            .is_err()
        {
            break;
        }
    }
    let open_secs = start.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs_f64(args.settle)).await;
    let rss1 = args.pid.and_then(proc::rss_kib).unwrap_or(0);
    let writers = writers.borrow().clone();
    let ready = writers.iter().flatten().count();
    let per_conn = (rss1 as f64 - rss0 as f64) * 1024.0 / ready.max(1) as f64;
    let mut line = format!(
        "mode={} label={} conns={n} ready={ready} errors={} room={} open_secs={open_secs:.2} \
         rss0_kib={rss0} rss1_kib={rss1} rss_per_conn_b={per_conn:.0}",
        args.mode,
        args.label,
        errors.get(),
        if args.room.is_empty() {
            "-"
        } else {
            &args.room
        },
    );
    if let Some(e) = first_error.borrow_mut().take() {
        line.push_str(&format!(" first_error={}", e.replace(' ', "_")));
    }
    Ok((writers, line, round))
}

/// A `POST /api/broadcast` with `body` on a new connection: the response's status.
async fn api_post(args: &Args, body: &str) -> io::Result<u16> {
    let mut s = TcpStream::connect(args.addr).await?;
    s.set_nodelay(true)?;
    let request = format!(
        "POST /api/broadcast HTTP/1.1\r\nHost: {}\r\nX-API-Key: {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        args.addr,
        args.api_key,
        body.len()
    );
    s.write_all(request.as_bytes()).await?;
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while wire::head_end(&head).is_none() {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    std::str::from_utf8(head.get(9..12).unwrap_or_default())
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other("no HTTP status"))
}

/// `broadcast` and `api`: open, then `--rounds` broadcasts, each timed to its last arrival.
async fn broadcasts(args: &Args) -> io::Result<String> {
    let via_api = args.mode == "api";
    if via_api {
        // Probe: without the HTTP API the path is a 404 (with it, this empty body is a 400).
        let status = api_post(args, "{}").await?;
        if status == 404 {
            return Ok(format!(
                "mode=api label={} skipped=api_not_found note=POST_/api/broadcast_answered_404",
                args.label
            ));
        }
    }
    let (writers, mut line, round) = open_all(args).await?;
    let ready = writers.iter().flatten().count();
    let Some(sender) = writers.iter().flatten().next().cloned() else {
        line.push_str(" error=no_connection");
        return Ok(line);
    };
    let timeout = Duration::from_secs_f64(args.timeout);
    let mut lasts = Vec::new();
    let mut pooled = Histogram::new();
    let mut p99s = Vec::new();
    let mut missing = 0usize;
    let mut api_errors = Vec::new();
    let mut call_ms = Vec::new();
    let cpu0 = Cpu::now(args.pid);
    for k in 1..=args.rounds as u64 {
        let expected = ready - round.closed.get() as usize;
        round.arrivals.borrow_mut().clear();
        round.expected.set(expected);
        round.seq.set(k);
        let sent = Instant::now();
        round.sent_at.set(Some(sent));
        if via_api {
            let body = format!(r#"{{"type":"bench","content":"gwb:{k}"}}"#);
            match api_post(args, &body).await {
                Ok(s) if (200..300).contains(&s) => {}
                Ok(s) => api_errors.push(s.to_string()),
                Err(e) => api_errors.push(e.kind().to_string().replace(' ', "_")),
            }
            call_ms.push(sent.elapsed().as_secs_f64() * 1e3);
        } else {
            let text = format!(r#"{{"type":"send","to":"","content":"gwb:{k}"}}"#);
            let mut out = Vec::new();
            wire::client_text_frame(text.as_bytes(), &mut out);
            sender.lock().await.write_all(&out).await?;
        }
        let deadline = tokio::time::Instant::from_std(sent) + timeout;
        while round.arrivals.borrow().len() < expected {
            if tokio::time::timeout_at(deadline, round.complete.notified())
                .await
                .is_err()
            {
                break;
            }
        }
        round.seq.set(0);
        let mut arrivals = std::mem::take(&mut *round.arrivals.borrow_mut());
        arrivals.sort_unstable();
        missing += expected - arrivals.len().min(expected);
        let q = |p: f64| {
            arrivals
                .get(((arrivals.len() as f64 * p).ceil() as usize).saturating_sub(1))
                .copied()
        };
        // The last arrival: with connections missing, the time waited (the round's bound).
        let last = if arrivals.len() >= expected {
            arrivals.last().copied().unwrap_or(0)
        } else {
            timeout.as_micros() as u64
        };
        lasts.push(last);
        p99s.push(q(0.99).unwrap_or(0));
        for &a in &arrivals {
            pooled.record(a);
        }
        eprintln!(
            "round {k}: {} of {expected} in {} ms (p50 {} ms, p99 {} ms)",
            arrivals.len(),
            fmt_ms(Some(last)),
            fmt_ms(q(0.5)),
            fmt_ms(q(0.99)),
        );
        tokio::time::sleep(Duration::from_secs_f64(args.interval)).await;
    }
    let cpu1 = Cpu::now(args.pid);
    let mut sorted = lasts.clone();
    sorted.sort_unstable();
    let pick = |p: f64| {
        sorted
            .get(((sorted.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .copied()
    };
    let within = lasts.iter().filter(|&&l| l <= 100_000).count();
    line.push_str(&format!(
        " rounds={} missing={missing} stray={} closed={} last_ms_min={} last_ms_p50={} \
         last_ms_p99={} last_ms_max={} rounds_within_100ms={within} p50_ms={} p99_ms={} \
         lasts_ms={}",
        lasts.len(),
        round.stray.get(),
        round.closed.get(),
        fmt_ms(sorted.first().copied()),
        fmt_ms(pick(0.5)),
        fmt_ms(pick(0.99)),
        fmt_ms(sorted.last().copied()),
        fmt_ms(pooled.quantile(0.5)),
        fmt_ms(pooled.quantile(0.99)),
        lasts
            .iter()
            .map(|&l| fmt_ms(Some(l)))
            .collect::<Vec<_>>()
            .join(","),
    ));
    if via_api {
        line.push_str(&format!(
            " call_ms={} api_errors={}",
            call_ms
                .iter()
                .map(|c| format!("{c:.3}"))
                .collect::<Vec<_>>()
                .join(","),
            if api_errors.is_empty() {
                "0".into()
            } else {
                api_errors.join(",")
            }
        ));
    }
    // The server's CPU over the rounds (the pauses between them included), per delivery.
    line.push_str(&cpu0.since(&cpu1, pooled.n, "delivery", None));
    Ok(line)
}

async fn run(args: Args) -> io::Result<String> {
    match args.mode.as_str() {
        "handshake" => handshakes(&args).await,
        "idle" => Ok(open_all(&args).await?.1),
        "broadcast" | "api" => broadcasts(&args).await,
        other => usage(&format!(
            "a mode (handshake, idle, broadcast, api), not {other}"
        )),
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("keygen") {
        let dir = argv.get(1).cloned().unwrap_or_else(|| usage("keygen DIR"));
        if let Err(e) = keygen(&dir) {
            eprintln!("gateway_load keygen: {e}");
            std::process::exit(1);
        }
        return;
    }
    let args = parse_args(argv);
    let bound = 180.0 + args.rounds as f64 * (args.interval + args.timeout);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    let (mode, label) = (args.mode.clone(), args.label.clone());
    let line = local.block_on(&rt, async move {
        match tokio::time::timeout(Duration::from_secs_f64(bound), run(args)).await {
            Ok(Ok(line)) => line,
            Ok(Err(e)) => format!(
                "mode={mode} label={label} error={}",
                e.to_string().replace(' ', "_")
            ),
            Err(_) => format!("mode={mode} label={label} error=timed_out_after_{bound:.0}s"),
        }
    });
    println!("{line}");
    eprintln!("gateway_load: {line}");
    // Leave the connections to the exit.
    std::process::exit(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_and_frames() {
        assert_eq!(
            marker(br#"{"type":"send","content":"gwb:17","ts":1}"#),
            Some(17)
        );
        assert_eq!(marker(br#"{"type":"ack","id":1}"#), None);
        let mut buf = vec![0x81, 5];
        buf.extend_from_slice(b"gwb:3");
        buf.extend_from_slice(&[0x89, 0]);
        buf.extend_from_slice(&[0x81, 10, b'x']);
        let mut found = Vec::new();
        let used = frames(&buf, &mut found);
        assert_eq!(used, 9, "the partial frame is left");
        assert_eq!(found, vec![(0x1, 2..7), (0x9, 9..9)]);
    }
}
