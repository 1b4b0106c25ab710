//! The server's TOML configuration.
//!
//! ```toml
//! bind = "127.0.0.1:8080"          # the default
//! device = "cpu"                   # or "cuda", in a build with CUDA
//! rulepack_dir = "rulepacks"       # relative to this file
//! watch_interval_ms = 1000         # how often the directory is looked at
//!
//! [limits]
//! max_tokens = 1024                # per choice; also the default
//! concurrent_requests = 64         # more at once are answered 429
//! max_n = 16                       # choices per request
//! max_body_bytes = 16777216        # request bodies, rule-pack uploads included
//!
//! [[models]]
//! id = "cidds-small"
//! path = "models/cidds-small"      # a directory written by `netnomos train`
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// Where the model runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    #[default]
    Cpu,
    Cuda,
}

/// A served model.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// The name requests use in `model`.
    pub id: String,
    /// The model directory (from `netnomos train`), relative to the configuration file.
    pub path: PathBuf,
}

/// Limits on what one request may ask.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub max_tokens: usize,
    pub concurrent_requests: usize,
    pub max_n: usize,
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_tokens: 1024,
            concurrent_requests: 64,
            max_n: 16,
            max_body_bytes: 16 << 20,
        }
    }
}

/// The configuration.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_bind")]
    pub bind: String,
    #[serde(default)]
    pub device: DeviceKind,
    pub rulepack_dir: PathBuf,
    #[serde(default = "default_watch")]
    pub watch_interval_ms: u64,
    /// Solver time limit per query, in milliseconds (pack checks and enforcement).
    #[serde(default = "default_solver_timeout")]
    pub solver_timeout_ms: u32,
    #[serde(default)]
    pub limits: Limits,
    pub models: Vec<ModelEntry>,
}

fn default_bind() -> String {
    "127.0.0.1:8080".into()
}

fn default_watch() -> u64 {
    1000
}

fn default_solver_timeout() -> u32 {
    10_000
}

impl Config {
    /// Reads and checks `path`; relative paths in it are taken from its directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses configuration text that came from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        let mut config: Config = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let base = if base.as_os_str().is_empty() {
            Path::new(".")
        } else {
            base
        };
        config.rulepack_dir = base.join(&config.rulepack_dir);
        for m in &mut config.models {
            m.path = base.join(&m.path);
        }
        config.check().map_err(invalid)?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        self.bind_addr()?;
        if self.models.is_empty() {
            return Err("no models: add at least one [[models]] with `id` and `path`".into());
        }
        let mut ids = std::collections::BTreeSet::new();
        for m in &self.models {
            if m.id.is_empty() || m.id == "default" {
                return Err(format!(
                    "models: `{}` cannot be a model id (it must be a non-empty name other than `default`)",
                    m.id
                ));
            }
            if !ids.insert(&m.id) {
                return Err(format!("models: `{}` is listed twice", m.id));
            }
        }
        let l = &self.limits;
        for (name, v) in [
            ("max_tokens", l.max_tokens),
            ("concurrent_requests", l.concurrent_requests),
            ("max_n", l.max_n),
            ("max_body_bytes", l.max_body_bytes),
        ] {
            if v == 0 {
                return Err(format!("limits.{name} must be at least 1"));
            }
        }
        if self.watch_interval_ms == 0 {
            return Err("watch_interval_ms must be at least 1".into());
        }
        Ok(())
    }

    /// The address to listen on.
    pub fn bind_addr(&self) -> Result<SocketAddr, String> {
        self.bind.parse().map_err(|e| {
            format!(
                "bind: `{}` is not an address and port such as 127.0.0.1:8080 ({e})",
                self.bind
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_relative_to_the_file_and_defaults_apply() {
        let c = Config::parse(
            "rulepack_dir = \"packs\"\n[[models]]\nid = \"m\"\npath = \"models/m\"\n",
            Path::new("/etc/netnomos/serve.toml"),
        )
        .unwrap();
        assert_eq!(c.rulepack_dir, Path::new("/etc/netnomos/packs"));
        assert_eq!(c.models[0].path, Path::new("/etc/netnomos/models/m"));
        assert_eq!(c.bind, "127.0.0.1:8080");
        assert_eq!(c.limits, Limits::default());
    }

    #[test]
    fn mistakes_name_the_file_and_the_key() {
        let err = |text: &str| {
            Config::parse(text, Path::new("s.toml"))
                .unwrap_err()
                .to_string()
        };
        let e = err("rulepack_dir = \"p\"\nmodels = []\nbnd = \"x\"\n");
        assert!(e.starts_with("s.toml: ") && e.contains("bnd"), "{e}");
        let e = err("rulepack_dir = \"p\"\nmodels = []\n");
        assert!(e.contains("no models"), "{e}");
        let e = err(
            "bind = \"localhost\"\nrulepack_dir = \"p\"\n[[models]]\nid = \"m\"\npath = \"m\"\n",
        );
        assert!(e.contains("bind: `localhost`"), "{e}");
        let e = err(
            "rulepack_dir = \"p\"\n[limits]\nmax_n = 0\n[[models]]\nid = \"m\"\npath = \"m\"\n",
        );
        assert!(e.contains("limits.max_n"), "{e}");
        let e =
            err("rulepack_dir = \"p\"\ndevice = \"tpu\"\n[[models]]\nid = \"m\"\npath = \"m\"\n");
        assert!(e.contains("tpu"), "{e}");
    }
}
