//! Dataset specs and grammars, in the reference implementation's JSON formats.
//!
//! The reference's own files load unchanged.  Unknown keys are errors that name the file,
//! the JSON path and the key; so are values outside their range (a quantile of 1.5, an
//! empty operator list, `max_clause_size` 0).  A few keys are ours, for what the reference
//! format cannot say; each is marked *extension* below and documented in
//! `miner/SPECS.md`.

pub mod dataset;
pub mod grammar;

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

pub use dataset::*;
pub use grammar::*;

/// A spec or grammar file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: at `{at}`: {message}")]
    Json {
        path: PathBuf,
        at: String,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// Reads a JSON file into `T`, with errors that name the JSON path.
pub(crate) fn load_json<T: DeserializeOwned>(
    path: &Path,
) -> Result<(T, serde_json::Value), SpecError> {
    let text = std::fs::read_to_string(path).map_err(|source| SpecError::Io {
        path: path.to_owned(),
        source,
    })?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| SpecError::Json {
        path: path.to_owned(),
        at: format!("line {} column {}", e.line(), e.column()),
        message: e.to_string(),
    })?;
    let parsed = serde_path_to_error::deserialize(value.clone()).map_err(|e| SpecError::Json {
        path: path.to_owned(),
        at: e.path().to_string(),
        message: e.inner().to_string(),
    })?;
    Ok((parsed, value))
}
