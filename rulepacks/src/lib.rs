//! The rule-pack format of NetNomos.
//!
//! A rule pack is the artifact between the miner and the server: the schema of a record
//! (fields, types, roles, domains, window families), the rules that hold on every record of
//! the data it was learned from (typed formulas with readable text and support counts), and
//! where they came from (input files with their hashes, the dataset spec and grammar, every
//! mining parameter).  Packs are immutable and content-addressed: see [`pack`] for the hash
//! and the versioning rules.
//!
//! This crate knows nothing of how packs are made or enforced.  It reads, writes, verifies
//! and evaluates them:
//!
//! - [`formula`]: the formula tree and its JSON form (the reference `rules.json` shape);
//! - [`parse`]: the text syntax (the reference query language);
//! - [`schema`]: fields and domains;
//! - [`resolve`]: type-checking a formula against a schema, unrolling quantifiers;
//! - [`eval`]: truth on a record, with exact integer arithmetic;
//! - [`render`]: readable text with categorical labels;
//! - [`reference`]: import from and export to reference run directories;
//! - [`user`]: user functions (WebAssembly components) as seen by formulas.

pub mod eval;
pub mod formula;
pub mod pack;
pub mod parse;
pub mod record;
pub mod reference;
pub mod render;
pub mod resolve;
pub mod schema;
pub mod user;
pub mod value;

pub use formula::{ArithOp, CmpOp, Formula, Func, Index, Term};
pub use pack::{PackError, RulePack};
pub use parse::parse_formula;
pub use schema::{Category, Domain, Field, FieldId, Role, Schema, ValueType};
pub use user::{Over, UserFunction};
pub use value::{Num, Value};

/// The JSON Schema of a pack file, generated from the types.
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(RulePack);
    serde_json::to_value(schema).expect("a JSON Schema always serializes")
}

#[cfg(test)]
mod tests {
    /// The JSON Schema in the repository is the one the code generates.  Regenerate it with
    /// `UPDATE_SCHEMA=1 cargo test -p netnomos-rulepacks schema`.
    #[test]
    fn checked_in_schema_matches_the_code() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rulepack.schema.json");
        let generated = serde_json::to_string_pretty(&super::json_schema()).unwrap() + "\n";
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let stored = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            stored == generated,
            "{} is out of date with the pack types; run `UPDATE_SCHEMA=1 cargo test -p netnomos-rulepacks schema`",
            path.display()
        );
    }
}
