//! What every kind of send puts on the wire, read by a receiver as strict
//! as the strictest in use: it reads exactly `Content-Length` bytes and
//! refuses a chunked body (or one with no length) with 411, as Python's
//! `http.server` and many hand-written handlers effectively do. What it
//! reads, the Standard Webhooks reference library (Python
//! `standardwebhooks`) verifies.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::service::{Received, Service, local, verifies_with};
use hooksign::{Keyring, Secret, SecretRecord};
use serde_json::json;

/// What the strict receiver saw of one request.
#[derive(Clone, Debug)]
enum Seen {
    /// Read by its `Content-Length`.
    Read(Received),
    /// Refused: chunked, or no length; the request head's header lines.
    Refused(Vec<(String, String)>),
}

/// A loopback receiver on a raw socket: one request a connection.
struct LengthOnlyReceiver {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl LengthOnlyReceiver {
    fn start() -> LengthOnlyReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let log = log.clone();
                std::thread::spawn(move || {
                    if let Some(request) = read_by_length(stream) {
                        log.lock().unwrap().push(request);
                    }
                });
            }
        });
        LengthOnlyReceiver { url, seen }
    }

    /// Waits up to 10 s for `count` requests; returns all of them.
    fn wait_for(&self, count: usize) -> Vec<Seen> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.seen.lock().unwrap().len() < count && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.seen.lock().unwrap().clone()
    }
}

/// Reads one request: the head, then exactly `Content-Length` bytes.
fn read_by_length(stream: TcpStream) -> Option<Seen> {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_string();
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let header = |wanted: &str| {
        headers
            .iter()
            .find(|(name, _)| name == wanted)
            .map(|(_, value)| value.clone())
    };
    let length = header("content-length").and_then(|length| length.parse::<usize>().ok());
    let mut stream = stream;
    let (seen, answer) = match length {
        Some(length) if header("transfer-encoding").is_none() => {
            let mut body = vec![0; length];
            reader.read_exact(&mut body).ok()?;
            let received = Received {
                path,
                headers,
                body,
            };
            (Seen::Read(received), "204 No Content")
        }
        _ => (Seen::Refused(headers), "411 Length Required"),
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {answer}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
    Some(seen)
}

/// Whether the Standard Webhooks reference library (Python
/// `standardwebhooks`) verifies a received delivery with `secret`.
fn reference_verifies(received: &Received, secret: &str) -> bool {
    use std::io::Write as _;
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/standardwebhooks_verify.py"
    );
    let headers: serde_json::Map<String, serde_json::Value> = received
        .headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), json!(value)))
        .collect();
    let input = json!({ "headers": headers, "body": String::from_utf8_lossy(&received.body) });
    let mut child = std::process::Command::new(python)
        .arg(script)
        .arg(secret)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("python3 with standardwebhooks (hosts/python/requirements.txt)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    child.wait().unwrap().success()
}

/// The request, which must have been read by its length, with the
/// headers every send carries.
fn read_by_length_with_agent(seen: &Seen, what: &str) -> Received {
    let received = match seen {
        Seen::Read(received) => received,
        Seen::Refused(headers) => {
            panic!(
                "{what} was refused by a receiver that reads Content-Length; it sent {headers:?}"
            )
        }
    };
    assert_eq!(
        received.header("content-length"),
        Some(received.body.len().to_string().as_str()),
        "{what}"
    );
    assert!(!received.body.is_empty(), "{what}");
    assert_eq!(
        received.header("user-agent"),
        Some(concat!("hooksign/", env!("CARGO_PKG_VERSION"))),
        "{what}"
    );
    received.clone()
}

