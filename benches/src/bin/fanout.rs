//! `fanout`: the fan-out load client of issue 22. It opens `--subs` subscriber and `--pubs`
//! publisher connections to a server that sends every message any client sends to every
//! connected client (gorilla's chat hub semantics, the sender included), then publishes
//! for `--duration` seconds and measures what arrives.
//!
//! ```text
//! fanout --addr 127.0.0.1:9001 --pid PID --peer floor --case inflight --subs 1000 --size 20
//! fanout --addr 127.0.0.1:9001 --pid PID --subs 10000 --rate 10 --duration 20
//! fanout --addr 127.0.0.1:9001 --pid PID --subs 10000 --duration 0      # idle memory only
//! ```
//!
//! - `--rate 0` (the default) keeps one message in flight per publisher: the next one is
//!   sent once every open connection got the previous one (or after `--stall` seconds,
//!   counted as a stall). `--rate R` sends R messages per second per publisher, paced by a
//!   1 ms tick (several messages in one write when behind).
//! - Every message is a text message `P:SEQ:T:xxx…` (publisher, sequence number, send time
//!   in µs since the client started, padded with `x` to `--size` bytes; longer when the
//!   header needs it). Text, because gorilla's chat hub relays text; it may also merge
//!   queued messages into one, separated by `\n`, which the client splits.
//! - Every connection (the publishers' too) counts what it receives: deliveries, gaps in
//!   each publisher's sequence (loss), duplicates or reordering, and the latency from the
//!   send time (an HDR-style histogram, ~0.1 % resolution). Pings are answered.
//! - Server figures from `/proc` (`--pid`): resident memory per connection once all are open
//!   and idle (before publishing), and CPU (utime + stime, and schedstat run time) from the
//!   first send to the last delivery (or the end of `--drain`), per delivery. With
//!   `--server-core N` (the CPU the server is pinned to), also that CPU's busy time from
//!   `/proc/stat` per delivery (`core_us_per_delivery`): it adds the softirq work of the
//!   server's loopback writes, which the kernel does not charge to the server (a large
//!   share when every delivery is its own write), and whatever else ran on that CPU.
//! - `kept_up=yes` when every message reached every connection (within `--drain` seconds
//!   after publishing stopped) at 90 % of the offered rate or more (deliveries over the
//!   time from the first send to the last delivery): a backlog cleared late is not keeping
//!   up. `lost` counts what never arrived (a dropped message, or a connection the server
//!   closed).
//!
//! - `--stalled N`: the last N subscribers open their connection and never read from it
//!   (nor answer pings): the slow consumers of issue 22. They are not counted as receivers;
//!   the others' loss and latency show whether they suffered, and `rss_end_kib` (the
//!   server's memory when the run ends) whether the server's memory stayed bounded.
//!
//! Connections bind source addresses spread over 127.0.0.0/8. The fd limit must allow
//! subs + pubs sockets (`ulimit -n $(ulimit -Hn)`; the client warns otherwise). Prints one
//! `mode=fanout key=value …` line on standard output and a short summary on standard error.
//! Every phase is bounded: connecting (60 s), publishing (`--duration`), draining (`--drain`).

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tether_bench::stats::{Histogram, fd_limit, fmt_ms};
use tether_bench::{client, proc, wire};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Mutex, Notify};

#[derive(Clone, Debug)]
struct Args {
    addr: SocketAddr,
    path: String,
    pid: Option<u32>,
    peer: String,
    case: String,
    subs: usize,
    pubs: usize,
    size: usize,
    /// Messages per second per publisher; 0: one in flight.
    rate: f64,
    duration: f64,
    drain: f64,
    stall: f64,
    settle: f64,
    concurrency: usize,
    /// Subscribers that never read (the last ones opened), out of `subs`.
    stalled: usize,
    /// The CPU the server is pinned to, for its busy time including softirq.
    server_core: Option<usize>,
}

fn parse_args() -> Args {
    parse_args_from(std::env::args().skip(1).collect())
}

