//! Shared helpers of the integration tests: where the data is, and running the CLI.

#![allow(dead_code)]

pub mod decode;
pub mod http;

use std::path::{Path, PathBuf};
use std::process::Output;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file of the shared data next to the repository (as CI lays it out).
pub fn shared(rel: &str) -> PathBuf {
    let path = root().join("..").join("shared").join(rel);
    assert!(
        path.exists(),
        "{} is missing: the tests read the shared datasets from ../shared next to the repository",
        path.display()
    );
    path
}

pub fn spec(name: &str) -> PathBuf {
    root().join("miner/specs/datasets").join(name)
}

pub fn grammar(name: &str) -> PathBuf {
    root().join("miner/specs/grammars").join(name)
}

/// Runs `netnomos` with `args`.
pub fn netnomos(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_netnomos"))
        .args(args)
        .env("NETNOMOS_LOG", "warn")
        .output()
        .expect("the netnomos binary runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `netnomos mine` and returns the written pack's path.
pub fn mine(
    spec: &Path,
    grammar: &Path,
    input: Option<&Path>,
    out: &Path,
    extra: &[&str],
) -> PathBuf {
    let mut args = vec![
        "mine",
        "--quiet",
        "--dataset-spec",
        spec.to_str().unwrap(),
        "--grammar",
        grammar.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    if let Some(i) = input {
        args.extend(["--input", i.to_str().unwrap()]);
    }
    args.extend(extra);
    let o = netnomos(&args);
    assert!(o.status.success(), "mine failed: {}", stderr(&o));
    PathBuf::from(stdout(&o).trim())
}

/// `coverage: N/M` from `netnomos coverage`, and the output lines.
pub fn coverage(pack: &Path, golden: &Path) -> (usize, usize, String) {
    let o = netnomos(&[
        "coverage",
        "--pack",
        pack.to_str().unwrap(),
        "--golden",
        golden.to_str().unwrap(),
    ]);
    let out = stdout(&o);
    let last = out.lines().last().unwrap_or_default();
    let (n, m) = last
        .strip_prefix("coverage: ")
        .and_then(|r| r.split_once('/'))
        .unwrap_or_else(|| panic!("no coverage line in {out}\n{}", stderr(&o)));
    (n.parse().unwrap(), m.parse().unwrap(), out)
}

/// The golden rule ids not entailed according to a coverage output.
pub fn not_entailed(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| l.split('\t').nth(1).is_some_and(|v| v != "entailed"))
        .map(|l| l.split('\t').next().unwrap().to_owned())
        .collect()
}
