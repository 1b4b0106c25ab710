//! Generation requests: parsing an OpenAI-style body with our extra fields, running each
//! choice in mistral.rs with a [`RecordProcessor`], and shaping the answer.
//!
//! Each choice is its own mistral.rs request (with seed `seed + i`), because the
//! processor draws tokens itself from a generator seeded by the seed and the context:
//! choices that shared a processor and a seed would all write the same record.

use std::sync::Arc;

use axum::http::StatusCode;
use mistralrs_core::{
    Constraint, NormalRequest, Request, RequestMessage, Response, SamplingParams,
};
use mistralrs_server_core::handler_core::{create_response_channel, send_request_with_model};
use plugin::engine::Enforcer;
use plugin::processor::{Outcome, RecordProcessor, Sampling};
use rulepacks::{Domain, Value};
use serde_json::{Value as Json, json};
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::models::ServedModel;
use crate::packs::LoadedPack;
use crate::state::App;

/// Which endpoint a request came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Chat,
    Completions,
}

impl Endpoint {
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Chat => "chat_completions",
            Endpoint::Completions => "completions",
        }
    }
}

/// A generation request, checked.
pub struct GenRequest {
    pub endpoint: Endpoint,
    pub model: Arc<ServedModel>,
    /// The record prefix the client gave.
    pub prompt: String,
    pub prompt_ids: Vec<u32>,
    pub pack: Option<Arc<LoadedPack>>,
    pub enforcer: Option<Arc<Enforcer>>,
    pub n: usize,
    pub max_tokens: usize,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub seed: u64,
    pub stream: bool,
    pub include_usage: bool,
}

impl std::fmt::Debug for GenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenRequest")
            .field("model", &self.model.id)
            .field("pack", &self.pack.as_ref().map(|p| p.id()))
            .field("prompt", &self.prompt)
            .field("n", &self.n)
            .finish_non_exhaustive()
    }
}

fn number(body: &Json, key: &str) -> Result<Option<f64>, ApiError> {
    match body.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| ApiError::bad(key, format!("`{key}` must be a number, not {v}"))),
    }
}

fn whole(body: &Json, key: &str) -> Result<Option<u64>, ApiError> {
    match body.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            ApiError::bad(key, format!("`{key}` must be a whole number ≥ 0, not {v}"))
        }),
    }
}

/// The text of a chat message's content (a string, or parts of type `text`).
fn content_text(content: &Json) -> Option<String> {
    match content {
        Json::String(s) => Some(s.clone()),
        Json::Array(parts) => {
            let mut text = String::new();
            for p in parts {
                if p.get("type").and_then(Json::as_str) != Some("text") {
                    return None;
                }
                text.push_str(p.get("text").and_then(Json::as_str)?);
            }
            Some(text)
        }
        Json::Null => Some(String::new()),
        _ => None,
    }
}

/// The record prefix of a request: the last user message (chat) or the prompt.
fn prompt_of(body: &Json, endpoint: Endpoint) -> Result<String, ApiError> {
    match endpoint {
        Endpoint::Chat => {
            let Some(messages) = body.get("messages").and_then(Json::as_array) else {
                return Err(ApiError::bad(
                    "messages",
                    "`messages` must be a list of messages; the last user message holds the record prefix (it may be empty)",
                ));
            };
            let last = messages
                .iter()
                .rev()
                .find(|m| m.get("role").and_then(Json::as_str) == Some("user"));
            match last {
                None => Err(ApiError::bad(
                    "messages",
                    "no message with role `user`: its content is the record prefix (it may be empty)",
                )),
                Some(m) => content_text(m.get("content").unwrap_or(&Json::Null)).ok_or_else(|| {
                    ApiError::bad(
                        "messages",
                        "a user message's content must be text (a string or parts of type `text`)",
                    )
                }),
            }
        }
        Endpoint::Completions => match body.get("prompt") {
            None | Some(Json::Null) => Ok(String::new()),
            Some(Json::String(s)) => Ok(s.clone()),
            Some(Json::Array(a)) if a.len() == 1 && a[0].is_string() => {
                Ok(a[0].as_str().unwrap_or_default().to_owned())
            }
            Some(_) => Err(ApiError::bad(
                "prompt",
                "`prompt` must be one string (the record prefix)",
            )),
        },
    }
}

