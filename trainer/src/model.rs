//! A small Llama-architecture causal language model in candle, with the weight names and
//! the arithmetic of mistral.rs's Llama: pre-norm blocks (RMSNorm), rotary position
//! embeddings in the GPT-NeoX layout (`rotate_half`), grouped-query attention, and a
//! SwiGLU feed-forward layer.  Training uses candle's differentiable operations; inference
//! uses the fused ones mistral.rs uses, so that both give the same greedy decoding.

use candle_core::{D, DType, Device, IndexOp, Module, Result, Tensor};
use candle_nn::{Embedding, Linear, RmsNorm, VarBuilder, embedding, linear_no_bias, rms_norm};
use serde::{Deserialize, Serialize};

/// The model's shape, written as `config.json` in the Hugging Face Llama format.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    pub architectures: Vec<String>,
    pub model_type: String,
    pub hidden_act: String,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub vocab_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f32,
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
    pub bos_token_id: u32,
    pub eos_token_id: u32,
    pub pad_token_id: u32,
    pub torch_dtype: String,
}

impl LlamaConfig {
    /// A small model: `hidden` wide, `layers` deep, with `heads` attention heads.
    pub fn small(
        vocab_size: usize,
        hidden: usize,
        layers: usize,
        heads: usize,
        max_len: usize,
    ) -> LlamaConfig {
        LlamaConfig {
            architectures: vec!["LlamaForCausalLM".into()],
            model_type: "llama".into(),
            hidden_act: "silu".into(),
            hidden_size: hidden,
            intermediate_size: hidden * 4,
            vocab_size,
            num_hidden_layers: layers,
            num_attention_heads: heads,
            num_key_value_heads: heads,
            rms_norm_eps: 1e-5,
            rope_theta: 10_000.0,
            max_position_embeddings: max_len,
            tie_word_embeddings: false,
            bos_token_id: 0,
            eos_token_id: 1,
            pad_token_id: 3,
            torch_dtype: "float32".into(),
        }
    }

    fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

/// Whether a forward pass trains (differentiable operations) or infers (fused ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Train,
    Infer,
}

#[derive(Debug)]
struct Block {
    input_norm: RmsNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    post_norm: RmsNorm,
    gate: Linear,
    up: Linear,
    down: Linear,
}

/// The model.
#[derive(Debug)]
pub struct Llama {
    config: LlamaConfig,
    embed: Embedding,
    blocks: Vec<Block>,
    norm: RmsNorm,
    lm_head: Linear,
    cos: Tensor,
    sin: Tensor,
}

fn norm(x: &Tensor, n: &RmsNorm, eps: f64, mode: Mode) -> Result<Tensor> {
    match mode {
        Mode::Infer => n.forward(x),
        Mode::Train => {
            candle_nn::ops::rms_norm_slow(x, n.clone().into_inner().weight(), eps as f32)
        }
    }
}

