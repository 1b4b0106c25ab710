//! User-defined aggregation functions, run as sandboxed WebAssembly components.
//!
//! A rule may call a function that NetNomos does not know, such as the burstiness
//! (peak-to-mean ratio) of a window's 50 one-millisecond samples.  Users supply it as
//! a WebAssembly *component* implementing the world `aggregate` of `wit/aggregate.wit`
//! (package `netnomos:aggregate@0.1.0`): it exports `metadata()`, and
//! `over-numbers(list<f64>)` / `over-fields(list<f64>)`, each returning
//! `result<f64, string>`.  Any toolchain that makes components will do; the tests
//! build one from hand-written WAT and one from Python with `componentize-py`.
//!
//! # Using it
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! let host = functions::Host::new(functions::Limits::default())?;
//! let wasm = std::fs::read("burstiness.wasm")?;
//! let function = host.load(&wasm)?;
//! let b = function.call_numbers(&[0.0, 10.0, 30.0, 0.0])?;
//! assert_eq!(b, functions::burstiness(&[0.0, 10.0, 30.0, 0.0]));
//! # Ok(())
//! # }
//! ```
//!
//! [`Host::load`] refuses, naming what is wrong ([`LoadError`]): bytes that are not a
//! component (a core module included), a component that does not export the interface,
//! lacks one of its functions or gives one another type than the WIT, one that imports
//! anything but WASI, and one whose `metadata()` fails or is unusable.
//!
//! # The sandbox: what a function gets
//!
//! Nothing.  A component may import only WASI 0.2 interfaces (toolchains such as
//! componentize-py always import them); any other import is refused at load time
//! ([`LoadError::ForbiddenImport`]).  Through WASI it gets:
//! - no command-line arguments and no environment variables;
//! - no preopened directories, so no file system at all;
//! - no network: TCP, UDP and name lookup are disabled and every address is denied;
//! - stdin closed; stdout and stderr go to memory pipes of [`Limits::output_bytes`]
//!   each, whose content is forwarded to `tracing` (target `netnomos_functions::guest`)
//!   after each call.  When a pipe is full the guest's stream reports itself closed,
//!   and the instance is retired after the call;
//! - clocks frozen at zero (the wall clock says 1970-01-01), and a deterministic
//!   random source seeded from the component's hash, so that a function is a pure
//!   function of its inputs;
//! - sleeping only within the call's deadline: a sleep that would end after it traps
//!   (the thread would otherwise be blocked in the host, where the deadline cannot
//!   reach it).
//!
//! # Limits
//!
//! Each call (and each instantiation) runs under [`Limits`]:
//! - **fuel** ([`Limits::fuel_per_call`]): the store's fuel is reset before every call;
//!   running out traps ([`CallError::OutOfFuel`]).  This is deterministic: an endless
//!   loop fails the same way on every machine;
//! - **deadline** ([`Limits::deadline`]): a background thread advances the engine's
//!   epoch every [`EPOCH_TICK`]; a call whose deadline passes traps at its next loop
//!   back-edge or function entry ([`CallError::DeadlineExceeded`]).  It bounds what
//!   fuel does not (host calls, a huge fuel setting);
//! - **memory** ([`Limits::memory_bytes`]): all linear memories of one instance together
//!   may not exceed it; a growth past it traps ([`CallError::MemoryLimitExceeded`])
//!   rather than returning -1.  Tables are capped at 2^20 elements, the WASI resources
//!   an instance holds at once (which live in host memory) at 10,000, and one request
//!   for random bytes at 1 MiB;
//! - **output** ([`Limits::output_bytes`]): see above.
//!
//! A result that is NaN or infinite is refused ([`CallError::NonFinite`]), naming the
//! inputs.  No failure of a guest panics the host.
//!
//! # Instances, the pool and the cache
//!
//! [`Host::load`] compiles a component once per distinct content: compiled components
//! are cached by the SHA-256 of their bytes for the host's lifetime
//! ([`Host::compiled_count`] counts real compilations).  A loaded [`Function`] is
//! `Send + Sync`.  It keeps a pool of ready instances (each a store with its own
//! memory); a call takes one, or instantiates a fresh one when all are busy, and puts
//! it back afterwards — unless the guest trapped or hit a limit, in which case the
//! instance is dropped, so that one failed call never poisons the next.  At most
//! [`Limits::max_idle_instances`] are kept.  Instances are reused across calls, so a
//! guest's global state survives from one call to the next of the same instance;
//! functions should not rely on it either way.

