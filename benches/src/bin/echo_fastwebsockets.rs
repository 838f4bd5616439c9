//! `echo_fastwebsockets ADDR`: a single-threaded echo server on fastwebsockets, for the echo benchmark
//! (see `tether_bench::servers::fastwebsockets`).

fn main() -> std::io::Result<()> {
    let listener = tether_bench::listen_on_arg("echo_fastwebsockets")?;
    tether_bench::servers::fastwebsockets(listener)
}
