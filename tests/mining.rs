//! Mining on the shared datasets: coverage of the benchmark rules, packs that hold on their
//! own data, minimality, the reference files, and interchange with the reference format.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use common::*;
use miner::mine::{MineOptions, Quiet};
use rulepacks::RulePack;

fn mine_lib(spec: &Path, grammar: &Path, input: Option<&Path>, max_size: Option<u32>) -> RulePack {
    let options = MineOptions {
        dataset_spec: spec.to_owned(),
        grammar: grammar.to_owned(),
        input: input.map(Path::to_owned),
        max_clause_size: max_size,
        ..MineOptions::default()
    };
    miner::mine::mine(&options, &AtomicBool::new(false), &Quiet)
        .expect("mining works")
        .pack
}

/// No rule's predicates are a superset of another rule's.
fn assert_minimal(pack: &RulePack) {
    let sets: HashSet<Vec<&str>> = pack
        .rules
        .iter()
        .filter(|r| !r.text.contains("<->"))
        .map(|r| {
            let mut p: Vec<&str> = r.predicates.iter().map(String::as_str).collect();
            p.sort_unstable();
            p
        })
        .collect();
    for s in &sets {
        let n = s.len();
        for mask in 1..(1u32 << n) - 1 {
            let sub: Vec<&str> = (0..n)
                .filter(|i| mask >> i & 1 == 1)
                .map(|i| s[i])
                .collect();
            assert!(!sets.contains(&sub), "rule {s:?} contains rule {sub:?}");
        }
    }
}

