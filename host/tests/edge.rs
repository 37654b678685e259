//! End to end: `hooksign serve` on an ephemeral loopback port with a
//! temporary store, a receiver of the test's own, and docs/API.md's contract.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::service::{API_KEY, OTHER_KEY, Receiver, Service, local, verifies_with};
use serde_json::{Value, json};

#[test]
fn test_send_is_signed_with_the_returned_secret() {
    let service = Service::start(&local());
    let receiver = Receiver::start();
    let (id, secret) = service.create(&receiver.url);
    assert!(secret.starts_with("whsec_"));

    let sent = service.ok("POST", &format!("/webhooks/{id}/test"), None);
    assert_eq!(sent["attempt"]["succeeded"], true);
    assert_eq!(sent["attempt"]["test"], true);
    assert_eq!(sent["response"]["status"], 200);
    assert_eq!(sent["response"]["body"], "received");

    let received = receiver.last();
    assert!(verifies_with(&received, &secret, None));
    assert_eq!(received.header("content-type"), Some("application/json"));
    assert_eq!(
        received.header("webhook-id").unwrap(),
        sent["attempt"]["messageId"]
    );
    let envelope: Value = serde_json::from_slice(&received.body).unwrap();
    assert_eq!(envelope["type"], "webhook.test");
    assert!(envelope["timestamp"].as_str().unwrap().ends_with('Z'));
    // Another secret does not verify it.
    assert!(!verifies_with(
        &received,
        &hooksign::Secret::generate().unwrap().to_text(),
        None
    ));
}

