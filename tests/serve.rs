//! The server end to end, on real data: mine a pack from the CIDDS sample, train small
//! models on it, serve them with `netnomos serve` on a loopback port, and check what
//! comes back with `netnomos check`.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier, OnceLock};

use common::http::{Server, get, post, request, stream};
use common::{netnomos, root, stderr, stdout};
use serde_json::{Value as Json, json};

/// What the tests share: the pack and two trained models (field and BPE tokenizers).
struct Setup {
    dir: PathBuf,
    pack: PathBuf,
    field_model: PathBuf,
    bpe_model: PathBuf,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("netnomos-serve-")
            .tempdir()
            .unwrap()
            .keep();
        let packs = dir.join("mined");
        let sample = root().join("miner/data/cidds/cidds_wk2_normal_10k.csv");
        let pack = common::mine(
            &common::spec("cidds.json"),
            &common::grammar("cidds_flows.json"),
            Some(&sample),
            &packs,
            &[],
        );
        let train = |name: &str, extra: &[&str]| {
            let out = dir.join(name);
            let mut args = vec![
                "train",
                "--dataset-spec",
                common::spec("cidds.json")
                    .to_str()
                    .unwrap()
                    .to_owned()
                    .leak(),
                "--input",
                sample.to_str().unwrap().to_owned().leak(),
                "--pack",
                pack.to_str().unwrap().to_owned().leak(),
                "--out",
                out.to_str().unwrap().to_owned().leak(),
                "--steps",
                "300",
                "--seed",
                "7",
            ];
            args.extend(extra);
            let o = netnomos(&args);
            assert!(o.status.success(), "train failed: {}", stderr(&o));
            out
        };
        let field_model = train("model-field", &[]);
        let bpe_model = train("model-bpe", &["--tokenizer", "bpe", "--bpe-size", "300"]);
        Setup {
            dir,
            pack,
            field_model,
            bpe_model,
        }
    })
}

/// A server over a fresh pack directory holding the mined pack; `name` keeps servers apart.
fn serve(name: &str) -> (Server, PathBuf) {
    let s = setup();
    let base = s.dir.join(name);
    let packs = base.join("packs");
    std::fs::create_dir_all(&packs).unwrap();
    std::fs::copy(&s.pack, packs.join(s.pack.file_name().unwrap())).unwrap();
    let config = base.join("serve.toml");
    std::fs::write(
        &config,
        format!(
            "rulepack_dir = \"packs\"\nwatch_interval_ms = 200\n[limits]\nmax_n = 64\n\n\
             [[models]]\nid = \"cidds\"\npath = \"{}\"\n\n[[models]]\nid = \"cidds-bpe\"\npath = \"{}\"\n",
            s.field_model.display(),
            s.bpe_model.display()
        ),
    )
    .unwrap();
    (Server::start(&config), packs)
}

