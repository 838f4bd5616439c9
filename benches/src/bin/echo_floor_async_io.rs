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
    match tether_bench::second_arg().as_deref() {
        Some("ready_first") => {
            let listener = tether_bench::listen_on_arg("echo_floor_async_io (ready_first)")?;
            servers::floor_async_io_ready_first(listener)
        }
        style => {
            let style = AsyncIoStyle::parse(style)?;
            let name = format!("echo_floor_async_io ({})", style.name());
            servers::floor_async_io_with(tether_bench::listen_on_arg(&name)?, style)
        }
    }
}
