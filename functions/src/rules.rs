//! Functions as rule packs see them: the bridge to [`rulepacks::UserFunction`].
//!
//! [`install`] gives the process one [`Host`] and lets `rulepacks` load the components
//! that packs embed, so that every program reading packs (the miner, `check`, the
//! solver, the server) resolves and evaluates rules that call user functions the same
//! way.  [`component_from_source`] also accepts a core module in WAT text that
//! implements the interface by hand: it is wrapped into a component with
//! `wit/aggregate.wit` embedded, which is what a pack then stores.

use std::sync::{Arc, OnceLock};

use rulepacks::{Over, UserFunction};
use wit_component::{ComponentEncoder, StringEncoding, embed_component_metadata};

use crate::{Function, Host, Limits, LoadError};

/// `wit/aggregate.wit`, for wrapping WAT modules.
const AGGREGATE_WIT: &str = include_str!("../../wit/aggregate.wit");

/// A loaded function with the bytes it came from.
pub struct Bound {
    function: Arc<Function>,
    bytes: Vec<u8>,
}

impl std::fmt::Debug for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bound")
            .field("name", &self.function.name())
            .field("sha256", &self.function.sha256())
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

impl UserFunction for Bound {
    fn name(&self) -> &str {
        self.function.name()
    }

    /// The function's value; one outside the bounds the function declares is an error
    /// (solvers take the bounds as facts, so a function that breaks them must not pass).
    fn call(&self, over: Over, values: &[f64]) -> Result<f64, String> {
        let result = match over {
            Over::Family => self.function.call_numbers(values),
            Over::Fields => self.function.call_fields(values),
        };
        let v = result.map_err(|e| e.to_string())?;
        let m = self.function.metadata();
        if m.lower_bound.is_some_and(|l| v < l) || m.upper_bound.is_some_and(|u| v > u) {
            let bound = |b: Option<f64>| b.map_or("none".to_owned(), |b| b.to_string());
            return Err(format!(
                "function `{}` returned {v} for inputs {}, outside the bounds it declares \
                 (lower {}, upper {})",
                self.function.name(),
                crate::format_inputs(values),
                bound(m.lower_bound),
                bound(m.upper_bound)
            ));
        }
        Ok(v)
    }

    fn component_bytes(&self) -> Vec<u8> {
        self.bytes.clone()
    }

    fn bounds(&self) -> (Option<f64>, Option<f64>) {
        let m = self.function.metadata();
        (m.lower_bound, m.upper_bound)
    }

    fn arity(&self) -> Option<usize> {
        match &self.function.metadata().inputs {
            crate::Inputs::Fields(names) => Some(names.len()),
            crate::Inputs::Numbers => None,
        }
    }
}

/// Component bytes from a file's content: a binary component as it is, or a core
/// module in WAT text, wrapped into a component of the world `aggregate`.
pub fn component_from_source(source: &[u8]) -> Result<Vec<u8>, String> {
    if source.starts_with(b"\0asm") {
        return Ok(source.to_vec());
    }
    let text = std::str::from_utf8(source)
        .map_err(|_| "neither a WebAssembly binary nor WAT text".to_owned())?;
    let mut module = wat::parse_str(text).map_err(|e| format!("WAT: {e}"))?;
    let mut resolve = wit_parser::Resolve::default();
    let package = resolve
        .push_str("aggregate.wit", AGGREGATE_WIT)
        .map_err(|e| format!("wit/aggregate.wit: {e}"))?;
    let world = resolve
        .select_world(&[package], Some("aggregate"))
        .map_err(|e| format!("wit/aggregate.wit: {e}"))?;
    embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8)
        .map_err(|e| format!("embedding the interface: {e}"))?;
    ComponentEncoder::default()
        .module(&module)
        .and_then(|e| e.validate(true).encode())
        .map_err(|e| format!("the module does not implement `aggregate`: {e:#}"))
}

/// Loads a function from a file's content (see [`component_from_source`]).
pub fn load_source(host: &Host, source: &[u8]) -> Result<Bound, String> {
    let bytes = component_from_source(source)?;
    let function = host.load(&bytes).map_err(|e: LoadError| e.to_string())?;
    Ok(Bound { function, bytes })
}

static HOST: OnceLock<Result<Host, String>> = OnceLock::new();

/// The process's host, made with `limits` on the first call.
fn host_with(limits: Limits) -> Result<&'static Host, String> {
    HOST.get_or_init(|| Host::new(limits).map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(Clone::clone)
}

/// The process's host, with [`Limits::default`] unless [`install_with`] came first.
pub fn host() -> Result<&'static Host, String> {
    host_with(Limits::default())
}

/// Lets `rulepacks` load embedded components with the process's host.  Idempotent.
pub fn install() {
    install_with(Limits::default());
}

/// As [`install`], with these limits (used when this is the first call).
pub fn install_with(limits: Limits) {
    // A host that cannot be made is reported by the first load that needs it.
    let _ = host_with(limits);
    rulepacks::user::install_loader(Box::new(|bytes: &[u8]| {
        let bound = load_source(host()?, bytes)?;
        Ok(Arc::new(bound) as Arc<dyn UserFunction>)
    }));
}
