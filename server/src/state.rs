//! What every handler shares.

use std::sync::Arc;
use std::time::Instant;

use mistralrs_server_core::types::SharedMistralRsState;
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::models::ServedModel;
use crate::packs::Registry;

/// The server's state.
pub struct AppState {
    pub config: Config,
    pub mistral: SharedMistralRsState,
    /// The first is the default.
    pub models: Vec<Arc<ServedModel>>,
    pub packs: Arc<Registry>,
    pub metrics: Arc<Metrics>,
    /// One permit per generation request allowed to run at once.
    pub slots: Arc<Semaphore>,
    pub started: Instant,
}

pub type App = Arc<AppState>;

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("models", &self.models)
            .field("packs", &self.packs)
            .finish_non_exhaustive()
    }
}

impl AppState {
    pub fn model(&self, id: &str) -> Option<Arc<ServedModel>> {
        self.models.iter().find(|m| m.id == id).cloned()
    }
}
