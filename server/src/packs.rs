//! The rule packs a server enforces: a directory of pack files, watched.
//!
//! Every `*.json` file in the directory is loaded once: its hash and format version are
//! verified, its formulas resolved, its rules checked for a contradiction (a pack no
//! record can satisfy is refused, naming the rules that conflict), and it is compiled for
//! enforcement.  A request resolves `name` (the newest version) or `name@version` to a
//! loaded pack and holds it until it ends, so a version added meanwhile changes nothing
//! for it.  Packs are immutable: a file whose content changes in place is refused and the
//! version already loaded stays; a new version is a new file.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use plugin::compiled::Compiled;
use rulepacks::RulePack;
use semver::Version;

/// A pack ready to enforce.
#[derive(Debug)]
pub struct LoadedPack {
    pub pack: RulePack,
    pub compiled: Arc<Compiled>,
    pub version: Version,
    pub path: PathBuf,
}

impl LoadedPack {
    pub fn id(&self) -> String {
        self.pack.id()
    }
}

/// Why a pack was not loaded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PackLoadError {
    /// Not a valid pack (hash, format version, schema, formulas).
    #[error("{0}")]
    Invalid(String),
    /// No record satisfies it.
    #[error("{0}")]
    Contradictory(String),
    /// This name and version is already loaded.
    #[error("{0}")]
    Exists(String),
}

#[derive(Default)]
struct Inner {
    packs: BTreeMap<String, BTreeMap<Version, Arc<LoadedPack>>>,
    /// Files looked at, with their modification time and size then.
    seen: HashMap<PathBuf, (Option<SystemTime>, u64)>,
    /// Files refused, with why.
    refused: BTreeMap<PathBuf, String>,
}

/// What a scan of the directory changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanReport {
    pub loaded: Vec<String>,
    pub removed: Vec<String>,
    pub refused: Vec<(PathBuf, String)>,
}

