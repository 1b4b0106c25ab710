//! Bad input gets a clear error naming the file, line, field or rule, a non-zero exit and
//! nothing written; or, for damaged records, a report of what was skipped and why.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;

/// A CIDDS fixture: the first `n` records of the shared sample, with `edit` applied to the
/// lines (0 is the header).
fn cidds_fixture(dir: &Path, n: usize, edit: impl Fn(usize, &str) -> Option<String>) -> PathBuf {
    let text = fs::read_to_string(shared("data/cidds-001/cidds_wk2_normal_10k.csv")).unwrap();
    let lines: Vec<String> = text
        .lines()
        .take(n + 1)
        .enumerate()
        .filter_map(|(i, l)| edit(i, l))
        .collect();
    let path = dir.join("cidds.csv");
    fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

/// A copy of a shipped spec or grammar with `change` applied to its JSON.
fn edited(src: &Path, dir: &Path, change: impl Fn(&mut serde_json::Value)) -> PathBuf {
    let mut value: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(src).unwrap()).unwrap();
    change(&mut value);
    let path = dir.join(src.file_name().unwrap());
    fs::write(&path, serde_json::to_string_pretty(&value).unwrap()).unwrap();
    path
}

/// Mining that must fail: exit 2, `needle` in the message, nothing written.
fn mine_fails(spec: &Path, grammar: &Path, input: &Path, extra: &[&str], needles: &[&str]) {
    let out = tempfile::tempdir().unwrap();
    let mut args = vec![
        "mine",
        "--dataset-spec",
        spec.to_str().unwrap(),
        "--grammar",
        grammar.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
    ];
    args.extend(extra);
    let o = netnomos(&args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "expected an error, got:\n{err}");
    for n in needles {
        assert!(err.contains(n), "`{n}` not in:\n{err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        fs::read_dir(out.path()).unwrap().count(),
        0,
        "something was written"
    );
}

fn mine_ok(spec: &Path, grammar: &Path, input: &Path, extra: &[&str]) -> (String, PathBuf) {
    let out = tempfile::tempdir().unwrap().keep();
    let mut args = vec![
        "mine",
        "--dataset-spec",
        spec.to_str().unwrap(),
        "--grammar",
        grammar.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    let o = netnomos(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    (stderr(&o), PathBuf::from(stdout(&o).trim()))
}

#[test]
fn malformed_csv_rows_are_counted_with_line_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let input = cidds_fixture(dir.path(), 300, |i, l| match i {
        5 => Some(l.rsplit_once(',').unwrap().0.to_owned()),
        9 => Some(format!("{l},extra")),
        _ => Some(l.to_owned()),
    });
    let (err, pack) = mine_ok(
        &spec("cidds.json"),
        &grammar("cidds_flows.json"),
        &input,
        &[],
    );
    assert!(
        err.contains("skipped         2 (malformed record; e.g. line 6, line 10)"),
        "{err}"
    );
    let pack = rulepacks::RulePack::load(&pack).unwrap();
    assert_eq!(
        pack.provenance.statistics["records_skipped"]["malformed record"],
        2
    );
    // Under --strict the first one is fatal, and names its line.
    mine_fails(
        &spec("cidds.json"),
        &grammar("cidds_flows.json"),
        &input,
        &["--strict"],
        &["cidds.csv", "line 6", "expected 12 fields, found 11"],
    );
}

#[test]
fn missing_cells_are_reported_per_field_and_no_column_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    // Blank the Bytes cell (9th column) of three records.
    let input = cidds_fixture(dir.path(), 300, |i, l| {
        if [3, 4, 7].contains(&i) {
            let mut cells: Vec<&str> = l.split(',').collect();
            cells[8] = "";
            Some(cells.join(","))
        } else {
            Some(l.to_owned())
        }
    });
    let (err, pack) = mine_ok(
        &spec("cidds.json"),
        &grammar("cidds_flows.json"),
        &input,
        &[],
    );
    assert!(
        err.contains("skipped         3 (missing `Bytes`; e.g. line 4, line 5, line 8)"),
        "{err}"
    );
    let pack = rulepacks::RulePack::load(&pack).unwrap();
    assert!(
        pack.fields.iter().any(|f| f.name == "Bytes"),
        "the field is kept"
    );
    assert_eq!(pack.provenance.inputs[0].records, 300);
}

#[test]
fn a_truncated_capture_keeps_the_packets_before_the_break() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = fs::read(shared("data/pcap-ndpi-apps/alexa-app.pcapng")).unwrap();
    let cut = dir.path().join("cut.pcapng");
    fs::write(&cut, &bytes[..bytes.len() / 2 + 7]).unwrap();
    let (err, pack) = mine_ok(
        &spec("tcp_windows.json"),
        &grammar("tcp_windows.json"),
        &cut,
        &["--max-clause-size", "2"],
    );
    assert!(
        err.contains("warning") && err.contains("byte offset"),
        "{err}"
    );
    let read = rulepacks::RulePack::load(&pack).unwrap().provenance.inputs[0].records;
    assert!(read > 1000 && read < 3103, "{read} packets kept");
}

