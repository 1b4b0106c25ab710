//! Training small language models on records, for rule-enforced generation.
//!
//! Records are serialized in the rule pack's text form ([`rulepacks::record`]), tokenized
//! with a field tokenizer or a trained BPE ([`vocab`]), and a small Llama-architecture
//! model ([`model`]) is trained from scratch with AdamW ([`train`]).  The model directory
//! it writes loads in mistral.rs from its local path.

pub mod model;
pub mod train;
pub mod vocab;