fn synthesize(addr: &str, model: &str, rulepack: Option<&str>, n: usize, seed: u64) -> Json {
    let mut body = json!({
        "model": model,
        "messages": [{"role": "user", "content": ""}],
        "n": n,
        "temperature": 1.0,
        "seed": seed,
    });
    if let Some(p) = rulepack {
        body["rulepack"] = json!(p);
    }
    let r = post(addr, "/v1/chat/completions", &body);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

/// `netnomos check` of `lines` (JSON lines or record texts, by `ext`) against `pack`:
/// (violations, unreadable records, report).
fn check(pack: &Path, lines: &[String], ext: &str) -> (u64, u64, Json) {
    let file = tempfile::Builder::new()
        .suffix(&format!(".{ext}"))
        .tempfile()
        .unwrap();
    std::fs::write(file.path(), lines.join("\n") + "\n").unwrap();
    let o = netnomos(&[
        "check",
        "--pack",
        pack.to_str().unwrap(),
        "--input",
        file.path().to_str().unwrap(),
        "--json",
    ]);
    let report: Json = serde_json::from_str(&stdout(&o))
        .unwrap_or_else(|e| panic!("check output ({e}): {} {}", stdout(&o), stderr(&o)));
    let unreadable = report["unreadable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["records"].as_u64().unwrap())
        .sum();
    (report["violations"].as_u64().unwrap(), unreadable, report)
}

fn records_of(answer: &Json) -> Vec<String> {
    answer["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert!(r.is_object(), "every record is whole: {answer}");
            r.to_string()
        })
        .collect()
}

#[test]
fn enforcement_does_the_work_on_200_synthesized_records() {
    let s = setup();
    let (server, _) = serve("synthesis");
    for model in ["cidds", "cidds-bpe"] {
        let mut with_pack = Vec::new();
        let mut without = Vec::new();
        for (i, n) in [64, 64, 64, 8].into_iter().enumerate() {
            let answer = synthesize(&server.addr, model, Some("cidds"), n, 100 + i as u64);
            assert_eq!(answer["rulepack"], "cidds@1.0.0");
            for c in answer["choices"].as_array().unwrap() {
                assert_eq!(c["finish_reason"], "stop", "no record is cut off: {c}");
            }
            with_pack.extend(records_of(&answer));
            let answer = synthesize(&server.addr, model, None, n, 100 + i as u64);
            assert!(answer["rulepack"].is_null());
            for c in answer["choices"].as_array().unwrap() {
                let text = c["message"]["content"].as_str().unwrap();
                without.push(text.trim().to_owned());
            }
        }
        assert_eq!(with_pack.len(), 200);
        let (violations, unreadable, _) = check(&s.pack, &with_pack, "jsonl");
        assert_eq!(
            (violations, unreadable),
            (0, 0),
            "{model}: the pack holds on every record"
        );
        let (violations, malformed, report) = check(&s.pack, &without, "txt");
        let broken_rules = report["failed"].as_array().map_or(0, Vec::len);
        eprintln!(
            "{model}: with the pack 200/200 records whole, 0 violations; without: {violations} \
             violations of {broken_rules} rules among {} well-formed records, {malformed} malformed",
            200 - malformed
        );
        assert!(
            violations + malformed > 0,
            "{model}: without the pack the model breaks rules, which shows the pack does the work"
        );
    }
}

#[test]
fn fields_fix_values_and_imputation_obeys_the_pack() {
    let s = setup();
    let (server, _) = serve("fields");
    let body = json!({
        "model": "cidds",
        "messages": [{"role": "user", "content": "Duration=0.000 "}],
        "rulepack": "cidds@1.0.0",
        "fields": {"Proto": "UDP", "DstPt": 53},
        "n": 16,
        "temperature": 1.0,
        "seed": 3,
    });
    let answer = post(&server.addr, "/v1/chat/completions", &body).json();
    let records = records_of(&answer);
    for r in &records {
        let r: Json = serde_json::from_str(r).unwrap();
        assert_eq!(
            (&r["Proto"], &r["DstPt"], &r["Duration"]),
            (&json!("UDP"), &json!(53), &json!(0.0))
        );
    }
    assert_eq!(check(&s.pack, &records, "jsonl").0, 0);
    // Streaming gives the same records as the plain answer for the same seed.
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    streamed["stream_options"] = json!({"include_usage": true});
    let reply = stream(&server.addr, "/v1/chat/completions", &streamed, || {});
    let events = reply.events();
    assert_eq!(events.last().unwrap(), "[DONE]");
    let mut texts = vec![String::new(); 16];
    let mut stream_records = vec![Json::Null; 16];
    let mut usage = Json::Null;
    for e in &events[..events.len() - 1] {
        let chunk: Json = serde_json::from_str(e).unwrap();
        if let Some(u) = chunk.get("usage") {
            usage = u.clone();
        }
        for c in chunk["choices"].as_array().unwrap() {
            let i = c["index"].as_u64().unwrap() as usize;
            texts[i].push_str(c["delta"]["content"].as_str().unwrap_or(""));
            if !c["finish_reason"].is_null() {
                stream_records[i] = chunk["record"].clone();
            }
        }
    }
    // Each streamed text is its record (batching may change the logits' last bits, so
    // the stream and the plain answer need not pick the same tokens).
    for (text, record) in texts.iter().zip(&stream_records) {
        assert_eq!(record["Proto"], "UDP", "{text}");
        for key in ["SrcPt", "Bytes", "Tos"] {
            let value = record[key].to_string();
            let written = format!("{key}={}", value.trim_matches('"'));
            assert!(text.contains(&written), "{written} in {text}");
        }
    }
    assert_eq!(
        check(
            &s.pack,
            &stream_records
                .iter()
                .map(Json::to_string)
                .collect::<Vec<_>>(),
            "jsonl"
        )
        .0,
        0
    );
    assert!(usage["completion_tokens"].as_u64().unwrap() > 0);
    // One choice at a time, a seed gives the same record again.
    let mut one = body;
    one["n"] = json!(1);
    let a = post(&server.addr, "/v1/chat/completions", &one).json();
    let b = post(&server.addr, "/v1/chat/completions", &one).json();
    assert_eq!(a["choices"][0]["message"], b["choices"][0]["message"]);
}

#[test]
fn greedy_decoding_matches_the_candle_model() {
    let s = setup();
    let (server, _) = serve("greedy");
    let (model, tokenizer) = trainer::train::load(&s.field_model).unwrap();
    for prefix in [
        "",
        "Duration=0.000 Proto=UDP",
        "Duration=1.",
        "Duration=0.000 Proto=TCP SrcIpAddr=public_p2p",
    ] {
        let ours = trainer::train::greedy_text(&model, &tokenizer, prefix, 80).unwrap();
        let body = json!({"model": "cidds", "prompt": prefix, "temperature": 0, "max_tokens": 80});
        let answer = post(&server.addr, "/v1/completions", &body).json();
        let theirs = answer["choices"][0]["text"].as_str().unwrap();
        assert_eq!(theirs, ours, "greedy continuation of `{prefix}`");
    }
}

#[test]
fn bad_requests_get_openai_errors() {
    let (server, _) = serve("errors");
    let chat = |extra: Json| {
        let mut body = json!({"model": "cidds", "messages": [{"role": "user", "content": ""}]});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        post(&server.addr, "/v1/chat/completions", &body)
    };
    let error = |r: &common::http::Reply| r.json()["error"].clone();
    let r = chat(json!({"rulepack": "flows"}));
    assert_eq!(r.status, 404);
    assert_eq!(error(&r)["param"], "rulepack");
    assert!(
        error(&r)["message"]
            .as_str()
            .unwrap()
            .contains("available: cidds@1.0.0"),
        "{}",
        r.body
    );
    let r = chat(json!({"rulepack": "cidds", "fields": {"Protocol": "TCP"}}));
    assert_eq!(
        (r.status, error(&r)["param"].as_str()),
        (400, Some("fields.Protocol"))
    );
    let r = chat(json!({"rulepack": "cidds", "fields": {"Proto": "SCTP"}}));
    assert_eq!(
        (r.status, error(&r)["param"].as_str()),
        (400, Some("fields.Proto"))
    );
    let r = chat(json!({"rulepack": "cidds", "fields": {"Packets": -1}}));
    assert_eq!(
        (r.status, error(&r)["param"].as_str()),
        (400, Some("fields.Packets"))
    );
    let r = chat(json!({"rulepack": "cidds", "fields": {"Proto": "UDP", "Flags": "hasflags"}}));
    assert_eq!(r.status, 400);
    assert!(
        error(&r)["message"]
            .as_str()
            .unwrap()
            .contains("no record satisfies"),
        "{}",
        r.body
    );
    let r =
        chat(json!({"rulepack": "cidds", "messages": [{"role": "user", "content": "Proto=TCP"}]}));
    assert_eq!(
        (r.status, error(&r)["param"].as_str()),
        (400, Some("messages"))
    );
    let r = chat(json!({"model": "gpt-4"}));
    assert_eq!(
        (r.status, error(&r)["code"].as_str()),
        (404, Some("model_not_found"))
    );
    let r = chat(json!({"n": 0}));
    assert_eq!((r.status, error(&r)["param"].as_str()), (400, Some("n")));
    let r = chat(json!({"fields": {"Proto": "TCP"}}));
    assert_eq!(
        (r.status, error(&r)["param"].as_str()),
        (400, Some("fields"))
    );
    let r = request(&server.addr, "POST", "/v1/chat/completions", "{not json");
    assert_eq!(r.status, 400);
    assert!(error(&r)["message"].as_str().unwrap().contains("not JSON"));
    // Packs: fetch, a duplicate upload, a contradictory one.
    let pack = get(&server.addr, "/v1/rulepacks/cidds");
    assert_eq!(pack.status, 200);
    let r = request(&server.addr, "POST", "/v1/rulepacks", &pack.body);
    assert_eq!(
        (r.status, error(&r)["code"].as_str()),
        (409, Some("rulepack_exists"))
    );
    let mut bad: rulepacks::RulePack = serde_json::from_str(&pack.body).unwrap();
    bad.version = "9.0.0".into();
    let mut first = bad.rules[0].clone();
    first.id = "contradiction".into();
    first.formula = rulepacks::Formula::Not {
        value: Box::new(first.formula.clone()),
    };
    bad.rules.push(first);
    bad.seal();
    let r = request(&server.addr, "POST", "/v1/rulepacks", &bad.to_json());
    assert_eq!(
        (r.status, error(&r)["code"].as_str()),
        (400, Some("contradictory_rulepack"))
    );
    let message = error(&r)["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("contradiction") && message.contains(&bad.rules[0].id),
        "{message}"
    );
    assert_eq!(get(&server.addr, "/v1/rulepacks/cidds@9.0.0").status, 404);
    // The rest of the API.
    let models = get(&server.addr, "/v1/models").json();
    assert_eq!(models["data"][0]["id"], "cidds");
    let health = get(&server.addr, "/health").json();
    assert_eq!(health["status"], "ok");
    let metrics = get(&server.addr, "/metrics").body;
    for line in [
        "netnomos_requests_total{endpoint=\"chat_completions\",status=\"404\"}",
        "netnomos_mask_seconds_bucket{le=\"+Inf\"}",
        "netnomos_rulepacks_loaded 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
}

/// A version of `pack` with one more rule: every flow is TCP.
fn tcp_only(pack: &Path, version: &str) -> rulepacks::RulePack {
    let mut p = rulepacks::RulePack::load(pack).unwrap();
    let proto = p.fields.iter().find(|f| f.name == "Proto").unwrap();
    let rulepacks::Domain::Categorical { values } = &proto.domain else {
        panic!("Proto is categorical")
    };
    let tcp = values
        .iter()
        .find(|c| c.label.as_deref() == Some("TCP"))
        .unwrap()
        .value
        .clone();
    let formula = rulepacks::parse_formula(&format!("Proto = {tcp}")).unwrap();
    let mut rule = p.rules[0].clone();
    rule.id = "tcp-only".into();
    rule.text = "Proto = TCP".into();
    rule.formula = formula;
    rule.predicates.clear();
    p.rules.push(rule);
    p.version = version.into();
    p.hash.clear();
    p.seal();
    p
}

#[test]
fn a_pack_uploaded_under_load_applies_only_to_later_requests() {
    let s = setup();
    let (server, _) = serve("hotswap");
    let in_flight = 20;
    let started = Arc::new(Barrier::new(in_flight + 1));
    let workers: Vec<_> = (0..in_flight)
        .map(|i| {
            let (addr, started) = (server.addr.clone(), started.clone());
            std::thread::spawn(move || {
                let body = json!({
                    "model": "cidds",
                    "messages": [{"role": "user", "content": ""}],
                    "rulepack": "cidds",
                    "n": 4,
                    "temperature": 1.0,
                    "seed": i,
                    "stream": true,
                });
                stream(&addr, "/v1/chat/completions", &body, || {
                    started.wait();
                })
            })
        })
        .collect();
    started.wait();
    let new = tcp_only(&s.pack, "1.1.0");
    let upload = request(&server.addr, "POST", "/v1/rulepacks", &new.to_json());
    assert_eq!(upload.status, 201, "{}", upload.body);
    let mut old_records = Vec::new();
    for w in workers {
        let reply = w.join().unwrap();
        assert_eq!(reply.status, 200);
        let events = reply.events();
        assert_eq!(
            events.last().map(String::as_str),
            Some("[DONE]"),
            "{}",
            reply.body
        );
        for e in &events[..events.len() - 1] {
            let chunk: Json = serde_json::from_str(e).unwrap();
            assert!(chunk.get("error").is_none(), "{e}");
            if let Some(record) = chunk.get("record") {
                assert_eq!(
                    chunk["rulepack"], "cidds@1.0.0",
                    "a running request keeps its version"
                );
                old_records.push(record.to_string());
            }
        }
    }
    assert_eq!(old_records.len(), in_flight * 4);
    assert_eq!(check(&s.pack, &old_records, "jsonl").0, 0);
    let later = synthesize(&server.addr, "cidds", Some("cidds"), 32, 9);
    assert_eq!(later["rulepack"], "cidds@1.1.0");
    let new_path = s.dir.join("hotswap/cidds@1.1.0.json");
    let mut sealed = new;
    sealed.write_new(&new_path).unwrap();
    let records = records_of(&later);
    for r in &records {
        assert!(r.contains("\"Proto\":\"TCP\""), "{r}");
    }
    assert_eq!(check(&new_path, &records, "jsonl").0, 0);
    // The old version stays available by name.
    let pinned = synthesize(&server.addr, "cidds", Some("cidds@1.0.0"), 2, 9);
    assert_eq!(pinned["rulepack"], "cidds@1.0.0");
}

#[test]
fn a_pack_written_to_the_directory_is_served_without_restart() {
    let s = setup();
    let (server, packs) = serve("watch");
    let mut new = tcp_only(&s.pack, "2.0.0");
    new.write_new(&packs.join(new.file_name())).unwrap();
    let mut served = false;
    for _ in 0..100 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let list = get(&server.addr, "/v1/rulepacks").json();
        if list["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == "cidds@2.0.0")
        {
            served = true;
            break;
        }
    }
    assert!(served, "the watcher picks up cidds@2.0.0");
    let answer = synthesize(&server.addr, "cidds", Some("cidds"), 4, 1);
    assert_eq!(answer["rulepack"], "cidds@2.0.0");
    // A file that is not a valid pack is listed as refused, and serving goes on.
    std::fs::write(packs.join("broken@1.0.0.json"), "{\"format_version\": 1}").unwrap();
    let r = request(&server.addr, "POST", "/v1/rulepacks/reload", "");
    let refused = r.json()["refused"].clone();
    assert!(
        refused.to_string().contains("broken@1.0.0.json"),
        "{refused}"
    );
    assert_eq!(
        synthesize(&server.addr, "cidds", Some("cidds"), 1, 2)["rulepack"],
        "cidds@2.0.0"
    );
}

#[test]
fn the_openai_python_client_gets_compliant_records() {
    let s = setup();
    let (server, _) = serve("python");
    let script = root().join("tests/python/openai_client.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(server.url())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{} failed (install the client with `pip install openai`):\n{}\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let records: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(records.len() >= 8, "{records:?}");
    assert_eq!(
        check(&s.pack, &records, "jsonl"),
        (0, 0, check(&s.pack, &records, "jsonl").2)
    );
}

/// The packet-size pack (mined with the `ratio` component) with its component replaced by
/// `wasm`, named `name`: what a buggy or hostile function looks like to the server.
fn with_component(pack: &Path, name: &str, wasm: &[u8], version: &str) -> rulepacks::RulePack {
    let mut p = rulepacks::RulePack::load(pack).unwrap();
    p.components = vec![rulepacks::pack::Component::new(name, wasm)];
    for f in &mut p.fields {
        if let Some(rulepacks::Term::User { function, .. }) = &mut f.definition {
            *function = name.to_owned();
        }
    }
    p.name = format!("packet_size_{name}");
    p.version = version.into();
    p.hash.clear();
    p.seal();
    p
}

/// Rules over a user function (mean packet size, `ratio(Bytes, Packets)`, a WebAssembly
/// component embedded in the pack) are enforced by the server; functions that loop, grow
/// memory or crash fail only the requests that use them, with errors naming them, and a
/// component that is not one is refused at upload — while normal requests keep being
/// served throughout.
#[test]
fn user_function_rules_are_enforced_and_failing_functions_stay_contained() {
    functions::install();
    let s = setup();
    let (server, packs) = serve("functions");
    let mined = s.dir.join("functions-mined");
    let pack = common::mine(
        &common::spec("cidds_packet_size.json"),
        &common::grammar("cidds_packet_size.json"),
        None,
        &mined,
        &[],
    );
    std::fs::copy(&pack, packs.join(pack.file_name().unwrap())).unwrap();
    let r = request(&server.addr, "POST", "/v1/rulepacks/reload", "");
    assert_eq!(r.status, 200, "{}", r.body);

    // A steady load of normal requests, in the background, for the whole test.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (addr, stop) = (server.addr.clone(), stop.clone());
        let pack = s.pack.clone();
        std::thread::spawn(move || {
            let mut served = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let answer = synthesize(&addr, "cidds", Some("cidds"), 4, served);
                assert_eq!(check(&pack, &records_of(&answer), "jsonl").0, 0);
                served += 1;
            }
            served
        })
    };

    // Enforced: every record keeps the packet-size rules (check recomputes the field with
    // the component); the same requests without the pack break them.
    let mut with_pack = Vec::new();
    let mut without = Vec::new();
    for seed in 0..3 {
        let answer = synthesize(&server.addr, "cidds", Some("cidds_packet_size"), 16, seed);
        assert_eq!(answer["rulepack"], "cidds_packet_size@1.0.0");
        with_pack.extend(records_of(&answer));
        let answer = synthesize(&server.addr, "cidds", None, 16, seed);
        for c in answer["choices"].as_array().unwrap() {
            without.push(c["message"]["content"].as_str().unwrap().trim().to_owned());
        }
    }
    let (violations, unreadable, _) = check(&pack, &with_pack, "jsonl");
    assert_eq!((violations, unreadable), (0, 0), "{with_pack:#?}");
    let (violations, malformed, _) = check(&pack, &without, "txt");
    eprintln!(
        "packet-size rules: 48 records with the pack, 0 violations; without it {violations} \
         violations and {malformed} malformed records"
    );
    assert!(
        violations + malformed > 0,
        "without the pack the model breaks the packet-size rules: the pack does the work"
    );

    // Functions that fail: each request that needs one gets an error naming it.
    let fixture = |name: &str| {
        let wat = std::fs::read(root().join(format!("functions/tests/components/{name}.wat")));
        functions::rules::component_from_source(&wat.unwrap()).unwrap()
    };
    let cases: [(&str, &[&str]); 3] = [
        ("spin", &["ran out of fuel", "deadline"]),
        ("hog", &["memory limit"]),
        ("crash", &["trapped"]),
    ];
    for (name, why) in cases {
        let bad = with_component(&pack, name, &fixture(name), "1.0.0");
        let upload = request(&server.addr, "POST", "/v1/rulepacks", &bad.to_json());
        assert_eq!(upload.status, 201, "{}", upload.body);
        let body = json!({
            "model": "cidds",
            "messages": [{"role": "user", "content": ""}],
            "rulepack": bad.id(),
            "seed": 1,
        });
        let r = post(&server.addr, "/v1/chat/completions", &body);
        assert_ne!(r.status, 200, "{}", r.body);
        let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(
            message.contains(&format!("function `{name}`"))
                && why.iter().any(|w| message.contains(w)),
            "{name}: {message}"
        );
    }
    // A component that is not one (a bare core module) is refused at upload.
    let core_module = b"\0asm\x01\0\0\0";
    let bad = with_component(&pack, "ratio", core_module, "2.0.0");
    let upload = request(&server.addr, "POST", "/v1/rulepacks", &bad.to_json());
    assert_eq!(upload.status, 400, "{}", upload.body);
    assert!(upload.body.contains("ratio"), "{}", upload.body);

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let served = load.join().unwrap();
    assert!(served > 0, "normal requests were served meanwhile");
    eprintln!("{served} normal requests served meanwhile, all compliant");
}