#[test]
fn empty_inputs_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.csv");
    fs::write(&empty, "").unwrap();
    mine_fails(
        &spec("cidds.json"),
        &grammar("cidds_flows.json"),
        &empty,
        &[],
        &["empty.csv", "empty"],
    );
    let header_only = cidds_fixture(dir.path(), 0, |_, l| Some(l.to_owned()));
    mine_fails(
        &spec("cidds.json"),
        &grammar("cidds_flows.json"),
        &header_only,
        &[],
        &["cidds.csv", "no records"],
    );
    let not_a_capture = dir.path().join("garbage.pcap");
    fs::write(&not_a_capture, b"this is not a capture at all").unwrap();
    mine_fails(
        &spec("tcp_windows.json"),
        &grammar("tcp_windows.json"),
        &not_a_capture,
        &[],
        &["garbage.pcap"],
    );
}

#[test]
fn specs_naming_unknown_fields_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let input = shared("data/cidds-001/cidds_wk2_normal_10k.csv");
    let s = edited(&spec("cidds.json"), dir.path(), |v| {
        v["include_fields"][0] = "Duraton".into();
    });
    mine_fails(
        &s,
        &grammar("cidds_flows.json"),
        &input,
        &[],
        &["cidds.json", "include_fields", "`Duraton`"],
    );
    let s = edited(&spec("cidds.json"), dir.path(), |v| {
        v["preprocessing"][0]["columns"][0] = "Protocol".into();
    });
    mine_fails(
        &s,
        &grammar("cidds_flows.json"),
        &input,
        &[],
        &[
            "cidds.json",
            "preprocessing[0]",
            "unknown column `Protocol`",
        ],
    );
    let g = edited(&grammar("cidds_flows.json"), dir.path(), |v| {
        v["predicate_templates"][1]["rhs_term"]["field"]["names"][0] = "Bytez".into();
    });
    mine_fails(
        &spec("cidds.json"),
        &g,
        &input,
        &[],
        &[
            "cidds_flows.json",
            "bytes-per-packet",
            "unknown field `Bytez`",
        ],
    );
}

#[test]
fn unknown_keys_are_errors_with_their_json_path() {
    let dir = tempfile::tempdir().unwrap();
    let input = shared("data/cidds-001/cidds_wk2_normal_10k.csv");
    let s = edited(&spec("cidds.json"), dir.path(), |v| {
        v["fields"][3]["rolez"] = serde_json::json!(["src"]);
    });
    mine_fails(
        &s,
        &grammar("cidds_flows.json"),
        &input,
        &[],
        &["cidds.json", "fields[3]", "unknown field `rolez`"],
    );
    let g = edited(&grammar("cidds_flows.json"), dir.path(), |v| {
        v["predicate_templates"][0]["operators"][0] = "=>".into();
    });
    mine_fails(
        &spec("cidds.json"),
        &g,
        &input,
        &[],
        &[
            "cidds_flows.json",
            "predicate_templates[0].operators[0]",
            "=>",
        ],
    );
}

