//! Training from scratch on record texts, and the model directory mistral.rs loads.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use serde_json::json;
use tokenizers::Tokenizer;

use crate::model::{Llama, LlamaConfig, Mode};
use crate::vocab::{VocabError, encode_record};

/// How to train.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainOptions {
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub steps: usize,
    pub batch: usize,
    pub learning_rate: f64,
    pub seed: u64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            hidden: 64,
            layers: 2,
            heads: 4,
            steps: 300,
            batch: 32,
            learning_rate: 3e-3,
            seed: 1,
        }
    }
}

/// Tokens per micro-batch (see [`train`]).
const MICRO_TOKENS: usize = 2048;

/// Why training failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Vocab(#[from] VocabError),
    #[error("model: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Data(String),
}

/// What training did.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TrainReport {
    pub records: usize,
    pub held_out_records: usize,
    pub steps: usize,
    /// Loss over the last steps (nats per token).
    pub final_loss: f32,
    /// Loss on the held-out records (nats per token).
    pub held_out_loss: Option<f32>,
    pub parameters: usize,
    pub seconds: f64,
}

/// A trained model with its tokenizer.
pub struct Trained {
    pub config: LlamaConfig,
    pub varmap: VarMap,
    pub tokenizer: Tokenizer,
    pub report: TrainReport,
}

impl std::fmt::Debug for Trained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trained")
            .field("config", &self.config)
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

/// A small deterministic generator (xorshift) for batch sampling.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f32 {
        (self.below(1 << 24) as f32) / (1u32 << 24) as f32
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f32 {
        let (u, v) = (self.unit().max(1e-7), self.unit());
        (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
    }
}

/// Trains on `records` (texts); `held_out` are only scored.  `progress` is told each
/// step's loss.
pub fn train(
    records: &[String],
    held_out: &[String],
    tokenizer: Tokenizer,
    options: &TrainOptions,
    progress: &dyn Fn(usize, f32),
) -> Result<Trained, TrainError> {
    if records.is_empty() {
        return Err(TrainError::Data("no records to train on".into()));
    }
    let started = std::time::Instant::now();
    let encode = |rs: &[String]| {
        rs.iter()
            .map(|r| encode_record(&tokenizer, r))
            .collect::<Result<Vec<_>, _>>()
    };
    let (train_ids, held_ids) = (encode(records)?, encode(held_out)?);
    let longest = train_ids
        .iter()
        .chain(&held_ids)
        .map(Vec::len)
        .max()
        .unwrap_or(2);
    let vocab = tokenizer.get_vocab_size(true);
    // Room for twice the longest record, in whole blocks of mistral.rs's KV cache (it
    // grows by 512 positions and refuses to pass the model's maximum).
    let config = LlamaConfig::small(
        vocab,
        options.hidden,
        options.layers,
        options.heads,
        (longest * 2).div_ceil(512) * 512,
    );
    let device = Device::Cpu;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
    let model = Llama::new(&config, vb)?;
    initialise(&varmap, options.seed)?;
    let params = ParamsAdamW {
        lr: options.learning_rate,
        weight_decay: 0.01,
        ..ParamsAdamW::default()
    };
    let mut opt = AdamW::new(varmap.all_vars(), params)?;
    let mut rng = Rng(options.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut recent = Vec::new();
    // Long records go through in micro-batches of about MICRO_TOKENS tokens, their
    // gradients summed: the same step, without attention matrices of hundreds of MB.
    let micro = (MICRO_TOKENS / longest).clamp(1, options.batch.max(1));
    let vars = varmap.all_vars();
    for step in 0..options.steps {
        let batch: Vec<&Vec<u32>> = (0..options.batch)
            .map(|_| &train_ids[rng.below(train_ids.len())])
            .collect();
        let parts: Vec<&[&Vec<u32>]> = batch.chunks(micro).collect();
        let mut summed: Option<candle_core::backprop::GradStore> = None;
        let mut value = 0.0;
        for part in &parts {
            let loss = (batch_loss(&model, part, &device, Mode::Train)? / parts.len() as f64)?;
            value += loss.to_scalar::<f32>()?;
            let grads = loss.backward()?;
            summed = Some(match summed {
                None => grads,
                Some(mut total) => {
                    for v in &vars {
                        if let Some(g) = grads.get(v) {
                            let sum = match total.get(v) {
                                Some(t) => (t + g)?,
                                None => g.clone(),
                            };
                            total.insert(v, sum);
                        }
                    }
                    total
                }
            });
        }
        if let Some(grads) = summed {
            opt.step(&grads)?;
        }
        recent.push(value);
        progress(step + 1, value);
    }
    let tail = &recent[recent.len().saturating_sub(20)..];
    let final_loss = tail.iter().sum::<f32>() / tail.len().max(1) as f32;
    let held_out_loss = if held_ids.is_empty() {
        None
    } else {
        let mut total = 0.0;
        let chunks: Vec<&[Vec<u32>]> = held_ids.chunks(micro.max(1)).collect();
        for chunk in &chunks {
            let refs: Vec<&Vec<u32>> = chunk.iter().collect();
            total += batch_loss(&model, &refs, &device, Mode::Infer)?.to_scalar::<f32>()?;
        }
        Some(total / chunks.len() as f32)
    };
    let parameters = varmap.all_vars().iter().map(|v| v.elem_count()).sum();
    let report = TrainReport {
        records: records.len(),
        held_out_records: held_out.len(),
        steps: options.steps,
        final_loss,
        held_out_loss,
        parameters,
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok(Trained {
        config,
        varmap,
        tokenizer,
        report,
    })
}

/// Sets every weight from `seed` (candle cannot seed its CPU generator): norms to one,
/// embeddings normal with deviation 0.02, projections uniform in ±1/√fan-in.
fn initialise(varmap: &VarMap, seed: u64) -> candle_core::Result<()> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| candle_core::Error::Msg("variables poisoned".into()))?;
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut rng = Rng(seed.wrapping_mul(0xd1b5_4a32_d192_ed03) | 1);
    for name in names {
        let var = &data[name];
        let dims = var.dims().to_vec();
        let n = var.elem_count();
        let values: Vec<f32> = if name.ends_with("norm.weight") {
            vec![1.0; n]
        } else if name.contains("embed_tokens") {
            (0..n).map(|_| 0.02 * rng.normal()).collect()
        } else {
            let bound = 1.0 / (*dims.last().unwrap_or(&1) as f32).sqrt();
            (0..n).map(|_| bound * (2.0 * rng.unit() - 1.0)).collect()
        };
        var.set(&Tensor::from_vec(values, dims, var.device())?)?;
    }
    Ok(())
}

