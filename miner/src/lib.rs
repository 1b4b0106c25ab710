//! The NetNomos rule miner.

pub mod bitset;
pub mod check;
pub mod columnar;
pub mod evidence;
pub mod input;
pub mod mine;
pub mod predicates;
pub mod prepare;
pub mod profile;
pub mod search;
pub mod spec;
pub mod table;
pub mod tautology;
