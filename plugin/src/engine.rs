//! Which tokens may come next: the record's text so far, checked against the pack.
//!
//! The text of a record in the making is parsed into a state (the values of the fields
//! written so far, and where in the next field the text ends); a token is allowed when its
//! text, appended, keeps the record well-formed and leaves every field's value inside the
//! set the pack allows for it ([`Compiled::allowed`]): a field name must be the next
//! field's, a number's digits must start some allowed number, a categorical value's
//! characters some allowed label, and a separator may only end an allowed value.  Because
//! every value in those sets has a completion (the sets are exact, or for fields tied to a
//! user function verified subsets), every allowed token leads to a record that can be
//! completed (no dead ends), and no record that breaks a rule can be written
//! (soundness).  Tokens of any length work, so word-level and BPE vocabularies alike.
//!
//! # Cost
//!
//! Per step: parsing the text (a few hundred bytes), one cached set lookup per field, and
//! a string test per token of the vocabulary.  Solver calls happen only the first time a
//! field is reached with a given assignment (see [`crate::compiled`]).

use std::sync::Arc;

use rulepacks::Value;
use rulepacks::record::Spelling;

use crate::compiled::{Compiled, EnforceError, SlotSet};
use crate::sets::has_prefix;

/// The text of each token of a vocabulary, and which tokens end a record.
#[derive(Clone, Debug)]
pub struct Vocab {
    /// The text a token writes; `None` for special tokens, which are never allowed.
    pub texts: Vec<Option<String>>,
    /// Tokens that end the record (end of sequence).
    pub eos: Vec<u32>,
}

impl Vocab {
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }
}

/// Where the text of a record stops.
#[derive(Clone, Debug, PartialEq)]
enum Phase {
    /// In the name of the current field: this many characters of `name=` written.
    Name(usize),
    /// In the current field's value.
    Value(String),
}

/// A parsed record prefix.
#[derive(Clone, Debug)]
pub struct State {
    /// By schema field: the request's fixed values and the values written so far.
    assigned: Vec<Option<Value>>,
    slot: usize,
    phase: Phase,
    /// The current field's allowed values.
    allowed: Arc<SlotSet>,
}

/// Enforcement for one request: a pack, and the fields the request fixes.
#[derive(Debug)]
pub struct Enforcer {
    pack: Arc<Compiled>,
    /// By schema field.
    fixed: Vec<Option<Value>>,
    /// By slot: the fixed value's set, if the request fixes it.
    fixed_sets: Vec<Option<Arc<SlotSet>>>,
}

/// A text the record format does not accept, or a value outside its allowed set.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("at character {at}: {message}")]
    Malformed { at: usize, message: String },
    #[error(transparent)]
    Enforce(#[from] EnforceError),
}

impl Enforcer {
    /// Enforcement of `pack` with `fixed` values (by field name).  Fails when a name is
    /// not a written field, a value cannot be that field's, or the fixed values leave no
    /// record satisfying the pack.
    pub fn new(pack: Arc<Compiled>, fixed: &[(String, Value)]) -> Result<Enforcer, String> {
        let mut values = vec![None; pack.schema.len()];
        let mut fixed_sets = vec![None; pack.format.slots().len()];
        for (name, value) in fixed {
            let Some(slot) = pack.format.slot_of(name) else {
                let known: Vec<&str> = pack.format.names();
                return Err(format!(
                    "`{name}` is not a field of pack {} (fields: {})",
                    pack.id,
                    known.join(", ")
                ));
            };
            let field = pack.format.slots()[slot].field;
            let domain = &pack.schema.fields()[field].domain;
            if !domain.contains(value) || pack.format.value_text(slot, value).is_none() {
                return Err(format!(
                    "`{name}`: {value} is not a value of this field ({})",
                    pack.format.slots()[slot].spelling
                ));
            }
            values[field] = Some(value.clone());
            fixed_sets[slot] = Some(Arc::new(point_set(&pack, slot, value)));
        }
        match pack.satisfiable(&values) {
            Ok(true) => {}
            Ok(false) => {
                return Err(format!(
                    "no record satisfies pack {} with the given fields",
                    pack.id
                ));
            }
            Err(reason) => {
                return Err(format!(
                    "checking the given fields against pack {} failed: {reason}",
                    pack.id
                ));
            }
        }
        Ok(Enforcer {
            pack,
            fixed: values,
            fixed_sets,
        })
    }

