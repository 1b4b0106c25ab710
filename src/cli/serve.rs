//! `netnomos serve`: the OpenAI-compatible server that enforces rule packs.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use server::config::Config;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Server configuration (TOML; see server-config/).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Listen here instead of the configuration's `bind` (port 0: any free port).
    #[arg(long, value_name = "ADDR:PORT")]
    pub bind: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut config = Config::load(&args.config)?;
    if let Some(bind) = args.bind {
        config.bind = bind;
        config.bind_addr().map_err(anyhow::Error::msg)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(server::run(
        config,
        |addr| {
            // The first stdout line says where to connect (tests read it).
            crate::outln!("listening on http://{addr}");
            tracing::info!(
                "serving on http://{addr}: POST /v1/chat/completions with \"rulepack\" and \"fields\""
            );
        },
        server::shutdown_signal(),
    ))?;
    Ok(ExitCode::SUCCESS)
}
