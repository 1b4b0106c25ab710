//! Enforcement on real packs: random decoding under the mask never dead-ends and never
//! writes a record that breaks a rule.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use common::decode::{EOS, RandomChoice, vocab};
use common::*;
use miner::mine::{MineOptions, Quiet};
use plugin::compiled::Compiled;
use plugin::engine::{Enforcer, Vocab};
use rulepacks::eval::eval;
use rulepacks::resolve::resolve_term;
use rulepacks::{RulePack, Value};

fn mined(spec: &Path, grammar: &Path, max_size: Option<u32>) -> RulePack {
    let options = MineOptions {
        dataset_spec: spec.to_owned(),
        grammar: grammar.to_owned(),
        max_clause_size: max_size,
        ..MineOptions::default()
    };
    let mut pack = miner::mine::mine(&options, &AtomicBool::new(false), &Quiet)
        .unwrap()
        .pack;
    pack.seal();
    pack
}

/// Decodes `n` records choosing uniformly among allowed tokens (ending numbers early
/// with some probability); checks each against every rule by evaluation.
fn decode(pack: &RulePack, fixed: &[(String, Value)], n: usize, seed: u64) -> Vec<String> {
    let compiled = Arc::new(Compiled::new(pack).unwrap());
    let enforcer = Enforcer::new(compiled.clone(), fixed).unwrap();
    let vocab = vocab(&compiled);
    let (schema, rules) = pack.validate().unwrap();
    let mut choice = RandomChoice::new(seed);
    let mut records = Vec::new();
    for _ in 0..n {
        let mut text = String::new();
        for step in 0.. {
            assert!(step < 2000, "record too long: {text}");
            let mask = enforcer
                .mask(&text, &vocab)
                .unwrap_or_else(|e| panic!("{e} after `{text}`"));
            let pick = choice
                .pick(&mask, &vocab)
                .unwrap_or_else(|| panic!("dead end after `{text}`"));
            if pick == EOS {
                break;
            }
            text.push_str(vocab.texts[pick].as_deref().unwrap());
        }
        let mut values = enforcer
            .read(&text)
            .unwrap_or_else(|e| panic!("{e}: `{text}`"));
        for (i, f) in schema.fields().iter().enumerate() {
            if let Some(def) = &f.definition {
                let expr = resolve_term(def, &schema).unwrap();
                values[i] = rulepacks::eval::eval_num(&expr, values.as_slice())
                    .unwrap()
                    .map(|n| n.to_value());
            }
        }
        for (rule, prop) in pack.rules.iter().zip(&rules) {
            assert!(
                eval(prop, values.as_slice()).unwrap(),
                "record `{text}` breaks {} `{}`",
                rule.id,
                rule.text
            );
        }
        for (name, v) in fixed {
            let id = schema.id(name).unwrap();
            assert!(
                values[id.index()].as_ref().unwrap().same(v),
                "fixed `{name}` changed in `{text}`"
            );
        }
        records.push(text);
    }
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "{}: {} lookups, {} computed, {} solver calls",
        pack.id(),
        load(&compiled.stats.lookups),
        load(&compiled.stats.computed),
        load(&compiled.stats.solver_calls)
    );
    records
}

#[test]
fn random_decoding_on_cidds_is_sound_and_never_stuck() {
    let pack = mined(&spec("cidds.json"), &grammar("cidds_flows.json"), None);
    let records = decode(&pack, &[], 200, 7);
    assert_eq!(records.len(), 200);
    // With given fields (imputation): the rest completes them.
    let fixed = [
        ("Proto".to_owned(), Value::Int(1)),
        ("DstPt".to_owned(), Value::Int(53)),
    ];
    decode(&pack, &fixed, 50, 11);
}

#[test]
fn random_decoding_on_metadc_keeps_the_window_total() {
    let pack = mined(&spec("metadc.json"), &grammar("metadc_rules.json"), Some(2));
    let fixed: Vec<(String, Value)> = [
        ("IngressBytesAgg", 123_456),
        ("EgressBytesAgg", 80_000),
        ("InRxmitBytesAgg", 0),
        ("OutRxmitBytesAgg", 0),
        ("InCongestionBytesAgg", 0),
        ("ConnectionsAgg", 12),
    ]
    .iter()
    .map(|(n, v)| ((*n).to_owned(), Value::Int(*v)))
    .collect();
    for text in decode(&pack, &fixed, 20, 3) {
        let total: i64 = text
            .split(' ')
            .filter(|p| p.starts_with("IngressBytes") && !p.starts_with("IngressBytesAgg"))
            .map(|p| p.split_once('=').unwrap().1.parse::<i64>().unwrap())
            .sum();
        assert_eq!(total, 123_456, "{text}");
    }
}

