//! `echo_fastwebsockets ADDR`: a single-threaded echo server on fastwebsockets, for the echo benchmark
//! (see `tether_bench::servers::fastwebsockets`).

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".to_owned());
    let listener = std::net::TcpListener::bind(&addr)?;
    eprintln!(
        "echo_fastwebsockets listening on {}",
        listener.local_addr()?
    );
    tether_bench::servers::fastwebsockets(listener)
}
