//! `echo_tether_async_std ADDR [STYLE]`: tether-async-std's echo server (the same code as
//! `adapters/async-std/examples/echo_server.rs`, see
//! `tether_bench::servers::tether_async_std_with`) with a choice of how the executor runs,
//! to compare the running styles of `tether_bench::servers::AsyncIoStyle`: `block_on` (the
//! default), `local` or `park_only`.

use tether_bench::servers::{self, AsyncIoStyle};

fn main() -> std::io::Result<()> {
    let style = AsyncIoStyle::parse(tether_bench::second_arg().as_deref())?;
    let name = format!("echo_tether_async_std ({})", style.name());
    servers::tether_async_std_with(tether_bench::listen_on_arg(&name)?, style)
}
