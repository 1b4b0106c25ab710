//! Function types of a component's exports, written as WIT, to check them against the
//! interface at load time and to say what differs.
//!
//! wasmtime checks an export's type only when the export is first looked up; checking
//! here instead lets [`Host::load`](crate::Host::load) refuse a component that gets a
//! type wrong, naming the function and both types.

use wasmtime::component::types::{ComponentFunc, Type};

/// The WIT-like text of `function-metadata` in `wit/aggregate.wit`.
const METADATA_RECORD: &str = "record { name: string, description: string, inputs: variant { \
     numbers, fields(list<string>) }, monotonicity: enum { unknown, nondecreasing, \
     nonincreasing }, lower-bound: option<f64>, upper-bound: option<f64> }";

/// Each function of the interface and its type, as [`describe_func`] writes it.
pub(crate) fn expected() -> [(&'static str, String); 3] {
    [
        ("metadata", format!("func() -> {METADATA_RECORD}")),
        (
            "over-numbers",
            "func(list<f64>) -> result<f64, string>".to_owned(),
        ),
        (
            "over-fields",
            "func(list<f64>) -> result<f64, string>".to_owned(),
        ),
    ]
}

/// A function type as WIT would write it, without parameter names (which do not
/// matter when linking).
pub(crate) fn describe_func(func: &ComponentFunc) -> String {
    let params: Vec<String> = func.params().map(|(_, ty)| describe(&ty)).collect();
    let results: Vec<String> = func.results().map(|ty| describe(&ty)).collect();
    let mut text = format!("func({})", params.join(", "));
    match results.as_slice() {
        [] => {}
        [one] => {
            text.push_str(" -> ");
            text.push_str(one);
        }
        many => {
            text.push_str(" -> (");
            text.push_str(&many.join(", "));
            text.push(')');
        }
    }
    if func.async_() {
        text.insert_str(0, "async ");
    }
    text
}

/// A value type as WIT would write it (records, variants and enums spelled out).
fn describe(ty: &Type) -> String {
    match ty {
        Type::Bool => "bool".to_owned(),
        Type::S8 => "s8".to_owned(),
        Type::U8 => "u8".to_owned(),
        Type::S16 => "s16".to_owned(),
        Type::U16 => "u16".to_owned(),
        Type::S32 => "s32".to_owned(),
        Type::U32 => "u32".to_owned(),
        Type::S64 => "s64".to_owned(),
        Type::U64 => "u64".to_owned(),
        Type::Float32 => "f32".to_owned(),
        Type::Float64 => "f64".to_owned(),
        Type::Char => "char".to_owned(),
        Type::String => "string".to_owned(),
        Type::List(list) => format!("list<{}>", describe(&list.ty())),
        Type::Option(option) => format!("option<{}>", describe(&option.ty())),
        Type::Result(result) => {
            let part = |t: Option<Type>| t.as_ref().map_or_else(|| "_".to_owned(), describe);
            format!("result<{}, {}>", part(result.ok()), part(result.err()))
        }
        Type::Tuple(tuple) => {
            let types: Vec<String> = tuple.types().map(|t| describe(&t)).collect();
            format!("tuple<{}>", types.join(", "))
        }
        Type::Record(record) => {
            let fields: Vec<String> = record
                .fields()
                .map(|f| format!("{}: {}", f.name, describe(&f.ty)))
                .collect();
            format!("record {{ {} }}", fields.join(", "))
        }
        Type::Variant(variant) => {
            let cases: Vec<String> = variant
                .cases()
                .map(|c| match &c.ty {
                    Some(payload) => format!("{}({})", c.name, describe(payload)),
                    None => c.name.to_owned(),
                })
                .collect();
            format!("variant {{ {} }}", cases.join(", "))
        }
        Type::Enum(e) => format!("enum {{ {} }}", e.names().collect::<Vec<_>>().join(", ")),
        Type::Flags(flags) => format!(
            "flags {{ {} }}",
            flags.names().collect::<Vec<_>>().join(", ")
        ),
        Type::Own(_) => "own<resource>".to_owned(),
        Type::Borrow(_) => "borrow<resource>".to_owned(),
        Type::Map(_) => "map<…>".to_owned(),
        Type::Future(_) => "future<…>".to_owned(),
        Type::Stream(_) => "stream<…>".to_owned(),
        Type::ErrorContext => "error-context".to_owned(),
        Type::FixedLengthList(_) => "list<…, N>".to_owned(),
    }
}