/// The options in `argv` (without the program name).
fn parse_args_from(argv: Vec<String>) -> Args {
    let mut it = argv.into_iter();
    let mut a = Args {
        addr: "127.0.0.1:9001".parse().expect("addr"),
        path: "/ws".into(),
        pid: None,
        peer: "-".into(),
        case: "-".into(),
        subs: 1000,
        pubs: 1,
        size: 20,
        rate: 0.0,
        duration: 10.0,
        drain: 5.0,
        stall: 1.0,
        settle: 1.0,
        concurrency: 200,
        stalled: 0,
        server_core: None,
    };
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--addr" => a.addr = v.parse().expect("--addr"),
            "--path" => a.path = v,
            "--pid" => a.pid = Some(v.parse().expect("--pid")),
            "--peer" => a.peer = v,
            "--case" => a.case = v,
            "--subs" => a.subs = v.parse().expect("--subs"),
            "--pubs" => a.pubs = v.parse().expect("--pubs"),
            "--size" => a.size = v.parse().expect("--size"),
            "--rate" => a.rate = v.parse().expect("--rate"),
            "--duration" => a.duration = v.parse().expect("--duration"),
            "--drain" => a.drain = v.parse().expect("--drain"),
            "--stall" => a.stall = v.parse().expect("--stall"),
            "--settle" => a.settle = v.parse().expect("--settle"),
            "--concurrency" => a.concurrency = v.parse().expect("--concurrency"),
            "--stalled" => a.stalled = v.parse().expect("--stalled"),
            "--server-core" => a.server_core = Some(v.parse().expect("--server-core")),
            _ => panic!("unknown option {k}"),
        }
    }
    assert!(a.pubs >= 1, "--pubs must be at least 1");
    assert!(a.stalled <= a.subs, "--stalled must not exceed --subs");
    a
}

/// Publishing phases.
const CONNECT: u8 = 0;
const PUBLISH: u8 = 1;
const DRAIN: u8 = 2;

/// What every connection and publisher share (one thread: `Cell`s).
struct Shared {
    args: Args,
    epoch: Instant,
    phase: Cell<u8>,
    ready: Cell<usize>,
    errors: Cell<usize>,
    /// Connections open now (ready and not ended).
    open: Cell<usize>,
    /// Connections the server ended (or that failed) after they were ready.
    closed: Cell<usize>,
    /// Messages sent by each publisher.
    sent: Vec<Cell<u64>>,
    /// One in flight: the sequence number each publisher waits for, and how many
    /// connections have not received it yet.
    pending: Vec<Cell<u64>>,
    remaining: Vec<Cell<usize>>,
    complete: Vec<Notify>,
    stalls: Cell<u64>,
    /// First arrivals of a message on a connection.
    delivered: Cell<u64>,
    /// Sequence numbers skipped (per connection and publisher).
    gaps: Cell<u64>,
    /// Messages that arrived again or after a later one.
    dups: Cell<u64>,
    /// Messages the client could not parse.
    bad: Cell<u64>,
    /// Deliveries per connection.
    per_conn: RefCell<Vec<u64>>,
    latency: RefCell<Histogram>,
    last_delivery: Cell<Option<Instant>>,
    scratch: RefCell<Vec<u8>>,
}

impl Shared {
    /// The counters of a run of `conns` connections, before any is open.
    fn new(args: Args, conns: usize) -> Self {
        let pubs = args.pubs;
        Self {
            epoch: Instant::now(),
            phase: Cell::new(CONNECT),
            ready: Cell::new(0),
            errors: Cell::new(0),
            open: Cell::new(0),
            closed: Cell::new(0),
            sent: (0..pubs).map(|_| Cell::new(0)).collect(),
            pending: (0..pubs).map(|_| Cell::new(u64::MAX)).collect(),
            remaining: (0..pubs).map(|_| Cell::new(0)).collect(),
            complete: (0..pubs).map(|_| Notify::new()).collect(),
            stalls: Cell::new(0),
            delivered: Cell::new(0),
            gaps: Cell::new(0),
            dups: Cell::new(0),
            bad: Cell::new(0),
            per_conn: RefCell::new(vec![0; conns]),
            latency: RefCell::new(Histogram::new()),
            last_delivery: Cell::new(None),
            scratch: RefCell::new(vec![0; 256 * 1024]),
            args,
        }
    }
}

