//! The logits processor mistral.rs calls at every decoding step.
//!
//! mistral.rs calls [`CustomLogitsProcessor::apply`] once per step and sequence, from
//! rayon threads, sometimes twice in one step, and shares one processor between the
//! choices of a request.  So [`RecordProcessor`] keeps no state between calls: it turns
//! the context (prompt and generated ids) back into the record's text, asks the
//! [`Enforcer`] which tokens may follow, and picks the next token itself, with a
//! generator seeded by the request's seed and the context, so that a seed reproduces a
//! record whatever thread runs the step.  It answers with every logit at −∞ but the
//! chosen token's, which any sampler then takes.
//!
//! It never returns an error: a failure (the solver giving up, a dead end that exact
//! allowed sets should rule out) is written into the request's [`Outcome`], and only
//! end-of-sequence is allowed from then on, so that the server can answer that request
//! with an error naming the cause while other requests go on.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use candle_core::{DType, Tensor};
use mistralrs_core::CustomLogitsProcessor;
use tokenizers::Tokenizer;

use crate::engine::{Enforcer, State, TextError, Vocab};

/// The text of every token of `tokenizer`; special tokens have none.  `eos` names the
/// end-of-sequence tokens.
pub fn vocab_of(tokenizer: &Tokenizer, eos: &[u32]) -> Vocab {
    let size = tokenizer.get_vocab_size(true);
    let special: std::collections::HashSet<u32> = tokenizer
        .get_added_tokens_decoder()
        .iter()
        .filter(|(_, t)| t.special)
        .map(|(id, _)| *id)
        .collect();
    let texts = (0..size as u32)
        .map(|id| {
            if special.contains(&id) {
                return None;
            }
            tokenizer
                .decode(&[id], false)
                .ok()
                .filter(|t| !t.is_empty())
        })
        .collect();
    Vocab {
        texts,
        eos: eos.to_vec(),
    }
}

/// How the next token is drawn among the allowed ones.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampling {
    /// `None` or zero: the most likely allowed token.
    pub temperature: Option<f64>,
    /// Nucleus sampling: keep the most likely tokens up to this much probability.
    pub top_p: Option<f64>,
    pub seed: u64,
}

/// What happened to one request's generation that the response must tell.
#[derive(Debug, Default)]
pub struct Outcome {
    failure: OnceLock<String>,
    /// The longest sequence so far: the context and the token chosen after it.
    tokens: Mutex<Vec<u32>>,
}

impl Outcome {
    /// Why enforcement failed, if it did.
    pub fn failure(&self) -> Option<&str> {
        self.failure.get().map(String::as_str)
    }

    fn fail(&self, why: String) {
        let _ = self.failure.set(why);
    }

    /// The record's whole text as the tokens chosen wrote it, prompt included (the text
    /// a server returns may differ in whitespace); end-of-sequence writes nothing.
    pub fn text(&self, vocab: &Vocab) -> String {
        let tokens = self.tokens.lock().map(|t| t.clone()).unwrap_or_default();
        text_of(vocab, &tokens)
    }

    fn wrote(&self, context: &[u32], chosen: u32) {
        if let Ok(mut t) = self.tokens.lock()
            && context.len() >= t.len()
        {
            t.clear();
            t.extend_from_slice(context);
            t.push(chosen);
        }
    }
}

/// Upper bounds (µs) of the mask-time histogram's buckets; the last is unbounded.
pub const MASK_BUCKETS_US: [f64; 10] = [5.0, 10.0, 25.0, 50.0, 100.0, 200.0, 500.0, 1e3, 5e3, 2e4];

/// Counters shared by all processors of a server.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Steps that computed a mask.
    pub masked_steps: AtomicU64,
    /// Tokens masked out, summed over steps.
    pub masked_tokens: AtomicU64,
    /// Requests stopped by a failure inside the processor.
    pub forced_stops: AtomicU64,
    /// Mask time: counts per bucket of [`MASK_BUCKETS_US`], then the overflow bucket.
    pub mask_time: [AtomicU64; MASK_BUCKETS_US.len() + 1],
    /// Mask time, summed, in nanoseconds.
    pub mask_time_ns: AtomicU64,
}

