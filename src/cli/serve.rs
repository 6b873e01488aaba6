//! `hotline serve`: the live server, one listener per PBX transport
//! (Asterisk chan_websocket and AudioSocket, FreeSWITCH, Twilio).
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::asr::{SpeechConfig, SpeechStack};
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

pub fn run(args: Args) -> u8 {
    let mut cfg = match &args.config {
        Some(path) => match ServerConfig::load(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{e}");
                return 2;
            }
        },
        None => ServerConfig::defaults(),
    };
    if let Some(d) = args.dialplan {
        cfg.dialplan_dir = d;
    }
    if let Some(l) = args.listen {
        cfg.listen = l;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return 1;
        }
    };
    runtime.block_on(serve(cfg))
}

/// Loads the speech stack and prompts, serves until SIGTERM / Ctrl-C, then
/// shuts down gracefully.
pub async fn serve(cfg: ServerConfig) -> u8 {
    let deps = match load_deps(&cfg).await {
        Ok(d) => d,
        Err(e) => {
            tracing::error!("{e}");
            return 1;
        }
    };
    let server = match server::start(cfg, deps).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e}");
            return 1;
        }
    };
    wait_for_signal().await;
    tracing::info!(calls = server.active_calls(), "stop requested");
    server.shutdown().await;
    0
}

/// The process-wide speech stack, prompt renderer and intent matcher.
pub async fn load_deps(cfg: &ServerConfig) -> Result<ServerDeps, String> {
    let speech_cfg = SpeechConfig {
        threads: cfg.recognizer_threads,
        queue: cfg.recognizer_queue,
        endpoint: cfg.endpoint.clone(),
        grammar: cfg.grammar.clone(),
        models: crate::asr::models::ModelPaths::for_whisper(cfg.recognizer_model),
        second_pass: cfg.second_pass.clone(),
        ..SpeechConfig::default()
    };
    let models = speech_cfg.models.clone();
    let speech = tokio::task::spawn_blocking(move || SpeechStack::load(&speech_cfg))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("speech models: {e}"))?;
    let renderer = crate::prompts::PromptRenderer::new(&models, cfg.prompt_cache_dir.clone());
    if let Err(reason) = renderer.tts_status() {
        tracing::warn!("text-to-speech unavailable ({reason}); only prompts with WAV files will be heard");
    }
    Ok(ServerDeps {
        speech: Arc::new(speech),
        prompts: Arc::new(renderer),
        matcher: Arc::new(crate::intent::TextMatcher::default()),
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
