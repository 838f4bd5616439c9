//! TLS from PEM files (`tls.cert`, `tls.key`) with rustls, and the accept loop that serves
//! the router over it (HTTP/1.1 with upgrades, so `/ws` works as `wss://`).

use crate::config::ConfigError;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, pki_types};
use tower::Service;

/// How long a client has to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads a certificate chain and a private key (PEM) into a rustls server configuration
/// (ring, TLS 1.2 and 1.3, ALPN `http/1.1`). Errors name the configuration key.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, ConfigError> {
    use pki_types::pem::PemObject;
    let cert_pem = std::fs::read(cert).map_err(|e| {
        ConfigError::key("tls.cert", format!("cannot read `{}`: {e}", cert.display()))
    })?;
    let chain = pki_types::CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            ConfigError::key(
                "tls.cert",
                format!("`{}` is not a PEM certificate chain: {e}", cert.display()),
            )
        })?;
    if chain.is_empty() {
        return Err(ConfigError::key(
            "tls.cert",
            format!(
                "`{}` has no certificate (-----BEGIN CERTIFICATE-----)",
                cert.display()
            ),
        ));
    }
    let key_pem = std::fs::read(key).map_err(|e| {
        ConfigError::key("tls.key", format!("cannot read `{}`: {e}", key.display()))
    })?;
    let private_key = pki_types::PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        ConfigError::key(
            "tls.key",
            format!(
                "`{}` is not a PEM private key (PKCS#8, PKCS#1 or SEC1): {e}",
                key.display()
            ),
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::key("tls", e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(|e| {
            ConfigError::key(
                "tls.key",
                format!("does not go with the certificate in tls.cert: {e}"),
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `app` over TLS on `listener` until `shutdown` completes; then stops accepting and
/// asks open HTTP connections to finish (WebSocket connections are closed by the caller).
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Arc<rustls::ServerConfig>,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let (stop, stopped) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        let stopped = stopped.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, "TLS handshake failed: {e}");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let service =
                hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    let mut app = app.clone();
                    async move { app.call(request).await }
                });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .with_upgrades();
            tokio::pin!(connection);
            let result = tokio::select! {
                result = &mut connection => result,
                () = stop_requested(stopped) => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, "HTTP connection error: {e}");
            }
        });
    }
    drop(listener);
    let _ = stop.send(true);
}

/// Completes when the flag turns true, or its sender is gone.
async fn stop_requested(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|s| *s).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_key() {
        let dir = std::env::temp_dir().join(format!("tether-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&cert, generated.cert.pem()).unwrap();
        std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
        assert!(server_config(&cert, &key).is_ok());

        let e = server_config(&dir.join("missing.pem"), &key).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("tls.cert"));
        let e = server_config(&key, &key).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("tls.cert"), "{e}");
        let e = server_config(&cert, &cert).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("tls.key"), "{e}");
        let other = rcgen::generate_simple_self_signed(vec!["x".to_owned()]).unwrap();
        let other_key = dir.join("other.pem");
        std::fs::write(&other_key, other.signing_key.serialize_pem()).unwrap();
        let e = server_config(&cert, &other_key).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("tls.key"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
