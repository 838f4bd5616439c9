//! The public functions every runtime adapter offers, written once (see
//! [`runtime_functions!`](crate::runtime_functions)).

/// Defines, in a runtime adapter's crate root, the functions every adapter offers with the
/// same signatures and documentation: `connect`, `connect_with`, `connect_with_tls`,
/// `client`, `accept`, `accept_with`, `incoming`, `incoming_tls`, `from_upgraded`,
/// `reconnecting` and `reconnecting_with_tls`. Each is a call into this crate; what differs
/// between runtimes is what the adapter passes in and defines next to the call:
///
/// - `krate`: the adapter's crate name, for the documentation's examples;
/// - `tcp` / `tcp_doc`: its TCP stream type (and that type's path, for the examples);
/// - `stream`: the bounds of the streams it accepts (its runtime's read and write traits);
/// - `wrap`: what makes such a stream a [`Transport`](crate::Transport);
/// - `runs`: a sentence saying where the connections' tasks run.
///
/// The adapter also defines `runtime()` (its [`Runtime`](crate::Runtime)), a `Net` type
/// implementing [`net::Net`](crate::net::Net) with `Default`, and, with its `tls` feature,
/// `Net { client_tls, server_tls }` fields and a `rustls` re-export; it glob-imports
/// [`api`](crate::api).
#[doc(hidden)]
#[macro_export]
macro_rules! runtime_functions {
    (
        krate: $krate:literal,
        tcp: $tcp:ty,
        tcp_doc: $tcp_doc:literal,
        stream: [$($stream:tt)+],
        wrap: $wrap:path,
        runs: $runs:literal $(,)?
    ) => {
        /// Connects to a `ws://` (or, with the `tls` feature, `wss://`) URL with the default
        /// configuration and runs the opening handshake. Returns the open connection and the
        /// server's response.
        ///
        /// A server that refuses the upgrade gives [`Error::Rejected`], which carries the status,
        /// headers and body ([`Error::response`]).
        pub async fn connect(url: &str) -> Result<(WebSocket, Response), Error> {
            connect_with(ClientRequest::new(url)?, Config::default()).await
        }

        /// Connects with a prepared request (headers, subprotocols, `Origin`) and a configuration.
        ///
        /// DNS, TCP (with `TCP_NODELAY`), TLS and the opening handshake together are bounded by
        /// the handshake timeout (`config.timeouts.handshake`), which fails with
        /// [`Error::Timeout`].
        pub async fn connect_with(
            request: ClientRequest,
            config: Config,
        ) -> Result<(WebSocket, Response), Error> {
            $crate::net::connect(&Net::default(), &request, &config).await
        }

        /// Connects like [`connect_with`], using `tls` for `wss://` URLs instead of the default
        /// rustls configuration (for private roots, client certificates, ...).
        #[cfg(feature = "tls")]
        pub async fn connect_with_tls(
            request: ClientRequest,
            config: Config,
            tls: ::std::sync::Arc<rustls::ClientConfig>,
        ) -> Result<(WebSocket, Response), Error> {
            let net = Net {
                client_tls: Some(tls),
                ..Net::default()
            };
            $crate::net::connect(&net, &request, &config).await
        }

        /// Runs the client handshake over a stream that is already connected (a proxy tunnel, a
        /// Unix socket, a TLS stream set up by hand). The handshake timeout counts from the call.
        pub async fn client<S>(
            stream: S,
            request: ClientRequest,
            config: Config,
        ) -> Result<(WebSocket, Response), Error>
        where
            S: $($stream)+,
        {
            let rt = runtime();
            let now = rt.now();
            $crate::client(rt, $wrap(stream), &request, &config, now).await
        }

        /// Accepts a WebSocket on any stream (TCP, TLS, an upgraded HTTP connection) with the
        /// default configuration, accepting every valid upgrade request; see [`accept_with`].
        pub fn accept<S>(stream: S) -> Accepting<AcceptAll>
        where
            S: $($stream)+,
        {
            accept_with(stream, Config::default(), accept_all)
        }

        /// The callback of [`accept`]: every valid upgrade request is accepted.
        pub type AcceptAll = fn(&Request) -> Result<Accept, Reject>;

        fn accept_all(_: &Request) -> Result<Accept, Reject> {
            Ok(Accept::new())
        }

        /// Accepts a WebSocket on any stream: the returned future waits for the upgrade request
        /// (RFC 6455 §4.2), shows it to `callback`, which accepts it ([`Accept`]: subprotocol,
        /// extra headers) or rejects it ([`Reject`]: status, headers, body), sends the answer and
        /// resolves to the open connection.
        ///
        /// It resolves to [`Error::Rejected`] when the callback rejected the request (the
        /// response is still written in the background). The connection starts at this call (the
        /// handshake timeout counts from it); the task awaiting the future drives the handshake.
        #[doc = $runs]
        pub fn accept_with<S, F>(stream: S, config: Config, callback: F) -> Accepting<F>
        where
            S: $($stream)+,
            F: FnOnce(&Request) -> Result<Accept, Reject>,
        {
            $crate::accept(runtime(), $wrap(stream), &config, callback)
        }

        /// Accepts a connection in two steps, for checks that await (a token lookup, a database):
        /// the returned future resolves to an [`Incoming`] once the request has arrived (path,
        /// query, headers, offered subprotocols; [`IncomingFuture::peer_addr`] records the peer's
        /// address), and the application then accepts it ([`Incoming::accept`]) or rejects it with
        /// a status, headers and body ([`Incoming::reject`]). The accepted connection keeps its
        /// request ([`WebSocket::request`]).
        ///
        /// The handshake timeout counts from this call and bounds the application's checks too.
        /// With [`Config::plain_http`](tether_driver::Config) on, plain HTTP requests arrive as
        /// well ([`Incoming::is_upgrade`] is false), to be answered with [`Incoming::reject`]:
        /// `/health` or a page can share the WebSocket's port.
        ///
        /// ```no_run
        #[doc = concat!(" use ", $krate, "::{Accept, Config, Reject, incoming};")]
        ///
        #[doc = concat!(" # async fn run(stream: ", $tcp_doc, ", addr: std::net::SocketAddr) -> Result<(), ", $krate, "::Error> {")]
        /// # async fn user_for(_token: &str) -> Option<String> { None }
        /// let request = incoming(stream, Config::default()).peer_addr(addr).await?;
        /// let token = request.request().query_param("token").map(|t| t.into_owned());
        /// let user = match token {
        ///     Some(token) => user_for(&token).await,
        ///     None => None,
        /// };
        /// let Some(user) = user else {
        ///     return request.reject(Reject::new(401).body("a valid ?token= is needed"));
        /// };
        /// let mut ws = request.accept(Accept::new())?;
        /// ws.send_text(format!("hello {user}")).await?;
        /// # Ok(())
        /// # }
        /// ```
        pub fn incoming<S>(stream: S, config: Config) -> IncomingFuture
        where
            S: $($stream)+,
        {
            let rt = runtime();
            let now = rt.now();
            $crate::incoming(rt, $wrap(stream), &config, now)
        }

        /// [`incoming`] over TLS: the TLS handshake with `tls`, then the WebSocket request, both
        /// bounded by the handshake timeout, which counts from this call. The peer's address is
        /// recorded ([`Incoming::peer_addr`]).
        #[cfg(feature = "tls")]
        pub async fn incoming_tls(
            stream: $tcp,
            tls: ::std::sync::Arc<rustls::ServerConfig>,
            config: Config,
        ) -> Result<Incoming, Error> {
            let net = Net {
                server_tls: Some(tls),
                ..Net::default()
            };
            $crate::net::incoming_tls(&net, stream, &config).await
        }

        /// Wraps a stream whose opening handshake was done elsewhere (for example by an HTTP
        /// server that upgraded the request): the connection is open from the start. `deflate` is
        /// what that handshake negotiated, if anything.
        ///
        #[doc = $runs]
        pub fn from_upgraded<S>(
            stream: S,
            role: Role,
            deflate: Option<DeflateParams>,
            config: Config,
        ) -> Result<WebSocket, Error>
        where
            S: $($stream)+,
        {
            $crate::open(runtime(), $wrap(stream), role, deflate, None, &config)
        }

        /// Starts building a [`ReconnectingClient`]: a client that redials lost connections as the
        /// core's reconnect policy decides, with an outbox, an optional heartbeat, events and
        /// callbacks (see its docs). `make_request` builds the request for every dial (its
        /// argument is the attempt number), so credentials can change between dials; dials go
        /// through [`connect_with`].
        ///
        #[doc = $runs]
        ///
        /// ```no_run
        /// use std::time::Duration;
        #[doc = concat!(" use ", $krate, "::{")]
        ///     ClientEvent, ClientRequest, Disconnect, GiveUpReason, Heartbeat, OutboxError,
        ///     OutboxLimits, ReconnectConfig, reconnecting,
        /// };
        ///
        /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
        /// let mut client = reconnecting(|_attempt| ClientRequest::new("ws://127.0.0.1:9001/"))
        ///     .policy(ReconnectConfig { max_delay: Duration::from_secs(10), ..Default::default() })
        ///     .outbox(OutboxLimits { max_messages: 100, max_bytes: 64 * 1024 })
        ///     .heartbeat(Heartbeat::new("ping", Duration::from_secs(15)).reply("pong"))
        ///     .on_message(|message| println!("recv: {message:?}"))
        ///     .start()?;
        /// // Waits while the outbox is full (or, connected, while the server reads too slowly).
        /// client.send_text("queued until connected").await?;
        /// // Never waits: a full outbox hands the message back.
        /// if let Err(OutboxError::Full(_)) = client.try_send_text("dropped if full") {
        ///     println!("outbox full");
        /// }
        /// while let Some(event) = client.next_event().await {
        ///     match event {
        ///         ClientEvent::Connected(_) => println!("connected"),
        ///         ClientEvent::GaveUp(GiveUpReason::Terminal(Disconnect::ClosedByApplication)) => {}
        ///         ClientEvent::GaveUp(reason) => eprintln!("gave up: {reason:?}"),
        ///         _ => {}
        ///     }
        /// }
        /// # Ok(())
        /// # }
        /// ```
        pub fn reconnecting<F, E>(make_request: F) -> ReconnectBuilder
        where
            F: FnMut(u32) -> Result<ClientRequest, E> + Send + 'static,
            E: Into<Error>,
        {
            ReconnectBuilder::new(runtime(), dial, make_request)
        }

        /// Starts building a [`ReconnectingClient`] like [`reconnecting`], using `tls` for
        /// `wss://` URLs instead of the default rustls configuration.
        #[cfg(feature = "tls")]
        pub fn reconnecting_with_tls<F, E>(
            make_request: F,
            tls: ::std::sync::Arc<rustls::ClientConfig>,
        ) -> ReconnectBuilder
        where
            F: FnMut(u32) -> Result<ClientRequest, E> + Send + 'static,
            E: Into<Error>,
        {
            let dial = move |request, config| -> $crate::DialFuture {
                Box::pin(connect_with_tls(request, config, tls.clone()))
            };
            ReconnectBuilder::new(runtime(), dial, make_request)
        }

        /// The reconnecting client's dialer.
        fn dial(request: ClientRequest, config: Config) -> $crate::DialFuture {
            Box::pin(connect_with(request, config))
        }
    };
}
