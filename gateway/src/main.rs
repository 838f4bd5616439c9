//! `tether`: the tether WebSocket gateway.
//!
//! ```text
//! cargo run -p tether-gateway -- --help
//! ```
//!
//! Reads the configuration (defaults, `--config FILE`, `TETHER_*` environment variables,
//! flags; see `tether_gateway::config`), validates it, and serves `/ws`, `/health` and `/`
//! until SIGINT or SIGTERM. Exit codes: 0 after a clean shutdown, 2 for a configuration
//! error (the message names the key), 1 when the server cannot run (the port is taken...).

use clap::{Arg, ArgAction, ArgMatches, Command};
use std::process::ExitCode;
use tether_gateway::config::{self, Config, KEYS, LogFormat, Sources};
use tracing_subscriber::EnvFilter;

const ABOUT: &str = "The tether WebSocket gateway: rooms, users, presence, history and an HTTP \
API to push from your backend. --help for the details.";

const LONG_ABOUT: &str = "The tether WebSocket gateway. WebSocket at /ws (authenticated before \
the upgrade: JWT from the Authorization header, Sec-WebSocket-Protocol `bearer.<jwt>`, or \
?token= when enabled) speaking the JSON envelope of gateway/PROTOCOL.md: join and leave rooms, \
publish, send to a user or everyone, presence, recovery from history. The HTTP API under /api \
(API key in X-API-Key, or an admin JWT) pushes to a room, a user or everyone and reads status, \
stats, rooms, presence and history; GET /health, GET /metrics (Prometheus); a demo chat at /.

Configuration, in increasing precedence: defaults, the TOML file (--config), TETHER_* \
environment variables, flags. Every key has the three names: `auth.hmac_secret` in the \
file, TETHER_AUTH__HMAC_SECRET in the environment, --auth-hmac-secret on the command line \
(`.` is `__` in the environment, `.` and `_` are `-` in flags). Lists are comma-separated. \
gateway/tether.toml documents every key with its default.

With no configuration it runs in dev mode on 127.0.0.1:8080: connections without a token \
are accepted. Set dev = false (TETHER_DEV=false) and a key in production.";

fn command() -> Command {
    let defaults = toml::Table::try_from(Config::default()).unwrap_or_default();
    let mut cmd = Command::new("tether")
        .version(env!("CARGO_PKG_VERSION"))
        .about(ABOUT)
        .long_about(LONG_ABOUT)
        .arg(
            Arg::new("config")
                .short('c')
                .long("config")
                .value_name("FILE")
                .env("TETHER_CONFIG")
                .help("TOML configuration file (see gateway/tether.toml)"),
        )
        .arg(
            Arg::new("check-config")
                .long("check-config")
                .action(ArgAction::SetTrue)
                .help("Validate the configuration, print it resolved (TOML) and exit"),
        );
    for key in KEYS {
        let default = lookup(&defaults, key.path)
            .map(|v| v.to_string())
            .unwrap_or_else(|| "unset".to_owned());
        let value_name = match key.kind {
            config::Kind::Str => "VALUE",
            config::Kind::Int => "N",
            config::Kind::Bool => "BOOL",
            config::Kind::List => "LIST",
            config::Kind::Toml => "TOML",
        };
        cmd = cmd.arg(
            Arg::new(key.path)
                .long(key.flag())
                .value_name(value_name)
                .help(format!(
                    "{} [key: {}] [env: {}] [default: {default}]",
                    key.help,
                    key.path,
                    key.env()
                )),
        );
    }
    cmd.after_help(
        "Logs: TETHER_LOG sets the filter (e.g. TETHER_LOG=debug, default info). \
         Exit codes: 0 clean shutdown, 1 runtime failure, 2 configuration error.",
    )
}

fn lookup<'a>(table: &'a toml::Table, path: &str) -> Option<&'a toml::Value> {
    let mut parts = path.split('.');
    let mut value = table.get(parts.next()?)?;
    for part in parts {
        value = value.as_table()?.get(part)?;
    }
    Some(value)
}