/// Rules over a user function (Burstiness, the WAT component's peak-to-mean ratio of the
/// 1 ms samples) are enforced on concrete values: imputing the samples of real windows,
/// given every other field, keeps both the window total and every burstiness rule.
#[test]
fn random_imputation_obeys_rules_over_a_user_function() {
    functions::install();
    let pack = mined(
        &spec("metadc_burstiness.json"),
        &grammar("metadc_burstiness.json"),
        None,
    );
    assert!(
        pack.rules
            .iter()
            .any(|r| r.text.contains("Burstiness") && r.text.contains("IngressBytesAgg")),
        "{:#?}",
        pack.rules
    );
    let text =
        std::fs::read_to_string(shared("data/metadc-millisampler/metadc_test_3racks.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let compiled = Compiled::new(&pack).unwrap();
    let written: Vec<&str> = compiled.format.names();
    // The busiest windows: there the rules bound how bursty a window may be.
    let mut rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let agg = header.iter().position(|h| *h == "IngressBytesAgg").unwrap();
    rows.sort_by_key(|r| std::cmp::Reverse(r[agg].parse::<f64>().unwrap_or(0.0) as i64));
    for (k, row) in rows.iter().step_by(97).take(3).enumerate() {
        let fixed: Vec<(String, Value)> = header
            .iter()
            .zip(row)
            // Every written field but the 1 ms samples (IngressBytes0..49).
            .filter(|(h, _)| written.contains(*h))
            .filter(|(h, _)| {
                h.strip_prefix("IngressBytes")
                    .is_none_or(|d| d.parse::<u32>().is_err())
            })
            .map(|(h, v)| {
                let slot = compiled.format.slot_of(h).unwrap();
                (
                    (*h).to_owned(),
                    compiled.format.parse_value(slot, v).unwrap(),
                )
            })
            .collect();
        decode(&pack, &fixed, 2, 21 + k as u64);
    }
}

#[test]
fn impossible_given_fields_are_refused() {
    let pack = mined(&spec("cidds.json"), &grammar("cidds_flows.json"), Some(2));
    let compiled = Arc::new(Compiled::new(&pack).unwrap());
    // ICMP flows never carry TCP flags in this pack.
    let fixed = [
        ("Proto".to_owned(), Value::Int(2)),
        ("Flags".to_owned(), Value::Int(1)),
    ];
    let e = Enforcer::new(compiled.clone(), &fixed).unwrap_err();
    assert!(e.contains("no record satisfies pack"), "{e}");
    let e = Enforcer::new(compiled, &[("Nope".to_owned(), Value::Int(1))]).unwrap_err();
    assert!(e.contains("`Nope` is not a field"), "{e}");
}

/// The processor mistral.rs calls: token ids in, one finite logit out.
mod processor {
    use super::*;
    use plugin::processor::{Metrics, Outcome, RecordProcessor, Sampling};
    use std::sync::atomic::Ordering;

    fn setup() -> (Arc<Enforcer>, Arc<Vocab>) {
        let pack = mined(&spec("cidds.json"), &grammar("cidds_flows.json"), Some(2));
        let compiled = Arc::new(Compiled::new(&pack).unwrap());
        let vocab = Arc::new(vocab(&compiled));
        (Arc::new(Enforcer::new(compiled, &[]).unwrap()), vocab)
    }

    fn ids(vocab: &Vocab, pieces: &[&str]) -> Vec<u32> {
        let mut out = vec![0]; // BOS
        for p in pieces {
            let id = vocab.texts.iter().position(|t| t.as_deref() == Some(*p));
            out.push(id.unwrap_or_else(|| panic!("no token `{p}`")) as u32);
        }
        out
    }

    fn processor(
        e: &Arc<Enforcer>,
        v: &Arc<Vocab>,
        prompt: &[u32],
        seed: u64,
    ) -> (RecordProcessor, Arc<Outcome>, Arc<Metrics>) {
        let (outcome, metrics) = (Arc::new(Outcome::default()), Arc::new(Metrics::default()));
        let sampling = Sampling {
            temperature: Some(1.0),
            top_p: None,
            seed,
        };
        let p = RecordProcessor::new(
            Some(e.clone()),
            v.clone(),
            prompt,
            sampling,
            outcome.clone(),
            metrics.clone(),
        );
        (p, outcome, metrics)
    }

    #[test]
    fn one_allowed_token_survives_and_seeds_reproduce() {
        let (e, v) = setup();
        let context = ids(&v, &["Duration=", "0", ".", "0", "0", "0", " ", "Proto="]);
        let logits = vec![0.5f32; v.len()];
        let (p, outcome, metrics) = processor(&e, &v, &context, 3);
        let out = p.apply_to(&logits, &context);
        let finite: Vec<usize> = (0..out.len()).filter(|&i| out[i].is_finite()).collect();
        assert_eq!(finite.len(), 1, "{out:?}");
        let mask = e.mask(&p.text_of(&context), &v).unwrap();
        assert!(mask[finite[0]], "the chosen token is allowed");
        // The same context and seed give the same token, from any thread, any number
        // of times in one step; another seed may differ.
        let again: Vec<u32> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| p.choose(&logits, &context)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(again.iter().all(|&t| t as usize == finite[0]), "{again:?}");
        let picks: std::collections::BTreeSet<u32> = (0..40)
            .map(|seed| {
                processor(&e, &v, &context, seed)
                    .0
                    .choose(&logits, &context)
            })
            .collect();
        assert!(
            picks.len() > 1,
            "seeds vary the choice among allowed values"
        );
        assert!(outcome.failure().is_none());
        assert!(metrics.masked_steps.load(Ordering::Relaxed) > 0);
    }

    #[test]
    fn a_partial_prompt_from_the_prefix_cache_is_made_whole() {
        let (e, v) = setup();
        let prompt = ids(&v, &["Duration=", "1", ".", "5", "0", "0", " ", "Proto="]);
        let logits: Vec<f32> = (0..v.len()).map(|i| i as f32).collect();
        let (whole, ..) = processor(&e, &v, &prompt, 1);
        let (tail, outcome, _) = processor(&e, &v, &prompt, 1);
        // mistral.rs passes only the uncached tail of the prompt on the first step.
        assert_eq!(
            tail.choose(&logits, &prompt[5..]),
            whole.choose(&logits, &prompt)
        );
        assert!(outcome.failure().is_none());
    }

    #[test]
    fn a_failure_stops_the_record_instead_of_erring() {
        let (e, v) = setup();
        // A context the pack cannot parse (it skips `Duration=`): the processor must not
        // fail the step; it allows only end-of-sequence and says why.
        let context = ids(&v, &["Proto=", "TCP"]);
        let logits = vec![0.0f32; v.len()];
        let (p, outcome, metrics) = processor(&e, &v, &context, 1);
        let out = p.apply_to(&logits, &context);
        let finite: Vec<usize> = (0..out.len()).filter(|&i| out[i].is_finite()).collect();
        assert_eq!(finite, vec![1], "only EOS");
        let why = outcome.failure().expect("the failure is recorded");
        assert!(why.contains("expected `Duration=`"), "{why}");
        assert_eq!(metrics.forced_stops.load(Ordering::Relaxed), 1);
        // Later steps stay stopped without counting again.
        p.apply_to(&logits, &context);
        assert_eq!(metrics.forced_stops.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn the_mistralrs_entry_point_masks_a_tensor() {
        use mistralrs_core::CustomLogitsProcessor;
        let (e, v) = setup();
        let context = ids(&v, &[]);
        let (p, ..) = processor(&e, &v, &context, 9);
        let logits =
            candle_core::Tensor::zeros(v.len(), candle_core::DType::F32, &candle_core::Device::Cpu)
                .unwrap();
        let out: Vec<f32> = p.apply(&logits, &context).unwrap().to_vec1().unwrap();
        assert_eq!(out.iter().filter(|x| x.is_finite()).count(), 1);
        let chosen = out.iter().position(|x| x.is_finite()).unwrap();
        assert_eq!(v.texts[chosen].as_deref(), Some("Duration="));
    }
}
