//! `fanout_tether ADDR`: a fan-out peer (issue 22): tether-tokio without the hub. A
//! current-thread runtime, the default [`Config`] (any path, no compression), a [`Sender`]
//! per connection in a plain list; every text or binary message a connection receives is
//! encoded once as a [`PreparedFrame`] and handed to every connection (the sender
//! included) with [`Sender::try_send_prepared`], its bytes shared. The connections'
//! drivers write what is queued (several messages in one write when they pile up).
//!
//! A `Full` answer (the connection's queue at its high-water mark) drops that delivery:
//! counted as `dropped` (see [`tether_bench::fanout`]); a closed connection leaves the list.

use std::cell::RefCell;
use std::rc::Rc;
use tether_bench::fanout::{Counters, report};
use tether_tokio::{Accept, Config, Message, PreparedFrame, Sender, TrySendError, accept_with};

static STATS: Counters = Counters::new();

/// Hands `msg` to every sender in `senders`, encoded once; forgets the closed ones.
fn fan_out(senders: &mut Vec<Sender>, msg: &Message) {
    let Some(frame) = PreparedFrame::new(msg) else {
        return;
    };
    let (mut queued, mut dropped) = (0, 0);
    senders.retain(|s| match s.try_send_prepared(&frame) {
        Ok(()) => {
            queued += 1;
            true
        }
        Err(TrySendError::Full(())) => {
            dropped += 1;
            true
        }
        Err(_) => false,
    });
    Counters::add(&STATS.relayed, 1);
    Counters::add(&STATS.queued, queued);
    Counters::add(&STATS.dropped, dropped);
}

fn main() -> std::io::Result<()> {
    let (runtime, listener) = tether_bench::current_thread_server("fanout_tether")?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        tokio::task::spawn_local(report("fanout_tether", &STATS));
        let senders: Rc<RefCell<Vec<Sender>>> = Rc::default();
        let config = Config::default();
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            let accepting = accept_with(stream, config.clone(), |_| Ok(Accept::new()));
            let senders = senders.clone();
            tokio::task::spawn_local(async move {
                let Ok(mut ws) = accepting.await else {
                    return;
                };
                senders.borrow_mut().push(ws.sender());
                Counters::add(&STATS.conns, 1);
                // Awaiting `recv` drives the connection (reads, writes, pings).
                while let Some(Ok(msg)) = ws.recv().await {
                    if matches!(msg, Message::Text(_) | Message::Binary(_)) {
                        fan_out(&mut senders.borrow_mut(), &msg);
                    }
                }
                Counters::sub_one(&STATS.conns);
            });
        }
    })
}
