//! `echo_floor_async_io ADDR [STYLE]`: the runtime floor on async-io, a minimal
//! single-threaded echo on async-net and async-executor (see
//! `tether_bench::servers::floor_async_io`). A floor for the echo benchmark, not a
//! competitor.
//!
//! `STYLE` chooses how the executor runs (`tether_bench::servers::AsyncIoStyle`):
//! `block_on` (the default, as the async-std `echo_server` example), `local` or `park_only`;
//! or `ready_first`: `block_on` with reads that wait for readiness after a short read
//! (`tether_bench::servers::floor_async_io_ready_first`).

use tether_bench::servers::{self, AsyncIoStyle};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:9001".to_owned());
    let style = match args.next() {
        None => AsyncIoStyle::BlockOn,
        Some(name) if name == "ready_first" => {
            let listener = std::net::TcpListener::bind(&addr)?;
            eprintln!(
                "echo_floor_async_io (ready_first) listening on {}",
                listener.local_addr()?
            );
            return servers::floor_async_io_ready_first(listener);
        }
        Some(name) => AsyncIoStyle::from_name(&name).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("unknown style {name}"),
            )
        })?,
    };
    let listener = std::net::TcpListener::bind(&addr)?;
    eprintln!(
        "echo_floor_async_io ({}) listening on {}",
        style.name(),
        listener.local_addr()?
    );
    servers::floor_async_io_with(listener, style)
}