#[test]
fn grammar_values_out_of_range_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let metadc = shared("data/metadc-millisampler/metadc_test_3racks.csv");
    // A `function` term whose component is missing, or that says both what to call the
    // function on and something else.
    let g = edited(&grammar("metadc_burstiness_term.json"), dir.path(), |v| {
        v["predicate_templates"][1]["lhs_term"]["component"] = "missing.wat".into();
    });
    mine_fails(
        &spec("metadc.json"),
        &g,
        &metadc,
        &[],
        &[
            "metadc_burstiness_term.json",
            "burstiness-bounds",
            "missing.wat",
        ],
    );
    let g = edited(&grammar("metadc_burstiness_term.json"), dir.path(), |v| {
        v["predicate_templates"][1]["lhs_term"]["field"] =
            serde_json::json!({"names": ["IngressBytesAgg"]});
    });
    mine_fails(
        &spec("metadc.json"),
        &g,
        &metadc,
        &[],
        &["burstiness-bounds", "one of `family` or `field`"],
    );
    let input = shared("data/cidds-001/cidds_wk2_normal_10k.csv");
    let g = edited(&grammar("cidds_flows.json"), dir.path(), |v| {
        v["predicate_templates"][0]["operators"] = serde_json::json!([]);
    });
    mine_fails(
        &spec("cidds.json"),
        &g,
        &input,
        &[],
        &[
            "cidds_flows.json",
            "categorical-values",
            "`operators` is empty",
        ],
    );
    let g = edited(&grammar("cidds_flows.json"), dir.path(), |v| {
        v["predicate_templates"][0]["rhs_constant"] =
            serde_json::json!({"mode": "profile", "quantiles": [0.5, 1.5]});
    });
    mine_fails(
        &spec("cidds.json"),
        &g,
        &input,
        &[],
        &["cidds_flows.json", "quantile 1.5 is outside [0, 1]"],
    );
    let g = edited(&grammar("cidds_flows.json"), dir.path(), |v| {
        v["max_clause_size"] = 0.into();
    });
    mine_fails(
        &spec("cidds.json"),
        &g,
        &input,
        &[],
        &["cidds_flows.json", "`max_clause_size` is 0"],
    );
    mine_fails(
        &spec("cidds.json"),
        &grammar("cidds_flows.json"),
        &input,
        &["--max-clause-size", "0"],
        &["max_clause_size is 0"],
    );
    mine_fails(
        &spec("cidds.json"),
        &grammar("cidds_flows.json"),
        &input,
        &["--approximate", "1.5"],
        &["--approximate 1.5"],
    );
}

