//! Typed ids of the organisation's records: an organisation, an endpoint,
//! a message. Keys are built from these ([`crate::store::keys`]), so an
//! endpoint id cannot be passed where a message id is meant. Each is its
//! text in JSON (stored records keep their format).

use std::fmt;

use serde::{Deserialize, Serialize};

/// An organisation: `acme` (a name of `api_keys` or of a minted key's
/// record).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrgId(String);

/// An endpoint: a UUID the service made.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EndpointId(String);

/// A message: the caller's idempotency key, or `msg_` and 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageId(String);

impl OrgId {
    /// The organisation named `name`.
    pub fn new(name: impl Into<String>) -> OrgId {
        OrgId(name.into())
    }

    /// Its text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl EndpointId {
    /// A path's or body's id, if it is a UUID (every endpoint's is).
    pub fn parse(text: &str) -> Option<EndpointId> {
        uuid::Uuid::try_parse(text)
            .is_ok()
            .then(|| EndpointId(text.to_string()))
    }

    /// Its text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<uuid::Uuid> for EndpointId {
    fn from(uuid: uuid::Uuid) -> EndpointId {
        EndpointId(uuid.to_string())
    }
}

impl MessageId {
    /// The message named `id` (checked by `POST /events`; a path's id is
    /// only looked up).
    pub fn new(id: impl Into<String>) -> MessageId {
        MessageId(id.into())
    }

    /// Its text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for EndpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
