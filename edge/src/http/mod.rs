//! The HTTP layer: the route table, request parsing, the credential check,
//! and one handler module per resource. Handlers parse, then call the
//! domain; nothing below this layer knows a route or a status.

pub mod api_keys;
pub mod auth;
pub mod context;
pub mod dashboard;
pub mod endpoints;
pub mod event_types;
pub mod gateway;
pub mod messages;
pub mod orgs;
pub mod request;
pub mod routes;

pub use request::MAX_BODY_BYTES;
pub use routes::{answer_before_body, handle};
