//! User-function benchmark: what a WebAssembly aggregate costs, called and enforced.
//!
//! ```sh
//! cargo bench --bench functions -- [--windows 200] [--out FILE]
//! ```
//!
//! 1. Calls: the WAT burstiness component (`functions/tests/components/burstiness.wat`)
//!    on real Millisampler windows — cold (a new host: compile, instantiate, metadata,
//!    first call) and warm (per call, p50 and p99).
//! 2. Enforcement: splits MetaDC by host as `bench/split_metadc.py` does, mines
//!    `metadc_burstiness` (the window total, and rules tying `Burstiness` to
//!    `IngressBytesAgg`) from the training hosts, and makes the same pack without the
//!    rules that call the function.  For held-out windows it imputes the 50 one-
//!    millisecond samples, every other field given, by random decoding under each
//!    pack's mask (uniform over allowed tokens, so the mask does all the work), and
//!    reports time per token, solver calls, dead ends, and violations of every rule of
//!    the full pack, `Burstiness` computed by the component.
//!
//! Prints a Markdown report and, with `--out FILE`, writes it there with the command and
//! the date.

#[path = "../tests/common/decode.rs"]
mod decode;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use decode::{EOS, RandomChoice, vocab};
use miner::mine::{MineOptions, Quiet};
use plugin::compiled::Compiled;
use plugin::engine::Enforcer;
use rulepacks::eval::{eval, eval_num};
use rulepacks::resolve::resolve_term;
use rulepacks::{RulePack, Value};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// The MetaDC rows, split by host: ids ending in 0 or 5 are held out.
fn split(data: &Path, dir: &Path) -> (PathBuf, Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(data).expect("the MetaDC file");
    let mut lines = text.lines();
    let header = lines.next().expect("a header").to_owned();
    let host = header
        .split(',')
        .position(|h| h == "hostid")
        .expect("hostid");
    let (mut train, mut heldout) = (vec![header.clone()], Vec::new());
    for line in lines.filter(|l| !l.is_empty()) {
        let cells: Vec<String> = line.split(',').map(str::to_owned).collect();
        if cells[host].ends_with('0') || cells[host].ends_with('5') {
            heldout.push(cells);
        } else {
            train.push(line.to_owned());
        }
    }
    let path = dir.join("metadc_train.csv");
    std::fs::write(&path, train.join("\n") + "\n").expect("writing the training split");
    let header = header.split(',').map(str::to_owned).collect();
    (path, header, heldout)
}

#[derive(Default)]
struct Imputation {
    token_us: Vec<f64>,
    records: usize,
    dead_ends: usize,
    errors: Vec<String>,
    /// Records breaking some rule of the full pack, and breaks per rule id.
    violating: usize,
    broken: std::collections::BTreeMap<String, usize>,
    solver_calls: u64,
    seconds: f64,
}

/// Imputes the samples of each window under `served`, checking against `full`.
fn impute(served: &RulePack, full: &RulePack, windows: &[Vec<(String, Value)>]) -> Imputation {
    let compiled = Arc::new(Compiled::new(served).expect("the pack compiles"));
    let vocab = vocab(&compiled);
    let (schema, rules) = full.validate().expect("the full pack");
    let mut out = Imputation::default();
    let mut choice = RandomChoice::new(0x9e37_79b9_7f4a_7c15);
    let started = Instant::now();
    'windows: for fixed in windows {
        let enforcer = match Enforcer::new(compiled.clone(), fixed) {
            Ok(e) => e,
            Err(e) => {
                out.errors.push(e);
                continue;
            }
        };
        let mut text = String::new();
        loop {
            let t = Instant::now();
            let mask = match enforcer.mask(&text, &vocab) {
                Ok(m) => m,
                Err(e) => {
                    out.errors.push(format!("{e} after `{text}`"));
                    continue 'windows;
                }
            };
            out.token_us.push(t.elapsed().as_secs_f64() * 1e6);
            let Some(pick) = choice.pick(&mask, &vocab) else {
                out.dead_ends += 1;
                continue 'windows;
            };
            if pick == EOS {
                break;
            }
            text.push_str(vocab.texts[pick].as_deref().expect("a text token"));
        }
        // The record as the full pack sees it (by field name), derived fields computed.
        let read = enforcer.read(&text).expect("a complete record");
        let mut values: Vec<Option<Value>> = schema
            .fields()
            .iter()
            .map(|f| {
                let id = compiled.schema.id(&f.name)?;
                read[id.index()].clone()
            })
            .collect();
        for (i, f) in schema.fields().iter().enumerate() {
            if let Some(def) = &f.definition {
                let expr = resolve_term(def, &schema).expect("a definition");
                values[i] = eval_num(&expr, values.as_slice())
                    .expect("the definition evaluates")
                    .map(|n| n.to_value());
            }
        }
        out.records += 1;
        let mut broke = false;
        for (rule, prop) in full.rules.iter().zip(&rules) {
            if !eval(prop, values.as_slice()).unwrap_or(false) {
                broke = true;
                *out.broken.entry(rule.id.clone()).or_default() += 1;
            }
        }
        out.violating += usize::from(broke);
    }
    out.seconds = started.elapsed().as_secs_f64();
    out.solver_calls = compiled.stats.solver_calls.load(Ordering::Relaxed);
    out.token_us.sort_by(f64::total_cmp);
    out
}

