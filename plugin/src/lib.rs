//! Rule-pack enforcement during decoding.

pub mod baseline;
pub mod compiled;
pub mod engine;
pub mod processor;
pub mod sets;