/// Mean next-token cross entropy over the real (not padding) positions of a batch.
fn batch_loss(
    model: &Llama,
    batch: &[&Vec<u32>],
    device: &Device,
    mode: Mode,
) -> candle_core::Result<Tensor> {
    let pad = model.config().pad_token_id;
    let t = batch.iter().map(|s| s.len()).max().unwrap_or(2) - 1;
    let mut inputs = Vec::with_capacity(batch.len() * t);
    let mut targets = Vec::with_capacity(batch.len() * t);
    for seq in batch {
        for i in 0..t {
            inputs.push(seq.get(i).copied().unwrap_or(pad));
            targets.push(seq.get(i + 1).copied().unwrap_or(pad));
        }
    }
    let input = Tensor::from_vec(inputs, (batch.len(), t), device)?;
    let logits = model
        .forward(&input, mode)?
        .reshape((batch.len() * t, model.config().vocab_size))?;
    let keep: Vec<u32> = (0..targets.len() as u32)
        .filter(|&i| targets[i as usize] != pad)
        .collect();
    let keep_t = Tensor::new(keep.as_slice(), device)?;
    let real: Vec<u32> = keep.iter().map(|&i| targets[i as usize]).collect();
    let logits = logits.index_select(&keep_t, 0)?;
    candle_nn::loss::cross_entropy(&logits, &Tensor::new(real.as_slice(), device)?)
}

impl Trained {
    /// Writes the model directory: `config.json`, `model.safetensors`, `tokenizer.json`,
    /// `tokenizer_config.json` (naming the special tokens, with a chat template that
    /// passes the user's text through after `<s>`), `generation_config.json`, and
    /// `netnomos.json` (what the model was trained for, and how).
    pub fn save(&self, dir: &Path, about: serde_json::Value) -> Result<(), TrainError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| TrainError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let write = |name: &str, value: &serde_json::Value| -> Result<(), TrainError> {
            let path = dir.join(name);
            std::fs::write(
                &path,
                serde_json::to_string_pretty(value).unwrap_or_default(),
            )
            .map_err(io(&path))
        };
        write(
            "config.json",
            &serde_json::to_value(&self.config).unwrap_or_default(),
        )?;
        self.varmap.save(dir.join("model.safetensors"))?;
        let tokenizer_path = dir.join("tokenizer.json");
        self.tokenizer
            .save(&tokenizer_path, true)
            .map_err(|e| TrainError::Data(format!("{}: {e}", tokenizer_path.display())))?;
        write(
            "tokenizer_config.json",
            &json!({
                "bos_token": crate::vocab::BOS,
                "eos_token": crate::vocab::EOS,
                "unk_token": crate::vocab::UNK,
                "pad_token": crate::vocab::PAD,
                "add_bos_token": false,
                "add_eos_token": false,
                "clean_up_tokenization_spaces": false,
                "model_max_length": self.config.max_position_embeddings,
                "tokenizer_class": "PreTrainedTokenizerFast",
                "chat_template": CHAT_TEMPLATE,
            }),
        )?;
        write(
            "generation_config.json",
            &json!({"bos_token_id": self.config.bos_token_id, "eos_token_id": self.config.eos_token_id,
                    "pad_token_id": self.config.pad_token_id, "do_sample": false}),
        )?;
        let mut about = about;
        about["training"] = serde_json::to_value(&self.report).unwrap_or_default();
        write("netnomos.json", &about)
    }
}

