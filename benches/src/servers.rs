//! Single-threaded echo servers, one per library, each written the way that library's own
//! echo example does it: echo every text and binary message, answer pings, no compression.
//!
//! Each takes a bound listener and runs on the calling thread until the listener fails.

use std::io;
use std::net::TcpListener;

/// tokio-tungstenite: `accept_async`, then `next()` / `send()` (one flush per message).
pub fn tungstenite(listener: TcpListener) -> io::Result<()> {
    use futures_util::{SinkExt, StreamExt};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                        break;
                    }
                }
            });
        }
    })
}

/// fastwebsockets: hyper's HTTP/1 server upgrades the connection, then a
/// `FragmentCollector` reads and writes frames, as in fastwebsockets' `echo_server`
/// example (including its `tokio::task::unconstrained`).
pub fn fastwebsockets(listener: TcpListener) -> io::Result<()> {
    use fastwebsockets::{FragmentCollector, OpCode, WebSocketError, upgrade};
    use http_body_util::Empty;
    use hyper::body::{Bytes, Incoming};
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper::{Request, Response};

    async fn handle(fut: upgrade::UpgradeFut) -> Result<(), WebSocketError> {
        let mut ws = FragmentCollector::new(fut.await?);
        loop {
            let frame = ws.read_frame().await?;
            match frame.opcode {
                OpCode::Close => break,
                OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
                _ => {}
            }
        }
        Ok(())
    }

    async fn upgrade_request(
        mut req: Request<Incoming>,
    ) -> Result<Response<Empty<Bytes>>, WebSocketError> {
        let (response, fut) = upgrade::upgrade(&mut req)?;
        tokio::spawn(async move {
            let _ = tokio::task::unconstrained(handle(fut)).await;
        });
        Ok(response)
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    rt.block_on(async {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = http1::Builder::new()
                    .serve_connection(io, service_fn(upgrade_request))
                    .with_upgrades()
                    .await;
            });
        }
    })
}

/// tether-tokio: the same code as `adapters/tokio/examples/echo_server.rs`.
pub fn tether_tokio(listener: TcpListener) -> io::Result<()> {
    use tether_tokio::{Accept, Config, Message, accept_with};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let mut config = Config::default();
        config.deflate.enabled = true;
        config.deflate.threshold = 0;
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            let config = config.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = accept_with(stream, config, |_| Ok(Accept::new())).await else {
                    return;
                };
                while let Some(Ok(message)) = ws.recv().await {
                    if matches!(message, Message::Text(_) | Message::Binary(_))
                        && ws.send(message).await.is_err()
                    {
                        break;
                    }
                }
            });
        }
    })
}

/// tether-async-std: the same code as `adapters/async-std/examples/echo_server.rs`.
pub fn tether_async_std(listener: TcpListener) -> io::Result<()> {
    use tether_async_std::{Accept, Config, Message, accept_with};
    let ex = std::sync::Arc::new(async_executor::Executor::new());
    tether_async_std::set_executor(ex.clone())
        .map_err(|_| io::Error::other("tether-async-std's executor is already chosen"))?;
    async_io::block_on(ex.run(async {
        let listener = async_net::TcpListener::try_from(listener)?;
        let mut config = Config::default();
        config.deflate.enabled = true;
        config.deflate.threshold = 0;
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            let config = config.clone();
            ex.spawn(async move {
                let Ok(mut ws) = accept_with(stream, config, |_| Ok(Accept::new())).await else {
                    return;
                };
                while let Some(Ok(message)) = ws.recv().await {
                    if matches!(message, Message::Text(_) | Message::Binary(_))
                        && ws.send(message).await.is_err()
                    {
                        break;
                    }
                }
            })
            .detach();
        }
    }))
}

/// Runs the server called `name` (`tether-tokio`, `tether-async-std`, `tungstenite`,
/// `fastwebsockets`) on `listener`.
pub fn run(name: &str, listener: TcpListener) -> io::Result<()> {
    match name {
        "tether-tokio" => tether_tokio(listener),
        "tether-async-std" => tether_async_std(listener),
        "tungstenite" | "tokio-tungstenite" => tungstenite(listener),
        "fastwebsockets" => fastwebsockets(listener),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unknown server {other}"),
        )),
    }
}