#[test]
fn deliveries_test_sends_and_resends_carry_their_length_and_agent() {
    let service = Service::start(&local());
    let receiver = LengthOnlyReceiver::start();
    let (id, secret) = service.create(&receiver.url);

    let sent = service.ok("POST", &format!("/webhooks/{id}/test"), None);
    assert_eq!(sent["attempt"]["succeeded"], true, "{sent}");
    assert_eq!(sent["response"]["status"], 204);

    let accepted = service.ok(
        "POST",
        "/events",
        Some(&json!({ "type": "order.paid", "data": { "n": 1 } }).to_string()),
    );
    let message_id = accepted["id"].as_str().unwrap();
    let message = service.first_attempts(message_id);
    assert_eq!(message["deliveries"][0]["status"], "succeeded", "{message}");

    service.ok(
        "POST",
        &format!("/messages/{message_id}/resend"),
        Some(&json!({ "endpointId": id }).to_string()),
    );
    let seen = receiver.wait_for(3);
    assert_eq!(seen.len(), 3, "{seen:?}");
    for (seen, what) in seen
        .iter()
        .zip(["the test send", "the delivery", "the resend"])
    {
        let received = read_by_length_with_agent(seen, what);
        assert!(verifies_with(&received, &secret, None), "{what}");
        assert!(reference_verifies(&received, &secret), "{what}");
        assert_eq!(received.header("content-type"), Some("application/json"));
    }
}

#[test]
fn gateway_forwards_carry_their_length_and_agent() {
    let origin = LengthOnlyReceiver::start();
    let secret = Secret::generate().unwrap().to_text();
    let sources = json!({ "shop": { "secrets": [{ "key": secret }], "forwardUrl": origin.url } });
    let service = Service::start(&[("inbound_sources", &sources.to_string())]);
    let body = br#"{"type":"order.paid"}"#;
    let timestamp = hooksign::unix_now();
    let signature = Keyring::from_records(&[SecretRecord::new(&secret)])
        .unwrap()
        .sign("msg_wire", timestamp, body)
        .unwrap();
    let (status, _, answer) = service.raw_with_headers(
        "/inbound/shop",
        &[
            ("content-type", "application/json".into()),
            ("webhook-id", "msg_wire".into()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signature),
        ],
        body,
    );
    assert_eq!(status, 204, "{}", String::from_utf8_lossy(&answer));
    let seen = origin.wait_for(1);
    let forwarded = read_by_length_with_agent(&seen[0], "the gateway's forward");
    assert_eq!(forwarded.body, body);
    assert_eq!(forwarded.header("webhook-id"), Some("msg_wire"));
}

#[test]
fn an_endpoints_custom_headers_arrive_and_a_sensitive_one_is_sealed_at_rest() {
    let data = tempfile::tempdir().unwrap();
    let service = Service::start_in(data.path(), &local(), &[]);
    let receiver = LengthOnlyReceiver::start();
    let body = json!({
        "url": receiver.url,
        "headers": { "X-Tenant": "acme-eu" },
        "sensitiveHeaders": { "Authorization": "Bearer wire-s3cret-token" },
    });
    let created = service.ok("POST", "/webhooks", Some(&body.to_string()));
    let id = created["endpoint"]["id"].as_str().unwrap();
    let secret = created["signingSecret"].as_str().unwrap();
    service.ok("POST", &format!("/webhooks/{id}/test"), None);
    let accepted = service.ok("POST", "/events", Some(r#"{"type":"t","data":{}}"#));
    service.first_attempts(accepted["id"].as_str().unwrap());
    let seen = receiver.wait_for(2);
    for (seen, what) in seen.iter().zip(["the test send", "the delivery"]) {
        let received = read_by_length_with_agent(seen, what);
        assert_eq!(received.header("x-tenant"), Some("acme-eu"), "{what}");
        assert_eq!(
            received.header("authorization"),
            Some("Bearer wire-s3cret-token")
        );
        assert!(verifies_with(&received, secret, None), "{what}");
        assert!(reference_verifies(&received, secret), "{what}");
    }
    let log = service.stop();
    assert!(!log.contains("wire-s3cret-token"));
    let files = common::files_text(data.path());
    assert!(files.contains("acme-eu") && !files.contains("wire-s3cret-token"));
}
