//! The host against components built from hand-written WAT (tests/components/): the
//! burstiness component against the Rust reference on the shared Millisampler data,
//! and components that misbehave or do not implement the interface.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use functions::{CallError, Function, Host, Inputs, Limits, LoadError, Monotonicity, burstiness};
use support::{capture_logs, component_from_wat, fixture, fixture_wat, millisampler_windows};

fn host() -> Host {
    Host::new(Limits::default()).expect("a host")
}

fn load(host: &Host, name: &str) -> Arc<Function> {
    host.load(&fixture(name))
        .unwrap_or_else(|e| panic!("loading fixture {name}: {e}"))
}

fn load_error(host: &Host, wasm: &[u8]) -> LoadError {
    match host.load(wasm) {
        Ok(function) => panic!("loaded {function:?}, but it should have been refused"),
        Err(e) => e,
    }
}

/// Bitwise equality, or both within 1e-12 relative.
fn same(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
}

#[test]
fn burstiness_metadata_is_read() {
    let host = host();
    let function = load(&host, "burstiness");
    assert_eq!(function.name(), "burstiness");
    assert_eq!(function.sha256().len(), 64);
    let m = function.metadata();
    assert_eq!(m.name, "burstiness");
    assert_eq!(
        m.description,
        "Peak-to-mean ratio of the values: max / mean. 0 for an empty list or when the mean \
         is 0 (an all-zero window)."
    );
    assert_eq!(m.inputs, Inputs::Numbers);
    assert_eq!(m.monotonicity, Monotonicity::Unknown);
    assert_eq!(m.lower_bound, Some(0.0));
    assert_eq!(m.upper_bound, None);
}

#[test]
fn fields_metadata_and_err_results_are_carried() {
    let host = host();
    let strict = load(&host, "strict");
    let m = strict.metadata();
    assert_eq!(
        m.inputs,
        Inputs::Fields(vec!["ingress".to_owned(), "egress".to_owned()])
    );
    assert_eq!(m.monotonicity, Monotonicity::Nondecreasing);
    assert_eq!(
        m.description,
        "Sum of the samples; fails on a negative one."
    );
    assert_eq!(strict.call_fields(&[3.0, 4.5]).expect("a sum"), 7.5);

    let e = strict
        .call_fields(&[3.0, -1.0])
        .expect_err("a negative sample");
    assert!(matches!(e, CallError::Failed { .. }), "{e:?}");
    assert_eq!(e.to_string(), "function `strict` failed: negative sample");
    assert!(!e.is_sandbox_stop());

    let e = strict
        .call_fields(&[1.0])
        .expect_err("one value for two fields");
    assert_eq!(
        e.to_string(),
        "function `strict` takes 2 field value(s) (ingress, egress), but was given 1"
    );
    // over-numbers takes any count.
    assert_eq!(strict.call_numbers(&[1.0, 2.0, 3.0]).expect("a sum"), 6.0);
}

#[test]
fn burstiness_component_equals_the_rust_reference_on_millisampler_windows() {
    let windows = millisampler_windows();
    assert!(windows.len() > 9000, "{} windows", windows.len());
    let host = host();
    let function = load(&host, "burstiness");
    let mut nonzero = 0;
    for (i, window) in windows.iter().enumerate() {
        let expected = burstiness(window);
        let got = function
            .call_numbers(window)
            .unwrap_or_else(|e| panic!("window {i}: {e}"));
        assert!(
            same(got, expected),
            "window {i}: component {got}, reference {expected}"
        );
        let via_fields = function
            .call_fields(window)
            .unwrap_or_else(|e| panic!("window {i}: {e}"));
        assert_eq!(via_fields.to_bits(), got.to_bits(), "window {i}");
        if expected != 0.0 {
            nonzero += 1;
        }
    }
    // All-zero windows (9% of the file) give 0; the rest a ratio in [1, 50].
    assert!(nonzero > windows.len() / 2);
    println!(
        "burstiness: {} windows of metadc_test_3racks.csv agree ({nonzero} non-zero)",
        windows.len()
    );
    // Degenerate inputs, as the contract says.
    assert_eq!(function.call_numbers(&[]).expect("empty"), 0.0);
    assert_eq!(function.call_numbers(&[0.0; 50]).expect("zeros"), 0.0);
}