/// The packs of a directory.
pub struct Registry {
    dir: PathBuf,
    solver_timeout_ms: u32,
    inner: RwLock<Inner>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// Loads, checks and compiles one pack file's text.
pub fn prepare(
    text: &str,
    path: &Path,
    solver_timeout_ms: u32,
) -> Result<LoadedPack, PackLoadError> {
    let pack =
        RulePack::from_json(text, path).map_err(|e| PackLoadError::Invalid(e.to_string()))?;
    let version = Version::parse(&pack.version).map_err(|e| {
        PackLoadError::Invalid(format!(
            "{}: version `{}`: {e}",
            path.display(),
            pack.version
        ))
    })?;
    let (schema, props) = pack
        .validate()
        .map_err(|e| PackLoadError::Invalid(format!("{}: {e}", path.display())))?;
    let ids: Vec<String> = pack.rules.iter().map(|r| r.id.clone()).collect();
    if let Some(conflict) = solver::contradiction(&schema, &props, &ids, solver_timeout_ms) {
        return Err(PackLoadError::Contradictory(format!(
            "{}: pack {} is contradictory: {conflict}",
            path.display(),
            pack.id()
        )));
    }
    let compiled = Compiled::new(&pack)
        .map_err(|e| PackLoadError::Invalid(format!("{}: {e}", path.display())))?;
    Ok(LoadedPack {
        compiled: Arc::new(compiled),
        version,
        path: path.to_owned(),
        pack,
    })
}

impl Registry {
    /// A registry of `dir`, which must exist; nothing is loaded until [`Registry::scan`].
    pub fn new(dir: &Path, solver_timeout_ms: u32) -> Result<Registry, String> {
        if !dir.is_dir() {
            return Err(format!(
                "rulepack_dir {} is not a directory (create it, or point rulepack_dir at the packs)",
                dir.display()
            ));
        }
        Ok(Registry {
            dir: dir.to_owned(),
            solver_timeout_ms,
            inner: RwLock::new(Inner::default()),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Loads new pack files, forgets removed ones, and refuses changed ones.
    pub fn scan(&self) -> ScanReport {
        let mut report = ScanReport::default();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) => {
                report
                    .refused
                    .push((self.dir.clone(), format!("cannot list the directory: {e}")));
                return report;
            }
        };
        let mut present = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            // Temporary files of atomic writes start with a dot.
            if path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'))
            {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            present.push(path.clone());
            let stamp = (meta.modified().ok(), meta.len());
            let known = self.read().seen.get(&path).cloned();
            if known == Some(stamp) {
                continue;
            }
            let changed = known.is_some();
            let outcome = std::fs::read_to_string(&path)
                .map_err(|e| PackLoadError::Invalid(format!("{}: {e}", path.display())))
                .and_then(|text| prepare(&text, &path, self.solver_timeout_ms));
            let mut inner = self.write();
            inner.seen.insert(path.clone(), stamp);
            match outcome {
                Ok(loaded) => {
                    let id = loaded.id();
                    let same = inner
                        .packs
                        .get(&loaded.pack.name)
                        .and_then(|vs| vs.get(&loaded.version))
                        .cloned();
                    match same {
                        Some(old) if old.pack.hash == loaded.pack.hash => {
                            inner.refused.remove(&path);
                        }
                        Some(old) => {
                            let why = if changed && old.path == path {
                                format!(
                                    "{}: pack {id} changed on disk; packs are immutable, so the version loaded before stays (write a new version instead)",
                                    path.display()
                                )
                            } else {
                                format!(
                                    "{}: pack {id} is already loaded from {} with other content",
                                    path.display(),
                                    old.path.display()
                                )
                            };
                            tracing::warn!("{why}");
                            inner.refused.insert(path.clone(), why.clone());
                            report.refused.push((path.clone(), why));
                        }
                        None => {
                            tracing::info!(pack = %id, file = %path.display(), "rule pack loaded");
                            inner.refused.remove(&path);
                            inner
                                .packs
                                .entry(loaded.pack.name.clone())
                                .or_default()
                                .insert(loaded.version.clone(), Arc::new(loaded));
                            report.loaded.push(id);
                        }
                    }
                }
                Err(e) => {
                    let why = e.to_string();
                    tracing::warn!("rule pack refused: {why}");
                    inner.refused.insert(path.clone(), why.clone());
                    report.refused.push((path.clone(), why));
                }
            }
        }
        let mut inner = self.write();
        inner.seen.retain(|p, _| present.contains(p));
        inner.refused.retain(|p, _| present.contains(p));
        let mut removed = Vec::new();
        for versions in inner.packs.values_mut() {
            versions.retain(|_, p| {
                let keep = present.contains(&p.path);
                if !keep {
                    removed.push(p.id());
                }
                keep
            });
        }
        inner.packs.retain(|_, v| !v.is_empty());
        for id in &removed {
            tracing::info!(pack = %id, "rule pack file removed; the pack is no longer served");
        }
        report.removed = removed;
        report
    }

    /// The pack `spec` names: `name` (its newest version) or `name@version`.
    pub fn resolve(&self, spec: &str) -> Option<Arc<LoadedPack>> {
        let inner = self.read();
        match spec.split_once('@') {
            None => inner
                .packs
                .get(spec)
                .and_then(|v| v.values().next_back().cloned()),
            Some((name, version)) => {
                let version = Version::parse(version).ok()?;
                inner.packs.get(name)?.get(&version).cloned()
            }
        }
    }

    /// Every loaded pack, by name and then version.
    pub fn all(&self) -> Vec<Arc<LoadedPack>> {
        self.read()
            .packs
            .values()
            .flat_map(|v| v.values().cloned())
            .collect()
    }

    /// The ids of every loaded pack (`name@version`).
    pub fn ids(&self) -> Vec<String> {
        self.all().iter().map(|p| p.id()).collect()
    }

    /// Files refused, with why.
    pub fn refused(&self) -> Vec<(PathBuf, String)> {
        self.read()
            .refused
            .iter()
            .map(|(p, w)| (p.clone(), w.clone()))
            .collect()
    }

    /// Adds an uploaded pack: checked like a file, written to the directory as
    /// `name@version.json` (never replacing a file), then served.
    pub fn upload(&self, text: &str) -> Result<Arc<LoadedPack>, PackLoadError> {
        let mut loaded = prepare(text, Path::new("uploaded pack"), self.solver_timeout_ms)?;
        if self.resolve(&loaded.id()).is_some() {
            return Err(PackLoadError::Exists(format!(
                "pack {} is already loaded; packs are immutable, so upload it with a new version",
                loaded.id()
            )));
        }
        let path = self.dir.join(loaded.pack.file_name());
        loaded.pack.write_new(&path).map_err(|e| match e {
            rulepacks::PackError::Exists { .. } => PackLoadError::Exists(format!(
                "{} already exists; packs are immutable, so upload it with a new version",
                path.display()
            )),
            e => PackLoadError::Invalid(e.to_string()),
        })?;
        loaded.path = path.clone();
        let loaded = Arc::new(loaded);
        let mut inner = self.write();
        if let Ok(meta) = std::fs::metadata(&path) {
            inner.seen.insert(path, (meta.modified().ok(), meta.len()));
        }
        inner
            .packs
            .entry(loaded.pack.name.clone())
            .or_default()
            .insert(loaded.version.clone(), loaded.clone());
        tracing::info!(pack = %loaded.id(), "rule pack uploaded");
        Ok(loaded)
    }
}
