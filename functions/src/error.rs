//! Errors of loading a component and of calling a function.

use std::fmt::Write as _;
use std::time::Duration;

use thiserror::Error;

/// How many input values an error message lists before it summarises the rest.
const INPUTS_SHOWN: usize = 10;

/// The longest message from a guest (its `Err` string, a trap text) that an error
/// carries; longer ones are cut, and say so.
pub(crate) const GUEST_MESSAGE_MAX: usize = 1024;

/// Why a component could not be loaded as an aggregation function.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The bytes are not WebAssembly at all.
    #[error("not a WebAssembly component: {0}")]
    NotWasm(String),
    /// A core WebAssembly module was given where a component is needed.
    #[error(
        "this is a core WebAssembly module, not a component: it must be a component \
         exporting `{interface}` (world `aggregate` of wit/aggregate.wit)"
    )]
    CoreModule {
        /// The interface a component must export.
        interface: &'static str,
    },
    /// The component does not validate or compile.
    #[error("invalid component: {0}")]
    Invalid(String),
    /// The component does not export the aggregation interface.
    #[error(
        "the component does not export `{interface}` (it exports: {})",
        list_or_nothing(found)
    )]
    MissingInterface {
        /// The interface a component must export.
        interface: &'static str,
        /// What it exports instead.
        found: Vec<String>,
    },
    /// The component exports the interface, but without some of its functions.
    #[error(
        "the component's `{interface}` lacks function(s) {} (it has: {})",
        quoted(missing),
        list_or_nothing(found)
    )]
    MissingFunctions {
        /// The interface.
        interface: &'static str,
        /// The functions it lacks.
        missing: Vec<String>,
        /// The functions it has.
        found: Vec<String>,
    },
    /// The component exports the interface with other types than the WIT's.
    #[error("the component's `{interface}` does not match wit/aggregate.wit: {detail}")]
    WrongTypes {
        /// The interface.
        interface: &'static str,
        /// What wasmtime found wrong.
        detail: String,
    },
    /// The component imports something the host does not provide.
    #[error(
        "the component imports `{name}`, which the host does not provide: an aggregation \
         function may import only WASI 0.2 interfaces (and gets nothing through them)"
    )]
    ForbiddenImport {
        /// The import's name.
        name: String,
    },
    /// Linking failed (typically a WASI import of a version or shape the host lacks).
    #[error("the component cannot be linked: {0}")]
    Link(String),
    /// Instantiating the component, or calling its `metadata`, failed.
    #[error("reading the component's metadata failed: {0}")]
    Metadata(#[source] Box<CallError>),
    /// The metadata the component gave is unusable.
    #[error("the component's metadata is invalid: {0}")]
    BadMetadata(String),
}

/// Why a call to a function gave no result.  Every message names the function.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CallError {
    /// The call used up its fuel (roughly, its WebAssembly instruction budget).
    #[error("function `{function}` ran out of fuel ({fuel} units) — it may loop forever")]
    OutOfFuel {
        /// The function.
        function: String,
        /// The fuel each call gets.
        fuel: u64,
    },
    /// The call ran past its wall-clock deadline (or tried to sleep past it).
    #[error("function `{function}` exceeded its deadline of {} ms", deadline.as_millis())]
    DeadlineExceeded {
        /// The function.
        function: String,
        /// The deadline each call gets.
        deadline: Duration,
    },
    /// The instance tried to hold more linear memory than the limit allows.
    #[error(
        "function `{function}` exceeded the memory limit of {limit} bytes (it asked for \
         {requested} bytes in all)"
    )]
    MemoryLimitExceeded {
        /// The function.
        function: String,
        /// The limit on all linear memory of one instance, in bytes.
        limit: usize,
        /// The total it asked for.
        requested: usize,
    },
    /// The guest trapped (an `unreachable`, an out-of-bounds access, a stack overflow…).
    #[error("function `{function}` trapped: {message}")]
    Trap {
        /// The function.
        function: String,
        /// The trap's message, and where it happened when known.
        message: String,
    },
    /// The function returned an error of its own.
    #[error("function `{function}` failed: {message}")]
    Failed {
        /// The function.
        function: String,
        /// Its message.
        message: String,
    },
    /// The function returned NaN or an infinity.
    #[error("function `{function}` returned {value} for inputs {inputs}")]
    NonFinite {
        /// The function.
        function: String,
        /// What it returned.
        value: f64,
        /// The inputs, as a short list (see [`format_inputs`](crate::format_inputs)).
        inputs: String,
    },
    /// The function takes named fields and was given another number of values.
    #[error(
        "function `{function}` takes {expected} field value(s) ({fields}), but was given {given}"
    )]
    WrongArity {
        /// The function.
        function: String,
        /// How many fields it names.
        expected: usize,
        /// The field names.
        fields: String,
        /// How many values it was given.
        given: usize,
    },
    /// A fresh instance could not be set up (other than by running out of a limit).
    #[error("function `{function}` could not be instantiated: {message}")]
    Instantiate {
        /// The function.
        function: String,
        /// Why.
        message: String,
    },
}

