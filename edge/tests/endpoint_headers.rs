//! Custom headers per endpoint (issue #26, item 2): sent with every
//! attempt and test send, checked by name and value, and the sensitive
//! ones sealed at rest and never shown.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use hooksign_edge::testing::{FakePlatform, SwapDefect};
use serde_json::{Value, json};

const KEY: &str = "sgn_live_headers_test";
const TOKEN: &str = "Bearer receiver-s3cret-token";

fn fake() -> FakePlatform {
    support::platform(KEY)
}

fn call(fake: &FakePlatform, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    support::call(fake, KEY, method, path, body)
}

/// The last send's value of a header.
fn last_sent(fake: &FakePlatform, name: &str) -> Option<String> {
    let sent = fake.sent.borrow();
    sent.last()?
        .headers
        .iter()
        .find(|(candidate, _)| candidate == name)
        .map(|(_, value)| value.clone())
}

fn stored(fake: &FakePlatform) -> String {
    fake.entries
        .borrow()
        .values()
        .map(|value| String::from_utf8_lossy(value).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

fn create_with_headers(fake: &FakePlatform) -> String {
    let (status, created) = call(
        fake,
        "POST",
        "/webhooks",
        Some(json!({
            "url": "https://receiver.example/hook",
            "headers": { "X-Tenant": "acme-eu" },
            "sensitiveHeaders": { "Authorization": TOKEN },
        })),
    );
    assert_eq!(status, 201, "{created}");
    let endpoint = &created["endpoint"];
    assert_eq!(endpoint["headers"], json!({ "x-tenant": "acme-eu" }));
    assert_eq!(endpoint["sensitiveHeaders"], json!(["authorization"]));
    endpoint["id"].as_str().unwrap().to_string()
}

#[test]
fn custom_headers_go_with_every_send_and_sensitive_ones_are_sealed() {
    let fake = fake();
    let id = create_with_headers(&fake);
    assert_eq!(
        call(&fake, "POST", &format!("/webhooks/{id}/test"), None).0,
        200
    );
    assert_eq!(last_sent(&fake, "x-tenant").as_deref(), Some("acme-eu"));
    assert_eq!(last_sent(&fake, "authorization").as_deref(), Some(TOKEN));
    call(
        &fake,
        "POST",
        "/events",
        Some(json!({ "type": "t", "data": {} })),
    );
    assert_eq!(fake.sent.borrow().len(), 2);
    assert_eq!(last_sent(&fake, "authorization").as_deref(), Some(TOKEN));
    assert!(last_sent(&fake, "webhook-signature").is_some());
    // Never in the store in clear, never in an answer.
    let text = stored(&fake);
    assert!(text.contains("acme-eu") && !text.contains("receiver-s3cret-token"));
    let (_, shown) = call(&fake, "GET", &format!("/webhooks/{id}"), None);
    assert!(!shown.to_string().contains("s3cret"), "{shown}");
    let (_, listed) = call(&fake, "GET", "/webhooks", None);
    assert!(!listed.to_string().contains("s3cret"));
    // A rotated sealing key still opens them.
    fake.set_variable(
        "sealing_keys",
        format!(
            "s2:HxwdHh8AAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRo=,{}",
            support::SEAL
        ),
    );
    call(&fake, "POST", &format!("/webhooks/{id}/test"), None);
    assert_eq!(last_sent(&fake, "authorization").as_deref(), Some(TOKEN));
}

#[test]
fn a_patch_sets_removes_and_reclassifies_headers() {
    for defect in [
        None,
        Some(SwapDefect::ReportsFailure),
        Some(SwapDefect::ConflictReportsSuccess),
        Some(SwapDefect::AbsentUpserts),
    ] {
        let fake = fake();
        fake.defect.set(defect);
        let id = create_with_headers(&fake);
        let path = format!("/webhooks/{id}");
        let (status, patched) = call(
            &fake,
            "PATCH",
            &path,
            Some(
                json!({ "headers": { "x-tenant": null, "x-region": "eu", "authorization": "Bearer rotated" } }),
            ),
        );
        assert_eq!(status, 200, "{defect:?}: {patched}");
        // Set in headers this time: now plain, and shown.
        assert_eq!(
            patched["headers"],
            json!({ "authorization": "Bearer rotated", "x-region": "eu" })
        );
        assert_eq!(patched["sensitiveHeaders"], json!([]));
        let (status, patched) = call(
            &fake,
            "PATCH",
            &path,
            Some(
                json!({ "headers": { "x-api-key": "shown" }, "sensitiveHeaders": { "X-Api-Key": "k-123" } }),
            ),
        );
        assert_eq!(status, 200, "{patched}");
        assert_eq!(patched["sensitiveHeaders"], json!(["x-api-key"]));
        assert!(!stored(&fake).contains("k-123"));
        // A PATCH without headers leaves them.
        let (_, patched) = call(&fake, "PATCH", &path, Some(json!({ "description": "d" })));
        assert_eq!(patched["sensitiveHeaders"], json!(["x-api-key"]));
        call(&fake, "POST", &format!("{path}/test"), None);
        assert_eq!(last_sent(&fake, "x-api-key").as_deref(), Some("k-123"));
        assert_eq!(last_sent(&fake, "x-region").as_deref(), Some("eu"));
    }
}

#[test]
fn reserved_and_malformed_headers_are_field_errors() {
    let fake = fake();
    let refused = |headers: Value, sensitive: Value| {
        let body = json!({ "url": "https://receiver.example/hook", "headers": headers, "sensitiveHeaders": sensitive });
        // Either field is checked alike.
        let swapped = json!({ "url": "https://receiver.example/hook", "sensitiveHeaders": headers, "headers": sensitive });
        assert_eq!(call(&fake, "POST", "/webhooks", Some(swapped)).0, 400);
        let (status, problem) = call(&fake, "POST", "/webhooks", Some(body));
        assert_eq!(status, 400, "{problem}");
        problem["errors"][0]["path"].as_str().unwrap().to_string()
    };
    for name in [
        "webhook-id",
        "Webhook-Signature",
        "svix-id",
        "hooksign-attempt",
        "content-type",
        "content-length",
        "host",
        "user-agent",
        "transfer-encoding",
        "connection",
        "upgrade",
        "bad name",
        "x(y)",
        "",
    ] {
        assert_eq!(
            refused(json!({ name: "v" }), json!(null)),
            format!("headers.{name}")
        );
    }
    for value in [
        "a\r\nx-injected: 1",
        "tab\tinside is fine\u{7f}",
        " leading",
        "é",
        &"v".repeat(4097),
    ] {
        assert_eq!(refused(json!({ "x-v": value }), json!(null)), "headers.x-v");
    }
    assert_eq!(refused(json!({ "x-v": 1 }), json!(null)), "headers.x-v");
    assert_eq!(refused(json!(["x"]), json!(null)), "headers");
    assert_eq!(
        refused(json!({ "x-a": "1" }), json!(["x-b"])),
        "sensitiveHeaders"
    );
    assert_eq!(
        refused(json!({ "x-a": "1", "X-A": "2" }), json!(null)),
        "headers.x-a"
    );
    let many: serde_json::Map<String, Value> =
        (0..21).map(|n| (format!("x-h{n}"), json!("v"))).collect();
    assert_eq!(refused(Value::Object(many), json!(null)), "headers");
    // Together, too: 15 plain and 6 sensitive.
    let plain: serde_json::Map<String, Value> =
        (0..15).map(|n| (format!("x-p{n}"), json!("v"))).collect();
    let sealed: serde_json::Map<String, Value> =
        (0..6).map(|n| (format!("x-s{n}"), json!("v"))).collect();
    let body = json!({ "url": "https://receiver.example/hook", "headers": plain, "sensitiveHeaders": sealed });
    assert_eq!(call(&fake, "POST", "/webhooks", Some(body)).0, 400);
    // Nothing was created.
    assert_eq!(call(&fake, "GET", "/webhooks", None).1["data"], json!([]));
}