/// The pack holds on the data it came from: `netnomos check` finds no violation.
fn assert_holds(pack: &Path, input: &Path) {
    let o = netnomos(&[
        "check",
        "--pack",
        pack.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
    ]);
    assert!(
        o.status.success(),
        "violations:\n{}{}",
        stdout(&o),
        stderr(&o)
    );
    assert!(
        stdout(&o).contains(": 0 violations in 0 of them"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn cidds_sample_entails_the_benchmark_rules() {
    let out = tempfile::tempdir().unwrap();
    let sample = root().join("miner/data/cidds/cidds_wk2_normal_10k.csv");
    assert_eq!(
        std::fs::read(&sample).unwrap(),
        std::fs::read(shared("data/cidds-001/cidds_wk2_normal_10k.csv")).unwrap(),
        "the shipped sample is the shared one"
    );
    let pack = mine(
        &spec("cidds.json"),
        &grammar("cidds_flows.json"),
        None,
        out.path(),
        &[],
    );
    let (n, m, text) = coverage(&pack, &shared("benchmarks/golden/golden_cidds/rules.json"));
    assert_eq!(m, 111);
    assert!(n >= 108, "coverage {n}/{m}:\n{text}");
    assert_holds(&pack, &sample);
    // The labelled variant holds the same records.
    assert_holds(
        &pack,
        &shared("data/cidds-001/cidds_wk2_normal_10k_labeled.csv"),
    );
}

#[test]
fn metadc_entails_every_benchmark_rule_that_holds() {
    let out = tempfile::tempdir().unwrap();
    let golden = shared("benchmarks/golden/golden_metadc/rules.json");
    let pack = mine(
        &spec("metadc.json"),
        &grammar("metadc_rules.json"),
        None,
        out.path(),
        &[],
    );
    let (n, m, text) = coverage(&pack, &golden);
    assert_eq!((n, m), (19, 21), "{text}");
    // The two that fail: each is broken by two windows of this trace.
    assert_eq!(
        not_entailed(&text),
        ["golden_metadc_00003", "golden_metadc_00007"]
    );
    assert_holds(
        &pack,
        &shared("data/metadc-millisampler/metadc_test_3racks.csv"),
    );
    let approx = mine(
        &spec("metadc.json"),
        &grammar("metadc_rules.json"),
        None,
        out.path(),
        &[
            "--name",
            "metadc-approx",
            "--approximate",
            "0.0005",
            "--max-clause-size",
            "2",
        ],
    );
    let (n, m, text) = coverage(&approx, &golden);
    assert_eq!((n, m), (21, 21), "{text}");
}

#[test]
fn every_pack_holds_on_its_input_and_is_minimal() {
    let cases = [
        (spec("cidds.json"), grammar("cidds_flows.json"), None, None),
        (
            spec("metadc.json"),
            grammar("metadc_rules.json"),
            None,
            None,
        ),
        (
            spec("tcp_windows.json"),
            grammar("tcp_windows.json"),
            Some(shared("data/pcap-ndpi-apps/alexa-app.pcapng")),
            Some(3),
        ),
        (
            spec("tcp_windows.json"),
            grammar("tcp_windows.json"),
            Some(shared("data/pcap-caida-nyc2018/caida_small_10k.pcapng")),
            Some(3),
        ),
    ];
    let out = tempfile::tempdir().unwrap();
    for (i, (s, g, input, size)) in cases.iter().enumerate() {
        let mut pack = mine_lib(s, g, input.as_deref(), *size);
        assert!(!pack.rules.is_empty(), "{}: no rules", s.display());
        assert_minimal(&pack);
        pack.version = format!("1.0.{i}");
        let path = out.path().join(pack.file_name());
        pack.write_new(&path).unwrap();
        let data = match input {
            Some(p) => p.clone(),
            None => {
                let source = pack.provenance.inputs[0].path.clone();
                PathBuf::from(source)
            }
        };
        assert_holds(&path, &data);
    }
}

#[test]
fn reference_files_load_unchanged_and_mine() {
    use miner::spec::{DatasetSpec, GrammarSpec};
    let dir = shared("reference-specs");
    for name in [
        "cidds.json",
        "cidds_simple.json",
        "metadc.json",
        "pcap_tcp.json",
    ] {
        DatasetSpec::load(&dir.join("datasets").join(name)).unwrap_or_else(|e| panic!("{e}"));
    }
    for name in [
        "metadc_agg.json",
        "network_flow.json",
        "pcap_window.json",
        "simple.json",
    ] {
        GrammarSpec::load(&dir.join("grammars").join(name)).unwrap_or_else(|e| panic!("{e}"));
    }
    let cidds = shared("data/cidds-001/cidds_wk2_normal_10k.csv");
    let pairs = [
        ("cidds.json", "network_flow.json", cidds.clone()),
        ("cidds_simple.json", "simple.json", cidds),
        (
            "metadc.json",
            "metadc_agg.json",
            shared("data/metadc-millisampler/metadc_test_3racks_5ctx.csv"),
        ),
        (
            "pcap_tcp.json",
            "pcap_window.json",
            shared("data/pcap-ndpi-apps/alexa-app.pcapng"),
        ),
    ];
    let out = tempfile::tempdir().unwrap();
    for (d, g, input) in pairs {
        let pack = mine(
            &dir.join("datasets").join(d),
            &dir.join("grammars").join(g),
            Some(&input),
            out.path(),
            &["--max-clause-size", "2", "--name", &d.replace(".json", "")],
        );
        assert_holds(&pack, &input);
    }
}

#[test]
fn reference_cidds_yardstick_finds_every_minimal_hitting_set() {
    // FACTS.md: the reference cidds.json + network_flow.json give 94 predicates, 730
    // distinct evidence rows and 185,514 minimal hitting sets in all.
    let dir = shared("reference-specs");
    let options = MineOptions {
        dataset_spec: dir.join("datasets/cidds.json"),
        grammar: dir.join("grammars/network_flow.json"),
        input: Some(shared("data/cidds-001/cidds_wk2_normal_10k.csv")),
        max_clause_size: Some(94),
        max_rules: Some(u64::MAX),
        keep_equivalent: true,
        ..MineOptions::default()
    };
    let r = miner::mine::mine(&options, &AtomicBool::new(false), &Quiet)
        .unwrap()
        .report;
    assert_eq!((r.predicates_generated, r.distinct_rows), (94, 730));
    let rules: u64 = r.rules_by_size.values().sum();
    let all = rules + r.tautologies + r.predicates_valid as u64;
    assert_eq!(
        all, 185_514,
        "rules {rules}, tautologies {}, valid {}",
        r.tautologies, r.predicates_valid
    );
}

#[test]
fn export_then_import_gives_an_equal_pack() {
    let out = tempfile::tempdir().unwrap();
    let pack = mine(
        &spec("metadc.json"),
        &grammar("metadc_rules.json"),
        None,
        out.path(),
        &[],
    );
    let run = out.path().join("run");
    let o = netnomos(&[
        "export",
        "--pack",
        pack.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in [
        "rules.json",
        "manifest.json",
        "fields.json",
        "interpreted_rules.clj",
    ] {
        assert!(run.join(f).exists(), "{f} missing");
    }
    let back = out.path().join("back");
    let o = netnomos(&[
        "import",
        "--rules",
        run.to_str().unwrap(),
        "--out",
        back.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let imported = RulePack::load(Path::new(stdout(&o).trim())).unwrap();
    assert_eq!(imported, RulePack::load(&pack).unwrap());
    // The reference's own rules.json files import too.
    let golden = shared("benchmarks/golden/golden_metadc/rules.json");
    let o = netnomos(&[
        "import",
        "--rules",
        golden.to_str().unwrap(),
        "--out",
        back.to_str().unwrap(),
        "--name",
        "golden",
        "--fields-from",
        pack.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        RulePack::load(Path::new(stdout(&o).trim()))
            .unwrap()
            .rules
            .len(),
        21
    );
}

#[test]
fn a_time_budget_stops_the_search_and_marks_the_pack_partial() {
    let out = tempfile::tempdir().unwrap();
    let dir = shared("reference-specs");
    let o = netnomos(&[
        "mine",
        "--dataset-spec",
        dir.join("datasets/cidds.json").to_str().unwrap(),
        "--grammar",
        dir.join("grammars/network_flow.json").to_str().unwrap(),
        "--input",
        shared("data/cidds-001/cidds_wk2_normal_10k.csv")
            .to_str()
            .unwrap(),
        "--max-clause-size",
        "94",
        "--time-budget",
        "0s",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("PARTIAL: stopped by the time budget"),
        "{}",
        stderr(&o)
    );
    let pack = RulePack::load(Path::new(stdout(&o).trim())).unwrap();
    let search = pack.provenance.search.unwrap();
    assert!(!search.complete);
    assert_eq!(search.stopped_by.as_deref(), Some("time_budget"));
    let text = std::fs::read_to_string(out.path().join("cidds@1.0.0.rules.txt")).unwrap();
    assert!(text.contains("# partial: stopped by time_budget"), "{text}");
}

/// The Netflix capture of the benchmark acceptance is not among the shared files; set
/// `NETNOMOS_NETFLIX_PCAP` to nDPI's `tests/cfgs/default/pcap/netflix.pcap` to run this.
#[test]
fn netflix_windows_entail_every_benchmark_rule_that_holds() {
    let Some(pcap) = std::env::var_os("NETNOMOS_NETFLIX_PCAP").map(PathBuf::from) else {
        eprintln!("skipped: NETNOMOS_NETFLIX_PCAP is not set");
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let golden = shared("benchmarks/golden/golden_netflix/rules.json");
    let pack = mine(
        &spec("tcp_windows.json"),
        &grammar("tcp_windows.json"),
        Some(&pcap),
        out.path(),
        &[],
    );
    assert_holds(&pack, &pcap);
    // Which benchmark rules hold on this trace: check them as a pack of their own.
    let o = netnomos(&[
        "import",
        "--rules",
        golden.to_str().unwrap(),
        "--fields-from",
        pack.to_str().unwrap(),
        "--name",
        "golden-netflix",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let golden_pack = stdout(&o).trim().to_owned();
    let o = netnomos(&[
        "check",
        "--pack",
        &golden_pack,
        "--input",
        pcap.to_str().unwrap(),
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let broken: HashSet<String> = report["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect();
    let (_, m, text) = coverage(&pack, &golden);
    let missed: Vec<String> = not_entailed(&text)
        .into_iter()
        .filter(|id| !broken.contains(id))
        .collect();
    assert!(
        missed.is_empty(),
        "rules that hold but are not entailed: {missed:?}"
    );
    assert_eq!(m, 111);
}

/// Mines MetaDC with the WAT burstiness component through `spec` and `grammar`, and
/// checks what every such pack must show: the component embedded with its hash, rules that
/// tie how bursty a window may be (`call`) to its total — which the domains alone do not
/// give — and the pack holding on its input.
fn mined_with_burstiness(spec_name: &str, grammar_name: &str, call: &str, dir: &Path) -> PathBuf {
    functions::install();
    let pack_path = mine(&spec(spec_name), &grammar(grammar_name), None, dir, &[]);
    let pack = RulePack::load(&pack_path).unwrap();
    assert_eq!(pack.components.len(), 1);
    assert_eq!(pack.components[0].name, "burstiness");
    assert!(pack.components[0].bytes().is_ok());
    let tied = pack
        .rules
        .iter()
        .filter(|r| r.text.contains("IngressBytesAgg") && r.text.contains(call))
        .count();
    assert!(tied > 0, "{:#?}", pack.rules);
    assert_holds(
        &pack_path,
        &shared("data/metadc-millisampler/metadc_test_3racks.csv"),
    );
    pack_path
}

/// A user function (the WAT burstiness component) as a derived field: mined into rules,
/// embedded in the pack with its hash, and recomputed by `check`.
#[test]
fn a_user_function_is_mined_embedded_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let pack_path = mined_with_burstiness(
        "metadc_burstiness.json",
        "metadc_burstiness.json",
        "Burstiness",
        dir.path(),
    );
    let pack = RulePack::load(&pack_path).unwrap();
    let data = shared("data/metadc-millisampler/metadc_test_3racks.csv");

    // A window whose bytes all arrive in one millisecond (same total) breaks such a rule
    // when the total is large: check computes Burstiness with the component and says so.
    let text = std::fs::read_to_string(&data).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (agg, first) = (col("IngressBytesAgg"), col("IngressBytes0"));
    let mut rows: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r[agg].parse::<f64>().unwrap_or(0.0) as i64));
    let mut bursty = rows[0].clone();
    let total = bursty[agg].clone();
    for k in 0..50 {
        bursty[first + k] = if k == 0 { total.clone() } else { "0".into() };
    }
    let file = dir.path().join("bursty.csv");
    std::fs::write(
        &file,
        format!("{}\n{}\n", header.join(","), bursty.join(",")),
    )
    .unwrap();
    let o = netnomos(&[
        "check",
        "--pack",
        pack_path.to_str().unwrap(),
        "--input",
        file.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("Burstiness"), "{}", stdout(&o));

    // A tampered component is refused, naming it.
    let mut tampered = pack;
    tampered.components[0].sha256 = format!("sha256:{}", "0".repeat(64));
    let e = tampered.validate().unwrap_err();
    assert!(e.contains("component `burstiness`"), "{e}");
}

/// A grammar term that calls a user function (`"kind": "function"`), on a spec that knows
/// nothing of it.
#[test]
fn a_grammar_term_calls_a_user_function() {
    let dir = tempfile::tempdir().unwrap();
    mined_with_burstiness(
        "metadc.json",
        "metadc_burstiness_term.json",
        "burstiness(IngressBytes1ms[*])",
        dir.path(),
    );
}
