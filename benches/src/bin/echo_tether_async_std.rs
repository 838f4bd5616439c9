//! `echo_tether_async_std ADDR [STYLE]`: tether-async-std's echo server (the same code as
//! `adapters/async-std/examples/echo_server.rs`, see
//! `tether_bench::servers::tether_async_std_with`) with a choice of how the executor runs,
//! to compare the running styles of `tether_bench::servers::AsyncIoStyle`: `block_on` (the
//! default), `local` or `park_only`.

use tether_bench::servers::{self, AsyncIoStyle};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:9001".to_owned());
    let style = match args.next() {
        None => AsyncIoStyle::BlockOn,
        Some(name) => AsyncIoStyle::from_name(&name).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("unknown style {name}"),
            )
        })?,
    };
    let listener = std::net::TcpListener::bind(&addr)?;
    eprintln!(
        "echo_tether_async_std ({}) listening on {}",
        style.name(),
        listener.local_addr()?
    );
    servers::tether_async_std_with(listener, style)
}