impl Metrics {
    fn observe(&self, micros: f64, masked: usize) {
        self.masked_steps.fetch_add(1, Ordering::Relaxed);
        self.masked_tokens
            .fetch_add(masked as u64, Ordering::Relaxed);
        self.mask_time_ns
            .fetch_add((micros * 1e3) as u64, Ordering::Relaxed);
        let bucket = MASK_BUCKETS_US
            .iter()
            .position(|b| micros <= *b)
            .unwrap_or(MASK_BUCKETS_US.len());
        self.mask_time[bucket].fetch_add(1, Ordering::Relaxed);
    }
}

/// The processor of one generated record.
pub struct RecordProcessor {
    /// `None`: no pack, the model alone (seeded sampling only).
    enforcer: Option<Arc<Enforcer>>,
    vocab: Arc<Vocab>,
    /// The prompt's ids: mistral.rs may pass only part of the prompt on the first step.
    prompt: Arc<[u32]>,
    sampling: Sampling,
    outcome: Arc<Outcome>,
    metrics: Arc<Metrics>,
    /// Mask times of this processor's steps (µs), when the caller wants them.
    trace: Option<Arc<Mutex<Vec<f64>>>>,
    /// The state after the last context seen, so that a step parses only the new token.
    last: Mutex<Option<(Vec<u32>, State)>>,
}

impl std::fmt::Debug for RecordProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordProcessor")
            .field("pack", &self.enforcer.as_ref().map(|e| e.pack().id.clone()))
            .field("sampling", &self.sampling)
            .finish_non_exhaustive()
    }
}

impl RecordProcessor {
    pub fn new(
        enforcer: Option<Arc<Enforcer>>,
        vocab: Arc<Vocab>,
        prompt: &[u32],
        sampling: Sampling,
        outcome: Arc<Outcome>,
        metrics: Arc<Metrics>,
    ) -> RecordProcessor {
        RecordProcessor {
            enforcer,
            vocab,
            prompt: prompt.into(),
            sampling,
            outcome,
            metrics,
            trace: None,
            last: Mutex::new(None),
        }
    }

    /// Also keeps each step's mask time in `trace` (for benchmarks).
    pub fn with_trace(mut self, trace: Arc<Mutex<Vec<f64>>>) -> RecordProcessor {
        self.trace = Some(trace);
        self
    }

    /// The record's text so far: the texts of the context's ordinary tokens.
    pub fn text_of(&self, context: &[u32]) -> String {
        text_of(&self.vocab, context)
    }

