//! The rule pack: an immutable, hashed artifact between the miner and the server.
//!
//! # Hash
//!
//! `hash` is `sha256:` followed by the hex SHA-256 of the pack's canonical JSON (RFC 8785,
//! JSON Canonicalization Scheme) with the `hash` member removed.  Any change to any other
//! member changes the hash; loading recomputes it and refuses a pack whose stored hash
//! differs.
//!
//! # Versions
//!
//! `format_version` is the version of this file format.  A loader accepts every format
//! version up to its own and refuses newer ones, naming both.  `version` is the pack's own
//! semantic version: new data or new rules make a new version, never an edit in place.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::formula::Formula;
use crate::resolve::{Prop, resolve, resolve_term};
use crate::schema::{Field, FieldId, Schema};

/// The newest pack format this build reads and the one it writes.
pub const FORMAT_VERSION: u32 = 1;

/// Packs with more rules than this are written as compact JSON.
pub const PRETTY_RULES: usize = 20_000;

/// Feeds serialized bytes into a hash.
struct HashWriter(Sha256);

impl Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A rule pack.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RulePack {
    /// Version of the pack file format; this build writes 1 and reads up to 1.
    pub format_version: u32,
    /// The pack's name: letters, digits, `-`, `_` and `.`.
    pub name: String,
    /// The pack's semantic version.
    pub version: String,
    /// `sha256:<hex>` over the canonical JSON of the pack without this member.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hash: String,
    /// When the pack was made (RFC 3339, UTC).
    pub created: String,
    pub producer: Producer,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub provenance: Provenance,
    /// The fields of a record.
    pub fields: Vec<Field>,
    /// The predicates the rules were built from.
    #[serde(default)]
    pub predicates: Vec<Predicate>,
    pub rules: Vec<Rule>,
    /// WebAssembly components the rules call, embedded so that the pack is self-contained.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<Component>,
}

/// The program that wrote a pack.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Producer {
    pub name: String,
    pub version: String,
}

/// Where a pack came from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// The data the rules were learned from.
    #[serde(default)]
    pub inputs: Vec<InputFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_spec: Option<SpecSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grammar: Option<SpecSource>,
    /// Every parameter of the run that made the pack.
    #[serde(default)]
    pub parameters: BTreeMap<String, serde_json::Value>,
    /// Whether the rule search finished, and if not, why it stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<SearchOutcome>,
    /// Counts from the run: records read, rows skipped, predicates, distinct rows.
    #[serde(default)]
    pub statistics: BTreeMap<String, serde_json::Value>,
    /// For an imported pack, the file it was imported from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported_from: Option<String>,
}

/// One input file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InputFile {
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
    /// Records read from the file (rows of a CSV, packets of a capture).
    pub records: u64,
}

/// A dataset spec or grammar as it was used, whole.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SpecSource {
    pub path: String,
    pub sha256: String,
    pub content: serde_json::Value,
}

/// How a rule search ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchOutcome {
    /// Whether every rule up to the size bound was found.
    pub complete: bool,
    /// Why the search stopped early (`time budget`, `interrupted`, `max_rules`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_by: Option<String>,
    /// The largest rule size for which all rules are in the pack.
    pub complete_up_to_size: u32,
    pub max_clause_size: u32,
}

/// A predicate: an atomic formula over the fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Predicate {
    pub id: String,
    pub formula: Formula,
    pub text: String,
    /// The grammar template that made it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub template: String,
    /// Records on which it holds.
    pub support: u64,
}

/// A rule: a formula that holds on the pack's data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: String,
    pub formula: Formula,
    /// A readable rendering, with categorical values by label.
    pub text: String,
    pub support: Support,
    /// Ids of the predicates the rule is a disjunction of.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub predicates: Vec<String>,
}

/// How well a rule holds on the data it was learned from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Support {
    /// Records checked.
    pub records: u64,
    /// Records on which the rule holds.
    pub satisfied: u64,
}

impl Support {
    pub fn violations(&self) -> u64 {
        self.records - self.satisfied
    }
}

/// An embedded WebAssembly component.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Component {
    pub name: String,
    /// `sha256:<hex>` of the component bytes.
    pub sha256: String,
    /// The component bytes, base64 (standard alphabet, padded).
    pub wasm_base64: String,
}

impl Component {
    /// Embeds component bytes under `name`.
    pub fn new(name: impl Into<String>, bytes: &[u8]) -> Component {
        use base64::Engine as _;
        Component {
            name: name.into(),
            sha256: crate::user::component_hash(bytes),
            wasm_base64: base64::engine::general_purpose::STANDARD.encode(bytes),
        }
    }

    /// The component's bytes, checked against its hash.
    pub fn bytes(&self) -> Result<Vec<u8>, String> {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&self.wasm_base64)
            .map_err(|e| {
                format!(
                    "component `{}`: `wasm_base64` is not base64: {e}",
                    self.name
                )
            })?;
        let computed = crate::user::component_hash(&bytes);
        if computed != self.sha256 {
            return Err(format!(
                "component `{}`: its bytes hash to {computed}, not the stored {}",
                self.name, self.sha256
            ));
        }
        Ok(bytes)
    }
}

