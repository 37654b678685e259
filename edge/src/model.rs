use chrono::{DateTime, SecondsFormat};

use crate::seal::StoredSecrets;
use serde::{Deserialize, Serialize};

/// An endpoint as stored: one key-value entry holds all of it, keyring
/// included, so that every change to it is a single atomic write.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointRecord {
    pub id: String,
    pub org: String,
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    pub paused: bool,
    pub paused_reason: Option<String>,
    pub paused_at: Option<i64>,
    pub consecutive_failures: u32,
    pub last_success_at: Option<i64>,
    pub last_failure_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// The signing keyring, current secret first, sealed (`seal.rs`).
    pub secrets: StoredSecrets,
    /// What its deliveries are signed with (`v1` when stored before there
    /// was a choice).
    #[serde(default)]
    pub signature: SignatureKind,
    /// The current Ed25519 key's public key, `whpk_` (`v1a` endpoints):
    /// not secret, so shown with the endpoint and kept outside the seal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_public_key: Option<String>,
    /// How many attempts were ever recorded; the newest is `attempt_count - 1`.
    pub attempt_count: u64,
    /// The newest attempts' ids and numbers, so that an attempt recorded
    /// twice is counted once.
    #[serde(default)]
    pub recent_attempts: Vec<(String, u64)>,
}

impl EndpointRecord {
    /// Whether an event of this type goes to the endpoint.
    pub fn subscribed(&self, event_type: &str) -> bool {
        self.event_types.is_empty() || self.event_types.iter().any(|wanted| wanted == event_type)
    }

    /// The public view (docs/API.md, Endpoint object): no secrets.
    pub fn view(&self) -> EndpointView<'_> {
        EndpointView {
            id: &self.id,
            url: &self.url,
            description: &self.description,
            event_types: &self.event_types,
            paused: self.paused,
            paused_reason: self.paused_reason.as_deref(),
            paused_at: self.paused_at.map(rfc3339),
            consecutive_failures: self.consecutive_failures,
            last_success_at: self.last_success_at.map(rfc3339),
            last_failure_at: self.last_failure_at.map(rfc3339),
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
            signature: self.signature,
            signing_public_key: self.signing_public_key.as_deref(),
        }
    }
}

/// The endpoint object of the API.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointView<'a> {
    id: &'a str,
    url: &'a str,
    description: &'a str,
    event_types: &'a [String],
    paused: bool,
    paused_reason: Option<&'a str>,
    paused_at: Option<String>,
    consecutive_failures: u32,
    last_success_at: Option<String>,
    last_failure_at: Option<String>,
    created_at: String,
    updated_at: String,
    signature: SignatureKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    signing_public_key: Option<&'a str>,
}

/// An endpoint's signature: `v1` (HMAC-SHA256 with a shared `whsec_`
/// secret) or `v1a` (Ed25519: the receiver holds only the public key).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureKind {
    /// HMAC-SHA256.
    #[default]
    V1,
    /// Ed25519.
    V1a,
}

impl SignatureKind {
    /// The kind named in a request body.
    pub fn from_name(name: &str) -> Option<SignatureKind> {
        match name {
            "v1" => Some(SignatureKind::V1),
            "v1a" => Some(SignatureKind::V1a),
            _ => None,
        }
    }
}

/// One delivery attempt, stored and shown as is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub id: String,
    pub endpoint_id: String,
    pub message_id: String,
    pub event_type: String,
    pub test: bool,
    /// 1 for a message's first attempt at this endpoint, 2 for its first
    /// retry, and so on; a test send is 1.
    pub attempt_number: u32,
    pub attempted_at: String,
    pub succeeded: bool,
    pub response_status: Option<u16>,
    pub response_body: Option<String>,
    pub duration_ms: u64,
    pub error: Option<String>,
}

/// Unix seconds as RFC 3339 UTC, `2019-08-24T14:15:22Z`.
pub fn rfc3339(seconds: i64) -> String {
    DateTime::from_timestamp(seconds, 0)
        .map(|time| time.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// A fresh random UUID (v4); 503 if the random source fails, rather than
/// an id that could collide.
pub fn new_uuid() -> Result<String, crate::Problem> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|_| crate::Problem::random_unavailable())?;
    Ok(uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string())
}

/// A fresh message id, `msg_` and 32 random hex digits.
pub fn new_message_id() -> Result<String, crate::Problem> {
    Ok(format!("msg_{}", new_uuid()?.replace('-', "")))
}
