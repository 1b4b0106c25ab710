//! The HTTP endpoints.  Ours come first; everything else goes to mistral.rs's router.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt;
use futures_util::stream::{self, Stream};
use serde_json::{Value as Json, json};
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::generate::{self, ChoiceResult, Endpoint, GenRequest, Piece};
use crate::packs::{LoadedPack, PackLoadError};
use crate::state::App;

/// Our routes in front of `fallback` (mistral.rs's own).
pub fn router(app: App, fallback: Router) -> Router {
    let limit = app.config.limits.max_body_bytes;
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/v1/models", get(models))
        .route("/v1/rulepacks", get(list_packs).post(upload_pack))
        .route("/v1/rulepacks/reload", post(reload_packs))
        .route("/v1/rulepacks/{spec}", get(fetch_pack))
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(app)
        .fallback_service(fallback)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn body_json(body: Result<Bytes, BytesRejection>) -> Result<Json, ApiError> {
    let bytes = body.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad("", format!("the request body is not JSON: {e}")))
}

async fn chat(State(app): State<App>, body: Result<Bytes, BytesRejection>) -> Response {
    generate(app, Endpoint::Chat, body).await
}

async fn completions(State(app): State<App>, body: Result<Bytes, BytesRejection>) -> Response {
    generate(app, Endpoint::Completions, body).await
}

/// Decrements the in-flight gauge when a request ends, however it ends.
struct InFlight(App);

impl InFlight {
    fn new(app: &App) -> InFlight {
        app.metrics.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(app.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn generate(app: App, endpoint: Endpoint, body: Result<Bytes, BytesRejection>) -> Response {
    let response = match generate_inner(app.clone(), endpoint, body).await {
        Ok(r) => r,
        Err(e) => {
            if e.status.is_server_error() {
                tracing::error!("{} request failed: {}", endpoint.name(), e.message);
            }
            e.into_response()
        }
    };
    app.metrics
        .request(endpoint.name(), response.status().as_u16());
    response
}

async fn generate_inner(
    app: App,
    endpoint: Endpoint,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body_json(body)?;
    let permit = app.slots.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "{} generation requests are running, the most this server allows at once; retry shortly",
                app.config.limits.concurrent_requests
            ),
        )
    })?;
    let parse_app = app.clone();
    // Checking fixed fields may call the solver: off the async threads.
    let req = tokio::task::spawn_blocking(move || generate::parse(&parse_app, &body, endpoint))
        .await
        .map_err(|e| ApiError::internal(format!("checking the request failed: {e}")))??;
    let req = Arc::new(req);
    let id = format!(
        "{}-{:016x}",
        if endpoint == Endpoint::Chat {
            "chatcmpl"
        } else {
            "cmpl"
        },
        req.seed ^ app.mistral.next_request_id() as u64
    );
    if req.stream {
        return Ok(stream_response(app, req, id, permit).into_response());
    }
    let in_flight = InFlight::new(&app);
    let runs = (0..req.n).map(|i| {
        let (app, req) = (app.clone(), req.clone());
        async move { generate::run_choice(&app, &req, i, None).await }
    });
    let results = futures_util::future::join_all(runs).await;
    drop((in_flight, permit));
    let results = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    count(&app, &results);
    Ok(axum::Json(whole_answer(&req, &id, &results)).into_response())
}

