//! `echo_tungstenite ADDR`: a single-threaded echo server on tungstenite, for the echo benchmark
//! (see `tether_bench::servers::tungstenite`).

fn main() -> std::io::Result<()> {
    let listener = tether_bench::listen_on_arg("echo_tungstenite")?;
    tether_bench::servers::tungstenite(listener)
}