/// The chat template: `<s>` and the last user message's text, which is a record prefix.
pub const CHAT_TEMPLATE: &str = "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ message['content'] }}{% endif %}{% endfor %}";

/// Loads a model directory written by [`Trained::save`], for greedy decoding here.
pub fn load(dir: &Path) -> Result<(Llama, Tokenizer), TrainError> {
    let read = |name: &str| -> Result<String, TrainError> {
        let path = dir.join(name);
        std::fs::read_to_string(&path).map_err(|source| TrainError::Io { path, source })
    };
    let config: LlamaConfig = serde_json::from_str(&read("config.json")?)
        .map_err(|e| TrainError::Data(format!("{}: {e}", dir.join("config.json").display())))?;
    let device = Device::Cpu;
    let weights = dir.join("model.safetensors");
    // SAFETY is not needed: the safetensors file is read, not memory-mapped.
    let tensors = candle_core::safetensors::load(&weights, &device)?;
    let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
    let model = Llama::new(&config, vb)?;
    let tokenizer = read("tokenizer.json")?
        .parse::<Tokenizer>()
        .map_err(|e| TrainError::Data(format!("{}: {e}", dir.join("tokenizer.json").display())))?;
    Ok((model, tokenizer))
}

/// Greedy decoding of a record after `prefix`, with our model (to compare with mistral.rs).
pub fn greedy_text(
    model: &Llama,
    tokenizer: &Tokenizer,
    prefix: &str,
    max_new: usize,
) -> Result<String, TrainError> {
    let mut prompt = vec![model.config().bos_token_id];
    if !prefix.is_empty() {
        let enc = tokenizer
            .encode(prefix, false)
            .map_err(|e| TrainError::Data(e.to_string()))?;
        prompt.extend_from_slice(enc.get_ids());
    }
    let out = model.greedy(&prompt, model.config().eos_token_id, max_new, &Device::Cpu)?;
    let text_ids: Vec<u32> = out
        .into_iter()
        .filter(|&id| id != model.config().eos_token_id)
        .collect();
    tokenizer
        .decode(&text_ids, true)
        .map_err(|e| TrainError::Data(e.to_string()))
}

/// Logits of the next token after `ids` (to compare with mistral.rs step by step).
pub fn next_logits(model: &Llama, ids: &[u32]) -> Result<Vec<f32>, TrainError> {
    let input = Tensor::new(ids, &Device::Cpu)?.unsqueeze(0)?;
    let logits = model.forward(&input, Mode::Infer)?;
    Ok(logits.i((0, ids.len() - 1))?.to_vec1::<f32>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tiny_model_learns_a_pattern() {
        let records: Vec<String> = (0..64).map(|i| format!("a{} b{}", i % 4, i % 4)).collect();
        let spec = serde_json::json!({
            "version": "1.0", "added_tokens": [], "normalizer": null, "post_processor": null,
            "truncation": null, "padding": null,
            "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "."}, "behavior": "Isolated", "invert": false},
            "decoder": {"type": "Fuse"},
            "model": {"type": "WordLevel", "unk_token": "<unk>", "vocab": {
                "<s>": 0, "</s>": 1, "<unk>": 2, "<pad>": 3, "a": 4, "b": 5, " ": 6, "0": 7, "1": 8, "2": 9, "3": 10}}
        });
        let tokenizer: Tokenizer = spec.to_string().parse().unwrap();
        let options = TrainOptions {
            hidden: 32,
            layers: 1,
            heads: 2,
            steps: 150,
            batch: 16,
            learning_rate: 1e-2,
            seed: 3,
        };
        let trained = train(&records, &records[..8], tokenizer, &options, &|_, _| {}).unwrap();
        assert!(
            trained.report.final_loss < 0.8,
            "loss {}",
            trained.report.final_loss
        );
        let dir = tempfile::tempdir().unwrap();
        trained.save(dir.path(), serde_json::json!({})).unwrap();
        let (model, tokenizer) = load(dir.path()).unwrap();
        // After "a2 b" the only continuation seen is "2".
        let text = greedy_text(&model, &tokenizer, "a2 b", 4).unwrap();
        assert!(text.starts_with('2'), "{text}");
        // Training twice with the same seed gives the same model.
        let again = train(
            &records,
            &records[..8],
            trained.tokenizer.clone(),
            &options,
            &|_, _| {},
        )
        .unwrap();
        assert_eq!(again.report.final_loss, trained.report.final_loss);
    }
}
