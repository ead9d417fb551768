//! One file per verb: its arguments (a clap `Args` struct) and what it does with them.

pub mod build;
pub mod cache;
pub mod copy;
pub mod fetch;
pub mod inspect;
pub mod pull;
pub mod push;
pub mod resolve;
