//! `driver_echo [N]`: a tether server connection echoing `N` small messages (default
//! 200,000) over an in-memory transport, driven by a hand-written executor: the driver's
//! and the core's instructions per echoed message, without a runtime or a socket. Made to
//! count instructions reproducibly:
//!
//! ```text
//! valgrind --tool=callgrind target/release/driver_echo 100000
//! ```
//!
//! The application is the adapters' echo loop (`recv`, then `send` of the same message);
//! the peer writes one masked 20-byte frame at a time and takes the reply before the next.

use bytes::BytesMut;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;
use tether_bench::runtime::Kept;
use tether_bench::wire;
use tether_core::Role;
use tether_driver::{Config, Message, Transport};

/// The bytes between the peer and the server, and the server's read waker.
#[derive(Default)]
struct Pipe {
    to_server: Vec<u8>,
    to_peer: Vec<u8>,
    reader: Option<Waker>,
}

#[derive(Clone, Default)]
struct End(Arc<Mutex<Pipe>>);

impl Transport for End {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>> {
        let mut p = self.0.lock().unwrap();
        if p.to_server.is_empty() {
            p.reader = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = p.to_server.len().min(buf.capacity() - buf.len());
        buf.extend_from_slice(&p.to_server[..n]);
        p.to_server.drain(..n);
        Poll::Ready(Ok(n))
    }

    fn poll_write(&mut self, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.0.lock().unwrap().to_peer.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The application's task: woken means "poll again".
#[derive(Default)]
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn main() {
    let n = tether_bench::count_arg(200_000);
    let frame = wire::client_frame(20);
    let pipe = End::default();
    let runtime = Arc::new(Kept::default());
    let ws = tether_driver::open(
        runtime.clone(),
        pipe.clone(),
        Role::Server,
        None,
        None,
        &Config::default(),
    )
    .expect("open");
    let mut app: Pin<Box<dyn Future<Output = ()>>> = Box::pin(async move {
        let mut ws = ws;
        loop {
            let Some(Ok(message)) = ws.recv().await else {
                break;
            };
            if matches!(message, Message::Binary(_)) && ws.send(message).await.is_err() {
                break;
            }
        }
    });
    // The application's task and the background tasks, each woken by its own flag.
    let flag = Arc::new(Flag::default());
    let waker = Waker::from(flag.clone());
    let bg_flag = Arc::new(Flag::default());
    let bg_waker = Waker::from(bg_flag.clone());
    let mut background: Vec<Pin<Box<dyn Future<Output = ()> + Send>>> = Vec::new();
    let mut run = |app: &mut Pin<Box<dyn Future<Output = ()>>>| {
        if flag.0.swap(false, Ordering::SeqCst) {
            let _ = app.as_mut().poll(&mut Context::from_waker(&waker));
        }
        let fresh = runtime.take();
        let woken = bg_flag.0.swap(false, Ordering::SeqCst);
        let mut tasks: Vec<_> = fresh.into_iter().collect();
        if woken {
            tasks.append(&mut background);
        }
        for mut task in tasks {
            if task
                .as_mut()
                .poll(&mut Context::from_waker(&bg_waker))
                .is_pending()
            {
                background.push(task);
            }
        }
    };
    flag.0.store(true, Ordering::SeqCst);
    run(&mut app);
    let start = Instant::now();
    for _ in 0..n {
        let reader = {
            let mut p = pipe.0.lock().unwrap();
            p.to_server.extend_from_slice(&frame);
            p.reader.take()
        };
        if let Some(w) = reader {
            w.wake();
        }
        while flag.0.load(Ordering::SeqCst) || bg_flag.0.load(Ordering::SeqCst) {
            run(&mut app);
        }
        let mut p = pipe.0.lock().unwrap();
        assert_eq!(p.to_peer.len(), 22, "one reply per message");
        p.to_peer.clear();
    }
    let elapsed = start.elapsed();
    println!(
        "{n} echoes, {:.1} ns each",
        elapsed.as_nanos() as f64 / n as f64
    );
}