/// Parses the decimal number at the front of `s` up to `:`; returns it and the rest.
fn number(s: &[u8]) -> Option<(u64, &[u8])> {
    let end = memchr_colon(s)?;
    if end == 0 || end > 19 {
        return None;
    }
    let mut v = 0u64;
    for &b in &s[..end] {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(b - b'0');
    }
    Some((v, &s[end + 1..]))
}

fn memchr_colon(s: &[u8]) -> Option<usize> {
    s.iter().position(|&b| b == b':')
}

/// A connection's write half, shared by its publisher (if any) and its reader (pongs).
type Writer = Rc<Mutex<OwnedWriteHalf>>;

/// A receiving connection's state.
struct Conn {
    index: usize,
    /// The next sequence number expected from each publisher.
    next: Vec<u64>,
    /// A message whose frames are still arriving (fragmented).
    message: Vec<u8>,
    fragmented: bool,
    /// Bytes of an incomplete frame.
    rest: Vec<u8>,
}

impl Conn {
    /// Counts one message line `P:SEQ:T:…` received at `now_us`.
    fn line(&mut self, sh: &Shared, line: &[u8], now_us: u64) {
        let parsed = number(line).and_then(|(p, rest)| {
            let (seq, rest) = number(rest)?;
            let (ts, _) = number(rest)?;
            Some((p as usize, seq, ts))
        });
        let Some((p, seq, ts)) = parsed.filter(|&(p, _, _)| p < self.next.len()) else {
            sh.bad.set(sh.bad.get() + 1);
            return;
        };
        let next = &mut self.next[p];
        if seq < *next {
            sh.dups.set(sh.dups.get() + 1);
            return;
        }
        if seq > *next {
            sh.gaps.set(sh.gaps.get() + seq - *next);
        }
        *next = seq + 1;
        sh.delivered.set(sh.delivered.get() + 1);
        sh.per_conn.borrow_mut()[self.index] += 1;
        sh.latency.borrow_mut().record(now_us.saturating_sub(ts));
        if sh.args.rate == 0.0 && sh.pending[p].get() == seq {
            let left = sh.remaining[p].get().saturating_sub(1);
            sh.remaining[p].set(left);
            if left == 0 {
                sh.complete[p].notify_one();
            }
        }
    }

    fn message(&mut self, sh: &Shared, payload: &[u8], now_us: u64) {
        for line in payload.split(|&b| b == b'\n') {
            self.line(sh, line, now_us);
        }
    }

    /// Handles every complete frame at the front of `data`; returns how many bytes it
    /// used, and whether a ping needs a pong (its payload) or the server closed.
    fn frames(
        &mut self,
        sh: &Shared,
        data: &[u8],
        now_us: u64,
        pongs: &mut Vec<u8>,
    ) -> (usize, bool) {
        let mut pos = 0;
        let mut closed = false;
        while let Some(n) = wire::server_frame_len(&data[pos..]) {
            if data.len() - pos < n {
                break;
            }
            let frame = &data[pos..pos + n];
            pos += n;
            let header = match frame[1] & 0x7F {
                126 => 4,
                127 => 10,
                _ => 2,
            };
            if frame[1] & 0x80 != 0 {
                // Server frames are not masked.
                sh.bad.set(sh.bad.get() + 1);
                closed = true;
                break;
            }
            let fin = frame[0] & 0x80 != 0;
            let payload = &frame[header..];
            match frame[0] & 0x0F {
                0x1 | 0x2 if fin && !self.fragmented => self.message(sh, payload, now_us),
                0x1 | 0x2 => {
                    self.message.clear();
                    self.message.extend_from_slice(payload);
                    self.fragmented = true;
                }
                0x0 => {
                    self.message.extend_from_slice(payload);
                    if fin {
                        let whole = std::mem::take(&mut self.message);
                        self.message(sh, &whole, now_us);
                        self.message = whole;
                        self.fragmented = false;
                    }
                }
                0x9 => wire::pong_frame(payload, pongs),
                0x8 => {
                    closed = true;
                    break;
                }
                _ => {}
            }
        }
        (pos, closed)
    }
}

