//! `hotline serve`: the live server, one listener per PBX transport
//! (Asterisk chan_websocket and AudioSocket, FreeSWITCH, Twilio).
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::ServerConfig;
use crate::server::{self, ServerDeps};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Server configuration (see hotline.example.toml); defaults without it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Dialplan folder (overrides `dialplan_dir`).
    #[arg(long)]
    pub dialplan: Option<PathBuf>,
    /// Address to listen on (overrides `listen`; default 127.0.0.1:8088).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

/// Why `hotline serve` did not serve. The causes come from the config and
/// server modules, kept whole as they are.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The config file is wrong: exit 2.
    #[error("{0}")]
    Config(#[source] BoxedError),
    /// The server could not start (models, dialplans, listeners): exit 1.
    #[error("{0}")]
    Start(#[source] BoxedError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

type BoxedError = Box<dyn std::error::Error + Send + Sync>;

impl ServeError {
    pub fn exit_code(&self) -> u8 {
        match self {
            ServeError::Config(_) => super::error::BAD_INPUT,
            ServeError::Start(_) | ServeError::Runtime(_) => super::error::FAILED,
        }
    }
}

/// Serves until stopped (`Ok(0)`), or says why it could not.
pub fn run(args: Args) -> Result<u8, ServeError> {
    let mut cfg = match &args.config {
        Some(path) => ServerConfig::load(path).map_err(|e| ServeError::Config(e.into()))?,
        None => ServerConfig::defaults(),
    };
    if let Some(d) = args.dialplan {
        cfg.general.dialplan_dir = d;
    }
    if let Some(l) = args.listen {
        cfg.general.listen = l;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(ServeError::Runtime)?;
    let served = runtime.block_on(serve(cfg));
    // Calls and their records are done by now. A recogniser or prompt
    // warm-up still running on a blocking thread holds nothing worth
    // waiting for (the prompt cache writes files atomically), and waiting
    // would make a stop right after start take tens of seconds.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    served.map(|()| 0)
}

/// Loads the speech stack and prompts, serves until SIGTERM / Ctrl-C, then
/// shuts down gracefully. SIGHUP reopens the call record file and rescans
/// the dialplans ([`server::RunningServer::reload`]); it never stops the server.
pub async fn serve(cfg: ServerConfig) -> Result<(), ServeError> {
    let mut signals = Signals::install();
    let deps = ServerDeps::load(&cfg).await.map_err(|e| ServeError::Start(e.into()))?;
    let server = server::start(cfg, deps).await.map_err(|e| ServeError::Start(e.into()))?;
    while signals.next().await == Signal::Reload {
        tracing::info!("SIGHUP: reopening the call record file and rescanning the dialplans");
        server.reload().await;
    }
    tracing::info!(calls = server.active_calls(), "stop requested");
    server.shutdown().await;
    Ok(())
}

#[derive(Debug, PartialEq)]
enum Signal {
    Stop,
    Reload,
}

/// The signals the server answers. Made once, before the models load:
/// from then on SIGHUP no longer has its default action (ending the
/// process with every call in it), and a signal arriving while the last
/// one is handled waits for the next `next()`.
struct Signals {
    #[cfg(unix)]
    term_and_hup: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Signals {
    fn install() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let term_and_hup = match (signal(SignalKind::terminate()), signal(SignalKind::hangup())) {
                (Ok(term), Ok(hup)) => Some((term, hup)),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!("cannot handle SIGTERM / SIGHUP ({e}); only Ctrl-C stops the server");
                    None
                }
            };
            Signals { term_and_hup }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// The next signal that asks something of the server: SIGTERM / Ctrl-C
    /// stop it, SIGHUP reloads.
    async fn next(&mut self) -> Signal {
        #[cfg(unix)]
        if let Some((term, hup)) = self.term_and_hup.as_mut() {
            return tokio::select! {
                _ = term.recv() => Signal::Stop,
                _ = hup.recv() => Signal::Reload,
                _ = tokio::signal::ctrl_c() => Signal::Stop,
            };
        }
        let _ = tokio::signal::ctrl_c().await;
        Signal::Stop
    }
}
