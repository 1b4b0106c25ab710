//! Test support: components built from the WAT fixtures in `tests/components/`, the
//! shared Millisampler data, and a log capture for `tracing`.
//!
//! A fixture is `NAME.wat`, a core module written by hand against the canonical ABI.
//! It is given the world `aggregate` of `wit/aggregate.wit`, or, when `NAME.wit`
//! exists, the (single) world of that file's main package; that file may use the real
//! `netnomos:aggregate` package, or declare a package of that name itself (to make a
//! component that gets the interface wrong).

#![allow(dead_code, reason = "each test binary uses part of the support module")]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use wit_component::{ComponentEncoder, StringEncoding, embed_component_metadata};
use wit_parser::Resolve;

/// This crate's directory.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `wit/aggregate.wit`.
pub fn aggregate_wit() -> PathBuf {
    crate_dir().join("..").join("wit").join("aggregate.wit")
}

/// A file of the shared data, which lies in `../shared` next to the repository.
pub fn shared(rel: &str) -> PathBuf {
    let path = crate_dir().join("..").join("..").join("shared").join(rel);
    assert!(
        path.exists(),
        "{} is missing: the tests read the shared datasets from ../shared next to the repository",
        path.display()
    );
    path
}

/// Wraps the core module `wat` as a component: embeds the world (that of `extra_wit`
/// when given, else `aggregate`) and encodes it with wit-component, validating.
pub fn component_from_wat(wat: &str, extra_wit: Option<&str>) -> Vec<u8> {
    let mut resolve = Resolve::default();
    let main = match extra_wit {
        Some(text) if text.contains("package netnomos:aggregate@") => resolve
            .push_str("fixture.wit", text)
            .expect("the fixture's WIT parses"),
        other => {
            let aggregate = resolve
                .push_file(aggregate_wit())
                .expect("wit/aggregate.wit parses");
            match other {
                Some(text) => resolve
                    .push_str("fixture.wit", text)
                    .expect("the fixture's WIT parses"),
                None => aggregate,
            }
        }
    };
    let world = resolve
        .select_world(&[main], None)
        .expect("the WIT has one world");
    let mut module = wat::parse_str(wat).expect("the fixture's WAT parses");
    embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8)
        .expect("the world embeds");
    ComponentEncoder::default()
        .module(&module)
        .expect("wit-component takes the module")
        .validate(true)
        .encode()
        .expect("the module encodes as a valid component")
}

/// The text of `tests/components/NAME.wat`.
pub fn fixture_wat(name: &str) -> String {
    read(
        &crate_dir()
            .join("tests/components")
            .join(format!("{name}.wat")),
    )
}

/// The component built from fixture `NAME`.
pub fn fixture(name: &str) -> Vec<u8> {
    let dir = crate_dir().join("tests/components");
    let wit_path = dir.join(format!("{name}.wit"));
    let wit = wit_path.exists().then(|| read(&wit_path));
    component_from_wat(&fixture_wat(name), wit.as_deref())
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The 50 one-millisecond ingress samples (`IngressBytes0..49`) of every window of
/// `metadc_test_3racks.csv`, in file order.
pub fn millisampler_windows() -> Vec<Vec<f64>> {
    let path = shared("data/metadc-millisampler/metadc_test_3racks.csv");
    let text = read(&path);
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let columns: Vec<usize> = (0..50)
        .map(|i| {
            let name = format!("IngressBytes{i}");
            header
                .iter()
                .position(|h| *h == name)
                .unwrap_or_else(|| panic!("column {name} in {}", path.display()))
        })
        .collect();
    lines
        .filter(|line| !line.is_empty())
        .enumerate()
        .map(|(row, line)| {
            let cells: Vec<&str> = line.split(',').collect();
            columns
                .iter()
                .map(|&c| {
                    cells[c].parse::<f64>().unwrap_or_else(|e| {
                        panic!("row {row}, column {}: {:?}: {e}", header[c], cells[c])
                    })
                })
                .collect()
        })
        .collect()
}

/// Everything `tracing` logs on this thread while `f` runs, as text.
pub fn capture_logs<T>(f: impl FnOnce() -> T) -> (T, String) {
    let buffer = Arc::new(Mutex::new(Vec::<u8>::new()));
    let writer = SharedWriter(Arc::clone(&buffer));
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let value = tracing::subscriber::with_default(subscriber, f);
    let bytes = buffer
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    (value, String::from_utf8_lossy(&bytes).into_owned())
}

#[derive(Clone)]
struct SharedWriter(Arc<Mutex<Vec<u8>>>);

impl Write for SharedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