fn main() {
    let mut windows_wanted = 200usize;
    let mut out_file: Option<PathBuf> = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--windows" => {
                windows_wanted = it.next().and_then(|v| v.parse().ok()).expect("--windows N");
            }
            "--out" => out_file = Some(it.next().expect("--out FILE").into()),
            "--bench" => {}
            other => {
                panic!("unknown argument {other}; usage: functions [--windows N] [--out FILE]")
            }
        }
    }
    functions::install();
    let mut report = String::new();
    let mut say = |line: String| {
        println!("{line}");
        report.push_str(&line);
        report.push('\n');
    };

    // 1. Calls.
    let data = root().join("../shared/data/metadc-millisampler/metadc_test_3racks.csv");
    let wat = std::fs::read(root().join("functions/tests/components/burstiness.wat"))
        .expect("the WAT component");
    let component = functions::rules::component_from_source(&wat).expect("a component");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (train, header, heldout) = split(&data, dir.path());
    let samples: Vec<usize> = (0..50)
        .map(|i| {
            header
                .iter()
                .position(|h| *h == format!("IngressBytes{i}"))
                .expect("IngressBytes columns")
        })
        .collect();
    let real: Vec<Vec<f64>> = heldout
        .iter()
        .map(|r| {
            samples
                .iter()
                .map(|&c| r[c].parse().unwrap_or(0.0))
                .collect()
        })
        .collect();
    let mut cold = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let host = functions::Host::new(functions::Limits::default()).expect("a host");
        let f = host.load(&component).expect("the component loads");
        f.call_numbers(&real[0]).expect("a first call");
        cold.push(t.elapsed().as_secs_f64() * 1e3);
    }
    cold.sort_by(f64::total_cmp);
    let host = functions::Host::new(functions::Limits::default()).expect("a host");
    let f = host.load(&component).expect("the component loads");
    let mut warm = Vec::new();
    for w in real.iter().cycle().take(20_000) {
        let t = Instant::now();
        let b = f.call_numbers(w).expect("a call");
        warm.push(t.elapsed().as_secs_f64() * 1e6);
        assert_eq!(
            b.to_bits(),
            functions::burstiness(w).to_bits(),
            "same as the reference"
        );
    }
    warm.sort_by(f64::total_cmp);
    say("## One call of `burstiness` (WAT component, 50 samples)\n".into());
    say(format!(
        "- cold (new host: compile, instantiate, metadata, first call): median {:.1} ms, max {:.1} ms over 5",
        percentile(&cold, 0.5),
        cold[cold.len() - 1]
    ));
    say(format!(
        "- warm: p50 {:.2} µs, p99 {:.2} µs over {} calls on {} held-out windows (every result equal to the Rust reference)\n",
        percentile(&warm, 0.5),
        percentile(&warm, 0.99),
        warm.len(),
        real.len()
    ));

    // 2. Enforcement.
    let options = MineOptions {
        dataset_spec: root().join("miner/specs/datasets/metadc_burstiness.json"),
        grammar: root().join("miner/specs/grammars/metadc_burstiness.json"),
        input: Some(train),
        ..MineOptions::default()
    };
    let mut full = miner::mine::mine(&options, &AtomicBool::new(false), &Quiet)
        .expect("mining")
        .pack;
    full.seal();
    let compiled = Compiled::new(&full).expect("the pack compiles");
    let calls: Vec<bool> = compiled.rules().iter().map(|r| r.calls_user()).collect();
    // Without: no rule, predicate, field or component that involves the function.
    let mut without = full.clone();
    let mut keep = calls.iter().map(|c| !c);
    without.rules.retain(|_| keep.next().unwrap_or(true));
    let derived: Vec<String> = full
        .fields
        .iter()
        .filter(|f| matches!(f.definition, Some(rulepacks::Term::User { .. })))
        .map(|f| f.name.clone())
        .collect();
    without.fields.retain(|f| !derived.contains(&f.name));
    without
        .predicates
        .retain(|p| !derived.iter().any(|d| p.text.contains(d.as_str())));
    without.components.clear();
    without.hash.clear();
    without.seal();
    say(format!(
        "## Imputation of the 50 samples under pack `{}` ({} rules, {} over `Burstiness`)\n",
        full.id(),
        full.rules.len(),
        calls.iter().filter(|c| **c).count()
    ));
    for r in full
        .rules
        .iter()
        .zip(&calls)
        .filter(|(_, c)| **c)
        .map(|(r, _)| r)
    {
        say(format!("- {} `{}`", r.id, r.text));
    }
    let written: Vec<&str> = compiled.format.names();
    // Held-out windows evenly spaced by IngressBytesAgg, from the busiest (where the
    // rules bind) down.
    let mut order: Vec<&Vec<String>> = heldout.iter().collect();
    let agg = header
        .iter()
        .position(|h| h == "IngressBytesAgg")
        .expect("agg");
    order.sort_by_key(|r| std::cmp::Reverse(r[agg].parse::<f64>().unwrap_or(0.0) as i64));
    let windows: Vec<Vec<(String, Value)>> = order
        .iter()
        .step_by((order.len() / windows_wanted).max(1))
        .take(windows_wanted)
        .map(|row| {
            header
                .iter()
                .zip(row.iter())
                .filter(|(h, _)| written.contains(&h.as_str()))
                .filter(|(h, _)| {
                    h.strip_prefix("IngressBytes")
                        .is_none_or(|d| d.parse::<u32>().is_err())
                })
                .map(|(h, v)| {
                    let slot = compiled.format.slot_of(h).expect("a written field");
                    let value = compiled.format.parse_value(slot, v).expect("a value");
                    (h.clone(), value)
                })
                .collect()
        })
        .collect();
    say(format!(
        "{} held-out windows (hosts ending in 0 or 5; every {}th by IngressBytesAgg), every field but `IngressBytes0..49` given; random decoding under the mask.\n",
        windows.len(),
        (order.len() / windows_wanted).max(1)
    ));
    say("| pack | records | violating records | dead ends | errors | mask p50 | mask p99 | mask mean | solver calls | seconds |".into());
    say("|---|---|---|---|---|---|---|---|---|---|".into());
    let mut lines = Vec::new();
    for (name, pack) in [
        ("with the function rules", &full),
        ("without the function", &without),
    ] {
        let r = impute(pack, &full, &windows);
        let mean = r.token_us.iter().sum::<f64>() / r.token_us.len().max(1) as f64;
        say(format!(
            "| {name} | {} | {} | {} | {} | {:.0} µs | {:.0} µs | {:.0} µs | {} | {:.1} |",
            r.records,
            r.violating,
            r.dead_ends,
            r.errors.len(),
            percentile(&r.token_us, 0.5),
            percentile(&r.token_us, 0.99),
            mean,
            r.solver_calls,
            r.seconds
        ));
        lines.push((name, r.broken, r.errors));
    }
    say(String::new());
    for (name, broken, errors) in lines {
        if !broken.is_empty() {
            say(format!("Rules broken {name}: {broken:?}"));
        }
        for e in errors.iter().take(3) {
            say(format!("Error {name}: {e}"));
        }
    }
    if let Some(path) = out_file {
        let command: Vec<String> = std::env::args().skip(1).collect();
        let text = format!(
            "# User-function benchmark\n\nDate: {}\nCommand: `cargo bench --bench functions -- {}`\nMachine: {} cores\n\n{report}",
            std::process::Command::new("date")
                .args(["-u", "+%F %H:%M UTC"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .unwrap_or_default(),
            command.join(" "),
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        std::fs::write(&path, text).expect("writing the report");
    }
}
