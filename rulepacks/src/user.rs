//! User functions: aggregates written by users as WebAssembly components and embedded in
//! a pack (see the `functions` crate for the host that runs them).
//!
//! This crate does not run WebAssembly.  A formula names a user function by its name
//! (`burstiness(IngressBytes1ms[*])`); to resolve and evaluate such a formula, the
//! [`Schema`](crate::Schema) must have the function bound with
//! [`Schema::bind_function`](crate::Schema::bind_function) — whoever loads the pack does
//! that from its embedded components.  Resolving a call to an unbound function is an error
//! naming it, never a silent pass.

use std::fmt;
use std::sync::{Arc, OnceLock};

/// What a user function is called on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Over {
    /// The members of a window family, in index order.
    Family,
    /// Field values (or terms), in the order written.
    Fields,
}

/// A user function bound to a schema.
pub trait UserFunction: Send + Sync + fmt::Debug {
    /// The name formulas call it by.
    fn name(&self) -> &str;

    /// The function on `values`.  An error (the function failed, ran out of fuel, returned
    /// NaN, …) names the function; the caller adds the rule or record.
    fn call(&self, over: Over, values: &[f64]) -> Result<f64, String>;

    /// The component's bytes, as a pack embeds them.
    fn component_bytes(&self) -> Vec<u8>;

    /// Bounds the result never leaves, when the function declares them.
    fn bounds(&self) -> (Option<f64>, Option<f64>) {
        (None, None)
    }

    /// How many values a call on fields takes, when the function declares its inputs.
    fn arity(&self) -> Option<usize> {
        None
    }
}

/// Turns an embedded component's bytes into a callable function.
pub type Loader = dyn Fn(&[u8]) -> Result<Arc<dyn UserFunction>, String> + Send + Sync;

static LOADER: OnceLock<Box<Loader>> = OnceLock::new();

/// Installs the process's loader of user functions (the `functions` crate's host does
/// this); packs that embed components can be resolved only after it.  The first loader
/// installed stays; installing again returns `false`.
pub fn install_loader(loader: Box<Loader>) -> bool {
    LOADER.set(loader).is_ok()
}

/// Loads embedded component bytes with the installed loader.
pub fn load(bytes: &[u8]) -> Result<Arc<dyn UserFunction>, String> {
    match LOADER.get() {
        Some(loader) => loader(bytes),
        None => {
            Err("this program cannot run user functions (no WebAssembly host installed)".into())
        }
    }
}

/// The `sha256:<hex>` of component bytes, as packs record it.
pub fn component_hash(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use crate::pack::Component;

    #[test]
    fn embedded_components_are_hash_checked() {
        let c = Component::new("burstiness", b"\0asm not really");
        assert_eq!(c.bytes().unwrap(), b"\0asm not really");
        let mut tampered = c.clone();
        tampered.wasm_base64 = Component::new("burstiness", b"\0asm other").wasm_base64;
        let e = tampered.bytes().unwrap_err();
        assert!(
            e.contains("component `burstiness`") && e.contains("not the stored"),
            "{e}"
        );
        let mut garbled = c;
        garbled.wasm_base64 = "not base64!".into();
        assert!(garbled.bytes().unwrap_err().contains("not base64"));
    }

    #[test]
    fn without_a_host_components_cannot_load() {
        // No loader is installed in this test binary.
        let e = super::load(b"\0asm").unwrap_err();
        assert!(e.contains("cannot run user functions"), "{e}");
    }
}
