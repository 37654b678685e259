//! The domain layer: one module per entity, each owning its record type,
//! its rules and its store operations (its keys are built in
//! [`crate::store::keys`]).

pub mod api_key;
pub mod attempt;
pub mod delivery;
pub mod endpoint;
pub mod inbound;
pub mod limits;
pub mod message;