/// Everything that can go wrong reading or writing a pack.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a rule pack: at `{at}`: {message}")]
    Json {
        path: PathBuf,
        at: String,
        message: String,
    },
    #[error(
        "{path}: pack format version {found} is newer than this netnomos reads \
         (up to {FORMAT_VERSION}); upgrade netnomos"
    )]
    NewerFormat { path: PathBuf, found: u64 },
    #[error("{path}: no `format_version`; this is not a rule pack")]
    NoFormatVersion { path: PathBuf },
    #[error(
        "{path}: not a rules.json of the reference format (a list of rules): at `{at}`: {message}"
    )]
    NotRules {
        path: PathBuf,
        at: String,
        message: String,
    },
    #[error(
        "{path}: content hash mismatch: the pack says {stored} but its content hashes to \
         {computed}; the file was changed after it was written"
    )]
    HashMismatch {
        path: PathBuf,
        stored: String,
        computed: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{path} already exists; packs and their files are never replaced")]
    Exists { path: PathBuf },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> PackError + '_ {
    move |source| PackError::Io {
        path: path.to_owned(),
        source,
    }
}

/// SHA-256 of bytes as `sha256:<hex>`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(71);
    out.push_str("sha256:");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// SHA-256 of a file's content, streamed.
pub fn sha256_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let bytes = std::io::copy(&mut file, &mut hasher)?;
    let digest = hasher.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Ok((format!("sha256:{hex}"), bytes))
}

/// Whether `name` is a valid pack name.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.')
}

impl RulePack {
    /// The hash this pack's content has (ignoring the stored `hash`).
    pub fn content_hash(&self) -> String {
        // An empty hash is not serialized, so the canonical form of a copy without it is
        // the canonical form of the pack without its `hash` member.
        let unhashed;
        let pack = if self.hash.is_empty() {
            self
        } else {
            unhashed = RulePack {
                hash: String::new(),
                ..self.clone()
            };
            &unhashed
        };
        let mut hasher = HashWriter(Sha256::new());
        serde_json_canonicalizer::to_writer(pack, &mut hasher).expect("a pack always serializes");
        let hex: String = hasher
            .0
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("sha256:{hex}")
    }

    /// Stores the content hash.
    pub fn seal(&mut self) {
        self.hash = self.content_hash();
    }

    /// `name@version`, the pack's identity and its file stem.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// The file name a pack directory uses for this pack.
    pub fn file_name(&self) -> String {
        format!("{}.json", self.id())
    }

    /// The field schema with lookup tables, and the embedded user functions bound to it
    /// (each component's hash checked, then loaded by the installed host).
    pub fn schema(&self) -> Result<Schema, String> {
        let mut schema = Schema::new(self.fields.clone())?;
        let mut names = std::collections::HashSet::new();
        for component in &self.components {
            if !names.insert(component.name.as_str()) {
                return Err(format!("component `{}` is embedded twice", component.name));
            }
            let bytes = component.bytes()?;
            let function = crate::user::load(&bytes)
                .map_err(|e| format!("component `{}`: {e}", component.name))?;
            if function.name() != component.name {
                return Err(format!(
                    "component `{}` calls itself `{}` in its metadata",
                    component.name,
                    function.name()
                ));
            }
            schema.bind_function(function);
        }
        Ok(schema)
    }

    /// Checks names, versions, the schema and every formula; returns the resolved rules.
    pub fn validate(&self) -> Result<(Schema, Vec<Prop>), String> {
        if !valid_name(&self.name) {
            return Err(format!(
                "pack name `{}` is not valid: use letters, digits, `-`, `_` and `.`",
                self.name
            ));
        }
        if let Err(e) = semver::Version::parse(&self.version) {
            return Err(format!(
                "pack version `{}` is not a semantic version: {e}",
                self.version
            ));
        }
        let schema = self.schema()?;
        // The fields each definition reads: a derived field must not depend on itself.
        let mut reads: Vec<Vec<FieldId>> = vec![Vec::new(); schema.len()];
        for (i, field) in schema.fields().iter().enumerate() {
            if let Some(def) = &field.definition {
                let expr = resolve_term(def, &schema)
                    .map_err(|e| format!("definition of derived field `{}`: {e}", field.name))?;
                expr.visit_fields(&mut |f| reads[i].push(f));
            }
        }
        for start in 0..schema.len() {
            if let Some(cycle) = cycle_from(start, &reads) {
                let names: Vec<&str> = cycle
                    .iter()
                    .map(|&i| schema.fields()[i].name.as_str())
                    .collect();
                return Err(format!(
                    "definition of derived field `{}` depends on itself ({})",
                    names[0],
                    names.join(" -> ")
                ));
            }
        }
        for p in &self.predicates {
            resolve(&p.formula, &schema).map_err(|e| format!("predicate `{}`: {e}", p.id))?;
        }
        let mut seen = std::collections::HashSet::new();
        let mut props = Vec::with_capacity(self.rules.len());
        for rule in &self.rules {
            if !seen.insert(rule.id.as_str()) {
                return Err(format!("rule id `{}` is used twice", rule.id));
            }
            props.push(
                resolve(&rule.formula, &schema).map_err(|e| format!("rule `{}`: {e}", rule.id))?,
            );
        }
        Ok((schema, props))
    }

