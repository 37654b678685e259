//! The domain layer: one module per entity, each owning its record type,
//! its rules and its store operations (its keys are built in
//! [`crate::store::keys`]).

pub mod api_key;
pub mod attempt;
pub mod delivery;
pub mod endpoint;
pub mod erasure;
pub mod event_type;
pub mod inbound;
pub mod limits;
pub mod message;
pub mod metrics;
pub mod org;
pub mod queue;
pub mod session;

#[cfg(test)]
mod tests {
    use serde::Serialize;
    use serde::de::DeserializeOwned;
    use serde_json::{Value, json};

    use crate::domain::api_key::KeyRecord;
    use crate::domain::delivery::DeliveryRecord;
    use crate::domain::endpoint::EndpointRecord;
    use crate::domain::message::MessageRecord;

    /// A record as stored reads and writes back as the same JSON.
    fn round_trips<T: Serialize + DeserializeOwned>(stored: &Value) {
        let record = serde_json::from_value::<T>(stored.clone());
        assert!(record.is_ok(), "{stored} does not read");
        let written = record.ok().map(serde_json::to_value);
        assert_eq!(written.and_then(Result::ok).as_ref(), Some(stored));
    }

    #[test]
    fn records_keep_the_stored_format_whatever_their_fields_are_called() {
        round_trips::<EndpointRecord>(&json!({
            "id": "0b5e3f9c-1a2b-4c3d-8e9f-0a1b2c3d4e5f", "org": "acme",
            "url": "https://example.com/hook", "description": "", "eventTypes": [],
            "paused": true, "pausedReason": "paused through the API", "pausedAt": 1700000100,
            "consecutiveFailures": 2, "lastSuccessAt": 1700000050, "lastFailureAt": 1700000090,
            "createdAt": 1700000000, "updatedAt": 1700000100,
            "secrets": [{"key": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}],
            "signature": "v1", "attemptCount": 3, "recentAttempts": [["a", 2]],
        }));
        round_trips::<DeliveryRecord>(&json!({
            "status": "pending", "attempts": 1, "nextAttemptAt": 1700000005000_i64,
            "lastAttemptAt": 1700000000, "lastError": "the endpoint answered 500",
            "lease": {"token": "t", "until": 1700000020000_i64}, "finishedLease": null,
        }));
        round_trips::<KeyRecord>(&json!({
            "id": "k", "org": "acme", "name": "ci", "prefix": "sgn_live_ab12",
            "createdAt": 1700000000, "lastUsedAt": 1700000060, "revokedAt": null,
        }));
        round_trips::<KeyRecord>(&json!({
            "id": "k", "org": "acme", "name": "ci", "prefix": "sgn_live_ab12",
            "createdAt": 1700000000, "lastUsedAt": null, "revokedAt": null,
            "mintedBy": "bootstrap-0011223344556677",
        }));
        round_trips::<MessageRecord>(&json!({
            "id": "msg_1", "org": "acme", "type": "order.paid",
            "body": r#"{"data":{"n":1},"timestamp":"2023-11-14T22:13:20Z","type":"order.paid"}"#,
            "createdAt": 1700000000, "endpoints": [], "accepted": true, "claim": "c",
        }));
    }

    #[test]
    fn a_message_stores_its_payload_once_and_reads_those_of_before() {
        let body = r#"{"data":{"n":1},"timestamp":"2023-11-14T22:13:20Z","type":"order.paid"}"#;
        let before = json!({
            "id": "msg_1", "org": "acme", "type": "order.paid", "data": {"n": 1},
            "body": body, "createdAt": 1700000000, "endpoints": [], "accepted": true,
            "claim": "c",
        });
        let record = serde_json::from_value::<MessageRecord>(before).ok();
        assert_eq!(
            record.as_ref().map(MessageRecord::data),
            Some(json!({"n": 1}))
        );
        let written = record.map(|record| serde_json::to_value(record).ok());
        let written = written.flatten().unwrap_or_default();
        assert!(written.get("data").is_none(), "{written}");
        assert_eq!(written["body"], body);
    }
}