#[test]
fn burstiness_cold_and_warm_call_times() {
    let window: Vec<f64> = millisampler_windows().swap_remove(0);
    let started = Instant::now();
    let host = host();
    let function = load(&host, "burstiness");
    let first = function.call_numbers(&window).expect("a first call");
    let cold = started.elapsed();
    assert_eq!(first.to_bits(), burstiness(&window).to_bits());

    let calls = 20_000;
    let started = Instant::now();
    for _ in 0..calls {
        let b = function.call_numbers(&window).expect("a call");
        assert_eq!(b.to_bits(), first.to_bits());
    }
    let warm = started.elapsed() / calls;
    println!(
        "burstiness over 50 values: cold (host + compile + instantiate + metadata + first \
         call) {cold:?}, warm {warm:?} per call"
    );
}

#[test]
fn many_threads_share_one_function() {
    let windows = Arc::new(millisampler_windows());
    let host = host();
    let function = load(&host, "burstiness");
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let function = Arc::clone(&function);
            let windows = Arc::clone(&windows);
            std::thread::spawn(move || {
                let mut checked = 0;
                for (i, window) in windows.iter().enumerate().skip(t).step_by(8) {
                    let got = function.call_numbers(window).expect("a call");
                    assert_eq!(
                        got.to_bits(),
                        burstiness(window).to_bits(),
                        "thread {t}, window {i}"
                    );
                    checked += 1;
                }
                checked
            })
        })
        .collect();
    let total: usize = threads
        .into_iter()
        .map(|t| t.join().expect("no thread panics"))
        .sum();
    assert_eq!(total, windows.len());
    let idle = function.idle_instances();
    assert!(
        (1..=8).contains(&idle),
        "8 threads need 1 to 8 instances, and all go back to the pool: {idle}"
    );
}

#[test]
fn the_same_bytes_compile_once() {
    let host = host();
    let wasm = fixture("burstiness");
    assert_eq!(host.compiled_count(), 0);
    let a = host.load(&wasm).expect("a first load");
    assert_eq!(host.compiled_count(), 1);
    let b = host.load(&wasm).expect("a second load");
    assert_eq!(host.compiled_count(), 1, "the second load uses the cache");
    assert_eq!(a.sha256(), b.sha256());
    let _ = host.load(&fixture("strict")).expect("another component");
    assert_eq!(host.compiled_count(), 2);
    assert_eq!(
        a.call_numbers(&[1.0, 3.0]).expect("a"),
        b.call_numbers(&[1.0, 3.0]).expect("b")
    );
}

