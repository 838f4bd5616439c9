//! `echo_tungstenite ADDR`: a single-threaded echo server on tungstenite, for the echo benchmark
//! (see `tether_bench::servers::tungstenite`).

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".to_owned());
    let listener = std::net::TcpListener::bind(&addr)?;
    eprintln!("echo_tungstenite listening on {}", listener.local_addr()?);
    tether_bench::servers::tungstenite(listener)
}