/// Reads connection `index` until it ends; answers pings through `w`.
async fn reader(
    index: usize,
    r: OwnedReadHalf,
    first: Vec<u8>,
    w: Writer,
    sh: Rc<Shared>,
) -> io::Result<()> {
    let mut conn = Conn {
        index,
        next: vec![0; sh.args.pubs],
        message: Vec::new(),
        fragmented: false,
        rest: first,
    };
    let mut pongs = Vec::new();
    let mut pending = true; // `rest` may hold frames that came with the response
    loop {
        if !pending {
            r.readable().await?;
        }
        pending = false;
        let now = Instant::now();
        let now_us = (now - sh.epoch).as_micros() as u64;
        let closed = {
            let mut scratch = sh.scratch.borrow_mut();
            let n = match r.try_read(&mut scratch) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                Err(e) => return Err(e),
            };
            let before = sh.delivered.get();
            let closed = if conn.rest.is_empty() {
                let (used, closed) = conn.frames(&sh, &scratch[..n], now_us, &mut pongs);
                conn.rest.extend_from_slice(&scratch[used..n]);
                closed
            } else {
                let mut rest = std::mem::take(&mut conn.rest);
                rest.extend_from_slice(&scratch[..n]);
                let (used, closed) = conn.frames(&sh, &rest, now_us, &mut pongs);
                rest.drain(..used);
                if rest.capacity() > 64 * 1024 && rest.len() < 1024 {
                    rest.shrink_to(1024);
                }
                conn.rest = rest;
                closed
            };
            if sh.delivered.get() != before {
                sh.last_delivery.set(Some(now));
            }
            closed
        };
        if closed {
            return Err(io::ErrorKind::ConnectionAborted.into());
        }
        if !pongs.is_empty() {
            w.lock().await.write_all(&pongs).await?;
            pongs.clear();
        }
    }
}

/// The text payload of message `seq` of publisher `p`, padded to `size` bytes.
fn payload(p: usize, seq: u64, ts_us: u64, size: usize) -> Vec<u8> {
    let mut text = format!("{p}:{seq}:{ts_us}:").into_bytes();
    if text.len() < size {
        text.resize(size, b'x');
    }
    text
}

/// Publisher `p`: one message in flight, or `--rate` per second, until the phase changes.
async fn publisher(p: usize, w: Writer, sh: Rc<Shared>) -> io::Result<()> {
    let args = &sh.args;
    let mut out = Vec::with_capacity(4096);
    let mut seq = 0u64;
    if args.rate == 0.0 {
        let stall = Duration::from_secs_f64(args.stall);
        while sh.phase.get() == PUBLISH {
            sh.pending[p].set(seq);
            sh.remaining[p].set(sh.open.get());
            out.clear();
            let ts = sh.epoch.elapsed().as_micros() as u64;
            wire::client_text_frame(&payload(p, seq, ts, args.size), &mut out);
            w.lock().await.write_all(&out).await?;
            seq += 1;
            sh.sent[p].set(seq);
            let deadline = tokio::time::Instant::now() + stall;
            while sh.remaining[p].get() > 0 {
                if tokio::time::timeout_at(deadline, sh.complete[p].notified())
                    .await
                    .is_err()
                {
                    sh.stalls.set(sh.stalls.get() + 1);
                    break;
                }
            }
        }
        return Ok(());
    }
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while sh.phase.get() == PUBLISH {
        tick.tick().await;
        let due = (start.elapsed().as_secs_f64() * args.rate) as u64 + 1;
        if due <= seq {
            continue;
        }
        out.clear();
        let ts = sh.epoch.elapsed().as_micros() as u64;
        while seq < due {
            wire::client_text_frame(&payload(p, seq, ts, args.size), &mut out);
            seq += 1;
        }
        w.lock().await.write_all(&out).await?;
        sh.sent[p].set(seq);
    }
    Ok(())
}

/// Connects and upgrades connection `i`; returns its halves and what followed the head.
async fn open(
    i: usize,
    sh: &Shared,
    request: &[u8],
) -> io::Result<(OwnedReadHalf, OwnedWriteHalf, Vec<u8>)> {
    // A stalled subscriber: a small receive window, so that its stall reaches the server's
    // queues within seconds rather than filling the kernel's buffers first.
    let stalled = i >= sh.args.subs + sh.args.pubs - sh.args.stalled;
    let (s, rest) = client::upgrade(
        wire::src_ip(i),
        sh.args.addr,
        request,
        stalled.then_some(4096),
    )
    .await?;
    let (r, w) = s.into_split();
    Ok((r, w, rest))
}