#[test]
fn an_endless_loop_runs_out_of_fuel_and_the_function_still_works_after() {
    let host = host();
    let spin = load(&host, "spin");
    let e = spin.call_numbers(&[1.0]).expect_err("it loops");
    assert!(matches!(e, CallError::OutOfFuel { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "function `spin` ran out of fuel (50000000 units) — it may loop forever"
    );
    assert!(e.is_sandbox_stop());
    assert_eq!(e.function(), "spin");
    // The call took the one pooled instance (the one that read the metadata); it
    // trapped, so it was dropped rather than put back.
    assert_eq!(spin.idle_instances(), 0);

    // A fuel-exhausted call does not poison a function: burstiness after its own
    // out-of-fuel call still answers.
    let tight = Host::new(Limits {
        fuel_per_call: 300,
        ..Limits::default()
    })
    .expect("a host");
    let function = tight.load(&fixture("burstiness")).expect("loads");
    let long: Vec<f64> = (0..10_000).map(f64::from).collect();
    let e = function
        .call_numbers(&long)
        .expect_err("10,000 values need more fuel");
    assert!(matches!(e, CallError::OutOfFuel { fuel: 300, .. }), "{e:?}");
    let short = [1.0, 2.0, 3.0];
    assert_eq!(
        function.call_numbers(&short).expect("a short call fits"),
        burstiness(&short)
    );
    let e = function.call_numbers(&long).expect_err("again out of fuel");
    assert!(matches!(e, CallError::OutOfFuel { .. }), "{e:?}");
    assert_eq!(
        function.call_numbers(&short).expect("and works again"),
        burstiness(&short)
    );
}

#[test]
fn the_epoch_deadline_stops_a_loop_that_fuel_would_not() {
    let host = Host::new(Limits {
        fuel_per_call: u64::MAX,
        deadline: Duration::from_millis(100),
        ..Limits::default()
    })
    .expect("a host");
    let spin = load(&host, "spin");
    let started = Instant::now();
    let e = spin.call_fields(&[]).expect_err("it loops");
    let took = started.elapsed();
    assert!(matches!(e, CallError::DeadlineExceeded { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "function `spin` exceeded its deadline of 100 ms"
    );
    assert!(took >= Duration::from_millis(100), "stopped after {took:?}");
    println!("the 100 ms deadline stopped the loop after {took:?}");
}

#[test]
fn growing_memory_past_the_limit_traps_naming_the_limit() {
    let host = host();
    let hog = load(&host, "hog");
    let e = hog.call_numbers(&[]).expect_err("it grows forever");
    match &e {
        CallError::MemoryLimitExceeded {
            function,
            limit,
            requested,
        } => {
            assert_eq!(function, "hog");
            assert_eq!(*limit, 64 << 20);
            assert_eq!(*requested, (64 << 20) + 65536);
        }
        other => panic!("expected a memory limit error, got {other:?}"),
    }
    assert_eq!(
        e.to_string(),
        "function `hog` exceeded the memory limit of 67108864 bytes (it asked for 67174400 \
         bytes in all)"
    );

    let small = Host::new(Limits {
        memory_bytes: 1 << 20,
        ..Limits::default()
    })
    .expect("a host");
    let e = small
        .load(&fixture("hog"))
        .expect("loads")
        .call_numbers(&[])
        .expect_err("it grows forever");
    assert!(
        e.to_string().contains("memory limit of 1048576 bytes"),
        "{e}"
    );
}

#[test]
fn a_trap_carries_its_message_and_place() {
    let host = host();
    let crash = load(&host, "crash");
    let e = crash.call_numbers(&[1.0]).expect_err("unreachable");
    let CallError::Trap { function, message } = &e else {
        panic!("expected a trap, got {e:?}");
    };
    assert_eq!(function, "crash");
    assert!(
        message.starts_with("wasm `unreachable` instruction executed"),
        "{message}"
    );
    assert!(message.contains("module offset"), "{message}");
    println!("{e}");

    let e = crash.call_fields(&[]).expect_err("unbounded recursion");
    assert!(
        e.to_string()
            .starts_with("function `crash` trapped: call stack exhausted"),
        "{e}"
    );
}

#[test]
fn non_finite_results_are_refused_naming_function_and_inputs() {
    let host = host();
    let ratio = load(&host, "ratio");
    assert_eq!(ratio.call_numbers(&[3.0, 4.0]).expect("a ratio"), 0.75);

    let e = ratio.call_numbers(&[0.0, 0.0]).expect_err("0/0");
    assert!(matches!(e, CallError::NonFinite { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "function `ratio` returned NaN for inputs [0, 0]"
    );
    assert!(!e.is_sandbox_stop());

    let mut inputs = vec![1.0, 0.0];
    inputs.extend((0..48).map(f64::from));
    let e = ratio.call_numbers(&inputs).expect_err("1/0");
    assert_eq!(
        e.to_string(),
        "function `ratio` returned inf for inputs [1, 0, 0, 1, 2, 3, 4, 5, 6, 7, … (40 more, \
         50 in all)]"
    );

    let e = ratio.call_numbers(&[1.0]).expect_err("one value");
    assert_eq!(e.to_string(), "function `ratio` failed: needs two values");
    // None of these trapped: the instance is still pooled and answers.
    assert_eq!(ratio.call_numbers(&[1.0, 4.0]).expect("a ratio"), 0.25);
}

#[test]
fn a_sleep_past_the_deadline_is_refused_and_a_short_one_allowed() {
    let host = Host::new(Limits {
        deadline: Duration::from_millis(500),
        ..Limits::default()
    })
    .expect("a host");
    let sleeper = load(&host, "sleeper");
    let started = Instant::now();
    let e = sleeper.call_numbers(&[]).expect_err("sleeps forever");
    assert!(matches!(e, CallError::DeadlineExceeded { .. }), "{e:?}");
    let e = sleeper
        .call_fields(&[60_000.0])
        .expect_err("sleeps a minute");
    assert!(matches!(e, CallError::DeadlineExceeded { .. }), "{e:?}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the refused sleeps did not happen"
    );
    assert_eq!(sleeper.call_fields(&[20.0]).expect("sleeps 20 ms"), 20.0);
}

#[test]
fn wasi_resources_a_guest_holds_are_capped() {
    let host = host();
    let sleeper = load(&host, "sleeper");
    let e = sleeper
        .call_fields(&[])
        .expect_err("leaks pollables without end");
    let CallError::Trap { message, .. } = &e else {
        panic!("expected a trap, got {e:?}");
    };
    println!("{e}");
    assert!(
        message.starts_with("it holds more than 10000 WASI resources"),
        "{message}"
    );
}

#[test]
fn the_sandbox_grants_nothing_and_randomness_is_deterministic() {
    let wasm = fixture("probe");
    let a = host().load(&wasm).expect("loads");
    assert_eq!(
        a.call_numbers(&[]).expect("a probe"),
        0.0,
        "no environment, arguments, preopened directories, and a frozen wall clock"
    );
    let b = host().load(&wasm).expect("loads");
    let first = a.call_fields(&[]).expect("a random number");
    assert_eq!(b.call_fields(&[]).expect("a random number"), first);
    assert_ne!(first, 0.0);
}

#[test]
fn guest_output_goes_to_tracing_capped() {
    let host = host();
    let printer = load(&host, "printer");
    let (value, logs) = capture_logs(|| printer.call_numbers(&[]));
    assert_eq!(value.expect("prints"), 1.0);
    assert!(logs.contains("hello from the guest"), "{logs}");
    assert!(logs.contains("function=printer"), "{logs}");
    assert!(logs.contains("stream=\"stdout\""), "{logs}");

    let (value, logs) = capture_logs(|| printer.call_fields(&[]));
    assert_eq!(value.expect("writes 80 KiB, ignoring errors"), 2.0);
    assert!(
        logs.contains("guest output reached its limit"),
        "the cap is reported: {logs}"
    );
    let xs = logs.matches('x').count();
    assert!(
        (60 << 10..=(64 << 10) + 200).contains(&xs),
        "about 64 KiB of output forwarded, not 80: {xs}"
    );
    // The instance with a full pipe was retired; a fresh one prints again.
    let (value, logs) = capture_logs(|| printer.call_numbers(&[]));
    assert_eq!(value.expect("prints"), 1.0);
    assert!(logs.contains("hello from the guest"), "{logs}");
}

#[test]
fn a_core_module_is_not_a_component() {
    let wasm = wat::parse_str(fixture_wat("burstiness")).expect("parses");
    let e = load_error(&host(), &wasm);
    assert!(matches!(e, LoadError::CoreModule { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("core WebAssembly module, not a component"),
        "{e}"
    );
    let e = load_error(&host(), b"#!/bin/sh\necho hi\n");
    assert!(matches!(e, LoadError::NotWasm(_)), "{e:?}");
}

#[test]
fn a_component_exporting_another_interface_is_refused() {
    let e = load_error(&host(), &fixture("other_interface"));
    assert_eq!(
        e.to_string(),
        "the component does not export `netnomos:aggregate/function@0.1.0` (it exports: \
         `test:other/function@0.1.0`)"
    );
}

#[test]
fn a_component_lacking_a_function_is_refused_naming_it() {
    let e = load_error(&host(), &fixture("missing_function"));
    assert_eq!(
        e.to_string(),
        "the component's `netnomos:aggregate/function@0.1.0` lacks function(s) \
         `over-fields` (it has: `metadata`, `over-numbers`)"
    );
}

#[test]
fn a_component_with_wrong_types_is_refused() {
    let e = load_error(&host(), &fixture("wrong_types"));
    assert!(matches!(e, LoadError::WrongTypes { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "the component's `netnomos:aggregate/function@0.1.0` does not match \
         wit/aggregate.wit: function `over-numbers` is `func(list<f32>) -> result<f64, \
         string>`, but must be `func(list<f64>) -> result<f64, string>`"
    );
}

#[test]
fn a_component_importing_something_else_than_wasi_is_refused() {
    let e = load_error(&host(), &fixture("odd_import"));
    assert!(matches!(e, LoadError::ForbiddenImport { .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("the component imports `test:odd/net`"),
        "{e}"
    );
}

#[test]
fn unusable_metadata_is_refused() {
    let wat = fixture_wat("burstiness");
    let name_len = "(i32.store offset=4 (local.get $r) (i32.const 10))";
    assert!(wat.contains(name_len));
    // A name of length 0, and one that runs into the description ("burstiness\0\0…").
    for (len, why) in [("0", "1 to 64 bytes"), ("20", "may hold only ASCII")] {
        let bad = wat.replace(
            name_len,
            &format!("(i32.store offset=4 (local.get $r) (i32.const {len}))"),
        );
        let e = load_error(&host(), &component_from_wat(&bad, None));
        assert!(matches!(e, LoadError::BadMetadata(_)), "{e:?}");
        assert!(e.to_string().contains(why), "{e}");
    }
}

#[test]
fn a_metadata_call_that_traps_is_a_load_error_naming_the_cause() {
    let wat = fixture_wat("burstiness").replace(
        "(local.set $r (call $realloc (i32.const 0) (i32.const 0) (i32.const 8) (i32.const 64)))",
        "(local.set $r (call $realloc (i32.const 0) (i32.const 0) (i32.const 8) (i32.const 64)))\n    unreachable",
    );
    let e = load_error(&host(), &component_from_wat(&wat, None));
    assert!(matches!(e, LoadError::Metadata(_)), "{e:?}");
    assert!(
        e.to_string()
            .contains("wasm `unreachable` instruction executed"),
        "{e}"
    );
}

/// A function whose values leave the bounds it declares fails the call, naming the bound:
/// solvers take declared bounds as facts.
#[test]
fn values_outside_the_declared_bounds_are_errors() {
    use rulepacks::{Over, UserFunction};
    let wat = fixture_wat("burstiness").replace(
        "(f64.store offset=40 (local.get $r) (f64.const 0))",
        "(f64.store offset=40 (local.get $r) (f64.const 100))",
    );
    assert!(
        wat.contains("f64.const 100"),
        "the fixture declares its lower bound"
    );
    let bound = functions::rules::load_source(&host(), wat.as_bytes()).unwrap();
    let e = bound.call(Over::Family, &[1.0, 3.0]).unwrap_err();
    assert!(
        e.contains("function `burstiness` returned 1.5 for inputs [1, 3]")
            && e.contains("outside the bounds it declares (lower 100"),
        "{e}"
    );
}
