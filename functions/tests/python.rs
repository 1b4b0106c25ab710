//! A component written in Python (tests/python/burstiness/app.py), built with
//! componentize-py, against the Rust reference on the shared Millisampler data.
//!
//! componentize-py must be installed (see [`PIP_INSTALL`]); without it this test fails,
//! saying how to install it.  The built component is kept in the target directory,
//! keyed by the SHA-256 of the app, the WIT and the componentize-py version, so it is
//! rebuilt only when one of them changes.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use functions::{CallError, Function, Host, Inputs, Limits, Monotonicity, burstiness};
use sha2::{Digest, Sha256};
use support::{aggregate_wit, crate_dir, millisampler_windows};

/// The componentize-py release these tests are pinned to.
const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// How to install it.
const PIP_INSTALL: &str = "python3 -m pip install componentize-py==0.25.1";

/// How many windows the Python component is compared on.
const WINDOWS: usize = 400;

/// `componentize-py --version`, or a failure saying how to install it.
fn componentize_py_version() -> String {
    let output = Command::new("componentize-py").arg("--version").output();
    let output = match output {
        Ok(output) if output.status.success() => output,
        Ok(output) => panic!(
            "`componentize-py --version` failed ({}): {}\ninstall it with: {PIP_INSTALL}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(e) => panic!(
            "componentize-py is not installed ({e}); this test builds a Python component \
             with it.  Install it with: {PIP_INSTALL}"
        ),
    };
    let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert_eq!(
        version,
        format!("componentize-py {COMPONENTIZE_PY_VERSION}"),
        "the tests are pinned to componentize-py {COMPONENTIZE_PY_VERSION}; install it with: \
         {PIP_INSTALL}"
    );
    version
}

/// Builds tests/python/burstiness/app.py into a component (or reuses the one built from
/// the same app, WIT and componentize-py), returning its path and the build time.
fn build_python_component() -> (PathBuf, Option<Duration>) {
    let version = componentize_py_version();
    let app_dir = crate_dir().join("tests/python/burstiness");
    let wit = aggregate_wit();
    let key: String = Sha256::new()
        .chain_update(read(&app_dir.join("app.py")))
        .chain_update(read(&wit))
        .chain_update(version.as_bytes())
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("python-components");
    let wasm = out_dir.join(format!("burstiness-{key}.wasm"));
    if wasm.exists() {
        return (wasm, None);
    }

    // Build in a fresh directory (componentize-py writes nothing else there, but the
    // component appears under its final name only once complete).
    let work = out_dir.join(format!("build-{key}-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("a build directory");
    let partial = work.join("burstiness.wasm");
    let started = Instant::now();
    let output = Command::new("componentize-py")
        .current_dir(&work)
        .arg("-d")
        .arg(&wit)
        .args(["-w", "aggregate", "componentize", "app", "-p"])
        .arg(&app_dir)
        .arg("-o")
        .arg(&partial)
        .output()
        .expect("componentize-py runs");
    assert!(
        output.status.success(),
        "componentize-py failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let took = started.elapsed();
    std::fs::rename(&partial, &wasm).expect("the component moves into place");
    let _ = std::fs::remove_dir_all(&work);
    (wasm, Some(took))
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// One host and the loaded Python function, shared by the tests (compiling the 18 MB
/// component takes tens of seconds in a debug build).
fn python_function() -> &'static Arc<Function> {
    static LOADED: OnceLock<(Host, Arc<Function>)> = OnceLock::new();
    let (_, function) = LOADED.get_or_init(|| {
        let (path, built) = build_python_component();
        match built {
            Some(took) => println!("componentize-py built {} in {took:?}", path.display()),
            None => println!("reusing {}", path.display()),
        }
        let wasm = read(&path);
        // The default limits suffice: CPython's instance takes about 13 MiB of the 64.
        let host = Host::new(Limits::default()).expect("a host");
        let started = Instant::now();
        let function = host.load(&wasm).unwrap_or_else(|e| panic!("loading: {e}"));
        println!(
            "python component: {} bytes, loaded (compile + instantiate + metadata) in {:?}",
            wasm.len(),
            started.elapsed()
        );
        (host, function)
    });
    function
}

#[test]
fn python_burstiness_equals_the_rust_reference() {
    let function = python_function();
    let m = function.metadata();
    assert_eq!(function.name(), "burstiness");
    assert_eq!(m.inputs, Inputs::Numbers);
    assert_eq!(m.monotonicity, Monotonicity::Unknown);
    assert_eq!(m.lower_bound, Some(0.0));
    assert_eq!(m.upper_bound, None);
    assert!(m.description.starts_with("Peak-to-mean ratio"), "{m:?}");

    let windows = millisampler_windows();
    let started = Instant::now();
    let mut nonzero = 0;
    for (i, window) in windows.iter().enumerate().take(WINDOWS) {
        let got = function
            .call_numbers(window)
            .unwrap_or_else(|e| panic!("window {i}: {e}"));
        let expected = burstiness(window);
        assert_eq!(
            got.to_bits(),
            expected.to_bits(),
            "window {i}: Python {got}, reference {expected}"
        );
        if expected != 0.0 {
            nonzero += 1;
        }
    }
    let per_call = started.elapsed() / u32::try_from(WINDOWS).expect("fits");
    assert!(nonzero > WINDOWS / 2, "{nonzero} non-zero windows");
    println!(
        "python burstiness: {WINDOWS} windows of metadc_test_3racks.csv agree with the \
         reference ({nonzero} non-zero), {per_call:?} per call"
    );

    assert_eq!(function.call_numbers(&[]).expect("empty"), 0.0);
    assert_eq!(function.call_numbers(&[0.0; 50]).expect("zeros"), 0.0);
}

#[test]
fn python_errors_are_carried_and_do_not_poison_the_function() {
    let function = python_function();
    // `raise Err(...)` in Python is the WIT `err`.
    let e = function
        .call_fields(&[1.0, f64::NAN])
        .expect_err("a NaN field");
    assert!(matches!(e, CallError::Failed { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "function `burstiness` failed: a field value is NaN"
    );
    assert_eq!(function.call_fields(&[1.0, 3.0]).expect("two fields"), 1.5);

    // NaN in over-numbers propagates to the result, which the host refuses.
    let e = function
        .call_numbers(&[1.0, f64::NAN])
        .expect_err("a NaN result");
    assert_eq!(
        e.to_string(),
        "function `burstiness` returned NaN for inputs [1, NaN]"
    );
    assert_eq!(function.call_numbers(&[2.0, 0.0]).expect("works"), 2.0);
}