#[test]
fn rotation_signs_with_both_secrets_until_the_grace_ends() {
    let service = Service::start(&local());
    let receiver = Receiver::start();
    let (id, old) = service.create(&receiver.url);

    let rotated = service.ok(
        "POST",
        &format!("/webhooks/{id}/rotate"),
        Some(r#"{"graceSeconds": 2}"#),
    );
    let new = rotated["signingSecret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert_eq!(rotated["endpoint"]["id"], id.as_str());

    service.event("signup.created");
    let received = receiver.last();
    let signature = received.header("webhook-signature").unwrap().to_string();
    let entries: Vec<&str> = signature.split(' ').collect();
    assert_eq!(entries.len(), 2, "{signature}");
    assert!(verifies_with(&received, &new, Some(entries[0])));
    assert!(verifies_with(&received, &old, Some(entries[1])));
    assert!(!verifies_with(&received, &old, Some(entries[0])));

    // After the grace window only the new secret signs.
    std::thread::sleep(Duration::from_millis(3100));
    service.event("signup.created");
    let received = receiver.last();
    let signature = received.header("webhook-signature").unwrap();
    assert_eq!(signature.split(' ').count(), 1, "{signature}");
    assert!(verifies_with(&received, &new, None));
    assert!(!verifies_with(&received, &old, None));

    // The default grace is 24 hours: a plain rotation keeps the previous secret.
    let again = service.ok("POST", &format!("/webhooks/{id}/rotate"), None);
    service.event("signup.created");
    let signature = receiver
        .last()
        .header("webhook-signature")
        .unwrap()
        .to_string();
    assert_eq!(signature.split(' ').count(), 2);
    assert_ne!(again["signingSecret"], new.as_str());
}

#[test]
fn attempts_are_listed_newest_first_within_limits() {
    let service = Service::start(&local());
    let receiver = Receiver::start();
    let (id, _) = service.create(&receiver.url);
    let mut message_ids = Vec::new();
    for _ in 0..3 {
        message_ids.push(
            service.event("order.paid")["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let path = format!("/webhooks/{id}/attempts");
    let all = service.ok("GET", &path, None);
    let listed: Vec<&str> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["messageId"].as_str().unwrap())
        .collect();
    message_ids.reverse();
    assert_eq!(listed, message_ids);
    for limit in [1, 50, 200] {
        let page = service.ok("GET", &format!("{path}?limit={limit}"), None);
        assert_eq!(page["data"].as_array().unwrap().len(), limit.min(3));
        assert_eq!(page["data"][0]["messageId"], message_ids[0].as_str());
    }
    for limit in ["0", "201", "x", "-1"] {
        let (status, problem) =
            service.call("GET", &format!("{path}?limit={limit}"), Some(API_KEY), None);
        assert_eq!(
            (status, problem["code"].as_str()),
            (400, Some("validation_failed")),
            "{limit}"
        );
        assert_eq!(problem["errors"][0]["path"], "query.limit");
    }
    let attempt = &all["data"][0];
    for field in [
        "id",
        "endpointId",
        "messageId",
        "eventType",
        "test",
        "attemptedAt",
        "succeeded",
        "responseStatus",
        "responseBody",
        "durationMs",
        "error",
    ] {
        assert!(
            attempt.get(field).is_some(),
            "attempt lacks {field}: {attempt}"
        );
    }
    assert_eq!(attempt["responseStatus"], 200);
    assert_eq!(attempt["responseBody"], "received");
}

#[test]
fn failing_deliveries_pause_the_endpoint() {
    let service = Service::start(&local());
    let receiver = Receiver::start();
    receiver.answer(500);
    let (id, _) = service.create(&receiver.url);
    let path = format!("/webhooks/{id}");

    // Failing test sends change nothing.
    for _ in 0..6 {
        let sent = service.ok("POST", &format!("{path}/test"), None);
        assert_eq!(sent["attempt"]["succeeded"], false);
        assert_eq!(sent["response"]["status"], 500);
    }
    let endpoint = service.ok("GET", &path, None);
    assert_eq!(endpoint["paused"], false);
    assert_eq!(endpoint["consecutiveFailures"], 0);
    assert_eq!(endpoint["lastFailureAt"], Value::Null);

    for failures in 1..=5 {
        let delivered = service.event("invoice.created");
        // The failure that pauses the endpoint holds its delivery.
        let expected = if failures == 5 { "held" } else { "failed" };
        assert_eq!(delivered["deliveries"][0]["status"], expected);
        let endpoint = service.ok("GET", &path, None);
        assert_eq!(endpoint["consecutiveFailures"], failures);
        assert_eq!(endpoint["paused"], failures == 5);
    }
    let endpoint = service.ok("GET", &path, None);
    assert!(
        endpoint["pausedReason"]
            .as_str()
            .unwrap()
            .contains("5 consecutive")
    );
    assert!(endpoint["pausedAt"].is_string());
    assert!(endpoint["lastFailureAt"].is_string());

    // Paused: events are held, test sends still go out.
    let before = receiver.count();
    let delivered = service.event("invoice.created");
    assert_eq!(delivered["deliveries"][0]["status"], "held");
    let held = delivered["id"].as_str().unwrap().to_string();
    assert_eq!(receiver.count(), before);
    service.ok("POST", &format!("{path}/test"), None);
    assert_eq!(receiver.count(), before + 1);

    // Unpausing clears the state; the next success records lastSuccessAt.
    receiver.answer(204);
    let endpoint = service.ok("PATCH", &path, Some(r#"{"paused": false}"#));
    assert_eq!(endpoint["paused"], false);
    assert_eq!(endpoint["pausedReason"], Value::Null);
    assert_eq!(endpoint["pausedAt"], Value::Null);
    assert_eq!(endpoint["consecutiveFailures"], 0);
    let delivered = service.event("invoice.created");
    assert_eq!(delivered["deliveries"][0]["status"], "succeeded");
    assert!(service.ok("GET", &path, None)["lastSuccessAt"].is_string());
    // The held one went out on unpausing.
    let released = service.message_when(&held, |delivery| delivery["status"] == "succeeded");
    assert_eq!(
        released["deliveries"][0]["status"], "succeeded",
        "{released}"
    );
}

#[test]
fn gone_pauses_at_once_but_not_on_a_test_send() {
    let service = Service::start(&local());
    let receiver = Receiver::start();
    receiver.answer(410);
    let (id, _) = service.create(&receiver.url);
    let path = format!("/webhooks/{id}");
    service.ok("POST", &format!("{path}/test"), None);
    assert_eq!(service.ok("GET", &path, None)["paused"], false);
    service.event("user.deleted");
    let endpoint = service.ok("GET", &path, None);
    assert_eq!(endpoint["paused"], true);
    assert_eq!(endpoint["consecutiveFailures"], 1);
    assert!(endpoint["pausedReason"].as_str().unwrap().contains("410"));
}

#[test]
fn unreachable_and_slow_receivers_are_failed_attempts() {
    let service = Service::start(&local());
    // A port nobody listens on: bind one, note it, close it.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let (id, _) = service.create(&format!("http://127.0.0.1:{closed}/hook"));
    let sent = service.ok("POST", &format!("/webhooks/{id}/test"), None);
    assert_eq!(sent["response"], Value::Null);
    assert_eq!(sent["attempt"]["succeeded"], false);
    assert!(
        sent["attempt"]["error"]
            .as_str()
            .unwrap()
            .contains("refused"),
        "{sent}"
    );

    let receiver = Receiver::start();
    receiver.delay_ms.store(3000, Ordering::SeqCst);
    let (slow, _) = service.create(&receiver.url);
    let sent = service.ok("POST", &format!("/webhooks/{slow}/test"), None);
    assert_eq!(sent["response"], Value::Null);
    assert_eq!(sent["attempt"]["error"], "no answer within 1500 ms");
    assert!(sent["attempt"]["durationMs"].as_u64().unwrap() >= 1500);
}

#[test]
fn endpoints_crud_and_listing() {
    let service = Service::start(&local());
    let created = service.ok(
        "POST",
        "/webhooks",
        Some(r#"{"url": "https://example.com/a", "description": "first", "eventTypes": ["a.b"]}"#),
    );
    let endpoint = &created["endpoint"];
    for field in [
        "id",
        "url",
        "description",
        "eventTypes",
        "paused",
        "pausedReason",
        "pausedAt",
        "consecutiveFailures",
        "lastSuccessAt",
        "lastFailureAt",
        "createdAt",
        "updatedAt",
    ] {
        assert!(endpoint.get(field).is_some(), "endpoint lacks {field}");
    }
    assert_eq!(endpoint["description"], "first");
    assert_eq!(endpoint["eventTypes"], json!(["a.b"]));
    let first = endpoint["id"].as_str().unwrap().to_string();
    let (second, _) = service.create("https://example.com/b");
    assert_eq!(
        service.ok("GET", &format!("/webhooks/{second}"), None)["description"],
        ""
    );
    let (third, _) = service.create("https://example.com/c");

    let listed = service.ok("GET", "/webhooks", None);
    let ids: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [third.as_str(), second.as_str(), first.as_str()]);
    assert_eq!(listed["nextCursor"], Value::Null);
    let page = service.ok("GET", "/webhooks?limit=2", None);
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    let cursor = page["nextCursor"].as_str().unwrap();
    let rest = service.ok("GET", &format!("/webhooks?limit=2&cursor={cursor}"), None);
    assert_eq!(rest["data"][0]["id"], first.as_str());
    assert_eq!(rest["nextCursor"], Value::Null);

    let patched = service.ok(
        "PATCH",
        &format!("/webhooks/{first}"),
        Some(r#"{"url": "https://example.org/new", "description": "moved", "eventTypes": []}"#),
    );
    assert_eq!(patched["url"], "https://example.org/new");
    assert_eq!(patched["description"], "moved");
    assert_eq!(patched["eventTypes"], json!([]));

    let (status, body) = service.call("DELETE", &format!("/webhooks/{first}"), Some(API_KEY), None);
    assert_eq!((status, body), (204, Value::Null));
    let (status, problem) = service.call("GET", &format!("/webhooks/{first}"), Some(API_KEY), None);
    assert_eq!((status, problem["code"].as_str()), (404, Some("not_found")));
    assert_eq!(
        service.ok("GET", "/webhooks", None)["data"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let (status, yaml) = service.call("GET", "/openapi.yaml", None, None);
    assert_eq!(status, 200);
    assert!(yaml.as_str().unwrap().starts_with("openapi: 3."));
}

#[test]
fn events_go_to_subscribed_endpoints_only() {
    let service = Service::start(&local());
    let (orders, signups) = (Receiver::start(), Receiver::start());
    let all = Receiver::start();
    let order_endpoint = service.ok(
        "POST",
        "/webhooks",
        Some(&json!({"url": orders.url, "eventTypes": ["order.paid"]}).to_string()),
    );
    service.ok(
        "POST",
        "/webhooks",
        Some(&json!({"url": signups.url, "eventTypes": ["signup.created"]}).to_string()),
    );
    service.create(&all.url);
    let accepted = service.ok(
        "POST",
        "/events",
        Some(r#"{"type": "order.paid", "data": {"total": 5}, "id": "evt_42"}"#),
    );
    assert_eq!(accepted["id"], "evt_42");
    let delivered = service.first_attempts("evt_42");
    assert_eq!(delivered["deliveries"].as_array().unwrap().len(), 2);
    assert_eq!((orders.count(), signups.count(), all.count()), (1, 0, 1));
    assert_eq!(orders.last().header("webhook-id"), Some("evt_42"));
    assert_eq!(all.last().header("webhook-id"), Some("evt_42"));
    let ids: Vec<&str> = delivered["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["endpointId"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&order_endpoint["endpoint"]["id"].as_str().unwrap()));
}

/// Method, path, API key, body, expected status and problem code.
type ProblemCase<'a> = (
    &'a str,
    String,
    Option<&'a str>,
    Option<Vec<u8>>,
    u16,
    &'a str,
);

#[test]
fn every_problem_code_with_its_status() {
    let service = Service::start(&local());
    let (id, _) = service.create("https://example.com/hook");
    let unknown = "497f6eca-6276-4993-bfeb-53cbbbba6f08";
    let big = vec![b' '; 1024 * 1024 + 1];

    let cases: Vec<ProblemCase> = vec![
        ("GET", "/nope".into(), None, None, 404, "not_found"),
        (
            "PUT",
            "/webhooks".into(),
            None,
            None,
            405,
            "method_not_allowed",
        ),
        (
            "GET",
            "/webhooks".into(),
            None,
            None,
            401,
            "missing_credentials",
        ),
        (
            "GET",
            "/webhooks".into(),
            Some("sgn_live_wrong"),
            None,
            401,
            "invalid_credentials",
        ),
        (
            "POST",
            "/webhooks".into(),
            Some(API_KEY),
            Some(big),
            413,
            "payload_too_large",
        ),
        (
            "POST",
            "/webhooks".into(),
            Some(API_KEY),
            Some(b"{not json".to_vec()),
            400,
            "invalid_json",
        ),
        (
            "POST",
            "/webhooks".into(),
            Some(API_KEY),
            Some(b"[1]".to_vec()),
            400,
            "validation_failed",
        ),
        (
            "POST",
            "/webhooks".into(),
            Some(API_KEY),
            Some(br#"{"url": "ftp://x"}"#.to_vec()),
            400,
            "validation_failed",
        ),
        (
            "POST",
            "/webhooks".into(),
            Some(API_KEY),
            Some(br#"{"url": "https://x", "color": 1}"#.to_vec()),
            400,
            "validation_failed",
        ),
        (
            "GET",
            "/webhooks?cursor=bogus".into(),
            Some(API_KEY),
            None,
            400,
            "validation_failed",
        ),
        (
            "GET",
            "/webhooks/not-a-uuid".into(),
            Some(API_KEY),
            None,
            400,
            "validation_failed",
        ),
        (
            "GET",
            format!("/webhooks/{unknown}"),
            Some(API_KEY),
            None,
            404,
            "not_found",
        ),
        (
            "GET",
            format!("/webhooks/{id}"),
            Some(OTHER_KEY),
            None,
            404,
            "not_found",
        ),
        (
            "POST",
            format!("/webhooks/{id}/rotate"),
            Some(API_KEY),
            Some(br#"{"graceSeconds": 604801}"#.to_vec()),
            400,
            "validation_failed",
        ),
        (
            "POST",
            "/events".into(),
            Some(API_KEY),
            Some(br#"{"type": "x"}"#.to_vec()),
            400,
            "validation_failed",
        ),
        // Fields are checked before the endpoint exists.
        (
            "PATCH",
            format!("/webhooks/{unknown}"),
            Some(API_KEY),
            Some(br#"{"paused": "yes"}"#.to_vec()),
            400,
            "validation_failed",
        ),
        // The route is checked before credentials, credentials before size.
        (
            "DELETE",
            "/events".into(),
            Some("sgn_live_wrong"),
            None,
            405,
            "method_not_allowed",
        ),
        // Credentials are checked before the body: a request with none is
        // answered on its headers and its connection closed, its body never
        // read (a client still sending a long body may see the close before
        // the answer: faults.rs reads that answer from a raw socket).
        (
            "POST",
            "/webhooks".into(),
            None,
            Some(vec![b' '; 1024]),
            401,
            "missing_credentials",
        ),
    ];
    for (method, path, key, body, status, code) in cases {
        let (got, content_type, bytes) = service.raw(method, &path, key, body.as_deref());
        let problem: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            (got, problem["code"].as_str()),
            (status, Some(code)),
            "{method} {path}: {problem}"
        );
        assert_eq!(content_type, "application/problem+json", "{method} {path}");
        assert_eq!(problem["status"], status);
        assert_eq!(
            problem["type"],
            format!("https://thesignup.app/problems/{}", code.replace('_', "-"))
        );
        assert!(problem["title"].is_string() && problem["detail"].is_string());
        if code == "validation_failed" {
            assert!(
                !problem["errors"].as_array().unwrap().is_empty(),
                "{problem}"
            );
        }
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(API_KEY) && !text.contains("sgn_live_wrong"),
            "{text}"
        );
    }

    // The eleventh rotation within the grace would keep 11 previous secrets.
    for _ in 0..10 {
        service.ok("POST", &format!("/webhooks/{id}/rotate"), None);
    }
    let (status, problem) = service.call(
        "POST",
        &format!("/webhooks/{id}/rotate"),
        Some(API_KEY),
        None,
    );
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("too_many_secrets"))
    );
}

#[test]
fn organisations_see_only_their_own_endpoints() {
    let service = Service::start(&local());
    let (id, _) = service.create("https://example.com/hook");
    let (status, listed) = service.call("GET", "/webhooks", Some(OTHER_KEY), None);
    assert_eq!((status, listed["data"].clone()), (200, json!([])));
    for (method, path) in [
        ("GET", format!("/webhooks/{id}")),
        ("DELETE", format!("/webhooks/{id}")),
        ("POST", format!("/webhooks/{id}/rotate")),
        ("GET", format!("/webhooks/{id}/attempts")),
        ("POST", format!("/webhooks/{id}/test")),
    ] {
        let (status, problem) = service.call(method, &path, Some(OTHER_KEY), None);
        assert_eq!(
            (status, problem["code"].as_str()),
            (404, Some("not_found")),
            "{method} {path}"
        );
    }
    assert_eq!(
        service.ok("GET", &format!("/webhooks/{id}"), None)["id"],
        id.as_str()
    );
}

#[test]
fn a_restart_keeps_endpoints_secrets_and_attempts() {
    let data = tempfile::tempdir().unwrap();
    let receiver = Receiver::start();
    let (id, secret, attempts) = {
        let service = Service::start_in(data.path(), &local(), &[]);
        let (id, _) = service.create(&receiver.url);
        let rotated = service.ok("POST", &format!("/webhooks/{id}/rotate"), None);
        service.event("a.b");
        let attempts = service.ok("GET", &format!("/webhooks/{id}/attempts"), None);
        (
            id,
            rotated["signingSecret"].as_str().unwrap().to_string(),
            attempts,
        )
    };
    let service = Service::start_in(data.path(), &local(), &[]);
    assert_eq!(
        service.ok("GET", &format!("/webhooks/{id}/attempts"), None),
        attempts
    );
    service.ok("POST", &format!("/webhooks/{id}/test"), None);
    let received = receiver.last();
    let signature = received.header("webhook-signature").unwrap().to_string();
    assert_eq!(signature.split(' ').count(), 2);
    assert!(verifies_with(
        &received,
        &secret,
        signature.split(' ').next()
    ));
}

#[test]
fn private_targets_are_refused_unless_allowed() {
    let data = tempfile::tempdir().unwrap();
    let strict = Service::start_in(data.path(), &[], &[]);
    for url in [
        "http://127.0.0.1:9/x",
        "http://localhost/x",
        "http://10.1.2.3/",
        "http://169.254.169.254/latest",
        "http://[::1]/",
        "http://192.168.0.1/",
        "http://metadata.google.internal/",
    ] {
        let (status, problem) = strict.call(
            "POST",
            "/webhooks",
            Some(API_KEY),
            Some(&json!({ "url": url }).to_string()),
        );
        assert_eq!(
            (status, problem["code"].as_str()),
            (400, Some("forbidden_target")),
            "{url}"
        );
    }
    let (id, _) = strict.create("https://example.com/hook");
    let (status, problem) = strict.call(
        "PATCH",
        &format!("/webhooks/{id}"),
        Some(API_KEY),
        Some(r#"{"url": "http://127.0.0.1/x"}"#),
    );
    assert_eq!(
        (status, problem["code"].as_str()),
        (400, Some("forbidden_target"))
    );
    drop(strict);

    let allowed = Service::start_in(data.path(), &local(), &[]);
    allowed.create("http://127.0.0.1:9/x");
}

#[test]
fn one_events_deliveries_go_out_concurrently() {
    // Each receiver answers 200 only once both deliveries have arrived, and
    // waits at most 4 s for that: delivered one after the other, the first
    // would fail.
    let arrived = Arc::new(AtomicUsize::new(0));
    let mut urls = Vec::new();
    for _ in 0..2 {
        let arrived = arrived.clone();
        // The whole delivery is read before the handler runs, as receivers
        // read it.
        let served = common::http_server::serve(move |_| {
            arrived.fetch_add(1, Ordering::SeqCst);
            let waited = std::time::Instant::now();
            while arrived.load(Ordering::SeqCst) < 2 && waited.elapsed() < Duration::from_secs(4) {
                std::thread::sleep(Duration::from_millis(5));
            }
            let status = if arrived.load(Ordering::SeqCst) >= 2 {
                200
            } else {
                500
            };
            common::http_server::Response::empty(status)
        });
        urls.push(format!("http://{}/hook", served.address));
    }
    let service = Service::start(&[
        ("allow_private_targets", "true"),
        ("delivery_timeout_ms", "10000"),
    ]);
    let ids: Vec<String> = urls.iter().map(|url| service.create(url).0).collect();
    let delivered = service.event("batch.ready");
    let outcomes: Vec<bool> = delivered["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status"] == "succeeded")
        .collect();
    let attempts: Vec<Value> = ids
        .iter()
        .map(|id| service.ok("GET", &format!("/webhooks/{id}/attempts"), None))
        .collect();
    assert_eq!(outcomes, [true, true], "{attempts:?}");
}

#[test]
fn names_that_resolve_to_internal_addresses_are_refused_at_send_time() {
    let receiver = Receiver::start();
    let port = receiver.url.rsplit(':').next().unwrap().to_string();
    // A public-looking name that resolves to loopback (pinned: no DNS here).
    let name = "hooks.rebinding.example";
    let pin = format!("{name}=127.0.0.1");
    let url = format!("http://{name}:{port}");
    let data = tempfile::tempdir().unwrap();
    let strict = Service::start_in(
        data.path(),
        &[("delivery_timeout_ms", "1500")],
        &["--resolve", &pin],
    );
    // The component cannot resolve names: the endpoint is taken...
    let (id, _) = strict.create(&url);
    // ...and the host refuses the delivery.
    let sent = strict.ok("POST", &format!("/webhooks/{id}/test"), None);
    assert_eq!(
        sent["attempt"]["error"], "delivery failed: the host's outbound policy refused the target",
        "{sent}"
    );
    assert_eq!(receiver.count(), 0);
    drop(strict);

    let allowed = Service::start_in(data.path(), &local(), &["--resolve", &pin]);
    let sent = allowed.ok("POST", &format!("/webhooks/{id}/test"), None);
    assert_eq!(sent["attempt"]["succeeded"], true, "{sent}");
    assert_eq!(receiver.count(), 1);
}

#[test]
fn a_tenant_endpoint_at_the_gateways_origin_is_not_exempt() {
    // The origin is internal (loopback) and the operator's own; a tenant
    // who names it gets no pass from being at the same address.
    let origin = Receiver::start();
    let port = origin.url.rsplit(':').next().unwrap().to_string();
    let name = "orders.corp.example";
    let pin = format!("{name}=127.0.0.1");
    let sources = json!({ "shop": {
        "secrets": [{ "key": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }],
        "forwardUrl": format!("http://{name}:{port}/in"),
    } });
    let service = Service::start_with(
        &[
            ("delivery_timeout_ms", "1500"),
            ("inbound_sources", &sources.to_string()),
        ],
        &["--resolve", &pin],
    );
    let (id, _) = service.create(&format!("http://{name}:{port}/admin"));
    let sent = service.ok("POST", &format!("/webhooks/{id}/test"), None);
    assert_eq!(
        sent["attempt"]["error"], "delivery failed: the host's outbound policy refused the target",
        "{sent}"
    );
    assert_eq!(origin.count(), 0);
    // The gateway's own forward gets through.
    let keyring = hooksign::Keyring::from_records(&[hooksign::SecretRecord::new(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    )])
    .unwrap();
    let headers: Vec<(&str, String)> = keyring
        .sign_headers("msg_gateway", hooksign::unix_now(), b"{}")
        .unwrap()
        .into_iter()
        .collect();
    let (status, _, _) = service.raw_with_headers("/inbound/shop", &headers, b"{}");
    assert_eq!(status, 200);
    assert_eq!(origin.count(), 1);
    // The origin never sees the marker.
    let received = origin.last();
    assert!(
        received
            .header(hooksign_edge::GATEWAY_FORWARD_HEADER)
            .is_none()
    );
}

#[test]
fn the_store_file_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let service = Service::start(&local());
    let receiver = Receiver::start();
    service.create(&receiver.url);
    let mut checked = 0;
    for entry in std::fs::read_dir(service.data()).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains("key_value.db") {
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{}: {mode:o}", path.display());
            checked += 1;
        }
    }
    assert!(checked >= 1);
}

/// An https receiver (Python's `http.server` with `ssl`) whose certificate,
/// for `name`, a CA of the test's own signed; its port, the CA's file and
/// the process. `arguments`: the script's options (`--keep-alive`).
fn https_receiver(
    name: &str,
    dir: &std::path::Path,
    arguments: &[&str],
) -> (u16, std::path::PathBuf, std::process::Child) {
    use std::io::BufRead as _;
    common::tls::certificates(dir, &format!("DNS:{name}"));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/https_receiver.py");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let mut child = std::process::Command::new(python)
        .arg(script)
        .arg(dir.join("server.crt"))
        .arg(dir.join("server.key"))
        .args(arguments)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (line.trim().parse().unwrap(), dir.join("ca.crt"), child)
}

#[test]
fn https_goes_to_the_checked_address_under_the_names_certificate() {
    // A name that does not resolve here: only the pinned address (what the
    // outbound check saw) can have been connected to, and TLS checked the
    // certificate against the name.
    let dir = tempfile::tempdir().unwrap();
    let name = "hooks.tls.example";
    let (port, ca, mut receiver) = https_receiver(name, dir.path(), &[]);
    let pin = format!("{name}=127.0.0.1");
    let url = format!("https://{name}:{port}/hook");
    let ca = ca.to_str().unwrap();
    let trusting = Service::start_with(&local(), &["--resolve", &pin, "--outbound-ca", ca]);
    let (id, _) = trusting.create(&url);
    let sent = trusting.ok("POST", &format!("/webhooks/{id}/test"), None);
    assert_eq!(sent["attempt"]["succeeded"], true, "{sent}");
    assert_eq!(sent["response"]["body"], "ok", "{sent}");
    // Without the CA, the certificate is refused.
    let untrusting = Service::start_with(&local(), &["--resolve", &pin]);
    let (id, _) = untrusting.create(&url);
    let sent = untrusting.ok("POST", &format!("/webhooks/{id}/test"), None);
    assert_eq!(sent["attempt"]["succeeded"], false, "{sent}");
    // Strict: the address the name resolves to is internal, so nothing goes.
    let strict = Service::start_with(
        &[("delivery_timeout_ms", "1500")],
        &["--resolve", &pin, "--outbound-ca", ca],
    );
    let (id, _) = strict.create(&url);
    let sent = strict.ok("POST", &format!("/webhooks/{id}/test"), None);
    assert_eq!(
        sent["attempt"]["error"], "delivery failed: the host's outbound policy refused the target",
        "{sent}"
    );
    receiver.kill().unwrap();
    receiver.wait().unwrap();
}

#[test]
fn deliveries_to_one_receiver_reuse_a_kept_alive_connection() {
    // One endpoint's test sends, one after the other: one connection, as
    // under a Spin; a new one for each with pooling off.
    for (arguments, connections) in [(&[][..], 1), (&["--no-connection-pooling"][..], 5)] {
        let receiver =
            common::http_server::Counting::start(Duration::ZERO, Some(Duration::from_secs(30)));
        let service = Service::start_with(&local(), arguments);
        let (id, _) = service.create(&receiver.url);
        for _ in 0..5 {
            let sent = service.ok("POST", &format!("/webhooks/{id}/test"), None);
            assert_eq!(sent["attempt"]["succeeded"], true, "{sent}");
        }
        assert_eq!(receiver.requests.load(Ordering::SeqCst), 5);
        assert_eq!(
            receiver.connections.load(Ordering::SeqCst),
            connections,
            "{arguments:?}"
        );
    }
}

#[test]
fn https_deliveries_to_one_receiver_reuse_a_kept_alive_connection() {
    // As plain http's: one endpoint's test sends, one after the other, go
    // on one connection (checked under the endpoint's name once); on a new
    // one each with pooling off, each after the first resuming a session.
    // Python sends a body after its head, so hyper-util pools the
    // connection from a task of its own once the body is read; a send
    // before that task runs opens another (on a loaded CI, 1 run in 10).
    // So the sends are a moment apart, well within the idle timeout.
    let dir = tempfile::tempdir().unwrap();
    let name = "hooks.tls.example";
    let (port, ca, mut receiver) = https_receiver(name, dir.path(), &["--keep-alive"]);
    let pin = format!("{name}=127.0.0.1");
    let url = format!("https://{name}:{port}/hook");
    let ca = ca.to_str().unwrap();
    let options = ["--resolve", &pin, "--outbound-ca", ca];
    for (pooling, connections) in [(true, 1), (false, 5)] {
        let mut arguments = options.to_vec();
        if !pooling {
            arguments.push("--no-connection-pooling");
        }
        let service = Service::start_with(&local(), &arguments);
        let (id, _) = service.create(&url);
        let mut used = std::collections::BTreeSet::new();
        let mut resumed = 0;
        for _ in 0..5 {
            std::thread::sleep(Duration::from_millis(200));
            let sent = service.ok("POST", &format!("/webhooks/{id}/test"), None);
            assert_eq!(sent["attempt"]["succeeded"], true, "{sent}");
            let body = sent["response"]["body"].as_str().unwrap();
            let (connection, session) = body.split_at(body.find(" resumed").unwrap_or(body.len()));
            used.insert(connection.to_string());
            resumed += usize::from(!session.is_empty());
        }
        assert_eq!(used.len(), connections, "pooling {pooling}: {used:?}");
        assert_eq!(resumed, if pooling { 0 } else { 4 }, "pooling {pooling}");
    }
    receiver.kill().unwrap();
    receiver.wait().unwrap();
}

#[test]
fn a_receiver_that_closes_idle_connections_gets_every_delivery() {
    // The receiver closes a connection idle for 200 ms, sooner than the
    // pool lets one go: each send finds its connection closed and opens
    // another, and none fails.
    let receiver =
        common::http_server::Counting::start(Duration::ZERO, Some(Duration::from_millis(200)));
    let service = Service::start(&local());
    let (id, _) = service.create(&receiver.url);
    for _ in 0..5 {
        let sent = service.ok("POST", &format!("/webhooks/{id}/test"), None);
        assert_eq!(sent["attempt"]["succeeded"], true, "{sent}");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(receiver.requests.load(Ordering::SeqCst), 5);
    assert_eq!(receiver.connections.load(Ordering::SeqCst), 5);
}
