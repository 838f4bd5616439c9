//! `fanout_floor ADDR`: the floor of the fan-out benchmark (issue 22). A bare server on a
//! current-thread tokio runtime, no WebSocket library: a hand-rolled handshake (any path)
//! and frame parse, and for every text or binary message a client sends, one server frame
//! built once and written to every connection (the sender included) with one plain
//! non-blocking `try_write`, and nothing else: no queue, no retry. A write that would block
//! is a dropped delivery; a partial write leaves that connection's stream broken, so the
//! connection is abandoned (`cut`: left out of later fan-outs). Both are counted and
//! reported on standard error (see [`tether_bench::fanout`]).
//!
//! It is the lower bound while every delivery is its own write: what the kernel's `write`
//! costs, per delivery, with next to nothing around it.
//!
//! `FLOOR_THREADS=N` (default 1): a fan-out to 512 connections or more is split in N equal
//! parts, written at the same time from this thread and N - 1 threads started for it
//! (scoped threads, started per fan-out: some 30 µs each): the floor on N cores.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::rc::Rc;
use tether_bench::fanout::{ClientFrame, Counters, report, switching_response};
use tokio::net::TcpStream;

static STATS: Counters = Counters::new();

/// A connection: its stream, and whether a partial write broke it.
struct Peer {
    stream: TcpStream,
    broken: Cell<bool>,
}

/// The open connections, by slot.
#[derive(Default)]
struct Registry {
    slots: Vec<Option<Rc<Peer>>>,
    free: Vec<usize>,
}

impl Registry {
    fn insert(&mut self, peer: Rc<Peer>) -> usize {
        if let Some(i) = self.free.pop() {
            self.slots[i] = Some(peer);
            i
        } else {
            self.slots.push(Some(peer));
            self.slots.len() - 1
        }
    }

    fn remove(&mut self, i: usize) {
        if self.slots[i].take().is_some() {
            self.free.push(i);
        }
    }

    /// Writes `frame` to every connection with one `try_write` each.
    fn fan_out(&mut self, frame: &[u8]) {
        let threads = threads();
        if threads > 1 && self.slots.len() >= 512 {
            return self.fan_out_threads(frame, threads);
        }
        let (mut queued, mut dropped, mut cut) = (0, 0, 0);
        for slot in &mut self.slots {
            let Some(peer) = slot else { continue };
            if peer.broken.get() {
                continue;
            }
            match peer.stream.try_write(frame) {
                Ok(n) if n == frame.len() => queued += 1,
                Ok(_) => {
                    peer.broken.set(true);
                    cut += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => dropped += 1,
                Err(_) => dropped += 1,
            }
        }
        Counters::add(&STATS.relayed, 1);
        Counters::add(&STATS.queued, queued);
        Counters::add(&STATS.dropped, dropped);
        Counters::add(&STATS.cut, cut);
    }
}

impl Registry {
    /// [`fan_out`](Self::fan_out) from `threads` threads at once, each a part of the
    /// connections.
    fn fan_out_threads(&mut self, frame: &[u8], threads: usize) {
        let live: Vec<(usize, BorrowedFd<'_>)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, slot)| {
                let peer = slot.as_ref().filter(|p| !p.broken.get())?;
                Some((i, peer.stream.as_fd()))
            })
            .collect();
        let part = live.len().div_ceil(threads).max(1);
        let results: Vec<(u64, u64, Vec<usize>)> = std::thread::scope(|scope| {
            let others: Vec<_> = live
                .chunks(part)
                .skip(1)
                .map(|part| scope.spawn(move || write_each(part, frame)))
                .collect();
            let mut results = vec![write_each(&live[..part.min(live.len())], frame)];
            results.extend(others.into_iter().map(|t| t.join().expect("writer thread")));
            results
        });
        let (mut queued, mut dropped, mut cut) = (0, 0, 0);
        for (q, d, broken) in results {
            queued += q;
            dropped += d;
            cut += broken.len() as u64;
            for i in broken {
                if let Some(peer) = &self.slots[i] {
                    peer.broken.set(true);
                }
            }
        }
        Counters::add(&STATS.relayed, 1);
        Counters::add(&STATS.queued, queued);
        Counters::add(&STATS.dropped, dropped);
        Counters::add(&STATS.cut, cut);
    }
}

/// One plain non-blocking write of `frame` to each socket of `part` (by slot): what was
/// queued, dropped, and the slots a partial write broke.
fn write_each(part: &[(usize, BorrowedFd<'_>)], frame: &[u8]) -> (u64, u64, Vec<usize>) {
    let (mut queued, mut dropped, mut broken) = (0, 0, Vec::new());
    for (slot, fd) in part {
        match socket2::SockRef::from(fd).send(frame) {
            Ok(n) if n == frame.len() => queued += 1,
            Ok(_) => broken.push(*slot),
            Err(_) => dropped += 1,
        }
    }
    (queued, dropped, broken)
}

/// `FLOOR_THREADS`, read once.
fn threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| {
        std::env::var("FLOOR_THREADS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1usize)
            .max(1)
    })
}

/// Writes all of `data` (the handshake response), waiting for writability.
async fn write_all(stream: &TcpStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        stream.writable().await?;
        match stream.try_write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads into `buf[*end..]` (growing it when full); `Ok(false)` at EOF.
async fn read_more(stream: &TcpStream, buf: &mut Vec<u8>, end: &mut usize) -> io::Result<bool> {
    if *end == buf.len() {
        buf.resize(buf.len() * 2, 0);
    }
    loop {
        stream.readable().await?;
        match stream.try_read(&mut buf[*end..]) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                *end += n;
                return Ok(true);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

async fn connection(stream: TcpStream, registry: Rc<RefCell<Registry>>) -> io::Result<()> {
    let mut buf = vec![0u8; 4096];
    let mut end = 0;
    let head = loop {
        if !read_more(&stream, &mut buf, &mut end).await? {
            return Ok(());
        }
        if let Some(p) = buf[..end].windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        if end > 16 * 1024 {
            return Ok(());
        }
    };
    let Some(response) = switching_response(&buf[..head]) else {
        return Ok(());
    };
    write_all(&stream, &response).await?;
    buf.copy_within(head..end, 0);
    end -= head;
    let peer = Rc::new(Peer {
        stream,
        broken: Cell::new(false),
    });
    let slot = registry.borrow_mut().insert(peer.clone());
    Counters::add(&STATS.conns, 1);
    let mut out = Vec::new();
    let result = async {
        loop {
            let mut start = 0;
            loop {
                let frame = match ClientFrame::parse(&buf[start..end]) {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(_unmasked) => return Ok(()),
                };
                match frame.b0 & 0x0F {
                    0x1 | 0x2 => {
                        out.clear();
                        frame.server_frame(&buf[start..end], &mut out);
                        registry.borrow_mut().fan_out(&out);
                    }
                    0x8 => return Ok(()),
                    _ => {}
                }
                start += frame.total();
            }
            buf.copy_within(start..end, 0);
            end -= start;
            if peer.broken.get() || !read_more(&peer.stream, &mut buf, &mut end).await? {
                return io::Result::Ok(());
            }
        }
    }
    .await;
    registry.borrow_mut().remove(slot);
    Counters::sub_one(&STATS.conns);
    result
}

fn main() -> io::Result<()> {
    let (runtime, listener) = tether_bench::current_thread_server("fanout_floor")?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let registry: Rc<RefCell<Registry>> = Rc::default();
        tokio::task::spawn_local(report("fanout_floor", &STATS));
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            tokio::task::spawn_local(connection(stream, registry.clone()));
        }
    })
}