    /// Parses and verifies a pack from JSON text; `path` names it in errors.
    pub fn from_json(text: &str, path: &Path) -> Result<RulePack, PackError> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| PackError::Json {
            path: path.to_owned(),
            at: format!("line {} column {}", e.line(), e.column()),
            message: e.to_string(),
        })?;
        match value.get("format_version").map(serde_json::Value::as_u64) {
            None => {
                return Err(PackError::NoFormatVersion {
                    path: path.to_owned(),
                });
            }
            Some(None) => {
                return Err(PackError::Invalid {
                    path: path.to_owned(),
                    message: "`format_version` must be a whole number".into(),
                });
            }
            Some(Some(v)) if v > u64::from(FORMAT_VERSION) => {
                return Err(PackError::NewerFormat {
                    path: path.to_owned(),
                    found: v,
                });
            }
            Some(Some(_)) => {}
        }
        let pack: RulePack =
            serde_path_to_error::deserialize(value).map_err(|e| PackError::Json {
                path: path.to_owned(),
                at: e.path().to_string(),
                message: e.inner().to_string(),
            })?;
        let computed = pack.content_hash();
        if pack.hash != computed {
            return Err(PackError::HashMismatch {
                path: path.to_owned(),
                stored: if pack.hash.is_empty() {
                    "no hash".into()
                } else {
                    pack.hash
                },
                computed,
            });
        }
        pack.validate().map_err(|message| PackError::Invalid {
            path: path.to_owned(),
            message,
        })?;
        Ok(pack)
    }

    /// Reads and verifies a pack file.
    pub fn load(path: &Path) -> Result<RulePack, PackError> {
        let text = fs::read_to_string(path).map_err(io_error(path))?;
        RulePack::from_json(&text, path)
    }

    /// The pack as pretty JSON.
    /// Indented for packs a person may read; compact past [`PRETTY_RULES`] rules.
    pub fn to_json(&self) -> String {
        if self.rules.len() <= PRETTY_RULES {
            serde_json::to_string_pretty(self).expect("a pack always serializes")
        } else {
            serde_json::to_string(self).expect("a pack always serializes")
        }
    }

    /// Writes the pack to `path` atomically (a temporary file in the same directory, then a
    /// rename) and refuses to replace an existing file.  Seals the pack first if it has no
    /// hash yet; refuses a pack whose hash does not match.
    pub fn write_new(&mut self, path: &Path) -> Result<(), PackError> {
        if self.hash.is_empty() {
            self.seal();
        } else {
            let computed = self.content_hash();
            if self.hash != computed {
                return Err(PackError::HashMismatch {
                    path: path.to_owned(),
                    stored: self.hash.clone(),
                    computed,
                });
            }
        }
        self.validate().map_err(|message| PackError::Invalid {
            path: path.to_owned(),
            message,
        })?;
        write_atomic(path, self.to_json().as_bytes())
    }
}

/// Writes `bytes` to a new file at `path` atomically; fails if `path` exists.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PackError> {
    if path.exists() {
        return Err(PackError::Exists {
            path: path.to_owned(),
        });
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(io_error(&dir))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".netnomos-")
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(io_error(&dir))?;
    tmp.write_all(bytes).map_err(io_error(path))?;
    tmp.as_file().sync_all().map_err(io_error(path))?;
    // Readable by everyone, like any file a program writes (temporary files are 0600).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let perms = fs::Permissions::from_mode(0o644);
        tmp.as_file()
            .set_permissions(perms)
            .map_err(io_error(path))?;
    }
    tmp.persist_noclobber(path).map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            PackError::Exists {
                path: path.to_owned(),
            }
        } else {
            PackError::Io {
                path: path.to_owned(),
                source: e.error,
            }
        }
    })?;
    Ok(())
}

/// The current time in RFC 3339 (UTC, seconds).
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// A path of definitions from field `start` back to itself, if there is one.
fn cycle_from(start: usize, reads: &[Vec<FieldId>]) -> Option<Vec<usize>> {
    let mut path = vec![start];
    let mut stack = vec![reads[start].iter()];
    let mut seen = vec![false; reads.len()];
    while let Some(next) = stack.last_mut() {
        match next.next() {
            Some(f) if f.index() == start => {
                path.push(start);
                return Some(path);
            }
            Some(f) if !seen[f.index()] => {
                seen[f.index()] = true;
                path.push(f.index());
                stack.push(reads[f.index()].iter());
            }
            Some(_) => {}
            None => {
                stack.pop();
                path.pop();
            }
        }
    }
    None
}
