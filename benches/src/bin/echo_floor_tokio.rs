//! `echo_floor_tokio ADDR`: the runtime floor on tokio, a minimal single-threaded echo (see
//! `tether_bench::servers::floor_tokio`). A floor for the echo benchmark, not a competitor.

fn main() -> std::io::Result<()> {
    let listener = tether_bench::listen_on_arg("echo_floor_tokio")?;
    tether_bench::servers::floor_tokio(listener)
}
