//! `load`: the lean load client of the echo benchmark, in the spirit of uWebSockets'
//! `load_test`. One current-thread tokio runtime, raw sockets, frames built once: per
//! connection it keeps `--inflight` messages in flight, and after each read it writes the
//! replies to every echo that read completed in one write.
//!
//! ```text
//! load echo      --addr A --pid P --conns N --size S --inflight K --warmup 1 --duration 5
//! load handshake --addr A --pid P --concurrency 32 --warmup 0.5 --duration 3
//! load idle      --addr A --pid P --conns 10000 --concurrency 200 [--hold 0]
//! ```
//!
//! Prints one line of `key=value` pairs. CPU figures are the server's (`--pid`) utime +
//! stime over the measured window, from `/proc/PID/stat`; memory is the server's `VmRSS`.
//! Connections bind source addresses spread over 127.0.0.0/8, so that many short
//! connections never run out of ephemeral ports.

use bytes::{Buf, BytesMut};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
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
            _ => panic!("unknown option {k}"),
        }
    }
    a
}

/// The source address of the `i`-th connection: 127.x.y.z with x >= 1, varied per run.
fn src_ip(i: usize) -> Ipv4Addr {
    let n = (std::process::id() as usize)
        .wrapping_mul(7919)
        .wrapping_add(i)
        % (250 * 250 * 250);
    Ipv4Addr::new(
        127,
        1 + (n / 62_500) as u8,
        ((n / 250) % 250) as u8,
        1 + (n % 250) as u8,
    )
}

async fn connect(i: usize, addr: SocketAddr) -> io::Result<TcpStream> {
    let sock = TcpSocket::new_v4()?;
    sock.bind(SocketAddr::new(src_ip(i).into(), 0))?;
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
            loop {
                let i = next.get();
                if i >= args.conns {
                    return;
                }
                next.set(i + 1);
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
            m => format!("error=unknown mode {m}"),
        }
    });
    println!("{line}");
    // Leave the connections to the exit; do not wait for tasks still in flight.
    std::process::exit(0);
}
