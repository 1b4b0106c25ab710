//! An OpenAI-compatible server for rule-enforced record generation, on mistral.rs.
//!
//! Our axum handlers for `/v1/chat/completions` and `/v1/completions` read the extra
//! request fields `rulepack` and `fields`, attach a
//! [`RecordProcessor`](plugin::processor::RecordProcessor) to each choice, and answer with
//! the generated records parsed into JSON; `/v1/models`, `/v1/rulepacks`, `/metrics` and
//! `/health` are ours too, and every other path goes to mistral.rs's own router.  Rule
//! packs come from a watched directory ([`packs::Registry`]).

pub mod config;
pub mod error;
pub mod generate;
pub mod metrics;
pub mod models;
pub mod packs;
pub mod routes;
pub mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mistralrs_core::ModelSelected;
use mistralrs_server_core::mistralrs_for_server_builder::{MistralRsForServerBuilder, ModelConfig};
use mistralrs_server_core::mistralrs_server_router_builder::MistralRsServerRouterBuilder;

use crate::config::{Config, DeviceKind};
use crate::models::ServedModel;
use crate::packs::Registry;
use crate::state::{App, AppState};

/// Loads the models and packs of `config` and builds the application, without listening.
pub async fn build(config: Config) -> anyhow::Result<(App, axum::Router)> {
    if config.device == DeviceKind::Cuda {
        bail!(
            "device = \"cuda\": this netnomos was built for the CPU only (build mistral.rs with its `cuda` feature for GPUs)"
        );
    }
    let packs = Arc::new(
        Registry::new(&config.rulepack_dir, config.solver_timeout_ms)
            .map_err(anyhow::Error::msg)?,
    );
    let scan_packs = packs.clone();
    let report = tokio::task::spawn_blocking(move || scan_packs.scan()).await?;
    for (file, why) in &report.refused {
        tracing::warn!("rule pack {} not served: {why}", file.display());
    }
    tracing::info!(
        "{} rule pack(s) loaded from {}",
        report.loaded.len(),
        config.rulepack_dir.display()
    );
    let mut models = Vec::new();
    let mut model_configs = Vec::new();
    for entry in &config.models {
        let served = ServedModel::open(&entry.id, &entry.path).map_err(anyhow::Error::msg)?;
        let path = std::fs::canonicalize(&entry.path)
            .with_context(|| format!("model `{}`: {}", entry.id, entry.path.display()))?;
        let selected: ModelSelected = serde_json::from_value(serde_json::json!({
            "Plain": {"model_id": path.display().to_string(), "arch": "llama", "dtype": "f32"}
        }))
        .context("describing the model for mistral.rs")?;
        model_configs
            .push(ModelConfig::new(entry.id.clone(), selected).with_alias(entry.id.clone()));
        models.push(Arc::new(served));
    }
    let mistral = MistralRsForServerBuilder::new()
        .with_cpu(true)
        .with_max_seqs(config.limits.concurrent_requests * config.limits.max_n)
        .with_model_configs(model_configs)
        .with_default_model_id(config.models[0].id.clone())
        // Every choice is its own sequence; cached prefixes would only shorten the
        // context the processor sees.
        .with_prefix_cache_n(0)
        .build()
        .await
        .context("loading the models in mistral.rs")?;
    let fallback = MistralRsServerRouterBuilder::new()
        .with_mistralrs(mistral.clone())
        .build()
        .await
        .context("building mistral.rs's router")?;
    let app: App = Arc::new(AppState {
        slots: Arc::new(tokio::sync::Semaphore::new(
            config.limits.concurrent_requests,
        )),
        config,
        mistral,
        models,
        packs,
        metrics: Arc::default(),
        started: Instant::now(),
    });
    let router = routes::router(app.clone(), fallback);
    Ok((app, router))
}

/// Looks at the rule-pack directory every `watch_interval_ms` for as long as the server runs.
fn watch(app: App) {
    let every = Duration::from_millis(app.config.watch_interval_ms);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let packs = app.packs.clone();
            if let Ok(report) = tokio::task::spawn_blocking(move || packs.scan()).await {
                app.metrics
                    .pack_reloads
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                for id in &report.loaded {
                    tracing::info!("now serving rule pack {id}");
                }
            }
        }
    });
}

/// Serves `config` until `shutdown` completes, then lets running requests finish.
/// `ready` is told the address once the server listens.
pub async fn run(
    config: Config,
    ready: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = config.bind_addr().map_err(anyhow::Error::msg)?;
    let (app, router) = build(config).await?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    watch(app);
    ready(local);
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving")?;
    tracing::info!("server stopped");
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing running requests");
}