fn sources(matches: &ArgMatches) -> Sources {
    Sources {
        file: matches.get_one::<String>("config").map(Into::into),
        env: std::env::vars()
            .filter(|(k, _)| k.starts_with("TETHER_"))
            .collect(),
        flags: KEYS
            .iter()
            .filter_map(|key| {
                matches
                    .get_one::<String>(key.path)
                    .map(|v| (key.path.to_owned(), v.clone()))
            })
            .collect(),
    }
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_env("TETHER_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    let matches = command().get_matches();
    let config = match config::load(&sources(&matches)) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("tether: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = tether_gateway::auth::Authenticator::from_config(&config) {
        eprintln!("tether: {e}");
        return ExitCode::from(2);
    }
    if let (Some(cert), Some(key)) = (&config.tls.cert, &config.tls.key)
        && let Err(e) = tether_gateway::tls::server_config(cert, key)
    {
        eprintln!("tether: {e}");
        return ExitCode::from(2);
    }
    if matches.get_flag("check-config") {
        match toml::to_string_pretty(&config) {
            Ok(text) => {
                print!("{text}");
                return ExitCode::SUCCESS;
            }
            Err(e) => {
                eprintln!("tether: cannot print the configuration: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    init_tracing(config.log_format);
    let workers = config.worker_threads();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tether: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config, workers)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("tether: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config, workers: usize) -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {} (key `listen`): {e}", config.listen))?;
    let addr = listener.local_addr()?;
    if config.dev {
        tracing::warn!("==============================================================");
        tracing::warn!("DEV MODE: connections WITHOUT a token are accepted (anonymous),");
        tracing::warn!("localhost origins are allowed, and without auth.hmac_secret");
        tracing::warn!("GET /dev/token hands out tokens for any name. Do not expose this server.");
        tracing::warn!("Production: dev = false (TETHER_DEV=false) and a key in [auth].");
        tracing::warn!("==============================================================");
        if !addr.ip().is_loopback() {
            tracing::warn!(%addr, "DEV MODE on a non-loopback address: reachable from other machines");
        }
    }
    if let Some(admin) = config.admin_listen {
        tracing::info!(%admin, "HTTP API, metrics and health on http://{admin}");
    }
    let scheme = if config.tls.cert.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(%addr, workers, dev = config.dev, "tether listening on {scheme}://{addr}");
    let ws = if scheme == "https" { "wss" } else { "ws" };
    let api = match config.admin_listen {
        Some(admin) => format!("http://{admin}/api"),
        None => format!("{scheme}://{addr}/api"),
    };
    tracing::info!("demo chat: {scheme}://{addr}/  WebSocket: {ws}://{addr}/ws  HTTP API: {api}");
    tether_gateway::server::serve(config, listener, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_is_valid() {
        command().debug_assert();
    }

    #[test]
    fn flags_set_keys() {
        let matches = command()
            .try_get_matches_from([
                "tether",
                "--listen",
                "127.0.0.1:9",
                "--limits-burst",
                "3",
                "--auth-query-token",
                "true",
                "--log-format",
                "json",
            ])
            .unwrap();
        let mut sources = sources(&matches);
        sources.env.clear();
        let config = config::load(&sources).unwrap();
        assert_eq!(config.listen.port(), 9);
        assert_eq!(config.limits.burst, 3);
        assert!(config.auth.query_token);
        assert_eq!(config.log_format, LogFormat::Json);
    }

    #[test]
    fn help_names_every_key() {
        let help = command().render_long_help().to_string();
        for key in KEYS {
            assert!(help.contains(&format!("--{}", key.flag())), "{}", key.path);
            assert!(help.contains(&key.env()), "{}", key.path);
        }
        assert!(!help.contains("TEMPORARY"), "no stale text");
        for path in ["/ws", "/api", "/health", "/metrics", "PROTOCOL.md"] {
            assert!(help.contains(path), "{path}");
        }
    }
}
