//! Serving benchmark: what enforcing a rule pack costs.
//!
//! ```sh
//! cargo bench --bench serving -- --pack P --model DIR [--records 200] [--baseline-steps 30]
//! ```
//!
//! 1. Starts `netnomos serve` with the model and the pack, and generates the same requests
//!    with and without the pack, alternating, on the same model in one run: tokens/s
//!    (batched: `n` choices per request; and one sequence at a time) and records/s.
//! 2. Replays every decoding step of the records generated with the pack through the
//!    logits processor in-process (a freshly compiled pack, then again warm) and reports
//!    the time per token: p50, p90, p99, p99.9, max.
//! 3. Runs the reference's enforcement (a fresh z3 solver per candidate token) on the
//!    first steps of those records, as a baseline.
//!
//! Prints a Markdown report and, with `--out FILE`, writes it there with the command and
//! the date.

#[path = "../tests/common/http.rs"]
#[allow(dead_code)]
mod http;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use plugin::compiled::Compiled;
use plugin::engine::Enforcer;
use plugin::processor::{Metrics, Outcome, RecordProcessor, Sampling, vocab_of};
use serde_json::{Value as Json, json};

struct Args {
    pack: PathBuf,
    model: PathBuf,
    records: usize,
    baseline_steps: usize,
    out: Option<PathBuf>,
}

fn args() -> Args {
    let mut a = Args {
        pack: PathBuf::new(),
        model: PathBuf::new(),
        records: 200,
        baseline_steps: 30,
        out: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--pack" => a.pack = value().into(),
            "--model" => a.model = value().into(),
            "--records" => a.records = value().parse().expect("--records N"),
            "--baseline-steps" => a.baseline_steps = value().parse().expect("--baseline-steps N"),
            "--out" => a.out = Some(value().into()),
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(
        a.pack.is_file() && a.model.is_dir(),
        "usage: serving --pack PACK.json --model MODEL_DIR [--records N] [--baseline-steps N] [--out FILE]"
    );
    a
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i]
}

struct Run {
    seconds: f64,
    tokens: u64,
    records: usize,
    texts: Vec<String>,
}