mod error;
mod reference;
pub mod rules;
mod sandbox;
mod signature;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::types::{ComponentFunc, ComponentItem};
use wasmtime::component::{Component, Linker, ResourceTableError};
use wasmtime::{Config, Engine, Store, Trap, WasmBacktrace};

pub use error::{CallError, LoadError, format_inputs};
pub use reference::burstiness;
pub use rules::{install, install_with};

use error::cap_message;
use sandbox::{GuestState, SleepPastDeadline, TableLimitHit};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/aggregate.wit",
        world: "aggregate",
    });
}

use bindings::exports::netnomos::aggregate::function as wit;

/// The interface a component must export.
pub const INTERFACE: &str = "netnomos:aggregate/function@0.1.0";

/// The functions [`INTERFACE`] must have.
const INTERFACE_FUNCTIONS: [&str; 3] = ["metadata", "over-numbers", "over-fields"];

/// How often the engine's epoch advances; the granularity of [`Limits::deadline`].
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The longest function name accepted.
const NAME_MAX: usize = 64;

/// What one call of a function may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Fuel for one call (and for one instantiation): about one unit per WebAssembly
    /// instruction.  Default 50,000,000.
    pub fuel_per_call: u64,
    /// Wall-clock time for one call (and for one instantiation), with a granularity of
    /// [`EPOCH_TICK`].  Default 1 s.
    pub deadline: Duration,
    /// All linear memory of one instance, in bytes.  Default 64 MiB (an instance of a
    /// componentize-py component starts at about 13 MiB).
    pub memory_bytes: usize,
    /// What an instance may write to stdout, and to stderr, in bytes.  Default 64 KiB.
    pub output_bytes: usize,
    /// Ready instances kept per function between calls.  Default 16.
    pub max_idle_instances: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            fuel_per_call: 50_000_000,
            deadline: Duration::from_secs(1),
            memory_bytes: 64 << 20,
            output_bytes: 64 << 10,
            max_idle_instances: 16,
        }
    }
}

impl Limits {
    /// The epoch deadline, in ticks beyond the current epoch: the deadline rounded up
    /// to whole ticks, plus one because the current tick is already partly gone.
    fn deadline_ticks(&self) -> u64 {
        let ticks = self.deadline.as_nanos().div_ceil(EPOCH_TICK.as_nanos());
        u64::try_from(ticks).unwrap_or(u64::MAX).saturating_add(1)
    }
}

/// What a function takes, from its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inputs {
    /// The values of a window family, in index order (any count).
    Numbers,
    /// These fields, by name, in this order.
    Fields(Vec<String>),
}

/// How a function's result moves when one input grows and the others stay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Monotonicity {
    /// No promise.
    Unknown,
    /// Never decreases.
    Nondecreasing,
    /// Never increases.
    Nonincreasing,
}

/// What a function says about itself (the WIT record `function-metadata`).
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    /// The name rules and grammars call it by.
    pub name: String,
    /// What it computes, and its result on degenerate input.
    pub description: String,
    /// What it takes.
    pub inputs: Inputs,
    /// A hint the solver and the enforcer may use.
    pub monotonicity: Monotonicity,
    /// A bound the result never goes below, when known.
    pub lower_bound: Option<f64>,
    /// A bound the result never goes above, when known.
    pub upper_bound: Option<f64>,
}

impl From<wit::FunctionMetadata> for Metadata {
    fn from(m: wit::FunctionMetadata) -> Self {
        Self {
            name: m.name,
            description: m.description,
            inputs: match m.inputs {
                wit::Inputs::Numbers => Inputs::Numbers,
                wit::Inputs::Fields(fields) => Inputs::Fields(fields),
            },
            monotonicity: match m.monotonicity {
                wit::Monotonicity::Unknown => Monotonicity::Unknown,
                wit::Monotonicity::Nondecreasing => Monotonicity::Nondecreasing,
                wit::Monotonicity::Nonincreasing => Monotonicity::Nonincreasing,
            },
            lower_bound: m.lower_bound,
            upper_bound: m.upper_bound,
        }
    }
}