fn count(app: &App, results: &[ChoiceResult]) {
    let m = &app.metrics;
    if let Some(first) = results.first() {
        m.prompt_tokens
            .fetch_add(first.prompt_tokens as u64, Ordering::Relaxed);
    }
    for r in results {
        m.completion_tokens
            .fetch_add(r.completion_tokens as u64, Ordering::Relaxed);
        if r.finish_reason == "length" {
            m.truncated_records.fetch_add(1, Ordering::Relaxed);
        } else {
            m.records.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn usage(results: &[ChoiceResult]) -> Json {
    let prompt = results.first().map_or(0, |r| r.prompt_tokens);
    let completion: usize = results.iter().map(|r| r.completion_tokens).sum();
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

fn whole_answer(req: &GenRequest, id: &str, results: &[ChoiceResult]) -> Json {
    let choices: Vec<Json> = results
        .iter()
        .map(|r| match req.endpoint {
            Endpoint::Chat => json!({
                "index": r.index,
                "message": {"role": "assistant", "content": r.text},
                "finish_reason": r.finish_reason,
                "logprobs": null,
            }),
            Endpoint::Completions => json!({
                "index": r.index,
                "text": r.text,
                "finish_reason": r.finish_reason,
                "logprobs": null,
            }),
        })
        .collect();
    json!({
        "id": id,
        "object": if req.endpoint == Endpoint::Chat { "chat.completion" } else { "text_completion" },
        "created": now(),
        "model": req.model.id,
        "system_fingerprint": null,
        "choices": choices,
        "usage": usage(results),
        "rulepack": req.pack.as_ref().map(|p| p.id()),
        "records": results.iter().map(|r| r.record.clone()).collect::<Vec<_>>(),
    })
}

/// What the event stream still has to do.
struct StreamState {
    app: App,
    req: Arc<GenRequest>,
    id: String,
    rx: mpsc::Receiver<Piece>,
    done: Vec<ChoiceResult>,
    started: BTreeSet<usize>,
    finished: bool,
    _permit: tokio::sync::OwnedSemaphorePermit,
    _in_flight: InFlight,
}

fn stream_response(
    app: App,
    req: Arc<GenRequest>,
    id: String,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let (tx, rx) = mpsc::channel(256);
    for i in 0..req.n {
        let (app, req, tx) = (app.clone(), req.clone(), tx.clone());
        tokio::spawn(async move {
            let piece = match generate::run_choice(&app, &req, i, Some(tx.clone())).await {
                Ok(r) => Piece::Done(r),
                Err(e) => Piece::Failed(e),
            };
            let _ = tx.send(piece).await;
        });
    }
    let state = StreamState {
        _in_flight: InFlight::new(&app),
        app,
        req,
        id,
        rx,
        done: Vec::new(),
        started: BTreeSet::new(),
        finished: false,
        _permit: permit,
    };
    let events = stream::unfold(state, |mut st| async move {
        if st.finished {
            return None;
        }
        let data: Vec<String> = match st.rx.recv().await {
            None => {
                st.finished = true;
                vec!["[DONE]".to_owned()]
            }
            Some(Piece::Text { index, text }) => {
                let first = st.started.insert(index);
                vec![chunk(&st, index, Some(&text), None, None, first).to_string()]
            }
            Some(Piece::Done(r)) => {
                let last = chunk(&st, r.index, None, Some(&r.finish_reason), Some(&r), false);
                st.done.push(r);
                let mut data = vec![last.to_string()];
                if st.done.len() == st.req.n {
                    count(&st.app, &st.done);
                    st.app.metrics.request(st.req.endpoint.name(), 200);
                    if st.req.include_usage {
                        let mut u = chunk_head(&st);
                        u["choices"] = json!([]);
                        u["usage"] = usage(&st.done);
                        data.push(u.to_string());
                    }
                    data.push("[DONE]".to_owned());
                    st.finished = true;
                }
                data
            }
            Some(Piece::Failed(e)) => {
                tracing::error!("streamed request failed: {}", e.message);
                st.app
                    .metrics
                    .request(st.req.endpoint.name(), e.status.as_u16());
                st.finished = true;
                vec![e.body().to_string(), "[DONE]".to_owned()]
            }
        };
        let events: Vec<Result<Event, Infallible>> = data
            .into_iter()
            .map(|d| Ok(Event::default().data(d)))
            .collect();
        Some((stream::iter(events), st))
    })
    .flatten();
    Sse::new(events)
}

fn chunk_head(st: &StreamState) -> Json {
    json!({
        "id": st.id,
        "object": if st.req.endpoint == Endpoint::Chat { "chat.completion.chunk" } else { "text_completion" },
        "created": now(),
        "model": st.req.model.id,
        "system_fingerprint": null,
    })
}

fn chunk(
    st: &StreamState,
    index: usize,
    text: Option<&str>,
    finish: Option<&str>,
    done: Option<&ChoiceResult>,
    first: bool,
) -> Json {
    let mut c = chunk_head(st);
    let choice = match st.req.endpoint {
        Endpoint::Chat => {
            let mut delta = serde_json::Map::new();
            if first {
                delta.insert("role".into(), json!("assistant"));
            }
            if let Some(t) = text {
                delta.insert("content".into(), json!(t));
            }
            json!({"index": index, "delta": delta, "finish_reason": finish, "logprobs": null})
        }
        Endpoint::Completions => {
            json!({"index": index, "text": text.unwrap_or(""), "finish_reason": finish, "logprobs": null})
        }
    };
    c["choices"] = json!([choice]);
    if let Some(r) = done {
        c["rulepack"] = json!(st.req.pack.as_ref().map(|p| p.id()));
        c["record"] = r.record.clone().unwrap_or(Json::Null);
    }
    c
}

async fn models(State(app): State<App>) -> Response {
    let data: Vec<Json> = app
        .models
        .iter()
        .map(|m| {
            json!({
                "id": m.id,
                "object": "model",
                "created": now(),
                "owned_by": "netnomos",
                "fields": m.fields,
            })
        })
        .collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

fn pack_summary(p: &LoadedPack) -> Json {
    json!({
        "id": p.id(),
        "object": "rulepack",
        "name": p.pack.name,
        "version": p.pack.version,
        "hash": p.pack.hash,
        "created": p.pack.created,
        "description": p.pack.description,
        "rules": p.pack.rules.len(),
        "fields": p.compiled.format.slots().iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
        "file": p.path.display().to_string(),
    })
}

async fn list_packs(State(app): State<App>) -> Response {
    let data: Vec<Json> = app.packs.all().iter().map(|p| pack_summary(p)).collect();
    let refused: Vec<Json> = app
        .packs
        .refused()
        .into_iter()
        .map(|(f, e)| json!({"file": f.display().to_string(), "error": e}))
        .collect();
    axum::Json(json!({"object": "list", "data": data, "refused": refused})).into_response()
}

async fn fetch_pack(State(app): State<App>, Path(spec): Path<String>) -> Response {
    match app.packs.resolve(&spec) {
        Some(p) => axum::Json(serde_json::to_value(&p.pack).unwrap_or(Json::Null)).into_response(),
        None => generate::unknown_pack(&app, &spec).into_response(),
    }
}

async fn upload_pack(State(app): State<App>, body: Result<Bytes, BytesRejection>) -> Response {
    let result = async {
        let bytes = body.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
        let text = String::from_utf8(bytes.to_vec())
            .map_err(|_| ApiError::bad("", "the pack is not UTF-8 text"))?;
        let packs = app.packs.clone();
        tokio::task::spawn_blocking(move || packs.upload(&text))
            .await
            .map_err(|e| ApiError::internal(format!("loading the pack failed: {e}")))?
            .map_err(|e| match e {
                PackLoadError::Invalid(m) => ApiError::bad("", m).with_code("invalid_rulepack"),
                PackLoadError::Contradictory(m) => {
                    ApiError::bad("", m).with_code("contradictory_rulepack")
                }
                PackLoadError::Exists(m) => {
                    ApiError::new(StatusCode::CONFLICT, m).with_code("rulepack_exists")
                }
            })
    }
    .await;
    let response = match result {
        Ok(p) => (StatusCode::CREATED, axum::Json(pack_summary(&p))).into_response(),
        Err(e) => e.into_response(),
    };
    app.metrics
        .request("rulepacks_upload", response.status().as_u16());
    response
}

async fn reload_packs(State(app): State<App>) -> Response {
    let packs = app.packs.clone();
    match tokio::task::spawn_blocking(move || packs.scan()).await {
        Ok(mut report) => {
            app.metrics.pack_reloads.fetch_add(1, Ordering::Relaxed);
            // Every file refused now, not only those refused by this scan: the
            // watcher may have looked at a new file a moment before.
            for (file, why) in app.packs.refused() {
                if !report.refused.iter().any(|(f, _)| *f == file) {
                    report.refused.push((file, why));
                }
            }
            axum::Json(json!({
                "loaded": report.loaded,
                "removed": report.removed,
                "refused": report.refused.iter()
                    .map(|(f, e)| json!({"file": f.display().to_string(), "error": e}))
                    .collect::<Vec<_>>(),
            }))
            .into_response()
        }
        Err(e) => ApiError::internal(format!("the scan failed: {e}")).into_response(),
    }
}

async fn metrics(State(app): State<App>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(app.packs.all().len()),
    )
        .into_response()
}

async fn health(State(app): State<App>) -> Response {
    axum::Json(json!({
        "status": "ok",
        "uptime_seconds": app.started.elapsed().as_secs(),
        "models": app.models.iter().map(|m| m.id.clone()).collect::<Vec<_>>(),
        "rulepacks": app.packs.ids(),
    }))
    .into_response()
}