/// The value of `field` given as JSON, read the way the record text spells it.
fn field_value(pack: &LoadedPack, name: &str, raw: &Json) -> Result<(String, Value), ApiError> {
    let format = &pack.compiled.format;
    let param = format!("fields.{name}");
    let Some(slot) = format.slot_of(name) else {
        let known: Vec<&str> = format.names();
        return Err(ApiError::bad(
            &param,
            format!(
                "`{name}` is not a field of pack {} (its fields: {})",
                pack.id(),
                known.join(", ")
            ),
        ));
    };
    let text = match raw {
        Json::String(s) => s.clone(),
        Json::Number(n) => n.to_string(),
        Json::Bool(b) => b.to_string(),
        other => {
            return Err(ApiError::bad(
                &param,
                format!("`{name}`: {other} is not a value (give a string or a number)"),
            ));
        }
    };
    let value = format.parse_value(slot, &text).map_err(|e| {
        ApiError::bad(
            &param,
            format!(
                "`{name}`: `{text}` is not a value of this field: {}",
                e.message
            ),
        )
    })?;
    Ok((name.to_owned(), value))
}

/// Checks a request body and resolves its model and pack.
pub fn parse(app: &App, body: &Json, endpoint: Endpoint) -> Result<GenRequest, ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad("", "the request body must be a JSON object"));
    }
    let model = match body.get("model") {
        None | Some(Json::Null) => app.models[0].clone(),
        Some(Json::String(id)) if id == "default" => app.models[0].clone(),
        Some(Json::String(id)) => app.model(id).ok_or_else(|| {
            ApiError::not_found(
                "model",
                "model_not_found",
                format!(
                    "no model `{id}`; this server has {}",
                    app.models
                        .iter()
                        .map(|m| format!("`{}`", m.id))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?,
        Some(other) => {
            return Err(ApiError::bad(
                "model",
                format!("`model` must be a string, not {other}"),
            ));
        }
    };
    for (key, what) in [
        ("tools", "tools"),
        ("functions", "function calling"),
        ("grammar", "grammars (a rule pack constrains the output)"),
    ] {
        if body
            .get(key)
            .is_some_and(|v| !v.is_null() && v != &json!([]))
        {
            return Err(ApiError::bad(
                key,
                format!("this server does not support {what}"),
            ));
        }
    }
    if body.get("logprobs").and_then(Json::as_bool) == Some(true)
        || body.get("logprobs").is_some_and(Json::is_number)
    {
        return Err(ApiError::bad(
            "logprobs",
            "this server does not return log probabilities",
        ));
    }
    if let Some(rf) = body.get("response_format")
        && !rf.is_null()
        && rf.get("type").and_then(Json::as_str) != Some("text")
    {
        return Err(ApiError::bad(
            "response_format",
            "only `{\"type\": \"text\"}` is supported: records are text, constrained by the rule pack",
        ));
    }
    let limits = &app.config.limits;
    let n = whole(body, "n")?.unwrap_or(1) as usize;
    if n == 0 || n > limits.max_n {
        return Err(ApiError::bad(
            "n",
            format!("`n` must be between 1 and {}", limits.max_n),
        ));
    }
    let asked_tokens = whole(body, "max_completion_tokens")?
        .or(whole(body, "max_tokens")?)
        .map(|m| m as usize);
    let max_tokens = asked_tokens.unwrap_or(limits.max_tokens);
    if max_tokens == 0 || max_tokens > limits.max_tokens {
        return Err(ApiError::bad(
            "max_tokens",
            format!("`max_tokens` must be between 1 and {}", limits.max_tokens),
        ));
    }
    // As in OpenAI's API, sampling at temperature 1 unless the request says otherwise
    // (0: greedy).
    let temperature = number(body, "temperature")?.or(Some(1.0));
    if let Some(t) = temperature
        && !(0.0..=2.0).contains(&t)
    {
        return Err(ApiError::bad(
            "temperature",
            "`temperature` must be between 0 and 2",
        ));
    }
    let top_p = number(body, "top_p")?;
    if let Some(p) = top_p
        && !(p > 0.0 && p <= 1.0)
    {
        return Err(ApiError::bad("top_p", "`top_p` must be in (0, 1]"));
    }
    let seed = match body.get("seed") {
        None | Some(Json::Null) => rand_seed(),
        Some(v) => match (v.as_u64(), v.as_i64()) {
            (Some(s), _) => s,
            (None, Some(s)) => s as u64,
            _ => {
                return Err(ApiError::bad(
                    "seed",
                    format!("`seed` must be an integer, not {v}"),
                ));
            }
        },
    };
    let stream = match body.get("stream") {
        None | Some(Json::Null) => false,
        Some(Json::Bool(b)) => *b,
        Some(v) => {
            return Err(ApiError::bad(
                "stream",
                format!("`stream` must be true or false, not {v}"),
            ));
        }
    };
    let include_usage = body
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Json::as_bool)
        .unwrap_or(false);
    let prompt = prompt_of(body, endpoint)?;
    let pack = match body.get("rulepack") {
        None | Some(Json::Null) => None,
        Some(Json::String(spec)) => Some(
            app.packs
                .resolve(spec)
                .ok_or_else(|| unknown_pack(app, spec))?,
        ),
        Some(other) => {
            return Err(ApiError::bad(
                "rulepack",
                format!(
                    "`rulepack` must be a string such as \"name\" or \"name@1.2.0\", not {other}"
                ),
            ));
        }
    };
    let fields = body.get("fields").filter(|f| !f.is_null());
    let enforcer = match (&pack, fields) {
        (None, Some(_)) => {
            return Err(ApiError::bad(
                "fields",
                "`fields` needs a `rulepack`: the pack's schema says what the fields are",
            ));
        }
        (None, None) => None,
        (Some(pack), fields) => {
            let names: Vec<String> = pack
                .compiled
                .format
                .slots()
                .iter()
                .map(|s| s.name.clone())
                .collect();
            model
                .check_fields(&pack.id(), &names)
                .map_err(|m| ApiError::bad("rulepack", m))?;
            let mut fixed = Vec::new();
            if let Some(fields) = fields {
                let Some(obj) = fields.as_object() else {
                    return Err(ApiError::bad(
                        "fields",
                        "`fields` must be an object of field names and values",
                    ));
                };
                for (name, raw) in obj {
                    fixed.push(field_value(pack, name, raw)?);
                }
            }
            let enforcer = Enforcer::new(pack.compiled.clone(), &fixed).map_err(|m| {
                let param = fixed
                    .iter()
                    .find(|(name, _)| m.starts_with(&format!("`{name}`")))
                    .map_or("fields".to_owned(), |(name, _)| format!("fields.{name}"));
                ApiError::bad(&param, m)
            })?;
            Some(Arc::new(enforcer))
        }
    };
    if let Some(enforcer) = &enforcer {
        enforcer.parse(&prompt).map_err(|e| {
            ApiError::bad(
                if endpoint == Endpoint::Chat {
                    "messages"
                } else {
                    "prompt"
                },
                format!("the record prefix `{prompt}` cannot start a record of the pack: {e}"),
            )
        })?;
    }
    let prompt_ids = model.prompt_ids(&prompt).map_err(|m| {
        ApiError::bad(
            if endpoint == Endpoint::Chat {
                "messages"
            } else {
                "prompt"
            },
            m,
        )
    })?;
    // Without an explicit limit, generation may run to the end of the model's context.
    let max_tokens = match asked_tokens {
        None => max_tokens.min(model.max_len.saturating_sub(prompt_ids.len()).max(1)),
        Some(_) => max_tokens,
    };
    if prompt_ids.len() + max_tokens > model.max_len {
        return Err(ApiError::bad(
            "max_tokens",
            format!(
                "the prompt ({} tokens) and max_tokens ({max_tokens}) exceed model `{}`'s context of {} tokens",
                prompt_ids.len(),
                model.id,
                model.max_len
            ),
        ));
    }
    Ok(GenRequest {
        endpoint,
        model,
        prompt,
        prompt_ids,
        pack,
        enforcer,
        n,
        max_tokens,
        temperature,
        top_p,
        seed,
        stream,
        include_usage,
    })
}

/// 404 for a pack name that resolves to nothing, listing what there is.
pub fn unknown_pack(app: &App, spec: &str) -> ApiError {
    let ids = app.packs.ids();
    let available = if ids.is_empty() {
        "none".to_owned()
    } else {
        ids.join(", ")
    };
    ApiError::not_found(
        "rulepack",
        "rulepack_not_found",
        format!("no rule pack `{spec}`; available: {available}"),
    )
}

fn rand_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.finish()
}

/// One choice, generated.
#[derive(Clone, Debug)]
pub struct ChoiceResult {
    pub index: usize,
    pub text: String,
    pub finish_reason: String,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    /// The whole record as typed JSON; `None` without a pack or when it is not complete.
    pub record: Option<Json>,
}

/// A piece of a streamed answer.
#[derive(Debug)]
pub enum Piece {
    Text { index: usize, text: String },
    Done(ChoiceResult),
    Failed(ApiError),
}

/// The record in `text` as a JSON object of typed values.
pub fn record_json(enforcer: &Enforcer, text: &str) -> Option<Json> {
    let values = enforcer.read(text).ok()?;
    let pack = enforcer.pack();
    let mut out = serde_json::Map::new();
    for (field, value) in pack.schema.fields().iter().zip(values) {
        let Some(value) = value else { continue };
        let json = match &field.domain {
            Domain::Categorical { values } => values
                .iter()
                .find(|c| c.value.same(&value))
                .and_then(|c| c.label.clone())
                .map(Json::String)
                .unwrap_or_else(|| serde_json::to_value(&value).unwrap_or(Json::Null)),
            _ => serde_json::to_value(&value).unwrap_or(Json::Null),
        };
        out.insert(field.name.clone(), json);
    }
    Some(Json::Object(out))
}

/// Runs choice `index` of `req`; with `pieces`, streams its text there as it comes.
pub async fn run_choice(
    app: &App,
    req: &GenRequest,
    index: usize,
    pieces: Option<mpsc::Sender<Piece>>,
) -> Result<ChoiceResult, ApiError> {
    let outcome = Arc::new(Outcome::default());
    let processor = RecordProcessor::new(
        req.enforcer.clone(),
        req.model.vocab.clone(),
        &req.prompt_ids,
        Sampling {
            temperature: req.temperature,
            top_p: req.top_p,
            seed: req.seed.wrapping_add(index as u64),
        },
        outcome.clone(),
        app.metrics.mask.clone(),
    );
    let (tx, mut rx) = create_response_channel(None);
    let request = Request::Normal(Box::new(NormalRequest {
        messages: RequestMessage::CompletionTokens(req.prompt_ids.clone()),
        sampling_params: SamplingParams {
            temperature: None,
            top_k: None,
            top_p: None,
            min_p: None,
            top_n_logprobs: 0,
            frequency_penalty: None,
            presence_penalty: None,
            repetition_penalty: None,
            stop_toks: None,
            max_len: Some(req.max_tokens),
            logits_bias: None,
            n_choices: 1,
            dry_params: None,
        },
        response: tx,
        return_logprobs: false,
        is_streaming: pieces.is_some(),
        id: app.mistral.next_request_id(),
        constraint: Constraint::None,
        suffix: None,
        tools: None,
        tool_choice: None,
        logits_processors: Some(vec![Arc::new(processor)]),
        return_raw_logits: false,
        web_search_options: None,
        model_id: Some(req.model.id.clone()),
        truncate_sequence: false,
    }));
    send_request_with_model(&app.mistral, request, Some(&req.model.id))
        .await
        .map_err(|e| {
            ApiError::internal(format!(
                "model `{}` did not take the request: {e}",
                req.model.id
            ))
        })?;
    let mut text = String::new();
    let mut streamed_tokens = 0;
    let mut sent = 0;
    let (finish_reason, usage) = loop {
        let Some(response) = rx.recv().await else {
            return Err(ApiError::internal(format!(
                "model `{}` stopped without an answer",
                req.model.id
            )));
        };
        match response {
            Response::CompletionDone(r) => {
                let Some(choice) = r.choices.into_iter().next() else {
                    return Err(ApiError::internal("the model answered with no choice"));
                };
                text = choice.text;
                break (
                    choice.finish_reason,
                    Some((r.usage.prompt_tokens, r.usage.completion_tokens)),
                );
            }
            Response::CompletionChunk(chunk) => {
                let mut finish = None;
                for c in chunk.choices {
                    streamed_tokens += 1;
                    text.push_str(&c.text);
                    finish = finish.or(c.finish_reason);
                }
                // Stream what the processor saw chosen (exact whitespace), not the
                // detokenizer's pieces.
                if let Some(p) = &pieces
                    && outcome.failure().is_none()
                {
                    let whole = outcome.text(&req.model.vocab);
                    let generated = whole.get(req.prompt.len()..).unwrap_or_default();
                    if let Some(delta) = generated.get(sent..)
                        && !delta.is_empty()
                    {
                        sent = generated.len();
                        let piece = Piece::Text {
                            index,
                            text: delta.to_owned(),
                        };
                        let _ = p.send(piece).await;
                    }
                }
                if let Some(f) = finish {
                    break (f, None);
                }
            }
            Response::CompletionModelError(message, _) | Response::ModelError(message, _) => {
                // The first line: candle errors may carry a backtrace.
                let message = message.lines().next().unwrap_or_default();
                return Err(ApiError::internal(format!(
                    "model `{}` failed: {message}",
                    req.model.id
                )));
            }
            Response::InternalError(e) => {
                let e = e.to_string();
                let e = e.lines().next().unwrap_or_default();
                return Err(ApiError::internal(format!(
                    "model `{}` failed: {e}",
                    req.model.id
                )));
            }
            Response::ValidationError(e) => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("model `{}` refused the request: {e}", req.model.id),
                ));
            }
            _ => {
                return Err(ApiError::internal(
                    "the model answered in an unexpected form",
                ));
            }
        }
    };
    if let Some(why) = outcome.failure() {
        return Err(ApiError::internal(format!(
            "rule enforcement failed for choice {index}: {why}"
        )));
    }
    // The processor saw every token chosen; mistral.rs's detokenized text may drop
    // leading whitespace of the first piece.
    let whole = outcome.text(&req.model.vocab);
    let text = match whole.strip_prefix(req.prompt.as_str()) {
        Some(generated) if !whole.is_empty() => generated.to_owned(),
        _ => text.trim_end_matches("</s>").to_owned(),
    };
    let (prompt_tokens, completion_tokens) =
        usage.unwrap_or((req.prompt_ids.len(), streamed_tokens));
    let finish_reason = match finish_reason.as_str() {
        "eos" | "stop" => "stop".to_owned(),
        "length" => "length".to_owned(),
        other => other.to_owned(),
    };
    let record = req
        .enforcer
        .as_ref()
        .filter(|_| finish_reason == "stop")
        .and_then(|e| record_json(e, &format!("{}{text}", req.prompt)));
    Ok(ChoiceResult {
        index,
        text,
        finish_reason,
        prompt_tokens,
        completion_tokens,
        record,
    })
}
