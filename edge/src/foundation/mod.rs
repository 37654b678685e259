//! The foundation layer: what every layer above uses and nothing below it
//! provides. No module here reads or writes the store.

pub mod config;
pub mod credentials;
pub mod encoding;
pub mod problem;
pub mod seal;
pub mod target;