    /// The parse state after `context`, from the last state seen when the context
    /// extends it (the usual case: one more token).
    fn state_after(&self, enforcer: &Enforcer, context: &[u32]) -> Result<State, TextError> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let st = match last.as_ref() {
            Some((ids, st)) if context.starts_with(ids) => {
                enforcer.extend(st, &self.text_of(&context[ids.len()..]))?
            }
            _ => enforcer.parse(&self.text_of(context))?,
        };
        *last = Some((context.to_vec(), st.clone()));
        Ok(st)
    }

    /// The whole sequence so far.  On the first step after a prefix-cache hit mistral.rs
    /// passes only the prompt's uncached tail; the prompt is known, so it is restored.
    fn whole<'c>(&'c self, context: &'c [u32]) -> &'c [u32] {
        if !context.starts_with(&self.prompt) && self.prompt.ends_with(context) {
            &self.prompt
        } else {
            context
        }
    }

    /// The next token after `context`, given the model's `logits`.
    pub fn choose(&self, logits: &[f32], context: &[u32]) -> u32 {
        let context = self.whole(context);
        let chosen = self.choose_in(logits, context);
        self.outcome.wrote(context, chosen);
        chosen
    }

    fn choose_in(&self, logits: &[f32], context: &[u32]) -> u32 {
        if self.outcome.failure().is_some() {
            return self.eos();
        }
        let allowed: Vec<u32> = match &self.enforcer {
            None => (0..logits.len() as u32).collect(),
            Some(enforcer) => {
                let started = Instant::now();
                let mask = match self
                    .state_after(enforcer, context)
                    .and_then(|st| Ok(enforcer.mask_after(&st, &self.vocab)?))
                {
                    Ok(mask) => mask,
                    Err(e) => {
                        let text = self.text_of(context);
                        return self.stop(format!("enforcement failed after `{text}`: {e}"));
                    }
                };
                let allowed: Vec<u32> = (0..mask.len().min(logits.len()))
                    .filter(|&i| mask[i])
                    .map(|i| i as u32)
                    .collect();
                let micros = started.elapsed().as_secs_f64() * 1e6;
                self.metrics.observe(micros, logits.len() - allowed.len());
                if let Some(trace) = &self.trace
                    && let Ok(mut t) = trace.lock()
                {
                    t.push(micros);
                }
                if allowed.is_empty() {
                    let text = self.text_of(context);
                    return self.stop(format!("no token may follow `{text}`"));
                }
                allowed
            }
        };
        self.draw(logits, &allowed, context)
    }

    fn eos(&self) -> u32 {
        self.vocab.eos.first().copied().unwrap_or(0)
    }

    fn stop(&self, why: String) -> u32 {
        if self.outcome.failure().is_none() {
            self.metrics.forced_stops.fetch_add(1, Ordering::Relaxed);
        }
        tracing::warn!("{why}");
        self.outcome.fail(why);
        self.eos()
    }

    /// Draws among `allowed` (not empty) by the logits, the temperature and top-p.
    fn draw(&self, logits: &[f32], allowed: &[u32], context: &[u32]) -> u32 {
        let score = |id: u32| {
            let l = logits[id as usize];
            if l.is_nan() { f32::NEG_INFINITY } else { l }
        };
        let best = allowed
            .iter()
            .copied()
            .max_by(|a, b| score(*a).total_cmp(&score(*b)).then(b.cmp(a)))
            .unwrap_or(allowed[0]);
        let t = match self.sampling.temperature {
            Some(t) if t > 0.0 && score(best).is_finite() => t,
            _ => return best,
        };
        let top = f64::from(score(best));
        let mut weighted: Vec<(u32, f64)> = allowed
            .iter()
            .map(|&id| (id, ((f64::from(score(id)) - top) / t).exp()))
            .filter(|(_, w)| *w > 0.0)
            .collect();
        weighted.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let total: f64 = weighted.iter().map(|(_, w)| w).sum();
        if let Some(p) = self.sampling.top_p.filter(|p| *p > 0.0 && *p < 1.0) {
            let mut acc = 0.0;
            let keep = weighted
                .iter()
                .position(|(_, w)| {
                    acc += w / total;
                    acc >= p
                })
                .map_or(weighted.len(), |i| i + 1);
            weighted.truncate(keep);
        }
        let total: f64 = weighted.iter().map(|(_, w)| w).sum();
        let mut u = unit(mix(self.sampling.seed, context)) * total;
        for (id, w) in &weighted {
            if u < *w {
                return *id;
            }
            u -= w;
        }
        weighted.last().map_or(best, |(id, _)| *id)
    }

    /// The logits with every token but the chosen one at −∞.
    pub fn apply_to(&self, logits: &[f32], context: &[u32]) -> Vec<f32> {
        let chosen = self.choose(logits, context) as usize;
        let mut out = vec![f32::NEG_INFINITY; logits.len()];
        if let Some(slot) = out.get_mut(chosen) {
            let l = logits[chosen];
            *slot = if l.is_finite() { l } else { 0.0 };
        }
        out
    }
}

impl CustomLogitsProcessor for RecordProcessor {
    fn apply(&self, logits: &Tensor, context: &[u32]) -> candle_core::Result<Tensor> {
        let values = match logits.to_dtype(DType::F32).and_then(|l| l.to_vec1::<f32>()) {
            Ok(v) => v,
            Err(e) => {
                self.stop(format!("the logits could not be read: {e}"));
                return Ok(logits.clone());
            }
        };
        let out = self.apply_to(&values, context);
        let n = out.len();
        match Tensor::from_vec(out, n, logits.device()).and_then(|t| t.to_dtype(logits.dtype())) {
            Ok(t) => Ok(t),
            Err(e) => {
                self.stop(format!("the mask could not be written: {e}"));
                Ok(logits.clone())
            }
        }
    }
}

/// The texts of the ordinary tokens among `ids`, concatenated.
fn text_of(vocab: &Vocab, ids: &[u32]) -> String {
    let mut text = String::new();
    for &id in ids {
        if let Some(Some(t)) = vocab.texts.get(id as usize) {
            text.push_str(t);
        }
    }
    text
}

/// A 64-bit hash of the seed and the context (splitmix64 steps).
fn mix(seed: u64, context: &[u32]) -> u64 {
    let step = |mut z: u64| {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut h = step(seed);
    for &id in context {
        h = step(h ^ u64::from(id));
    }
    h
}

/// Uniform in [0, 1) from 53 bits.
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}
