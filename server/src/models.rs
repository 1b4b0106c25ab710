//! The models a server runs: directories written by `netnomos train`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use plugin::engine::Vocab;
use tokenizers::Tokenizer;

/// Positions mistral.rs's KV cache grows by.
const KV_BLOCK: usize = 512;

/// A served model and what enforcement needs of it.
pub struct ServedModel {
    pub id: String,
    pub path: PathBuf,
    pub tokenizer: Tokenizer,
    pub vocab: Arc<Vocab>,
    pub bos: u32,
    pub eos: u32,
    /// Longest sequence (prompt and generation), in tokens.
    pub max_len: usize,
    /// The record fields the model was trained to write, in order (from `netnomos.json`);
    /// `None` for a model from elsewhere.
    pub fields: Option<Vec<String>>,
}

impl std::fmt::Debug for ServedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServedModel")
            .field("id", &self.id)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn read_json(path: &Path) -> Result<serde_json::Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

impl ServedModel {
    /// Reads the model directory's tokenizer and configuration.
    pub fn open(id: &str, dir: &Path) -> Result<ServedModel, String> {
        if !dir.is_dir() {
            return Err(format!(
                "model `{id}`: {} is not a model directory",
                dir.display()
            ));
        }
        let tokenizer_path = dir.join("tokenizer.json");
        let tokenizer = Tokenizer::from_file(&tokenizer_path)
            .map_err(|e| format!("model `{id}`: {}: {e}", tokenizer_path.display()))?;
        let config =
            read_json(&dir.join("config.json")).map_err(|e| format!("model `{id}`: {e}"))?;
        let id_of = |key: &str| -> Result<u32, String> {
            config
                .get(key)
                .and_then(serde_json::Value::as_u64)
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| {
                    format!(
                        "model `{id}`: {}: no `{key}`",
                        dir.join("config.json").display()
                    )
                })
        };
        let (bos, eos) = (id_of("bos_token_id")?, id_of("eos_token_id")?);
        let positions = config
            .get("max_position_embeddings")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(4096) as usize;
        // mistral.rs's KV cache grows 512 positions at a time and fails past the model's
        // maximum, so only whole blocks are usable.
        let max_len = if positions > KV_BLOCK {
            positions / KV_BLOCK * KV_BLOCK
        } else {
            positions
        };
        let about = dir.join("netnomos.json");
        let fields = if about.exists() {
            let about = read_json(&about).map_err(|e| format!("model `{id}`: {e}"))?;
            about.get("fields").and_then(|f| {
                f.as_array().map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
            })
        } else {
            None
        };
        let vocab = plugin::processor::vocab_of(&tokenizer, &[eos]);
        Ok(ServedModel {
            id: id.to_owned(),
            path: dir.to_owned(),
            tokenizer,
            vocab: Arc::new(vocab),
            bos,
            eos,
            max_len,
            fields,
        })
    }

    /// Whether this model writes the records of a pack with these fields (in order).
    pub fn check_fields(&self, pack: &str, pack_fields: &[String]) -> Result<(), String> {
        match &self.fields {
            Some(mine) if mine != pack_fields => Err(format!(
                "model `{}` writes records with the fields {} but pack {pack} has {}",
                self.id,
                mine.join(" "),
                pack_fields.join(" ")
            )),
            _ => Ok(()),
        }
    }

    /// The prompt's token ids: `<s>` and the record prefix.  Fails when the prefix has a
    /// character the tokenizer cannot write.
    pub fn prompt_ids(&self, prefix: &str) -> Result<Vec<u32>, String> {
        let mut ids = vec![self.bos];
        if prefix.is_empty() {
            return Ok(ids);
        }
        let enc = self
            .tokenizer
            .encode(prefix, false)
            .map_err(|e| format!("the prompt cannot be tokenized: {e}"))?;
        let unk = self.tokenizer.token_to_id("<unk>");
        if let Some(pos) = enc.get_ids().iter().position(|id| Some(*id) == unk) {
            let (start, _) = enc.get_offsets()[pos];
            return Err(format!(
                "the prompt has text model `{}` cannot write, at character {start}: `{}`",
                self.id,
                prefix[start..].chars().take(12).collect::<String>()
            ));
        }
        ids.extend_from_slice(enc.get_ids());
        Ok(ids)
    }
}
