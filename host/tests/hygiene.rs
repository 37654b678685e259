//! Secret hygiene: a run of the edge service with known API keys and
//! secrets, through every route and failure; no key or secret may appear in
//! anything it prints or answers, except the `signingSecret` field that
//! exists to hand a new secret over, nor in the store's files (keyrings are
//! sealed, API keys hashed).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::service::{API_KEY, OTHER_KEY, Receiver, SEALING_KEYS, Service};
use hooksign::{Keyring, Secret, SecretRecord};
use serde_json::{Value, json};

/// Every form in which a secret could leak: its text, its base64, and the
/// base64's halves (a truncated copy is a leak too).
fn forms(secret: &str) -> Vec<String> {
    let encoded = secret
        .strip_prefix("whsec_")
        .unwrap_or(secret)
        .trim_end_matches('=');
    let half = encoded.len() / 2;
    vec![
        secret.to_string(),
        encoded[..half].to_string(),
        encoded[half..].to_string(),
    ]
}

#[test]
fn no_key_or_secret_in_logs_or_answers() {
    let receiver = Receiver::start();
    let inbound_secret = Secret::generate().unwrap().to_text();
    let sources = json!({"shop": {"secrets": [{"key": inbound_secret}], "forwardUrl": receiver.url, "org": "acme"}});
    let dispatch_token = "tok_dispatch_0123456789abcdef0123456789";
    let service = Service::start(&[
        ("allow_private_targets", "true"),
        ("inbound_sources", &sources.to_string()),
        ("delivery_timeout_ms", "1000"),
        ("dispatch_token", dispatch_token),
        ("retry_schedule", "0,1"),
    ]);
    let mut answers: Vec<String> = Vec::new();
    let mut signing_secrets = Vec::new();
    let mut record = |(status, mut value): (u16, Value)| {
        // The one-time fields: a signing secret, a minted API key.
        for field in ["signingSecret", "key"] {
            if let Some(secret) = value.get(field).and_then(Value::as_str) {
                signing_secrets.push(secret.to_string());
                value[field] = Value::Null;
            }
        }
        answers.push(format!("{status} {value}"));
        value
    };

    let created = record(service.call(
        "POST",
        "/webhooks",
        Some(API_KEY),
        Some(&json!({"url": receiver.url}).to_string()),
    ));
    let id = created["endpoint"]["id"].as_str().unwrap().to_string();
    record(service.call(
        "POST",
        &format!("/webhooks/{id}/rotate"),
        Some(API_KEY),
        None,
    ));
    record(service.call("POST", &format!("/webhooks/{id}/test"), Some(API_KEY), None));
    receiver.answer(500);
    record(service.call(
        "POST",
        "/events",
        Some(API_KEY),
        Some(r#"{"type": "a", "data": {}}"#),
    ));
    record(service.call(
        "GET",
        &format!("/webhooks/{id}/attempts"),
        Some(API_KEY),
        None,
    ));
    record(service.call("GET", "/webhooks", Some(OTHER_KEY), None));
    record(service.call("GET", "/webhooks", Some(&format!("{API_KEY}x")), None));
    record(service.call("GET", "/webhooks", None, None));
    record(service.call(
        "POST",
        "/webhooks",
        Some(API_KEY),
        Some(&format!(r#"{{"url": "{API_KEY}"}}"#)),
    ));
    // The message log, a resend, the dispatcher's route (right and wrong token).
    record(service.call(
        "POST",
        "/events",
        Some(API_KEY),
        Some(r#"{"type": "a", "data": {}, "id": "evt_hygiene"}"#),
    ));
    record(service.call("GET", "/messages", Some(API_KEY), None));
    record(service.call("GET", "/messages/evt_hygiene", Some(API_KEY), None));
    record(service.call(
        "POST",
        "/messages/evt_hygiene/resend",
        Some(API_KEY),
        Some(&json!({ "endpointId": id }).to_string()),
    ));
    record(service.call("POST", "/dispatch", Some(dispatch_token), None));
    record(service.call("POST", "/dispatch", Some(API_KEY), None));
    // A minted key: used, listed, revoked, refused.
    let minted = service.call(
        "POST",
        "/api-keys",
        Some(API_KEY),
        Some(r#"{"name": "hygiene"}"#),
    );
    let minted_key = minted.1["key"].as_str().unwrap().to_string();
    let minted = record(minted);
    let minted_id = minted["apiKey"]["id"].as_str().unwrap().to_string();
    record(service.call("GET", "/webhooks", Some(&minted_key), None));
    record(service.call("GET", "/api-keys", Some(API_KEY), None));
    record(service.call(
        "DELETE",
        &format!("/api-keys/{minted_id}"),
        Some(API_KEY),
        None,
    ));
    record(service.call("GET", "/webhooks", Some(&minted_key), None));
    std::thread::sleep(std::time::Duration::from_millis(1500));
    record(service.call(
        "PATCH",
        &format!("/webhooks/{id}"),
        Some(API_KEY),
        Some(r#"{"url": "http://127.0.0.1/"}"#),
    ));
    // A bad inbound signature, a good one, stats.
    let signature = Keyring::from_records(&[SecretRecord::new(inbound_secret.as_str())])
        .unwrap()
        .sign("msg_1", hooksign::unix_now(), b"{}")
        .unwrap();
    let mut inbound_answers = Vec::new();
    for signature in ["v1,AAAA".to_string(), signature] {
        let (status, _, body) = service.raw_with_headers(
            "/inbound/shop",
            &[
                ("webhook-id", "msg_1".into()),
                ("webhook-timestamp", hooksign::unix_now().to_string()),
                ("webhook-signature", signature),
            ],
            b"{}",
        );
        inbound_answers.push(format!("{status} {}", String::from_utf8_lossy(&body)));
    }
    record(service.call("GET", "/inbound/shop/stats", Some(API_KEY), None));
    answers.extend(inbound_answers);
    assert_eq!(signing_secrets.len(), 3);

    // What the receiver got: signatures, never the secrets themselves.
    let received = receiver.received.lock().unwrap().clone();
    assert!(!received.is_empty());
    let stored = common::files_text(service.data());
    for secret in signing_secrets.iter().chain([&API_KEY.to_string()]) {
        for form in forms(secret) {
            assert!(!stored.contains(&form), "the store holds a secret in clear");
        }
    }
    assert!(
        stored.contains("\"sealed\""),
        "no sealed keyring in the store"
    );
    let log = service.stop();
    let mut secrets: Vec<String> = vec![
        API_KEY.into(),
        OTHER_KEY.into(),
        inbound_secret.clone(),
        dispatch_token.into(),
        SEALING_KEYS.split_once(':').unwrap().1.into(),
    ];
    secrets.extend(signing_secrets);
    for secret in &secrets {
        for form in forms(secret) {
            assert!(!log.contains(&form), "the log shows a secret: {log}");
            for answer in &answers {
                assert!(
                    !answer.contains(&form),
                    "an answer shows a secret: {answer}"
                );
            }
            for request in &received {
                assert!(!String::from_utf8_lossy(&request.body).contains(&form));
                assert!(
                    request
                        .headers
                        .iter()
                        .all(|(_, value)| !value.contains(&form)),
                    "{:?}",
                    request.headers
                );
            }
        }
    }
    assert!(
        answers.iter().any(|answer| answer.starts_with("401 ")),
        "{answers:?}"
    );
}
