//! The receiver gateway end to end: deliveries signed by the Python
//! `standardwebhooks` library and by the native library go through
//! `hooksign serve` to a test origin only when they verify.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;

use common::service::{API_KEY, OTHER_KEY, Receiver, Service};
use hooksign::{Keyring, Secret, SecretRecord};
use serde_json::{Value, json};

/// A signature from the Python `standardwebhooks` library (pip).
fn peer_signature(secret: &str, id: &str, timestamp: i64, body: &str) -> String {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/standardwebhooks_sign.py"
    );
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let mut child = Command::new(python)
        .args([script, secret, id, &timestamp.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the standardwebhooks signer failed: is it installed (pip install standardwebhooks)?"
    );
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// Header names and values to send.
type Headers = Vec<(&'static str, String)>;

fn native_signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    Keyring::from_records(&[SecretRecord::new(secret)])
        .unwrap()
        .sign(id, timestamp, body)
        .unwrap()
}

/// POSTs with every header on its own line, as given; returns the raw answer.
fn raw_post(base: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> String {
    use std::io::Read as _;
    let address = base.strip_prefix("http://").unwrap();
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

fn now() -> i64 {
    hooksign::unix_now()
}

struct Gateway {
    service: Service,
    origin: Receiver,
    old: String,
    new: String,
}

impl Gateway {
    /// Sources: `shop` holds the new secret and the old one for another
    /// hour; `shop-rotated` the same keys with the old one's window over.
    fn start() -> Gateway {
        let origin = Receiver::start();
        let old = Secret::generate().unwrap().to_text();
        let new = Secret::generate().unwrap().to_text();
        let sources = json!({
            "shop": {
                "secrets": [{"key": new}, {"key": old, "notAfter": now() + 3600}],
                "toleranceSeconds": 300,
                "forwardUrl": origin.url,
                "org": "acme",
            },
            "shop-rotated": {
                "secrets": [{"key": new}, {"key": old, "notAfter": now() - 1}],
                "forwardUrl": origin.url,
            },
            "broken": {"secrets": [{"key": "whsec_short"}], "forwardUrl": origin.url},
            "retired": {"secrets": [{"key": new, "notAfter": now() - 10}], "forwardUrl": origin.url},
        });
        let service = Service::start(&[
            ("inbound_sources", &sources.to_string()),
            ("delivery_timeout_ms", "1500"),
        ]);
        Gateway {
            service,
            origin,
            old,
            new,
        }
    }

    fn post(
        &self,
        source: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> (u16, String, Vec<u8>) {
        self.service
            .raw_with_headers(&format!("/inbound/{source}"), headers, body)
    }

    fn signed(id: &str, timestamp: i64, signature: String) -> Headers {
        vec![
            ("content-type", "application/json".into()),
            ("webhook-id", id.into()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signature),
        ]
    }

    fn problem(&self, source: &str, headers: &[(&str, String)], body: &[u8]) -> (u16, String) {
        let (status, content_type, bytes) = self.post(source, headers, body);
        assert_eq!(
            content_type, "application/problem+json",
            "{status} for {headers:?}"
        );
        let problem: Value = serde_json::from_slice(&bytes).unwrap();
        (status, problem["code"].as_str().unwrap().to_string())
    }
}

#[test]
fn peer_signed_deliveries_are_forwarded_with_the_matching_secret() {
    let gateway = Gateway::start();
    let body = r#"{"type":"order.paid","data":{"amount":4200,"note":"naïve café ☕"}}"#;
    let t = now();

    let headers = Gateway::signed(
        "msg_new_1",
        t,
        peer_signature(&gateway.new, "msg_new_1", t, body),
    );
    let (status, content_type, answer) = gateway.post("shop", &headers, body.as_bytes());
    assert_eq!((status, answer.as_slice()), (200, b"received".as_slice()));
    assert_eq!(content_type, "text/plain; charset=UTF-8");
    let forwarded = gateway.origin.last();
    assert_eq!(forwarded.body, body.as_bytes());
    assert_eq!(forwarded.header("hooksign-verified-secret"), Some("0"));
    assert_eq!(forwarded.header("webhook-id"), Some("msg_new_1"));
    assert_eq!(
        forwarded.header("webhook-timestamp"),
        Some(t.to_string().as_str())
    );
    assert_eq!(forwarded.header("content-type"), Some("application/json"));

    // The previous secret verifies until its notAfter…
    let headers = Gateway::signed(
        "msg_old_1",
        t,
        peer_signature(&gateway.old, "msg_old_1", t, body),
    );
    assert_eq!(gateway.post("shop", &headers, body.as_bytes()).0, 200);
    assert_eq!(
        gateway.origin.last().header("hooksign-verified-secret"),
        Some("1")
    );
    // …and not after it.
    let before = gateway.origin.count();
    assert_eq!(
        gateway.problem("shop-rotated", &headers, body.as_bytes()),
        (401, "no_matching_signature".into())
    );
    assert_eq!(gateway.origin.count(), before);

    // The native library's signatures too, and a binary body byte for byte.
    let binary: Vec<u8> = (0..=255u8).rev().collect();
    let headers = Gateway::signed(
        "msg_bin",
        t,
        native_signature(&gateway.new, "msg_bin", t, &binary),
    );
    assert_eq!(gateway.post("shop", &headers, &binary).0, 200);
    assert_eq!(gateway.origin.last().body, binary);
}

#[test]
fn deliveries_that_do_not_verify_never_reach_the_origin() {
    let gateway = Gateway::start();
    let body = r#"{"type":"order.paid"}"#;
    let t = now();
    let good = peer_signature(&gateway.new, "msg_1", t, body);
    let wrong = peer_signature(&Secret::generate().unwrap().to_text(), "msg_1", t, body);
    // Well past the 300 s tolerance: the clock moves while the test runs; the
    // exact boundaries are in the vector files.
    let stale = peer_signature(&gateway.new, "msg_1", t - 400, body);
    let future = peer_signature(&gateway.new, "msg_1", t + 400, body);
    let cases: Vec<(Headers, &[u8], u16, &str)> = vec![
        (
            Gateway::signed("msg_1", t, good.clone()),
            br#"{"type":"order.refunded"}"#,
            401,
            "no_matching_signature",
        ),
        (
            Gateway::signed("msg_1", t, wrong),
            body.as_bytes(),
            401,
            "no_matching_signature",
        ),
        (
            Gateway::signed("msg_1", t - 400, stale),
            body.as_bytes(),
            401,
            "timestamp_too_old",
        ),
        (
            Gateway::signed("msg_1", t + 400, future),
            body.as_bytes(),
            401,
            "timestamp_too_new",
        ),
        (
            Gateway::signed("msg_1", t, good.clone())[..3].to_vec(),
            body.as_bytes(),
            400,
            "missing_header",
        ),
        (
            Gateway::signed("msg_1", t, "v1,".into()),
            body.as_bytes(),
            401,
            "no_matching_signature",
        ),
    ];
    for (headers, payload, status, code) in cases {
        assert_eq!(
            gateway.problem("shop", &headers, payload),
            (status, code.to_string()),
            "{code}"
        );
    }
    // A repeated header needs two header lines, which the HTTP client merges: raw HTTP/1.1.
    let repeated = [
        Gateway::signed("msg_1", t, good.clone()),
        vec![("webhook-id", "msg_1".into())],
    ]
    .concat();
    let answer = raw_post(
        &gateway.service.base,
        "/inbound/shop",
        &repeated,
        body.as_bytes(),
    );
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(answer.contains(r#""code":"invalid_header""#), "{answer}");
    assert_eq!(gateway.origin.count(), 0);

    assert_eq!(
        gateway.problem(
            "nowhere",
            &Gateway::signed("msg_1", t, good.clone()),
            body.as_bytes()
        ),
        (404, "not_found".into())
    );
    assert_eq!(
        gateway.problem(
            "broken",
            &Gateway::signed("msg_1", t, good.clone()),
            body.as_bytes()
        ),
        (500, "invalid_configuration".into())
    );
    assert_eq!(
        gateway.problem(
            "retired",
            &Gateway::signed("msg_1", t, good),
            body.as_bytes()
        ),
        (401, "no_usable_secret".into())
    );
    let big = vec![b'x'; 1024 * 1024 + 1];
    assert_eq!(
        gateway.problem("shop", &[], &big),
        (413, "payload_too_large".into())
    );
}

#[test]
fn replays_are_refused_but_retries_after_origin_failures_get_through() {
    let gateway = Gateway::start();
    let body = r#"{"n":1}"#;
    let t = now();
    let headers = Gateway::signed(
        "msg_once",
        t,
        peer_signature(&gateway.new, "msg_once", t, body),
    );
    assert_eq!(gateway.post("shop", &headers, body.as_bytes()).0, 200);
    assert_eq!(
        gateway.problem("shop", &headers, body.as_bytes()),
        (409, "duplicate_delivery".into())
    );
    assert_eq!(gateway.origin.count(), 1);

    // The origin fails: its status comes back and the id stays unaccepted.
    gateway.origin.answer(503);
    let headers = Gateway::signed(
        "msg_retry",
        t,
        peer_signature(&gateway.new, "msg_retry", t, body),
    );
    assert_eq!(gateway.post("shop", &headers, body.as_bytes()).0, 503);
    gateway.origin.answer(200);
    assert_eq!(gateway.post("shop", &headers, body.as_bytes()).0, 200);
    assert_eq!(
        gateway.problem("shop", &headers, body.as_bytes()),
        (409, "duplicate_delivery".into())
    );

    // A slow origin is 504, then the sender's retry goes through.
    gateway.origin.delay_ms.store(3000, Ordering::SeqCst);
    let headers = Gateway::signed(
        "msg_slow",
        t,
        peer_signature(&gateway.new, "msg_slow", t, body),
    );
    assert_eq!(
        gateway.problem("shop", &headers, body.as_bytes()),
        (504, "origin_timeout".into())
    );
    gateway.origin.delay_ms.store(0, Ordering::SeqCst);
    assert_eq!(gateway.post("shop", &headers, body.as_bytes()).0, 200);

    let stats = gateway.service.ok("GET", "/inbound/shop/stats", None);
    assert_eq!(stats["accepted"], 3);
    assert_eq!(
        stats["rejected"],
        json!({"duplicate_delivery": 2, "origin_rejected": 1, "origin_timeout": 1})
    );
    assert_eq!(stats["bySecret"], json!({"0": 3}));
    let (status, problem) = gateway
        .service
        .call("GET", "/inbound/shop/stats", None, None);
    assert_eq!(
        (status, problem["code"].as_str()),
        (401, Some("missing_credentials"))
    );
    // Another organisation's key: no such source, for it.
    let (status, _) = gateway
        .service
        .call("GET", "/inbound/shop/stats", Some(OTHER_KEY), None);
    assert_eq!(status, 404);
    let _ = API_KEY;
}

#[test]
fn an_unreachable_origin_is_502() {
    let origin_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let secret = Secret::generate().unwrap().to_text();
    let sources = json!({"down": {"secrets": [{"key": secret}], "forwardUrl": format!("http://127.0.0.1:{origin_port}/")}});
    let service = Service::start(&[("inbound_sources", &sources.to_string())]);
    let t = now();
    let signature = native_signature(&secret, "msg_down", t, b"{}");
    let request = ureq::post(&format!("{}/inbound/down", service.base))
        .set("webhook-id", "msg_down")
        .set("webhook-timestamp", &t.to_string())
        .set("webhook-signature", &signature);
    let response = match request.send_bytes(b"{}") {
        Err(ureq::Error::Status(_, response)) => response,
        other => panic!("{other:?}"),
    };
    assert_eq!(response.status(), 502);
    let problem: Value = response.into_json().unwrap();
    assert_eq!(problem["code"], "origin_unreachable");
}