fn generate(addr: &str, pack: Option<&str>, n: usize, requests: usize, seed: u64) -> Run {
    let started = Instant::now();
    let mut run = Run {
        seconds: 0.0,
        tokens: 0,
        records: 0,
        texts: Vec::new(),
    };
    for r in 0..requests {
        let mut body = json!({
            "messages": [{"role": "user", "content": ""}],
            "n": n,
            "temperature": 1.0,
            "seed": seed + r as u64,
        });
        if let Some(p) = pack {
            body["rulepack"] = json!(p);
        }
        let reply = http::post(addr, "/v1/chat/completions", &body);
        assert_eq!(reply.status, 200, "{}", reply.body);
        let answer = reply.json();
        run.tokens += answer["usage"]["completion_tokens"].as_u64().unwrap_or(0);
        for c in answer["choices"].as_array().unwrap() {
            run.records += 1;
            run.texts.push(
                c["message"]["content"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
        }
    }
    run.seconds = started.elapsed().as_secs_f64();
    run
}

fn main() {
    let a = args();
    let dir = tempfile::tempdir().unwrap();
    let packs = dir.path().join("packs");
    std::fs::create_dir_all(&packs).unwrap();
    std::fs::copy(&a.pack, packs.join(a.pack.file_name().unwrap())).unwrap();
    let pack = rulepacks::RulePack::load(&a.pack).expect("the pack loads");
    let config = dir.path().join("serve.toml");
    std::fs::write(
        &config,
        format!(
            "rulepack_dir = \"packs\"\n[limits]\nmax_n = 64\nconcurrent_requests = 8\n[[models]]\nid = \"m\"\npath = \"{}\"\n",
            std::fs::canonicalize(&a.model).unwrap().display()
        ),
    )
    .unwrap();
    let server = http::Server::start(&config);
    let name = pack.name.clone();
    generate(&server.addr, Some(&name), 4, 1, 1);

    // 1. Throughput, alternating with and without the pack.
    let n = 50.min(a.records);
    let requests = a.records.div_ceil(n);
    let mut with = Vec::new();
    let mut without = Vec::new();
    for round in 0..2u64 {
        with.push(generate(
            &server.addr,
            Some(&name),
            n,
            requests,
            100 * round,
        ));
        without.push(generate(&server.addr, None, n, requests, 100 * round));
    }
    let single_with = generate(&server.addr, Some(&name), 1, 10, 7);
    let single_without = generate(&server.addr, None, 1, 10, 7);
    let rate = |runs: &[Run]| {
        let t: f64 = runs.iter().map(|r| r.seconds).sum();
        let tok: u64 = runs.iter().map(|r| r.tokens).sum();
        let rec: usize = runs.iter().map(|r| r.records).sum();
        (tok as f64 / t, rec as f64 / t)
    };
    let (tps_with, rps_with) = rate(&with);
    let (tps_without, rps_without) = rate(&without);
    let (stps_with, _) = rate(std::slice::from_ref(&single_with));
    let (stps_without, _) = rate(std::slice::from_ref(&single_without));
    drop(server);

    // 2. Mask time per token, replayed in-process.
    let tokenizer = tokenizers::Tokenizer::from_file(a.model.join("tokenizer.json")).unwrap();
    let config_json: Json =
        serde_json::from_str(&std::fs::read_to_string(a.model.join("config.json")).unwrap())
            .unwrap();
    let (bos, eos) = (
        config_json["bos_token_id"].as_u64().unwrap() as u32,
        config_json["eos_token_id"].as_u64().unwrap() as u32,
    );
    let vocab = Arc::new(vocab_of(&tokenizer, &[eos]));
    let sequences: Vec<Vec<u32>> = with[0]
        .texts
        .iter()
        .map(|t| {
            let mut ids = vec![bos];
            ids.extend(tokenizer.encode(t.as_str(), false).unwrap().get_ids());
            ids.push(eos);
            ids
        })
        .collect();
    let compile_started = Instant::now();
    let compiled = Arc::new(Compiled::new(&pack).unwrap());
    let compile_ms = compile_started.elapsed().as_secs_f64() * 1e3;
    let enforcer = Arc::new(Enforcer::new(compiled.clone(), &[]).unwrap());
    // One processor per record, as the server makes them.
    let replay = || {
        let logits = vec![0.0f32; vocab.len()];
        let mut times = Vec::new();
        let mut diverged = 0usize;
        for ids in &sequences {
            let outcome = Arc::new(Outcome::default());
            let processor = RecordProcessor::new(
                Some(enforcer.clone()),
                vocab.clone(),
                &[bos],
                Sampling {
                    temperature: None,
                    top_p: None,
                    seed: 0,
                },
                outcome.clone(),
                Arc::new(Metrics::default()),
            );
            for k in 1..ids.len() {
                let started = Instant::now();
                std::hint::black_box(processor.choose(&logits, &ids[..k]));
                times.push(started.elapsed().as_secs_f64() * 1e6);
            }
            // The engine may settle for a sound subset of a field's values when the
            // solver has many cases, and which subset depends on what its caches hold:
            // a served token can then be outside this replay's set.  Counted, not fatal.
            if outcome.failure().is_some() {
                diverged += 1;
            }
        }
        times.sort_by(f64::total_cmp);
        (times, diverged)
    };
    let (cold, cold_diverged) = replay();
    let (warm, warm_diverged) = replay();

    // 3. The reference's way, on the first steps.
    let mut baseline = Vec::new();
    'records: for ids in &sequences {
        for k in 1..ids.len() {
            if baseline.len() >= a.baseline_steps {
                break 'records;
            }
            let text = ids[1..k]
                .iter()
                .filter_map(|&id| vocab.texts[id as usize].as_deref())
                .collect::<String>();
            let started = Instant::now();
            std::hint::black_box(plugin::baseline::reference_mask(
                &compiled, &text, &vocab, 10_000,
            ));
            baseline.push(started.elapsed().as_secs_f64() * 1e6);
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;

    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let mut report = String::new();
    report.push_str(&format!(
        "# Serving benchmark — {}\n\nCommand: `{command}`\n\nPack `{}` ({} rules), model `{}` ({} tokens in its vocabulary); \
         {} records per mode, {} choices per request, {} rounds alternating with and without the pack.\n\n",
        std::process::Command::new("date").arg("-u").arg("+%F %H:%M UTC").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()).unwrap_or_default(),
        pack.id(),
        pack.rules.len(),
        a.model.display(),
        vocab.len(),
        requests * n,
        n,
        with.len(),
    ));
    report.push_str("| measure | with the pack | without | ratio |\n|---|---|---|---|\n");
    report.push_str(&format!(
        "| tokens/s, {n} choices per request | {tps_with:.0} | {tps_without:.0} | {:.2} |\n",
        tps_with / tps_without
    ));
    report.push_str(&format!(
        "| records/s, {n} choices per request | {rps_with:.1} | {rps_without:.1} | {:.2} |\n",
        rps_with / rps_without
    ));
    report.push_str(&format!(
        "| tokens/s, one sequence at a time | {stps_with:.0} | {stps_without:.0} | {:.2} |\n\n",
        stps_with / stps_without
    ));
    report.push_str(&format!(
        "Processor time per token (context → text → mask → choice), {} steps of {} records; pack compiled in {compile_ms:.1} ms:\n\n\
         | pass | p50 | p90 | p99 | p99.9 | max | mean |\n|---|---|---|---|---|---|---|\n",
        warm.len(),
        sequences.len()
    ));
    for (label, t) in [("cold (fresh pack: caches fill)", &cold), ("warm", &warm)] {
        report.push_str(&format!(
            "| {label} | {:.1} µs | {:.1} µs | {:.1} µs | {:.1} µs | {:.0} µs | {:.1} µs |\n",
            percentile(t, 0.5),
            percentile(t, 0.9),
            percentile(t, 0.99),
            percentile(t, 0.999),
            t.last().copied().unwrap_or(f64::NAN),
            mean(t)
        ));
    }
    report.push_str(&format!(
        "\nReplays in which a served token fell outside the replaying engine's set (see the \
         README on value subsets): cold {cold_diverged}, warm {warm_diverged} of {}.\n",
        sequences.len()
    ));
    report.push_str(&format!(
        "\nReference-style enforcement (a fresh z3 solver with all {} rules per candidate token, values checked once complete), \
         first {} steps: mean {:.0} µs per token, {:.0}× the cold mean above.\n",
        pack.rules.len(),
        baseline.len(),
        mean(&baseline),
        mean(&baseline) / mean(&cold)
    ));
    print!("{report}");
    if let Some(out) = a.out {
        std::fs::write(&out, &report).unwrap();
        eprintln!("written to {}", out.display());
    }
}