impl Metadata {
    /// Refuses metadata that rules could not use.
    fn check(&self) -> Result<(), String> {
        let name = &self.name;
        if name.is_empty() || name.len() > NAME_MAX {
            return Err(format!(
                "the name must have 1 to {NAME_MAX} bytes, not {}",
                name.len()
            ));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!(
                "the name {name:?} may hold only ASCII letters, digits, `_` and `-`"
            ));
        }
        if ["sum", "min", "max", "avg", "mod"]
            .iter()
            .any(|b| name.eq_ignore_ascii_case(b))
        {
            return Err(format!(
                "the name {name:?} is a built-in function of rule formulas (SUM, MIN, MAX, \
                 AVG, MOD): formulas could not call this one"
            ));
        }
        for (which, bound) in [("lower", self.lower_bound), ("upper", self.upper_bound)] {
            if bound.is_some_and(f64::is_nan) {
                return Err(format!("the {which} bound is NaN"));
            }
        }
        if let (Some(lo), Some(hi)) = (self.lower_bound, self.upper_bound)
            && lo > hi
        {
            return Err(format!(
                "the lower bound {lo} is above the upper bound {hi}"
            ));
        }
        Ok(())
    }
}

/// One entry of the compile cache: the compiled component once compiled.  Its lock is
/// held while compiling, so that two loads of the same bytes compile once.
type CacheSlot = Arc<Mutex<Option<Component>>>;

/// The wasmtime engine, its linker, the compile cache and the epoch ticker.  Shared by
/// the [`Host`] and every [`Function`] it loaded, so the ticker runs while any of them
/// lives.
struct Shared {
    engine: Engine,
    linker: Linker<GuestState>,
    limits: Limits,
    cache: Mutex<HashMap<[u8; 32], CacheSlot>>,
    compiled: AtomicUsize,
    _ticker: Ticker,
}

/// The thread that advances the engine's epoch every [`EPOCH_TICK`].  Dropping it
/// stops and joins the thread.
struct Ticker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    fn start(engine: Engine) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("netnomos-functions-epoch".to_owned())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(EPOCH_TICK) {
                    engine.increment_epoch();
                }
            })?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        // Dropping the sender wakes the thread with `Disconnected`.
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Loads aggregation components and runs them under [`Limits`].
///
/// One host holds one wasmtime engine; create one and share it.
pub struct Host {
    shared: Arc<Shared>,
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host")
            .field("limits", &self.shared.limits)
            .field("compiled", &self.compiled_count())
            .finish_non_exhaustive()
    }
}

impl Host {
    /// A host whose functions run under `limits`.
    ///
    /// # Errors
    /// When the engine cannot be configured, or the epoch thread cannot be started.
    pub fn new(limits: Limits) -> anyhow::Result<Self> {
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .consume_fuel(true)
            .epoch_interruption(true);
        let engine = Engine::new(&config)
            .map_err(|e| anyhow::anyhow!("cannot create the wasmtime engine: {e:#}"))?;
        let linker = sandbox::linker(&engine)
            .map_err(|e| anyhow::anyhow!("cannot set up the WASI linker: {e:#}"))?;
        let ticker = Ticker::start(engine.clone())
            .map_err(|e| anyhow::anyhow!("cannot start the epoch thread: {e}"))?;
        Ok(Self {
            shared: Arc::new(Shared {
                engine,
                linker,
                limits,
                cache: Mutex::default(),
                compiled: AtomicUsize::new(0),
                _ticker: ticker,
            }),
        })
    }

    /// The limits functions run under.
    #[must_use]
    pub fn limits(&self) -> &Limits {
        &self.shared.limits
    }

    /// How many components this host has compiled (loads of bytes already compiled
    /// reuse the cached compilation and do not count).
    #[must_use]
    pub fn compiled_count(&self) -> usize {
        self.shared.compiled.load(Ordering::Relaxed)
    }