impl Llama {
    /// Builds the model over the variables of `vb` (new ones are initialised).
    pub fn new(config: &LlamaConfig, vb: VarBuilder) -> Result<Llama> {
        let h = config.hidden_size;
        let kv = config.num_key_value_heads * config.head_dim();
        let m = vb.pp("model");
        let embed = embedding(config.vocab_size, h, m.pp("embed_tokens"))?;
        let mut blocks = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let b = m.pp(format!("layers.{i}"));
            let attn = b.pp("self_attn");
            let mlp = b.pp("mlp");
            blocks.push(Block {
                input_norm: rms_norm(h, config.rms_norm_eps, b.pp("input_layernorm"))?,
                q: linear_no_bias(h, h, attn.pp("q_proj"))?,
                k: linear_no_bias(h, kv, attn.pp("k_proj"))?,
                v: linear_no_bias(h, kv, attn.pp("v_proj"))?,
                o: linear_no_bias(h, h, attn.pp("o_proj"))?,
                post_norm: rms_norm(h, config.rms_norm_eps, b.pp("post_attention_layernorm"))?,
                gate: linear_no_bias(h, config.intermediate_size, mlp.pp("gate_proj"))?,
                up: linear_no_bias(h, config.intermediate_size, mlp.pp("up_proj"))?,
                down: linear_no_bias(config.intermediate_size, h, mlp.pp("down_proj"))?,
            });
        }
        let norm = rms_norm(h, config.rms_norm_eps, m.pp("norm"))?;
        let lm_head = linear_no_bias(h, config.vocab_size, vb.pp("lm_head"))?;
        let (cos, sin) = rope_tables(config, vb.device())?;
        Ok(Llama {
            config: config.clone(),
            embed,
            blocks,
            norm,
            lm_head,
            cos,
            sin,
        })
    }

    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// Logits `[batch, time, vocab]` for token ids `[batch, time]`, attending causally.
    pub fn forward(&self, ids: &Tensor, mode: Mode) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let c = &self.config;
        let (nh, nkv, hd) = (c.num_attention_heads, c.num_key_value_heads, c.head_dim());
        let mask = causal_mask(t, ids.device())?;
        let (cos, sin) = (self.cos.narrow(0, 0, t)?, self.sin.narrow(0, 0, t)?);
        let scale = 1.0 / (hd as f64).sqrt();
        let mut x = self.embed.forward(ids)?;
        for blk in &self.blocks {
            let h = norm(&x, &blk.input_norm, c.rms_norm_eps, mode)?;
            let heads = |l: &Linear, n: usize| -> Result<Tensor> {
                l.forward(&h)?
                    .reshape((b, t, n, hd))?
                    .transpose(1, 2)?
                    .contiguous()
            };
            let (q, k, v) = (heads(&blk.q, nh)?, heads(&blk.k, nkv)?, heads(&blk.v, nkv)?);
            let (q, k) = match mode {
                Mode::Infer => (
                    candle_nn::rotary_emb::rope(&q, &cos, &sin)?,
                    candle_nn::rotary_emb::rope(&k, &cos, &sin)?,
                ),
                Mode::Train => (
                    candle_nn::rotary_emb::rope_slow(&q, &cos, &sin)?,
                    candle_nn::rotary_emb::rope_slow(&k, &cos, &sin)?,
                ),
            };
            let (k, v) = (repeat_kv(k, nh / nkv)?, repeat_kv(v, nh / nkv)?);
            let att = (q.matmul(&k.t()?)? * scale)?.broadcast_add(&mask)?;
            let att = match mode {
                Mode::Infer => candle_nn::ops::softmax_last_dim(&att)?,
                Mode::Train => candle_nn::ops::softmax(&att, D::Minus1)?,
            };
            let y =
                att.matmul(&v.contiguous()?)?
                    .transpose(1, 2)?
                    .reshape((b, t, c.hidden_size))?;
            x = (x + blk.o.forward(&y)?)?;
            let h = norm(&x, &blk.post_norm, c.rms_norm_eps, mode)?;
            let ff = (candle_nn::ops::silu(&blk.gate.forward(&h)?)? * blk.up.forward(&h)?)?;
            x = (x + blk.down.forward(&ff)?)?;
        }
        self.lm_head
            .forward(&norm(&x, &self.norm, c.rms_norm_eps, mode)?)
    }

    /// Greedy continuation of `prompt` until `eos` or `max_new` tokens (no cache: each
    /// step runs the whole sequence, which is fine for the small models here).
    pub fn greedy(
        &self,
        prompt: &[u32],
        eos: u32,
        max_new: usize,
        device: &Device,
    ) -> Result<Vec<u32>> {
        let mut ids = prompt.to_vec();
        for _ in 0..max_new {
            if ids.len() >= self.config.max_position_embeddings {
                break;
            }
            let input = Tensor::new(ids.as_slice(), device)?.unsqueeze(0)?;
            let logits = self.forward(&input, Mode::Infer)?;
            let last = logits.i((0, ids.len() - 1))?;
            let next = last.argmax(D::Minus1)?.to_scalar::<u32>()?;
            ids.push(next);
            if next == eos {
                break;
            }
        }
        Ok(ids[prompt.len()..].to_vec())
    }
}

fn rope_tables(c: &LlamaConfig, device: &Device) -> Result<(Tensor, Tensor)> {
    let hd = c.head_dim();
    let inv: Vec<f32> = (0..hd)
        .step_by(2)
        .map(|i| 1f32 / c.rope_theta.powf(i as f32 / hd as f32))
        .collect();
    let n = inv.len();
    let inv = Tensor::from_vec(inv, (1, n), device)?;
    let t = Tensor::arange(0u32, c.max_position_embeddings as u32, device)?
        .to_dtype(DType::F32)?
        .reshape((c.max_position_embeddings, 1))?;
    let freqs = t.matmul(&inv)?;
    Ok((freqs.cos()?, freqs.sin()?))
}

fn causal_mask(t: usize, device: &Device) -> Result<Tensor> {
    let mask: Vec<f32> = (0..t)
        .flat_map(|i| (0..t).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Tensor::from_vec(mask, (t, t), device)
}

fn repeat_kv(x: Tensor, n: usize) -> Result<Tensor> {
    if n == 1 {
        return Ok(x);
    }
    let (b, h, t, d) = x.dims4()?;
    x.unsqueeze(2)?
        .expand((b, h, n, t, d))?
        .reshape((b, h * n, t, d))
}
