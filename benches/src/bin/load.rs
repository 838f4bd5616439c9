//! `load`: the lean load client of the echo benchmark, in the spirit of uWebSockets'
//! `load_test`. One current-thread tokio runtime, raw sockets, frames built once: per
//! connection it keeps `--inflight` messages in flight, and after each read it writes the
//! replies to every echo that read completed in one write.
//!
//! ```text
//! load echo      --addr A --pid P --conns N --size S --inflight K --warmup 1 --duration 5
//! load handshake --addr A --pid P --concurrency 32 --warmup 0.5 --duration 3
//! load idle      --addr A --pid P --conns 10000 --concurrency 200 [--hold 0]
//! load broadcast --addr A --pid P --conns 1000 --cases 20:1000,16384:100 \
//!                --modes prepared,per-connection --rounds 3 [--burst 1]
//! ```
//!
//! `broadcast` drives the `broadcast_tether` server: it opens `--conns` connections, then,
//! for each round, case `S:M[:B]` and mode, asks the server (a text message on the first
//! connection) to publish `M` messages of `S` bytes to all of them (yielding after every
//! `B`, default `--burst`), reads and counts every
//! message on every connection (checking its size), and prints one line per publication
//! once all `conns × M` deliveries and the server's report have arrived. Besides utime +
//! stime (clock ticks), it reports the server's run time from `/proc/PID/task/*/schedstat`
//! (nanoseconds) over the same window.
//!
//! Prints one line of `key=value` pairs. CPU figures are the server's (`--pid`) utime +
//! stime over the measured window, from `/proc/PID/stat`; memory is the server's `VmRSS`.
//! Connections bind source addresses spread over 127.0.0.0/8, so that many short
//! connections never run out of ephemeral ports.

use bytes::{Buf, BytesMut};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tether_bench::{proc, wire};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

#[derive(Clone, Debug)]
struct Args {
    mode: String,
    addr: SocketAddr,
    pid: Option<u32>,
    conns: usize,
    size: usize,
    inflight: usize,
    concurrency: usize,
    warmup: f64,
    duration: f64,
    /// Idle mode: seconds to keep the connections open after measuring (to profile the
    /// server meanwhile).
    hold: f64,
    /// Broadcast mode: `SIZE:MSGS[:BURST]` cases, comma-separated.
    cases: String,
    /// Broadcast mode: the publishing modes, comma-separated.
    modes: String,
    /// Broadcast mode: rounds over every case and mode.
    rounds: usize,
    /// Broadcast mode: messages the server publishes between two yields to its runtime,
    /// for the cases that do not say.
    burst: usize,
}

fn parse_args() -> Args {
    let mut it = std::env::args().skip(1);
    let mut a = Args {
        mode: it.next().unwrap_or_else(|| "echo".into()),
        addr: "127.0.0.1:9001".parse().expect("addr"),
        pid: None,
        conns: 100,
        size: 20,
        inflight: 1,
        concurrency: 32,
        warmup: 1.0,
        duration: 5.0,
        hold: 0.0,
        cases: "20:1000".into(),
        modes: "prepared,per-connection".into(),
        rounds: 1,
        burst: 1,
    };
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--addr" => a.addr = v.parse().expect("--addr"),
            "--pid" => a.pid = Some(v.parse().expect("--pid")),
            "--conns" => a.conns = v.parse().expect("--conns"),
            "--size" => a.size = v.parse().expect("--size"),
            "--inflight" => a.inflight = v.parse().expect("--inflight"),
            "--concurrency" => a.concurrency = v.parse().expect("--concurrency"),
            "--warmup" => a.warmup = v.parse().expect("--warmup"),
            "--duration" => a.duration = v.parse().expect("--duration"),
            "--hold" => a.hold = v.parse().expect("--hold"),
            "--cases" => a.cases = v,
            "--modes" => a.modes = v,
            "--rounds" => a.rounds = v.parse().expect("--rounds"),
            "--burst" => a.burst = v.parse().expect("--burst"),
            _ => panic!("unknown option {k}"),
        }
    }
    a
}