async fn run(args: Args) -> String {
    let conns = args.subs + args.pubs;
    if let Some(limit) = fd_limit().filter(|&l| l < conns + 64) {
        eprintln!(
            "fanout: the open-files limit ({limit}) is below {} connections; raise it with \
             `ulimit -n $(ulimit -Hn)`",
            conns
        );
    }
    let pubs = args.pubs;
    let sh = Rc::new(Shared::new(args, conns));
    let args = &sh.args;
    let pid = args.pid;
    let rss0 = pid.and_then(proc::rss_kib).unwrap_or(0);
    let request = Rc::new(wire::upgrade_request_to(&args.addr.to_string(), &args.path));
    let writers: Rc<RefCell<Vec<Option<Writer>>>> = Rc::new(RefCell::new(vec![None; conns]));
    let stalled: Rc<RefCell<Vec<OwnedReadHalf>>> = Rc::default();
    let next = Rc::new(Cell::new(0usize));
    let start = Instant::now();
    for _ in 0..args.concurrency.min(conns) {
        let (sh, request, next, writers, stalled) = (
            sh.clone(),
            request.clone(),
            next.clone(),
            writers.clone(),
            stalled.clone(),
        );
        tokio::task::spawn_local(async move {
            while let Some(i) = tether_bench::take_next(&next, conns) {
                match open(i, &sh, &request).await {
                    Ok((r, w, rest)) => {
                        let w = Rc::new(Mutex::new(w));
                        writers.borrow_mut()[i] = Some(w.clone());
                        sh.ready.set(sh.ready.get() + 1);
                        if i >= conns - sh.args.stalled {
                            // A stalled subscriber: open, never read.
                            stalled.borrow_mut().push(r);
                            continue;
                        }
                        sh.open.set(sh.open.get() + 1);
                        let sh = sh.clone();
                        tokio::task::spawn_local(async move {
                            let _ = reader(i, r, rest, w, sh.clone()).await;
                            sh.open.set(sh.open.get() - 1);
                            sh.closed.set(sh.closed.get() + 1);
                        });
                    }
                    Err(_) => sh.errors.set(sh.errors.get() + 1),
                }
            }
        });
    }
    let limit = Duration::from_secs(60);
    while sh.ready.get() + sh.errors.get() < conns && start.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let open_secs = start.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs_f64(args.settle)).await;
    let rss1 = pid.and_then(proc::rss_kib).unwrap_or(0);
    let ready = sh.ready.get();
    let rss_per_conn = (rss1 as f64 - rss0 as f64) * 1024.0 / ready.max(1) as f64;
    let mut line = format!(
        "mode=fanout peer={} case={} subs={} pubs={} size={} rate={} ready={ready} errors={} \
         open_secs={open_secs:.2} rss0_kib={rss0} rss1_kib={rss1} rss_per_conn_b={rss_per_conn:.0}",
        args.peer,
        args.case,
        args.subs,
        args.pubs,
        args.size,
        args.rate,
        sh.errors.get(),
    );
    let publishers: Vec<_> = (0..pubs)
        .filter_map(|p| writers.borrow()[p].clone().map(|w| (p, w)))
        .collect();
    if args.duration <= 0.0 || publishers.len() < pubs {
        if publishers.len() < pubs {
            line.push_str(" error=a_publisher_failed_to_connect");
        }
        return line;
    }

    // Publish.
    let tick = proc::clock_ticks();
    let me = std::process::id();
    let receivers = sh.open.get() as u64;
    let closed0 = sh.closed.get();
    let cpu0 = pid.and_then(proc::cpu_ticks).unwrap_or(0);
    let core0 = args
        .server_core
        .and_then(proc::core_busy_ticks)
        .unwrap_or(0);
    let run0 = pid.and_then(proc::cpu_ns).unwrap_or(0);
    let me0 = proc::cpu_ticks(me).unwrap_or(0);
    let t0 = Instant::now();
    sh.phase.set(PUBLISH);
    let mut tasks = Vec::new();
    for (p, w) in publishers {
        let sh = sh.clone();
        tasks.push(tokio::task::spawn_local(async move {
            publisher(p, w, sh).await
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    sh.phase.set(DRAIN);
    let mut publish_errors = 0;
    for t in tasks {
        // A publisher waiting for a stalled message ends within `--stall`.
        if !matches!(t.await, Ok(Ok(()))) {
            publish_errors += 1;
        }
    }
    let publish_secs = t0.elapsed().as_secs_f64();
    let sent: u64 = sh.sent.iter().map(Cell::get).sum();
    let expected = sent * receivers;
    let drain_start = Instant::now();
    let drain = Duration::from_secs_f64(args.drain);
    while sh.delivered.get() < expected && drain_start.elapsed() < drain {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let end = Instant::now();
    let rss_end = pid.and_then(proc::rss_kib).unwrap_or(0);
    let cpu1 = pid.and_then(proc::cpu_ticks).unwrap_or(0);
    let core1 = args
        .server_core
        .and_then(proc::core_busy_ticks)
        .unwrap_or(0);
    let run1 = pid.and_then(proc::cpu_ns).unwrap_or(0);
    let me1 = proc::cpu_ticks(me).unwrap_or(0);
    let delivered = sh.delivered.get();
    let last = sh.last_delivery.get().unwrap_or(t0);
    let secs = (last.max(t0) - t0).as_secs_f64().max(1e-9);
    let window = (end - t0).as_secs_f64();
    let lost = expected.saturating_sub(delivered);
    let per_sender = sent; // every connection should get every message
    let starved = sh
        .per_conn
        .borrow()
        .iter()
        .take(conns - args.stalled)
        .filter(|&&n| n < per_sender)
        .count();
    let offered = receivers as f64
        * if args.rate > 0.0 {
            args.rate * pubs as f64
        } else {
            sent as f64 / publish_secs
        };
    // Every message everywhere, at (nearly) the offered rate: a backlog cleared late is
    // not keeping up.
    let kept_up = lost == 0 && publish_errors == 0 && delivered as f64 / secs >= 0.9 * offered;
    let hist = sh.latency.borrow();
    let cpu_us = (cpu1 - cpu0) as f64 * 1e6 / tick as f64;
    let me_us = (me1 - me0) as f64 * 1e6 / tick as f64;
    let core_us = (core1 - core0) as f64 * 1e6 / tick as f64;
    line.push_str(&format!(
        " receivers={receivers} stalled={} sent={sent} expected={expected} delivered={delivered} lost={lost} \
         loss_pct={:.3} conns_with_loss={starved} gaps={} dups={} bad={} closed={} stalls={} \
         publish_errors={publish_errors} publish_secs={publish_secs:.3} secs={secs:.3} \
         drain_secs={:.3} offered_per_s={offered:.0} deliveries_per_s={:.0} p50_ms={} p99_ms={} \
         max_ms={} server_cpu_pct={:.1} cpu_us_per_delivery={:.3} sched_us_per_delivery={:.3} \
         core_busy_pct={:.1} core_us_per_delivery={:.3} client_cpu_pct={:.1} \
         rss_end_kib={rss_end} kept_up={}",
        stalled.borrow().len(),
        lost as f64 * 100.0 / expected.max(1) as f64,
        sh.gaps.get(),
        sh.dups.get(),
        sh.bad.get(),
        sh.closed.get() - closed0,
        sh.stalls.get(),
        (last.max(drain_start) - drain_start).as_secs_f64(),
        delivered as f64 / secs,
        fmt_ms(hist.quantile(0.50)),
        fmt_ms(hist.quantile(0.99)),
        fmt_ms((hist.n > 0).then_some(hist.max)),
        cpu_us / window / 1e4,
        cpu_us / delivered.max(1) as f64,
        (run1 - run0) as f64 / 1e3 / delivered.max(1) as f64,
        core_us / window / 1e4,
        core_us / delivered.max(1) as f64,
        me_us / window / 1e4,
        if kept_up { "yes" } else { "no" },
    ));
    line
}

fn main() {
    let args = parse_args();
    let bound = args.duration.max(0.0) + args.drain + args.stall + args.settle + 75.0;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    let line = local.block_on(&rt, async move {
        let peer = args.peer.clone();
        match tokio::time::timeout(Duration::from_secs_f64(bound), run(args)).await {
            Ok(line) => line,
            Err(_) => format!("mode=fanout peer={peer} error=timed_out_after_{bound:.0}s"),
        }
    });
    println!("{line}");
    let kv: std::collections::HashMap<&str, &str> = line
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let get = |k: &str| kv.get(k).copied().unwrap_or("-");
    if let Some(error) = kv.get("error") {
        eprintln!("fanout {} {}: error {error}", get("peer"), get("case"));
    } else if !kv.contains_key("expected") {
        eprintln!(
            "fanout {} {}: {} connections open ({} failed), server {} B/conn idle",
            get("peer"),
            get("case"),
            get("ready"),
            get("errors"),
            get("rss_per_conn_b"),
        );
    } else {
        eprintln!(
            "fanout {} {}: {} receivers ({} stalled), {} of {} delivered (lost {}, {} %), \
             p50 {} ms, p99 {} ms, max {} ms, server {} µs/delivery at {} % CPU, \
             {} B/conn idle, kept up: {}",
            get("peer"),
            get("case"),
            get("receivers"),
            get("stalled"),
            get("delivered"),
            get("expected"),
            get("lost"),
            get("loss_pct"),
            get("p50_ms"),
            get("p99_ms"),
            get("max_ms"),
            get("cpu_us_per_delivery"),
            get("server_cpu_pct"),
            get("rss_per_conn_b"),
            get("kept_up"),
        );
    }
    // Leave the connections to the exit; do not wait for tasks still in flight.
    std::process::exit(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(pubs: usize) -> Shared {
        let mut args = parse_args_from(Vec::new());
        args.pubs = pubs;
        let sh = Shared::new(args, 1);
        sh.phase.set(PUBLISH);
        sh.open.set(1);
        sh
    }

    /// An unmasked server frame: `b0` then a 7- or 16-bit length.
    fn server_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![b0];
        if payload.len() < 126 {
            out.push(payload.len() as u8);
        } else {
            out.push(126);
            out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn merged_fragmented_and_missing_messages_are_counted() {
        let sh = shared(2);
        let mut conn = Conn {
            index: 0,
            next: vec![0; 2],
            message: Vec::new(),
            fragmented: false,
            rest: Vec::new(),
        };
        let mut data = server_frame(0x81, &payload(0, 0, 100, 20));
        // gorilla's merge: two messages in one, split over a text frame and a continuation.
        let merged = [payload(0, 1, 100, 20), payload(1, 0, 150, 20)].join(&b'\n');
        data.extend(server_frame(0x01, &merged[..25]));
        data.extend(server_frame(0x89, b"hi")); // a ping between the fragments
        data.extend(server_frame(0x80, &merged[25..]));
        // Message 2 of publisher 0 is lost; 3 arrives, then 1 again.
        data.extend(server_frame(0x81, &payload(0, 3, 200, 20)));
        data.extend(server_frame(0x81, &payload(0, 1, 200, 20)));
        let partial = server_frame(0x81, &payload(1, 1, 300, 20));
        data.extend_from_slice(&partial[..5]);
        let mut pongs = Vec::new();
        let (used, closed) = conn.frames(&sh, &data, 1100, &mut pongs);
        assert!(!closed);
        assert_eq!(used, data.len() - 5, "the partial frame is left");
        assert_eq!(sh.delivered.get(), 4);
        assert_eq!(sh.gaps.get(), 1);
        assert_eq!(sh.dups.get(), 1);
        assert_eq!(sh.bad.get(), 0);
        assert_eq!(conn.next, vec![4, 1]);
        let mut pong = Vec::new();
        wire::pong_frame(b"hi", &mut pong);
        assert_eq!(pongs, pong);
        let h = sh.latency.borrow();
        assert_eq!((h.quantile(0.0), h.max), (Some(900), 1000));
    }
}