    /// Compiles (or takes from the cache), checks, links and instantiates a component,
    /// and reads its metadata.
    ///
    /// # Errors
    /// When the bytes are not a component, the component does not implement
    /// [`INTERFACE`] as `wit/aggregate.wit` says, imports anything but WASI, fails while
    /// giving its metadata, or gives unusable metadata.  The error names what is wrong.
    pub fn load(&self, wasm: &[u8]) -> Result<Arc<Function>, LoadError> {
        check_header(wasm)?;
        let digest: [u8; 32] = Sha256::digest(wasm).into();
        let component = self.compile(wasm, digest)?;
        check_exports(&self.shared.engine, &component)?;
        check_imports(&self.shared.engine, &component)?;
        let pre = self
            .shared
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link(cap_message(&format!("{e:#}"))))?;
        let pre = bindings::AggregatePre::new(pre).map_err(|e| LoadError::WrongTypes {
            interface: INTERFACE,
            detail: cap_message(&format!("{e:#}")),
        })?;

        let sha256 = digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        // Until the metadata is read, errors name the function by its hash.
        let provisional = format!("sha256:{}", &sha256[..12]);
        let mut function = Function {
            name: provisional.clone(),
            sha256,
            digest,
            metadata: Metadata {
                name: provisional,
                description: String::new(),
                inputs: Inputs::Numbers,
                monotonicity: Monotonicity::Unknown,
                lower_bound: None,
                upper_bound: None,
            },
            pre,
            shared: Arc::clone(&self.shared),
            pool: Mutex::default(),
        };
        let mut instance = function
            .instantiate()
            .map_err(|e| LoadError::Metadata(Box::new(e)))?;
        let metadata = match function.begin(&mut instance).and_then(|()| {
            instance
                .bindings
                .netnomos_aggregate_function()
                .call_metadata(&mut instance.store)
        }) {
            Ok(m) => Metadata::from(m),
            Err(e) => {
                let e = function.classify(&e, instance.store.data());
                return Err(LoadError::Metadata(Box::new(e)));
            }
        };
        metadata.check().map_err(LoadError::BadMetadata)?;
        function.name.clone_from(&metadata.name);
        function.metadata = metadata;
        function.forward_output(&mut instance);
        function.release(instance);
        tracing::debug!(
            function = %function.name,
            sha256 = %function.sha256,
            "loaded aggregation function"
        );
        Ok(Arc::new(function))
    }

    fn compile(&self, wasm: &[u8], digest: [u8; 32]) -> Result<Component, LoadError> {
        let slot = {
            let mut cache = self
                .shared
                .cache
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            Arc::clone(cache.entry(digest).or_default())
        };
        // Held while compiling, so that two loads of the same bytes compile once; other
        // components compile meanwhile.
        let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(component) = slot.as_ref() {
            return Ok(component.clone());
        }
        let component = Component::new(&self.shared.engine, wasm)
            .map_err(|e| LoadError::Invalid(cap_message(&format!("{e:#}"))))?;
        self.shared.compiled.fetch_add(1, Ordering::Relaxed);
        *slot = Some(component.clone());
        Ok(component)
    }
}

/// Tells a core module, a component and something else apart by the 8-byte header.
fn check_header(wasm: &[u8]) -> Result<(), LoadError> {
    let Some(header) = wasm.get(..8) else {
        return Err(LoadError::NotWasm(format!(
            "{} bytes, shorter than a WebAssembly header",
            wasm.len()
        )));
    };
    if &header[..4] != b"\0asm" {
        return Err(LoadError::NotWasm(
            "the bytes do not start with the `\\0asm` magic".to_owned(),
        ));
    }
    // Bytes 6..8 are the layer: 0 for a core module, 1 for a component.
    match header[6..8] {
        [0, 0] => Err(LoadError::CoreModule {
            interface: INTERFACE,
        }),
        _ => Ok(()),
    }
}