impl CallError {
    /// The name of the function that failed.
    #[must_use]
    pub fn function(&self) -> &str {
        match self {
            Self::OutOfFuel { function, .. }
            | Self::DeadlineExceeded { function, .. }
            | Self::MemoryLimitExceeded { function, .. }
            | Self::Trap { function, .. }
            | Self::Failed { function, .. }
            | Self::NonFinite { function, .. }
            | Self::WrongArity { function, .. }
            | Self::Instantiate { function, .. } => function,
        }
    }

    /// Whether the failure was the sandbox stopping the guest (fuel, deadline, memory,
    /// trap), as opposed to the function answering with an error or a bad value.
    #[must_use]
    pub fn is_sandbox_stop(&self) -> bool {
        matches!(
            self,
            Self::OutOfFuel { .. }
                | Self::DeadlineExceeded { .. }
                | Self::MemoryLimitExceeded { .. }
                | Self::Trap { .. }
        )
    }
}

/// Input values as an error message shows them: `[1, 2.5, NaN]`, or for a longer list
/// the first ten and how many more (`[1, 2, …, 10, … (40 more, 50 in all)]`).
#[must_use]
pub fn format_inputs(values: &[f64]) -> String {
    let mut out = String::from("[");
    for (i, v) in values.iter().take(INPUTS_SHOWN).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{v}");
    }
    if values.len() > INPUTS_SHOWN {
        let _ = write!(
            out,
            ", … ({} more, {} in all)",
            values.len() - INPUTS_SHOWN,
            values.len()
        );
    }
    out.push(']');
    out
}

/// Cuts a guest-provided message to [`GUEST_MESSAGE_MAX`] bytes (on a character
/// boundary), saying how much was cut.
pub(crate) fn cap_message(message: &str) -> String {
    if message.len() <= GUEST_MESSAGE_MAX {
        return message.to_owned();
    }
    let mut end = GUEST_MESSAGE_MAX;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}… ({} more bytes cut)",
        &message[..end],
        message.len() - end
    )
}

fn list_or_nothing(items: &[String]) -> String {
    if items.is_empty() {
        "nothing".to_owned()
    } else {
        quoted(items)
    }
}

fn quoted(items: &[String]) -> String {
    items
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::{cap_message, format_inputs};

    #[test]
    fn short_inputs_are_listed_whole() {
        assert_eq!(format_inputs(&[]), "[]");
        assert_eq!(format_inputs(&[0.0, 0.5, f64::NAN]), "[0, 0.5, NaN]");
    }

    #[test]
    fn long_inputs_are_truncated_with_a_count() {
        let values: Vec<f64> = (1..=50).map(f64::from).collect();
        assert_eq!(
            format_inputs(&values),
            "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, … (40 more, 50 in all)]"
        );
    }

    #[test]
    fn long_guest_messages_are_cut_on_a_char_boundary() {
        let long = "é".repeat(1000); // 2000 bytes
        let cut = cap_message(&long);
        assert!(cut.starts_with(&"é".repeat(512)));
        assert!(cut.ends_with("… (976 more bytes cut)"), "{cut}");
        assert_eq!(cap_message("short"), "short");
    }
}