#[test]
fn changed_or_newer_packs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_, pack) = mine_ok(
        &spec("metadc.json"),
        &grammar("metadc_rules.json"),
        &shared("data/metadc-millisampler/metadc_test_3racks.csv"),
        &["--max-clause-size", "1"],
    );
    let text = fs::read_to_string(&pack).unwrap();
    let tampered = dir.path().join("tampered.json");
    fs::write(
        &tampered,
        text.replacen("\"satisfied\": 9553", "\"satisfied\": 9552", 1),
    )
    .unwrap();
    let o = netnomos(&[
        "check",
        "--pack",
        tampered.to_str().unwrap(),
        "--input",
        pack.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("tampered.json: content hash mismatch"),
        "{}",
        stderr(&o)
    );
    let newer = dir.path().join("newer.json");
    fs::write(
        &newer,
        text.replacen("\"format_version\": 1", "\"format_version\": 99", 1),
    )
    .unwrap();
    let o = netnomos(&[
        "entails",
        "--pack",
        newer.to_str().unwrap(),
        "IngressBytesAgg >= 0",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("newer.json: pack format version 99 is newer"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn bad_queries_and_mismatched_records_are_errors() {
    let (_, pack) = mine_ok(
        &spec("metadc.json"),
        &grammar("metadc_rules.json"),
        &shared("data/metadc-millisampler/metadc_test_3racks.csv"),
        &["--max-clause-size", "1"],
    );
    let p = pack.to_str().unwrap();
    let o = netnomos(&["entails", "--pack", p, "IngressBytesAgg >="]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("expected a term"), "{}", stderr(&o));
    let o = netnomos(&["entails", "--pack", p, "IngressBytesAg >= 0"]);
    assert!(
        stderr(&o).contains("unknown field `IngressBytesAg` (did you mean `IngressBytesAgg`?)"),
        "{}",
        stderr(&o)
    );
    let cidds = shared("data/cidds-001/cidds_wk2_normal_10k.csv");
    let o = netnomos(&["check", "--pack", p, "--input", cidds.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("cidds_wk2_normal_10k.csv"),
        "{}",
        stderr(&o)
    );
}

/// User functions in specs and records: a function that fails on some records stops
/// mining naming it, the inputs and the record; `check` uses the pack's own embedded
/// component (the file the spec named may be gone) and refuses a record whose derived
/// value is not what its definition gives.
#[test]
fn user_function_failures_and_derived_values_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let input = cidds_fixture(dir.path(), 300, |_, l| Some(l.to_owned()));
    let component = dir.path().join("ratio.wat");
    fs::copy(
        root().join("functions/tests/components/ratio.wat"),
        &component,
    )
    .unwrap();
    // Tos is 0 on most flows: Bytes / Tos is infinite there.
    let s = edited(&spec("cidds_packet_size.json"), dir.path(), |v| {
        v["derived_variables"][0]["component"] = "ratio.wat".into();
        v["derived_variables"][0]["inputs"] = serde_json::json!(["Bytes", "Tos"]);
    });
    mine_fails(
        &s,
        &grammar("cidds_packet_size.json"),
        &input,
        &[],
        &[
            "cidds_packet_size.json",
            "derived variable `BytesPerPacket` at line",
            "function `ratio` returned inf for inputs",
            "defined on every record",
        ],
    );

    let s = edited(&spec("cidds_packet_size.json"), dir.path(), |v| {
        v["derived_variables"][0]["component"] = "ratio.wat".into();
    });
    let (_, pack) = mine_ok(&s, &grammar("cidds_packet_size.json"), &input, &[]);
    fs::remove_file(&component).unwrap();
    let pack = pack.to_str().unwrap();
    let o = netnomos(&["check", "--pack", pack, "--input", input.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("0 violations"), "{}", stdout(&o));

    // A derived field whose definition reads itself is refused when the pack loads.
    let mut cyclic: rulepacks::RulePack =
        serde_json::from_str(&fs::read_to_string(pack).unwrap()).unwrap();
    for f in &mut cyclic.fields {
        if let Some(rulepacks::Term::User { args, .. }) = &mut f.definition {
            args[0] = rulepacks::Term::symbol("BytesPerPacket");
        }
    }
    cyclic.hash.clear();
    cyclic.seal();
    let cyclic_path = dir.path().join("cyclic.json");
    fs::write(&cyclic_path, cyclic.to_json()).unwrap();
    let o = netnomos(&[
        "check",
        "--pack",
        cyclic_path.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("`BytesPerPacket` depends on itself (BytesPerPacket -> BytesPerPacket)"),
        "{err}"
    );

    // A file with no records: the error names it once.
    let empty = dir.path().join("empty.csv");
    let header = fs::read_to_string(&input).unwrap();
    fs::write(&empty, format!("{}\n", header.lines().next().unwrap())).unwrap();
    let o = netnomos(&["check", "--pack", pack, "--input", empty.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.matches("empty.csv").count(), 1, "{err}");

    // ICMP, 2 packets, 200 bytes: 100 bytes per packet, not the 500 the record says.
    let record = r#"{"Duration":0.0,"Proto":"ICMP","SrcIpAddr":"private_p2p","SrcPt":0,"DstIpAddr":"private_p2p","DstPt":"unknown_port","Packets":2,"Bytes":200,"Flows":1,"Flags":"noflags","Tos":0,"BytesPerPacket":500}"#;
    let lines = dir.path().join("records.jsonl");
    fs::write(&lines, format!("{record}\n")).unwrap();
    let o = netnomos(&["check", "--pack", pack, "--input", lines.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{}{err}", stdout(&o));
    assert!(
        err.contains("`BytesPerPacket` is given as 500, but its definition gives 100"),
        "{err}"
    );
}