fn check_exports(engine: &Engine, component: &Component) -> Result<(), LoadError> {
    let ty = component.component_type();
    let Some(export) = ty.get_export(engine, INTERFACE) else {
        return Err(LoadError::MissingInterface {
            interface: INTERFACE,
            found: ty
                .exports(engine)
                .map(|(name, _)| name.to_owned())
                .collect(),
        });
    };
    let ComponentItem::ComponentInstance(instance) = export.ty else {
        return Err(LoadError::WrongTypes {
            interface: INTERFACE,
            detail: "it is exported, but not as an interface (instance)".to_owned(),
        });
    };
    let functions: Vec<(String, ComponentFunc)> = instance
        .exports(engine)
        .filter_map(|(name, export)| match export.ty {
            ComponentItem::ComponentFunc(func) => Some((name.to_owned(), func)),
            _ => None,
        })
        .collect();
    let found = || functions.iter().map(|(name, _)| name.clone()).collect();
    let missing: Vec<String> = INTERFACE_FUNCTIONS
        .iter()
        .filter(|f| !functions.iter().any(|(name, _)| name == *f))
        .map(|f| (*f).to_owned())
        .collect();
    if !missing.is_empty() {
        return Err(LoadError::MissingFunctions {
            interface: INTERFACE,
            missing,
            found: found(),
        });
    }
    let wrong: Vec<String> = signature::expected()
        .into_iter()
        .filter_map(|(name, expected)| {
            let (_, func) = functions.iter().find(|(n, _)| n == name)?;
            let actual = signature::describe_func(func);
            (actual != expected)
                .then(|| format!("function `{name}` is `{actual}`, but must be `{expected}`"))
        })
        .collect();
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(LoadError::WrongTypes {
            interface: INTERFACE,
            detail: wrong.join("; "),
        })
    }
}

fn check_imports(engine: &Engine, component: &Component) -> Result<(), LoadError> {
    let ty = component.component_type();
    for (name, _) in ty.imports(engine) {
        if !name.starts_with("wasi:") {
            return Err(LoadError::ForbiddenImport {
                name: name.to_owned(),
            });
        }
    }
    Ok(())
}

/// One ready instance: its store and the typed handle on its exports.
struct Instance {
    store: Store<GuestState>,
    bindings: bindings::Aggregate,
}

/// A loaded aggregation function.  Cheap to call from many threads at once.
pub struct Function {
    name: String,
    sha256: String,
    digest: [u8; 32],
    metadata: Metadata,
    pre: bindings::AggregatePre<GuestState>,
    shared: Arc<Shared>,
    pool: Mutex<Vec<Instance>>,
}

impl fmt::Debug for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Function")
            .field("name", &self.name)
            .field("sha256", &self.sha256)
            .field("metadata", &self.metadata)
            .field("idle_instances", &self.idle_instances())
            .finish_non_exhaustive()
    }
}

/// Which export a call goes to.
#[derive(Clone, Copy)]
enum Entry {
    Numbers,
    Fields,
}

