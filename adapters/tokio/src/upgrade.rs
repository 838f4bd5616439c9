//! Serving WebSockets from hyper or axum (the `hyper` feature): the HTTP server parses the
//! upgrade request, tether answers it and runs the upgraded connection.

use crate::{Accept, Config, DeflateParams, Error, HandshakeError, Role, WebSocket};
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tether_core::UpgradeResponse;
use tokio::io::{AsyncRead, AsyncWrite};

/// Validates an upgrade request that hyper (or axum) parsed and negotiates the answer, as
/// [`accept_with`](crate::accept_with) does on its own listener: the checks of RFC 6455
/// §4.2.1, the [`Accept`]'s subprotocol (it must be one the client offered) and extra
/// headers, and permessage-deflate with `config.deflate` (RFC 7692).
///
/// Returns what the 101 response carries and the connection runs with ([`Negotiated`]), or
/// the error to answer with [`error_response`]. [`upgrade`] does both and the upgrade
/// itself; call this one to answer yourself (to check the request first, or with another
/// HTTP server built on the `http` crate).
pub fn negotiate(
    method: &http::Method,
    headers: &http::HeaderMap,
    config: &Config,
    accept: Accept,
) -> Result<Negotiated, HandshakeError> {
    let fields = headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()));
    let answer = tether_core::negotiate_upgrade(method.as_str(), fields, config, &accept)?;
    Ok(Negotiated {
        answer,
        config: config.clone(),
    })
}

/// The error response for a refused upgrade request: the status of
/// [`HandshakeError::http_status`] (400, 405, 426 with `Sec-WebSocket-Version: 13`), or
/// 500 for an error of the application (an [`Accept`] with a subprotocol the client did not
/// offer, or an invalid header), with an empty body.
pub fn error_response<B: Default>(error: &HandshakeError) -> http::Response<B> {
    let status = error
        .http_status()
        .and_then(|s| http::StatusCode::from_u16(s).ok())
        .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = http::Response::new(B::default());
    *response.status_mut() = status;
    for &(name, value) in error.response_headers() {
        if let Ok(name) = http::HeaderName::from_bytes(name.as_bytes()) {
            response
                .headers_mut()
                .append(name, http::HeaderValue::from_static(value));
        }
    }
    response
}

/// An upgrade request accepted by [`negotiate`]: the 101 response to send, and what the
/// connection runs with once hyper hands over the upgraded transport.
#[derive(Clone)]
pub struct Negotiated {
    answer: UpgradeResponse,
    config: Config,
}

impl Negotiated {
    /// The `101 Switching Protocols` response: `Upgrade`, `Connection`,
    /// `Sec-WebSocket-Accept`, the chosen `Sec-WebSocket-Protocol`, the negotiated
    /// `Sec-WebSocket-Extensions` and the [`Accept`]'s extra headers, with an empty body.
    pub fn response<B: Default>(&self) -> http::Response<B> {
        let mut response = http::Response::new(B::default());
        *response.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        for field in self.answer.headers() {
            // The core checked every name (a token) and value (no CR, LF or NUL).
            match (
                http::HeaderName::from_bytes(field.name.as_bytes()),
                http::HeaderValue::from_bytes(&field.value),
            ) {
                (Ok(name), Ok(value)) => {
                    headers.append(name, value);
                }
                _ => return error_response(&HandshakeError::InvalidHeader),
            }
        }
        response
    }

    /// The subprotocol the [`Accept`] chose, if any (the [`WebSocket`] made by
    /// [`into_websocket`](Self::into_websocket) reports it too).
    pub fn subprotocol(&self) -> Option<&str> {
        self.answer.subprotocol()
    }

    /// The permessage-deflate parameters negotiated, if any.
    pub fn deflate_params(&self) -> Option<DeflateParams> {
        self.answer.deflate_params()
    }

    /// Turns the upgraded transport into an open server [`WebSocket`] that runs with the
    /// negotiated permessage-deflate parameters and the configuration given to
    /// [`negotiate`]. For hyper's `Upgraded`, wrap it in `hyper_util::rt::TokioIo` (or use
    /// [`upgrade`], which does). Must be called from within a tokio runtime, which runs the
    /// connection's task.
    pub fn into_websocket<S>(self, io: S) -> Result<WebSocket, Error>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        tether_driver::open(
            crate::runtime(),
            crate::Io(io),
            Role::Server,
            self.deflate_params(),
            self.subprotocol(),
            &self.config,
        )
    }
}

impl fmt::Debug for Negotiated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Negotiated")
            .field("subprotocol", &self.subprotocol())
            .field("deflate", &self.deflate_params())
            .finish_non_exhaustive()
    }
}

/// Answers a WebSocket upgrade request in a hyper service or an axum handler: checks it and
/// negotiates as [`negotiate`] does (and requires HTTP/1.1, the only version with
/// `Upgrade`), then takes hyper's pending upgrade (`hyper::upgrade::on`) from `request`.
///
/// Returns the 101 response for the handler to return, with the [`Upgrading`] future that
/// resolves to the open connection once hyper has sent the response (spawn a task that
/// awaits it); or the error response ([`error_response`]) for a request that is not a valid
/// upgrade.
pub fn upgrade<B, R: Default>(
    request: &mut http::Request<B>,
    config: &Config,
    accept: Accept,
) -> Result<(http::Response<R>, Upgrading), http::Response<R>> {
    if request.version() != http::Version::HTTP_11 {
        return Err(error_response(&HandshakeError::BadRequest(
            "WebSocket upgrades need HTTP/1.1",
        )));
    }
    let negotiated = negotiate(request.method(), request.headers(), config, accept)
        .map_err(|e| error_response(&e))?;
    let response = negotiated.response();
    let on_upgrade = hyper::upgrade::on(request);
    Ok((
        response,
        Upgrading {
            on_upgrade,
            negotiated: Some(negotiated),
        },
    ))
}

/// The future of [`upgrade`]: the open server [`WebSocket`], once hyper has sent the 101
/// response and handed over the connection. It fails with [`Error::Io`] when hyper does
/// not upgrade (the client went away, or the service did not return the 101 response).
#[must_use = "futures do nothing unless polled"]
pub struct Upgrading {
    on_upgrade: hyper::upgrade::OnUpgrade,
    negotiated: Option<Negotiated>,
}

impl Upgrading {
    /// What the handshake settled (subprotocol, permessage-deflate parameters).
    pub fn negotiated(&self) -> &Negotiated {
        self.negotiated
            .as_ref()
            .expect("`Upgrading` polled after completion")
    }
}

impl Future for Upgrading {
    type Output = Result<WebSocket, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let upgraded = match Pin::new(&mut self.on_upgrade).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(result) => result,
        };
        let negotiated = self
            .negotiated
            .take()
            .expect("`Upgrading` polled after completion");
        Poll::Ready(match upgraded {
            Ok(io) => negotiated.into_websocket(hyper_util::rt::TokioIo::new(io)),
            Err(e) => Err(Error::Io(io::Error::other(e))),
        })
    }
}

impl fmt::Debug for Upgrading {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upgrading")
            .field("negotiated", &self.negotiated)
            .finish_non_exhaustive()
    }
}