async fn connect(i: usize, addr: SocketAddr) -> io::Result<TcpStream> {
    let sock = TcpSocket::new_v4()?;
    sock.bind(SocketAddr::new(wire::src_ip(i).into(), 0))?;
    let s = sock.connect(addr).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Connects and upgrades; returns the stream and what arrived after the response head.
async fn open(i: usize, addr: SocketAddr, request: &[u8]) -> io::Result<(TcpStream, BytesMut)> {
    let mut s = connect(i, addr).await?;
    s.write_all(request).await?;
    let mut buf = BytesMut::with_capacity(512);
    loop {
        if s.read_buf(&mut buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if let Some(end) = wire::head_end(&buf) {
            if !wire::is_switching(&buf[..end]) {
                return Err(io::Error::other("upgrade refused"));
            }
            buf.advance(end);
            return Ok((s, buf));
        }
    }
}

// Phases: 0 warm-up (the default), then measure, then stop.
const MEASURE: u8 = 1;
const STOP: u8 = 2;

#[derive(Default)]
struct Shared {
    phase: Cell<u8>,
    ready: Cell<usize>,
    errors: Cell<usize>,
    /// Round trips completed in the measured window.
    count: Cell<u64>,
    /// Round trips completed in the whole run.
    total: Cell<u64>,
    /// Round-trip times in the measured window, nanoseconds.
    samples: RefCell<Vec<u32>>,
}

async fn echo_conn(
    i: usize,
    args: Rc<Args>,
    request: Rc<Vec<u8>>,
    sh: Rc<Shared>,
) -> io::Result<()> {
    let (mut s, mut buf) = open(i, args.addr, &request).await?;
    sh.ready.set(sh.ready.get() + 1);
    let frame = wire::client_frame(args.size);
    let mut sent: VecDeque<Instant> = VecDeque::with_capacity(args.inflight);
    let mut out = Vec::with_capacity(frame.len() * args.inflight);
    let now = Instant::now();
    for _ in 0..args.inflight {
        out.extend_from_slice(&frame);
        sent.push_back(now);
    }
    s.write_all(&out).await?;
    out.clear();
    let read_size = (args.size + 14).max(16 * 1024);
    loop {
        buf.reserve(read_size);
        if s.read_buf(&mut buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let now = Instant::now();
        let phase = sh.phase.get();
        let mut pos = 0;
        while let Some(n) = wire::server_frame_len(&buf[pos..]) {
            if buf.len() - pos < n {
                break;
            }
            pos += n;
            let t0 = sent.pop_front().expect("an echo for every message sent");
            sh.total.set(sh.total.get() + 1);
            if phase == MEASURE {
                sh.count.set(sh.count.get() + 1);
                let rtt = (now - t0).as_nanos().min(u128::from(u32::MAX)) as u32;
                sh.samples.borrow_mut().push(rtt);
            }
            if phase != STOP {
                out.extend_from_slice(&frame);
                sent.push_back(now);
            }
        }
        buf.advance(pos);
        if phase == STOP {
            return Ok(());
        }
        if !out.is_empty() {
            s.write_all(&out).await?;
            out.clear();
        }
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 * p) as usize).min(sorted.len() - 1);
    f64::from(sorted[idx]) / 1000.0
}

/// The server's CPU ticks now (0 without a pid).
fn cpu(args: &Args) -> u64 {
    args.pid.and_then(proc::cpu_ticks).unwrap_or(0)
}

async fn wait_ready(sh: &Shared, want: usize, limit: Duration) {
    let start = Instant::now();
    while sh.ready.get() + sh.errors.get() < want && start.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn run_echo(args: Rc<Args>) -> String {
    let sh = Rc::new(Shared::default());
    let request = Rc::new(wire::upgrade_request(&args.addr.to_string()));
    for i in 0..args.conns {
        let (args, request, sh) = (args.clone(), request.clone(), sh.clone());
        tokio::task::spawn_local(async move {
            if echo_conn(i, args, request, sh.clone()).await.is_err() && sh.phase.get() != STOP {
                sh.errors.set(sh.errors.get() + 1);
            }
        });
    }
    wait_ready(&sh, args.conns, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
    let tick = proc::clock_ticks();
    let cpu0 = cpu(&args);
    let t0 = Instant::now();
    sh.phase.set(MEASURE);
    tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    sh.phase.set(STOP);
    let secs = t0.elapsed().as_secs_f64();
    let cpu1 = cpu(&args);
    let count = sh.count.get();
    let mut samples = std::mem::take(&mut *sh.samples.borrow_mut());
    samples.sort_unstable();
    let cpu_us = (cpu1 - cpu0) as f64 * 1e6 / tick as f64;
    format!(
        "mode=echo conns={} size={} inflight={} ready={} errors={} msgs={count} total_msgs={} secs={secs:.3} \
         msg_per_s={:.0} p50_us={:.1} p99_us={:.1} server_cpu_pct={:.1} cpu_us_per_msg={:.3}",
        args.conns,
        args.size,
        args.inflight,
        sh.ready.get(),
        sh.errors.get(),
        sh.total.get(),
        count as f64 / secs,
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        cpu_us / secs / 1e4,
        cpu_us / count.max(1) as f64,
    )
}

async fn run_handshake(args: Rc<Args>) -> String {
    let sh = Rc::new(Shared::default());
    let request = Rc::new(wire::upgrade_request(&args.addr.to_string()));
    let next = Rc::new(Cell::new(0usize));
    for _ in 0..args.concurrency {
        let (args, request, sh, next) = (args.clone(), request.clone(), sh.clone(), next.clone());
        tokio::task::spawn_local(async move {
            while sh.phase.get() != STOP {
                let i = next.get();
                next.set(i + 1);
                match open(i, args.addr, &request).await {
                    Ok(_) => {
                        if sh.phase.get() == MEASURE {
                            sh.count.set(sh.count.get() + 1);
                        }
                        sh.total.set(sh.total.get() + 1);
                    }
                    Err(_) => sh.errors.set(sh.errors.get() + 1),
                }
            }
        });
    }
    tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
    let tick = proc::clock_ticks();
    let cpu0 = cpu(&args);
    let t0 = Instant::now();
    sh.phase.set(MEASURE);
    tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    sh.phase.set(STOP);
    let secs = t0.elapsed().as_secs_f64();
    let cpu1 = cpu(&args);
    let count = sh.count.get();
    let cpu_us = (cpu1 - cpu0) as f64 * 1e6 / tick as f64;
    format!(
        "mode=handshake concurrency={} handshakes={count} errors={} secs={secs:.3} hs_per_s={:.0} \
         server_cpu_pct={:.1} cpu_us_per_hs={:.2}",
        args.concurrency,
        sh.errors.get(),
        count as f64 / secs,
        cpu_us / secs / 1e4,
        cpu_us / count.max(1) as f64,
    )
}

/// Opens `--conns` connections, echoes one 20-byte message on each, keeps them all open
/// and idle, and reports the growth of the server's resident memory per connection.
async fn run_idle(args: Rc<Args>) -> String {
    let Some(pid) = args.pid else {
        return "mode=idle error=needs --pid".into();
    };
    let sh = Rc::new(Shared::default());
    let held: Rc<RefCell<Vec<TcpStream>>> = Rc::default();
    let request = Rc::new(wire::upgrade_request(&args.addr.to_string()));
    let next = Rc::new(Cell::new(0usize));
    let rss0 = proc::rss_kib(pid).unwrap_or(0);
    let start = Instant::now();
    for _ in 0..args.concurrency {
        let (args, request, sh, next, held) = (
            args.clone(),
            request.clone(),
            sh.clone(),
            next.clone(),
            held.clone(),
        );
        tokio::task::spawn_local(async move {
            let frame = wire::client_frame(20);
            while let Some(i) = tether_bench::take_next(&next, args.conns) {
                let one = async {
                    let (mut s, mut buf) = open(i, args.addr, &request).await?;
                    s.write_all(&frame).await?;
                    while wire::server_frame_len(&buf).is_none_or(|n| buf.len() < n) {
                        if s.read_buf(&mut buf).await? == 0 {
                            return Err(io::ErrorKind::UnexpectedEof.into());
                        }
                    }
                    io::Result::Ok(s)
                };
                match one.await {
                    Ok(s) => {
                        held.borrow_mut().push(s);
                        sh.ready.set(sh.ready.get() + 1);
                    }
                    Err(_) => sh.errors.set(sh.errors.get() + 1),
                }
            }
        });
    }
    wait_ready(&sh, args.conns, Duration::from_secs(120)).await;
    let open_secs = start.elapsed().as_secs_f64();
    // Let the server settle (release buffers, finish any deferred work).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss1 = proc::rss_kib(pid).unwrap_or(0);
    let n = held.borrow().len();
    tokio::time::sleep(Duration::from_secs_f64(args.hold)).await;
    format!(
        "mode=idle conns={n} errors={} open_secs={open_secs:.2} rss0_kib={rss0} rss1_kib={rss1} \
         bytes_per_conn={:.0}",
        sh.errors.get(),
        (rss1 as f64 - rss0 as f64) * 1024.0 / n.max(1) as f64,
    )
}

/// What the connections of the broadcast mode share.
#[derive(Default)]
struct Broadcast {
    ready: Cell<usize>,
    errors: Cell<usize>,
    /// The payload size the current publication sends.
    size: Cell<usize>,
    /// Binary messages of that size received since the publication started.
    delivered: Cell<u64>,
    /// Binary messages of another size.
    bad: Cell<u64>,
    /// The server's report on the current publication (a text message).
    report: RefCell<Option<String>>,
    /// Woken when the last delivery or the report arrives.
    done: tokio::sync::Notify,
    /// What the current publication waits for.
    want: Cell<u64>,
}

impl Broadcast {
    fn check_done(&self) {
        if self.delivered.get() >= self.want.get() && self.report.borrow().is_some() {
            self.done.notify_one();
        }
    }
}

/// The payload's offset and length in the complete unmasked server frame `frame`.
fn payload_of(frame: &[u8]) -> (usize, usize) {
    let header = match frame[1] & 0x7F {
        126 => 4,
        127 => 10,
        _ => 2,
    };
    (header, frame.len() - header)
}

/// A masked client text frame carrying `text` (at most 125 bytes).
fn client_text_frame(text: &str) -> Vec<u8> {
    let key = [0x12, 0x34, 0x56, 0x78];
    assert!(text.len() <= 125, "a short command");
    let mut out = vec![0x81, 0x80 | text.len() as u8];
    out.extend_from_slice(&key);
    out.extend(text.bytes().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// Reads one broadcast connection until it ends, counting binary messages and keeping
/// text messages (the server's reports).
async fn broadcast_reader(
    mut r: tokio::net::tcp::OwnedReadHalf,
    mut buf: BytesMut,
    sh: Rc<Broadcast>,
) -> io::Result<()> {
    loop {
        let mut pos = 0;
        while let Some(n) = wire::server_frame_len(&buf[pos..]) {
            if buf.len() - pos < n {
                break;
            }
            let frame = &buf[pos..pos + n];
            let (at, len) = payload_of(frame);
            match frame[0] & 0x0F {
                0x2 if len == sh.size.get() => sh.delivered.set(sh.delivered.get() + 1),
                0x1 => {
                    let text = String::from_utf8_lossy(&frame[at..]).into_owned();
                    *sh.report.borrow_mut() = Some(text);
                }
                _ => sh.bad.set(sh.bad.get() + 1),
            }
            pos += n;
        }
        buf.advance(pos);
        if pos > 0 {
            sh.check_done();
        }
        buf.reserve(64 * 1024);
        if r.read_buf(&mut buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// Opens `--conns` connections and runs every publication of `--rounds` × `--cases` ×
/// `--modes`; one line per publication.
async fn run_broadcast(args: Rc<Args>) -> String {
    let sh = Rc::new(Broadcast::default());
    let request = Rc::new(wire::upgrade_request(&args.addr.to_string()));
    let control: Rc<RefCell<Option<tokio::net::tcp::OwnedWriteHalf>>> = Rc::default();
    // Writers are kept so that the connections stay open (a dropped one shuts down).
    let writers: Rc<RefCell<Vec<tokio::net::tcp::OwnedWriteHalf>>> = Rc::default();
    let next = Rc::new(Cell::new(0usize));
    let start = Instant::now();
    for _ in 0..args.concurrency.min(args.conns) {
        let (args, request, sh, next, control, writers) = (
            args.clone(),
            request.clone(),
            sh.clone(),
            next.clone(),
            control.clone(),
            writers.clone(),
        );
        tokio::task::spawn_local(async move {
            loop {
                let i = next.get();
                if i >= args.conns {
                    return;
                }
                next.set(i + 1);
                match open(i, args.addr, &request).await {
                    Ok((s, buf)) => {
                        let (r, w) = s.into_split();
                        if i == 0 {
                            *control.borrow_mut() = Some(w);
                        } else {
                            writers.borrow_mut().push(w);
                        }
                        sh.ready.set(sh.ready.get() + 1);
                        let sh = sh.clone();
                        tokio::task::spawn_local(async move {
                            if broadcast_reader(r, buf, sh.clone()).await.is_err() {
                                sh.errors.set(sh.errors.get() + 1);
                            }
                        });
                    }
                    Err(_) => sh.errors.set(sh.errors.get() + 1),
                }
            }
        });
    }
    let limit = Duration::from_secs(60);
    while sh.ready.get() + sh.errors.get() < args.conns && start.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let open_secs = start.elapsed().as_secs_f64();
    let Some(mut ctl) = control.borrow_mut().take() else {
        return "mode=broadcast error=the first connection failed".into();
    };
    // Let the server settle before measuring.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let tick = proc::clock_ticks();
    let conns = sh.ready.get();
    let mut lines = Vec::new();
    for round in 1..=args.rounds {
        for case in args.cases.split(',') {
            let mut parts = case.split(':').map(|p| p.parse::<u64>().expect("a number"));
            let (Some(size), Some(msgs)) = (parts.next(), parts.next()) else {
                panic!("--cases SIZE:MSGS[:BURST],...");
            };
            let size = size as usize;
            let burst = parts.next().unwrap_or(args.burst as u64);
            for mode in args.modes.split(',') {
                sh.size.set(size);
                sh.delivered.set(0);
                sh.bad.set(0);
                *sh.report.borrow_mut() = None;
                sh.want.set(conns as u64 * msgs);
                let errors0 = sh.errors.get();
                let cmd = client_text_frame(&format!("{mode} {msgs} {size} {burst}"));
                let run0 = args.pid.and_then(proc::cpu_ns).unwrap_or(0);
                let cpu0 = cpu(&args);
                let t0 = Instant::now();
                if let Err(e) = ctl.write_all(&cmd).await {
                    return format!("mode=broadcast error=control write: {e}");
                }
                let finished = tokio::time::timeout(limit, sh.done.notified())
                    .await
                    .is_ok();
                let secs = t0.elapsed().as_secs_f64();
                let cpu1 = cpu(&args);
                let run1 = args.pid.and_then(proc::cpu_ns).unwrap_or(0);
                let deliveries = sh.delivered.get();
                let cpu_us = (cpu1 - cpu0) as f64 * 1e6 / tick as f64;
                let report = sh
                    .report
                    .borrow()
                    .clone()
                    .unwrap_or_else(|| "report=none".into());
                let line = format!(
                    "mode=broadcast pub={mode} round={round} conns={conns} size={size} msgs={msgs} \
                     burst={burst} finished={finished} deliveries={deliveries} bad={} errors={} \
                     secs={secs:.3} deliveries_per_s={:.0} server_cpu_ms={:.0} \
                     cpu_us_per_delivery={:.4} sched_us_per_delivery={:.4} {report}",
                    sh.bad.get(),
                    sh.errors.get() - errors0,
                    deliveries as f64 / secs,
                    cpu_us / 1e3,
                    cpu_us / deliveries.max(1) as f64,
                    (run1 - run0) as f64 / 1e3 / deliveries.max(1) as f64,
                );
                eprintln!("{line}");
                lines.push(line);
                if !finished {
                    return lines.join("\n");
                }
            }
        }
    }
    lines.push(format!(
        "mode=broadcast-open conns={conns} open_secs={open_secs:.2}"
    ));
    lines.join("\n")
}

fn main() {
    let args = Rc::new(parse_args());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    let line = local.block_on(&rt, async move {
        match args.mode.as_str() {
            "echo" => run_echo(args).await,
            "handshake" => run_handshake(args).await,
            "idle" => run_idle(args).await,
            "broadcast" => run_broadcast(args).await,
            m => format!("error=unknown mode {m}"),
        }
    });
    println!("{line}");
    // Leave the connections to the exit; do not wait for tasks still in flight.
    std::process::exit(0);
}