impl Function {
    /// The name rules call it by (from its metadata).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The SHA-256 of the component's bytes, in lowercase hex (shown as `sha256:<hex>`).
    #[must_use]
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// What the function says about itself.
    #[must_use]
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// How many ready instances the pool holds now.
    #[must_use]
    pub fn idle_instances(&self) -> usize {
        self.pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// The function over a window family's numbers (`over-numbers`).
    ///
    /// # Errors
    /// See [`CallError`]: a limit was hit, the guest trapped, returned an error, or
    /// returned a value that is not finite.
    pub fn call_numbers(&self, values: &[f64]) -> Result<f64, CallError> {
        self.call(Entry::Numbers, values)
    }

    /// The function over named field values, in the order its metadata names them
    /// (`over-fields`).
    ///
    /// # Errors
    /// As [`Function::call_numbers`]; also when the metadata names fields and `values`
    /// has another count.
    pub fn call_fields(&self, values: &[f64]) -> Result<f64, CallError> {
        if let Inputs::Fields(fields) = &self.metadata().inputs
            && fields.len() != values.len()
        {
            return Err(CallError::WrongArity {
                function: self.name.clone(),
                expected: fields.len(),
                fields: fields.join(", "),
                given: values.len(),
            });
        }
        self.call(Entry::Fields, values)
    }

    fn call(&self, entry: Entry, values: &[f64]) -> Result<f64, CallError> {
        let pooled = self
            .pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut instance = match pooled {
            Some(instance) => instance,
            None => self.instantiate()?,
        };
        let outcome = self.begin(&mut instance).and_then(|()| {
            let exports = instance.bindings.netnomos_aggregate_function();
            match entry {
                Entry::Numbers => exports.call_over_numbers(&mut instance.store, values),
                Entry::Fields => exports.call_over_fields(&mut instance.store, values),
            }
        });
        self.forward_output(&mut instance);
        let result = match outcome {
            Ok(Ok(value)) if value.is_finite() => Ok(value),
            Ok(Ok(value)) => Err(CallError::NonFinite {
                function: self.name.clone(),
                value,
                inputs: format_inputs(values),
            }),
            Ok(Err(message)) => Err(CallError::Failed {
                function: self.name.clone(),
                message: cap_message(&message),
            }),
            Err(e) => {
                // The store may be mid-way through anything: drop it.
                return Err(self.classify(&e, instance.store.data()));
            }
        };
        self.release(instance);
        result
    }

    /// A fresh instance, instantiated under the limits of one call.
    fn instantiate(&self) -> Result<Instance, CallError> {
        let limits = &self.shared.limits;
        let mut store = Store::new(&self.shared.engine, GuestState::new(limits, &self.digest));
        store.limiter(|state| &mut state.limiter);
        store.epoch_deadline_trap();
        prepare(&mut store, limits).map_err(|e| CallError::Instantiate {
            function: self.name.clone(),
            message: format!("{e:#}"),
        })?;
        match self.pre.instantiate(&mut store) {
            Ok(bindings) => Ok(Instance { store, bindings }),
            Err(e) => Err(self.classify(&e, store.data())),
        }
    }

    /// Resets fuel, deadline and the sleep clock before a call.
    fn begin(&self, instance: &mut Instance) -> wasmtime::Result<()> {
        prepare(&mut instance.store, &self.shared.limits)
    }

    /// Puts an instance back in the pool, unless the pool is full or its output pipes
    /// are (its guest would see closed streams from now on).
    fn release(&self, instance: Instance) {
        let state = instance.store.data();
        if state.stdout.is_full() || state.stderr.is_full() {
            return;
        }
        let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.len() < self.shared.limits.max_idle_instances {
            pool.push(instance);
        }
    }

    /// Sends what the guest wrote since the last call to `tracing`.
    fn forward_output(&self, instance: &mut Instance) {
        let state = instance.store.data_mut();
        for (stream, output) in [("stdout", &mut state.stdout), ("stderr", &mut state.stderr)] {
            if let Some(text) = output.take_new() {
                tracing::info!(
                    target: "netnomos_functions::guest",
                    function = %self.name,
                    stream,
                    "{}",
                    text.trim_end()
                );
            }
            if output.warn_full_once() {
                tracing::warn!(
                    target: "netnomos_functions::guest",
                    function = %self.name,
                    stream,
                    limit = self.shared.limits.output_bytes,
                    "guest output reached its limit; further output is dropped"
                );
            }
        }
    }

    /// Turns a wasmtime error from a call or an instantiation into a [`CallError`].
    fn classify(&self, error: &wasmtime::Error, state: &GuestState) -> CallError {
        let function = self.name.clone();
        let limits = &self.shared.limits;
        if let Some(requested) = state.limiter.exceeded {
            return CallError::MemoryLimitExceeded {
                function,
                limit: state.limiter.limit,
                requested,
            };
        }
        if error.is::<SleepPastDeadline>() {
            return CallError::DeadlineExceeded {
                function,
                deadline: limits.deadline,
            };
        }
        let place = error
            .downcast_ref::<WasmBacktrace>()
            .and_then(|bt| bt.frames().first())
            .map(|frame| {
                let func = frame.func_name().map_or_else(
                    || format!("function #{}", frame.func_index()),
                    str::to_owned,
                );
                match frame.module_offset() {
                    Some(offset) => format!(" (in {func}, at module offset {offset:#x})"),
                    None => format!(" (in {func})"),
                }
            })
            .unwrap_or_default();
        let message = match error.downcast_ref::<Trap>() {
            Some(Trap::OutOfFuel) => {
                return CallError::OutOfFuel {
                    function,
                    fuel: limits.fuel_per_call,
                };
            }
            Some(Trap::Interrupt) => {
                return CallError::DeadlineExceeded {
                    function,
                    deadline: limits.deadline,
                };
            }
            Some(trap) => {
                let text = trap.to_string();
                let text = text.strip_prefix("wasm trap: ").unwrap_or(&text);
                format!("{text}{place}")
            }
            None => {
                if let Some(exit) = error.downcast_ref::<wasmtime_wasi::I32Exit>() {
                    format!("the guest called exit({})", exit.0)
                } else if let Some(hit) = error.downcast_ref::<TableLimitHit>() {
                    format!("{hit}{place}")
                } else if let Some(ResourceTableError::Full) =
                    error.downcast_ref::<ResourceTableError>()
                {
                    format!(
                        "it holds more than {} WASI resources (streams, pollables…) at \
                         once{place}",
                        sandbox::RESOURCES_MAX
                    )
                } else {
                    // A host error: its chain of messages, without the backtrace (which
                    // `place` already sums up).
                    let backtrace = error
                        .downcast_ref::<WasmBacktrace>()
                        .map(ToString::to_string);
                    let text = error
                        .chain()
                        .map(ToString::to_string)
                        .filter(|t| Some(t) != backtrace.as_ref())
                        .map(|t| t.lines().next().unwrap_or_default().to_owned())
                        .collect::<Vec<_>>()
                        .join(": ");
                    format!("{text}{place}")
                }
            }
        };
        CallError::Trap {
            function,
            message: cap_message(&message),
        }
    }
}

/// Sets a store up for one call: full fuel, a fresh epoch deadline, and the start
/// time for the sleep clamp.
fn prepare(store: &mut Store<GuestState>, limits: &Limits) -> wasmtime::Result<()> {
    store.set_fuel(limits.fuel_per_call)?;
    store.set_epoch_deadline(limits.deadline_ticks());
    let state = store.data_mut();
    state.call_started = Instant::now();
    state.deadline = limits.deadline;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{EPOCH_TICK, Limits, Metadata, check_header};
    use crate::{Inputs, LoadError, Monotonicity};
    use std::time::Duration;

    #[test]
    fn deadline_rounds_up_to_ticks_plus_one() {
        let mut limits = Limits::default();
        assert_eq!(limits.deadline_ticks(), 101);
        limits.deadline = EPOCH_TICK / 2;
        assert_eq!(limits.deadline_ticks(), 2);
        limits.deadline = Duration::ZERO;
        assert_eq!(limits.deadline_ticks(), 1);
        limits.deadline = Duration::MAX;
        assert_eq!(limits.deadline_ticks(), u64::MAX);
    }

    #[test]
    fn headers_are_told_apart() {
        assert!(matches!(check_header(b"\0as"), Err(LoadError::NotWasm(_))));
        assert!(matches!(
            check_header(b"hello, world"),
            Err(LoadError::NotWasm(_))
        ));
        assert!(matches!(
            check_header(b"\0asm\x01\0\0\0"),
            Err(LoadError::CoreModule { .. })
        ));
        assert!(check_header(b"\0asm\x0d\0\x01\0").is_ok());
    }

    fn metadata(name: &str, lower: Option<f64>, upper: Option<f64>) -> Metadata {
        Metadata {
            name: name.to_owned(),
            description: String::new(),
            inputs: Inputs::Numbers,
            monotonicity: Monotonicity::Unknown,
            lower_bound: lower,
            upper_bound: upper,
        }
    }

    #[test]
    fn metadata_checks() {
        assert!(metadata("burstiness", Some(0.0), None).check().is_ok());
        assert!(metadata("peak_to-mean2", None, None).check().is_ok());
        assert!(metadata("", None, None).check().is_err());
        assert!(metadata("has space", None, None).check().is_err());
        assert!(metadata(&"x".repeat(65), None, None).check().is_err());
        assert!(metadata("b", Some(f64::NAN), None).check().is_err());
        assert!(metadata("b", Some(2.0), Some(1.0)).check().is_err());
        assert!(metadata("b", Some(1.0), Some(1.0)).check().is_ok());
        // Formulas read these names as their built-ins.
        for builtin in ["sum", "MIN", "Max", "avg", "mod"] {
            let e = metadata(builtin, None, None).check().unwrap_err();
            assert!(e.contains("built-in"), "{e}");
        }
    }
}