    pub fn pack(&self) -> &Arc<Compiled> {
        &self.pack
    }

    fn allowed(
        &self,
        slot: usize,
        assigned: &[Option<Value>],
    ) -> Result<Arc<SlotSet>, EnforceError> {
        match &self.fixed_sets[slot] {
            Some(set) => Ok(set.clone()),
            None => self.pack.allowed(slot, assigned),
        }
    }

    fn start(&self) -> Result<State, EnforceError> {
        Ok(State {
            assigned: self.fixed.clone(),
            slot: 0,
            phase: Phase::Name(0),
            allowed: self.allowed(0, &self.fixed)?,
        })
    }

    /// Parses the text of a record prefix, checking every complete value.
    pub fn parse(&self, text: &str) -> Result<State, TextError> {
        let mut st = self.start()?;
        for (at, c) in text.char_indices() {
            match self.step(&mut st, c)? {
                Ok(()) => {}
                Err(message) => return Err(TextError::Malformed { at, message }),
            }
        }
        Ok(st)
    }

    /// Appends one character; the inner error says why the text is not acceptable.
    fn step(&self, st: &mut State, c: char) -> Result<Result<(), String>, EnforceError> {
        let slots = self.pack.format.slots();
        match &mut st.phase {
            Phase::Name(k) => {
                let name = &slots[st.slot].name;
                let expected = name.chars().chain(std::iter::once('=')).nth(*k);
                if expected != Some(c) {
                    return Ok(Err(format!("expected `{name}=`, the next field")));
                }
                *k += 1;
                if *k == name.chars().count() + 1 {
                    st.phase = Phase::Value(String::new());
                }
                Ok(Ok(()))
            }
            Phase::Value(v) if c == ' ' => {
                if st.slot + 1 == slots.len() {
                    return Ok(Err("the last field's value ends the record".into()));
                }
                let Some(value) = self.complete(st.slot, v, &st.allowed) else {
                    return Ok(Err(format!(
                        "`{}={v}` is not allowed here",
                        slots[st.slot].name
                    )));
                };
                st.assigned[slots[st.slot].field] = Some(value);
                st.slot += 1;
                st.phase = Phase::Name(0);
                st.allowed = self.allowed(st.slot, &st.assigned)?;
                Ok(Ok(()))
            }
            Phase::Value(v) => {
                v.push(c);
                if self.viable_prefix(st.slot, v, &st.allowed) {
                    Ok(Ok(()))
                } else {
                    Ok(Err(format!(
                        "no allowed value of `{}` starts with `{v}`",
                        slots[st.slot].name
                    )))
                }
            }
        }
    }

    /// The value `text` stands for, if it is a whole value in `set`.
    fn complete(&self, slot: usize, text: &str, set: &SlotSet) -> Option<Value> {
        let value = self.pack.format.parse_value(slot, text).ok()?;
        self.pack.set_contains(slot, set, &value).then_some(value)
    }

    fn viable_prefix(&self, slot: usize, prefix: &str, set: &SlotSet) -> bool {
        match (&self.pack.format.slots()[slot].spelling, set) {
            (Spelling::Choice(choices), SlotSet::Choice(allowed)) => choices
                .iter()
                .zip(allowed)
                .any(|((t, _), a)| *a && t.starts_with(prefix)),
            (Spelling::Integer | Spelling::Decimal(_), SlotSet::Grid(g)) => {
                has_prefix(g, prefix, self.pack.decimals(slot))
            }
            (Spelling::Text, _) => !prefix.contains(char::is_whitespace),
            _ => false,
        }
    }

    /// Whether the record may end after the text of `st`.
    pub fn may_end(&self, st: &State) -> bool {
        match &st.phase {
            Phase::Value(v) => {
                st.slot + 1 == self.pack.format.slots().len()
                    && self.complete(st.slot, v, &st.allowed).is_some()
            }
            Phase::Name(_) => false,
        }
    }

