//! The reference implementation's way of enforcing, kept to measure against: every
//! candidate token is appended to the text, the record's complete values are read, and a
//! fresh z3 solver with all the pack's rules decides whether they can still be extended to
//! a record that satisfies the pack.  It checks values only once they are complete, so it
//! is weaker than [`crate::engine`] (a number's digits are not constrained while being
//! written) and far slower; it exists for the benchmark.

use rulepacks::Value;
use rulepacks::record::Spelling;
use solver::Theory;

use crate::compiled::Compiled;
use crate::engine::Vocab;

/// What a text says, read without the pack's rules.
enum Reading {
    /// Values of the complete fields (by schema field); `done` when the record is whole.
    Fields {
        values: Vec<Option<Value>>,
        done: bool,
    },
    Malformed,
}

fn read(pack: &Compiled, text: &str) -> Reading {
    let slots = pack.format.slots();
    let mut values = vec![None; pack.schema.len()];
    let pieces: Vec<&str> = text.split(' ').collect();
    for (k, piece) in pieces.iter().enumerate() {
        let last = k + 1 == pieces.len();
        let Some(slot) = slots.get(k) else {
            return Reading::Malformed;
        };
        let name = format!("{}=", slot.name);
        let Some(value) = piece.strip_prefix(&name) else {
            // Only the last piece may be a field name being written.
            return if last && name.starts_with(piece) {
                Reading::Fields {
                    values,
                    done: false,
                }
            } else {
                Reading::Malformed
            };
        };
        match pack.format.parse_value(k, value) {
            Ok(v) => values[slot.field] = Some(v),
            Err(_) if last => {
                let prefix_ok = match &slot.spelling {
                    Spelling::Choice(choices) => choices.iter().any(|(t, _)| t.starts_with(value)),
                    Spelling::Integer | Spelling::Decimal(_) => value
                        .chars()
                        .all(|c| c.is_ascii_digit() || c == '.' || c == '-'),
                    Spelling::Text => true,
                };
                return if prefix_ok {
                    Reading::Fields {
                        values,
                        done: false,
                    }
                } else {
                    Reading::Malformed
                };
            }
            Err(_) => return Reading::Malformed,
        }
    }
    let done = pieces.len() == slots.len() && values.iter().flatten().count() >= slots.len();
    Reading::Fields { values, done }
}

/// Whether a fresh solver finds a record with these complete values.
fn fresh_check(pack: &Compiled, values: &[Option<Value>], timeout_ms: u32) -> bool {
    let mut theory = Theory::new(&pack.schema, timeout_ms);
    for rule in pack.rules() {
        theory.assert(rule);
    }
    let fixed = pack.fixed_props(values);
    matches!(theory.find_record(&fixed), Ok(Some(_)))
}

/// The tokens the reference would allow after `text`, each checked with a fresh solver.
pub fn reference_mask(pack: &Compiled, text: &str, vocab: &Vocab, timeout_ms: u32) -> Vec<bool> {
    let mut mask = vec![false; vocab.len()];
    for (id, t) in vocab.texts.iter().enumerate() {
        let Some(t) = t else { continue };
        let candidate = format!("{text}{t}");
        if let Reading::Fields { values, .. } = read(pack, &candidate) {
            mask[id] = fresh_check(pack, &values, timeout_ms);
        }
    }
    if let Reading::Fields { values, done: true } = read(pack, text) {
        let ok = fresh_check(pack, &values, timeout_ms);
        for &e in &vocab.eos {
            if let Some(m) = mask.get_mut(e as usize) {
                *m = ok;
            }
        }
    }
    mask
}
