//! `echo_floor_tokio ADDR`: the runtime floor on tokio, a minimal single-threaded echo (see
//! `tether_bench::servers::floor_tokio`). A floor for the echo benchmark, not a competitor.

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".to_owned());
    let listener = std::net::TcpListener::bind(&addr)?;
    eprintln!("echo_floor_tokio listening on {}", listener.local_addr()?);
    tether_bench::servers::floor_tokio(listener)
}