    /// Whether the record is complete after the text of `st` (it can only end).
    pub fn is_complete(&self, st: &State) -> bool {
        self.may_end(st)
            && match (&st.phase, &self.pack.format.slots()[st.slot].spelling) {
                // A number might still grow; a choice that is no other choice's prefix cannot.
                (Phase::Value(v), Spelling::Choice(choices)) => !choices
                    .iter()
                    .any(|(t, _)| t.len() > v.len() && t.starts_with(v.as_str())),
                _ => false,
            }
    }

    /// Whether appending `text` keeps the record acceptable.
    pub fn accepts(&self, st: &State, text: &str) -> Result<bool, EnforceError> {
        if !text.contains(' ') {
            return Ok(self.stays_acceptable(st, text));
        }
        let mut next = st.clone();
        for c in text.chars() {
            if self.step(&mut next, c)?.is_err() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// [`Enforcer::accepts`] for a text that stays inside the current field: no value is
    /// completed, so the state need not be copied.  A value's prefix test is
    /// prefix-closed, so testing the whole candidate is testing each character.
    fn stays_acceptable(&self, st: &State, text: &str) -> bool {
        let name = &self.pack.format.slots()[st.slot].name;
        let mut value = match &st.phase {
            Phase::Value(v) => v.clone(),
            Phase::Name(k) => {
                let mut rest = text;
                let mut expected = name.chars().chain(std::iter::once('=')).skip(*k);
                loop {
                    let mut chars = rest.chars();
                    match (chars.next(), expected.next()) {
                        (None, _) => return true,
                        (Some(c), Some(e)) if c == e => rest = chars.as_str(),
                        (Some(_), Some(_)) => return false,
                        (Some(_), None) => break,
                    }
                }
                return self.viable_prefix(st.slot, rest, &st.allowed);
            }
        };
        value.push_str(text);
        self.viable_prefix(st.slot, &value, &st.allowed)
    }

    /// The state after `st` and then `text`.
    pub fn extend(&self, st: &State, text: &str) -> Result<State, TextError> {
        let mut next = st.clone();
        for (at, c) in text.char_indices() {
            if let Err(message) = self.step(&mut next, c)? {
                return Err(TextError::Malformed { at, message });
            }
        }
        Ok(next)
    }

    /// The tokens allowed after `text`: `mask[id]` is true for each.
    pub fn mask(&self, text: &str, vocab: &Vocab) -> Result<Vec<bool>, TextError> {
        let st = self.parse(text)?;
        Ok(self.mask_after(&st, vocab)?)
    }

    /// The tokens allowed in state `st`.
    pub fn mask_after(&self, st: &State, vocab: &Vocab) -> Result<Vec<bool>, EnforceError> {
        let mut mask = vec![false; vocab.len()];
        for (id, t) in vocab.texts.iter().enumerate() {
            if let Some(t) = t
                && !t.is_empty()
            {
                mask[id] = self.accepts(st, t)?;
            }
        }
        if self.may_end(st) {
            for &e in &vocab.eos {
                if let Some(m) = mask.get_mut(e as usize) {
                    *m = true;
                }
            }
        }
        Ok(mask)
    }

    /// Reads a complete record's text into values by schema field (derived fields are
    /// computed); checks it the way generation does.
    pub fn read(&self, text: &str) -> Result<Vec<Option<Value>>, TextError> {
        let st = self.parse(text)?;
        if !self.may_end(&st) {
            return Err(TextError::Malformed {
                at: text.len(),
                message: "the record is not complete".into(),
            });
        }
        let mut values = st.assigned.clone();
        if let Phase::Value(v) = &st.phase {
            values[self.pack.format.slots()[st.slot].field] =
                self.complete(st.slot, v, &st.allowed);
        }
        Ok(values)
    }
}

fn point_set(pack: &Compiled, slot: usize, value: &Value) -> SlotSet {
    match &pack.format.slots()[slot].spelling {
        Spelling::Choice(choices) => {
            SlotSet::Choice(choices.iter().map(|(_, v)| v.same(value)).collect())
        }
        Spelling::Integer | Spelling::Decimal(_) => {
            let k = pack.grid_point(slot, value).unwrap_or_default();
            SlotSet::Grid(crate::sets::Grid::point(k, 1))
        }
        Spelling::Text => SlotSet::Any,
    }
}
