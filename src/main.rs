//! The `chorus` binary: parses the command line, sets up logging and runs a subcommand —
//! `serve` (the default), `token`, `loadtest` or `bench-floor`. It only wires library pieces together; `anyhow` is used
//! here and nowhere else in the crate.

use anyhow::Context;
use chorus::auth::{Claims, Grants, TokenAuthority};
use chorus::config::{parse_duration, Config, LogFormat};
use clap::{Args, Parser, Subcommand};
use std::io::IsTerminal;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "chorus",
    version,
    about = "Chorus: a self-hosted SFU for group video calls"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// `serve` flags, accepted without the subcommand too.
    #[command(flatten)]
    serve: Config,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve(Box<Config>),
    /// Print an access token for one identity and room.
    Token(TokenArgs),
    /// Run synthetic participants against a server and report what they measured.
    Loadtest(chorus::loadtest::LoadConfig),
    /// Measure the forwarding floor on this machine: a bare rewrite + AES-128-GCM + sendmmsg
    /// forwarder on 127.0.0.1 (1→N), its CPU per forwarded packet.
    BenchFloor(chorus::floor::FloorConfig),
}

#[derive(Debug, Args)]
struct TokenArgs {
    /// Secret the server runs with (`--auth-secret`).
    #[arg(long, env = "CHORUS_AUTH_SECRET", hide_env_values = true)]
    secret: String,
    /// Room the token admits to.
    #[arg(long)]
    room: String,
    /// Identity of the holder (the `sub` claim).
    #[arg(long)]
    identity: String,
    /// Display name (default: the identity).
    #[arg(long)]
    name: Option<String>,
    /// Lifetime, e.g. 30m, 1h, 7d.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    ttl: Duration,
    /// Do not grant publishing media.
    #[arg(long)]
    no_publish: bool,
    /// Do not grant receiving media.
    #[arg(long)]
    no_subscribe: bool,
    /// Do not grant chat.
    #[arg(long)]
    no_chat: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Token(args)) => print_token(&args),
        Some(Command::Loadtest(config)) => loadtest(config),
        Some(Command::BenchFloor(config)) => bench_floor(&config),
        Some(Command::Serve(config)) => serve(*config),
        None => serve(cli.serve),
    }
}

fn loadtest(config: chorus::loadtest::LoadConfig) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("warn,rtc=error,rtc_ice=error,rtc_dtls=error")
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let report = runtime.block_on(chorus::loadtest::run(config))?;
    if report.tracks_receiving < report.tracks_expected {
        anyhow::bail!(
            "only {} of {} expected tracks were received",
            report.tracks_receiving,
            report.tracks_expected
        );
    }
    Ok(())
}

fn bench_floor(config: &chorus::floor::FloorConfig) -> anyhow::Result<()> {
    let report = chorus::floor::run(config).map_err(|e| anyhow::anyhow!(e))?;
    print!("{}", report.text());
    if let Some(path) = &config.json {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn print_token(args: &TokenArgs) -> anyhow::Result<()> {
    let name = args.name.as_deref().unwrap_or(&args.identity);
    let mut claims = Claims::new(&args.room, &args.identity, name, args.ttl);
    claims.grants = Grants {
        publish: !args.no_publish,
        subscribe: !args.no_subscribe,
        chat: !args.no_chat,
    };
    let token = TokenAuthority::new(args.secret.as_bytes())
        .mint(&claims)
        .context("minting the token")?;
    println!("{token}");
    Ok(())
}

fn serve(config: Config) -> anyhow::Result<()> {
    init_logging(config.log_format, &config.log)?;
    raise_file_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let drain_timeout = config.drain_timeout;
    runtime.block_on(async {
        // Installed before the server listens, so a signal never meets the default action.
        let mut signals = Signals::install().context("installing signal handlers")?;
        let mut server = chorus::spawn(config).await.context("starting the server")?;
        tokio::select! {
            result = server.wait() => result.context("server stopped")?,
            () = signals.next() => {
                // Graceful drain: readiness fails, joins are refused, calls go on until their
                // rooms empty or the drain timeout passes. A second signal cuts it short.
                tracing::info!(timeout = ?drain_timeout, "signal received: draining");
                tokio::select! {
                    outcome = server.drain(drain_timeout) => {
                        tracing::info!(?outcome, "drain finished");
                    }
                    () = signals.next() => tracing::warn!("second signal: stopping now"),
                }
                tracing::info!("shutting down");
                server.shutdown().await.context("shutting down")?;
            }
        }
        Ok(())
    })
}

/// Raises the open-file soft limit to the hard limit (each connection holds a descriptor).
fn raise_file_limit() {
    match chorus::rlimit::raise_file_limit() {
        Ok((before, after)) if after.soft > before.soft => {
            tracing::info!(
                from = before.soft,
                to = after.soft,
                "raised the open-file limit"
            );
        }
        Ok((_, after)) => tracing::debug!(limit = after.soft, "open-file limit"),
        Err(error) => tracing::warn!(%error, "could not raise the open-file limit"),
    }
}

/// Logs to stdout, as `format` says, through the filter and the per-peer repeat limit
/// ([`chorus::log_limit`]). Pretty lines are coloured only on a terminal without `NO_COLOR`.
fn init_logging(format: LogFormat, filter: &str) -> anyhow::Result<()> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .with_context(|| format!("bad log filter `{filter}`"))?;
    let limiter = chorus::log_limit::RepeatLimiter::new();
    let output = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_ansi(use_colour(
                std::io::stdout().is_terminal(),
                std::env::var_os("NO_COLOR"),
            ))
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(chorus::log_limit::RepeatLimitLayer::new(limiter.clone()))
        .with(output)
        .try_init()
        .map_err(|e| anyhow::anyhow!("setting up logging: {e}"))?;
    limiter
        .spawn_reporter()
        .context("starting the log limit reporter")
}

/// Whether pretty logs get ANSI colours: only on a terminal, and not when `NO_COLOR` is set to
/// anything non-empty (<https://no-color.org>).
fn use_colour(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// SIGTERM and SIGINT (Ctrl-C), caught from the moment [`Signals::install`] returns.
struct Signals {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Self {
                terminate: signal(SignalKind::terminate())?,
                interrupt: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// The next signal.
    async fn next(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::use_colour;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some("".into())));
        assert!(!use_colour(true, Some("1".into())));
        assert!(!use_colour(false, None));
    }
}
