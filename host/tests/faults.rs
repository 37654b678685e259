//! Receivers that misbehave, requests that run too long, and clients that
//! send slowly or not at all: each ends as a failed attempt, a problem
//! document or a closed connection, and the service keeps serving.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::http_server::Counting;
use common::service::{API_KEY, Service, local};
use serde_json::{Value, json};

/// What a receiver does with a connection once it has read the request head.
type Misbehaviour = fn(TcpStream);

/// A receiver on loopback that reads each request's head and then does
/// `misbehave` with the connection, on a thread of its own.
fn misbehaving_receiver(misbehave: Misbehaviour) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut head = [0u8; 1024];
            let _ = stream.read(&mut head);
            std::thread::spawn(move || misbehave(stream));
        }
    });
    url
}

/// Holds the connection open and never answers.
fn hang(stream: TcpStream) {
    std::thread::sleep(Duration::from_secs(30));
    drop(stream);
}

/// Resets the connection (RST, not FIN).
fn reset(stream: TcpStream) {
    socket2::SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(stream);
}

/// Closes the connection without a word.
fn hang_up(stream: TcpStream) {
    drop(stream);
}

/// Sends the status line and headers, a little of the body, then stalls.
fn stall_mid_body(mut stream: TcpStream) {
    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten b");
    std::thread::sleep(Duration::from_secs(30));
}

/// Answers a status line that is not HTTP.
fn garbage(mut stream: TcpStream) {
    let _ = stream.write_all(b"SMTP READY\r\n\r\n");
}

#[test]
fn receivers_that_hang_reset_or_stall_are_failed_attempts() {
    let service = Service::start(&local());
    let cases: [(&str, Misbehaviour, &str); 5] = [
        ("hangs", hang, "no answer within 1500 ms"),
        ("resets", reset, "delivery failed"),
        ("hangs up", hang_up, "delivery failed"),
        (
            "stalls mid-body",
            stall_mid_body,
            "no answer within 1500 ms",
        ),
        ("answers garbage", garbage, "delivery failed"),
    ];
    for (what, misbehave, error) in cases {
        let (id, _) = service.create(&misbehaving_receiver(misbehave));
        let started = Instant::now();
        let sent = service.ok("POST", &format!("/webhooks/{id}/test"), None);
        assert!(started.elapsed() < Duration::from_secs(5), "{what}: stuck");
        assert_eq!(sent["attempt"]["succeeded"], false, "{what}: {sent}");
        assert_eq!(sent["response"], Value::Null, "{what}: {sent}");
        let text = sent["attempt"]["error"].as_str().unwrap();
        assert!(text.starts_with(error), "{what}: {text}");

        // The failure is on record, and counts towards auto-pause when it
        // is an event's.
        let attempts = service.ok("GET", &format!("/webhooks/{id}/attempts"), None);
        assert_eq!(attempts["data"][0]["error"], text, "{what}");
        service.ok(
            "PATCH",
            &format!("/webhooks/{id}"),
            Some(r#"{"eventTypes":["probe"]}"#),
        );
        let delivered = service.event("probe");
        assert_eq!(delivered["deliveries"][0]["status"], "failed", "{what}");
        let endpoint = service.ok("GET", &format!("/webhooks/{id}"), None);
        assert_eq!(endpoint["consecutiveFailures"], 1, "{what}: {endpoint}");
        service.ok("DELETE", &format!("/webhooks/{id}"), None);
    }
}

#[test]
fn a_tls_handshake_that_never_finishes_and_a_redirect_are_failed_attempts() {
    let service = Service::start(&local());
    // The receiver takes the ClientHello and never answers it.
    let stalled = misbehaving_receiver(hang).replacen("http://", "https://", 1);
    let (id, _) = service.create(&stalled);
    let started = Instant::now();
    let sent = service.ok("POST", &format!("/webhooks/{id}/test"), None);
    assert!(started.elapsed() < Duration::from_secs(5), "stuck");
    assert_eq!(sent["attempt"]["succeeded"], false, "{sent}");

    // A 307 to another address is not followed: the attempt failed, and
    // the place it pointed at got nothing.
    let elsewhere = common::service::Receiver::start();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let redirecting = format!("http://{}/hook", listener.local_addr().unwrap());
    let location = elsewhere.url.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut head = [0u8; 4096];
            let _ = stream.read(&mut head);
            let answer = format!(
                "HTTP/1.1 307 Temporary Redirect\r\nlocation: {location}\r\ncontent-length: 0\r\n\r\n"
            );
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    let (id, _) = service.create(&redirecting);
    let sent = service.ok("POST", &format!("/webhooks/{id}/test"), None);
    assert_eq!(sent["attempt"]["succeeded"], false, "{sent}");
    assert_eq!(sent["attempt"]["responseStatus"], 307, "{sent}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(elsewhere.count(), 0, "the redirect was followed");
}

#[test]
fn a_request_past_its_deadline_is_stopped_with_a_problem() {
    let service = Service::start_with(
        &[
            ("allow_private_targets", "true"),
            ("delivery_timeout_ms", "20000"),
        ],
        &["--request-timeout-ms", "800"],
    );
    let (id, _) = service.create(&misbehaving_receiver(hang));
    let started = Instant::now();
    let (status, problem) =
        service.call("POST", &format!("/webhooks/{id}/test"), Some(API_KEY), None);
    let took = started.elapsed();
    assert_eq!(status, 503, "{problem}");
    assert_eq!(problem["code"], "request_timeout");
    assert!(took >= Duration::from_millis(800), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(service.logs_soon("deadline"));

    // The service goes on serving, and the endpoint is whole.
    let endpoint = service.ok("GET", &format!("/webhooks/{id}"), None);
    assert_eq!(endpoint["id"], id.as_str());
    service.ok("POST", &format!("/webhooks/{id}/rotate"), None);
}

#[test]
fn a_store_that_fails_mid_request_is_a_503_and_loses_nothing() {
    let service = std::sync::Arc::new(Service::start(&local()));
    let receiver = common::service::Receiver::start();
    let (id, secret) = service.create(&receiver.url);

    // Another process holds the store's write lock: the service's writes
    // fail once SQLite's busy timeout passes; its reads still work.
    let lock = rusqlite::Connection::open(service.data().join("key_value.db")).unwrap();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let attempts = [
        (
            "POST",
            "/webhooks".to_string(),
            Some(r#"{"url":"http://127.0.0.1:9/x"}"#),
        ),
        ("POST", format!("/webhooks/{id}/rotate"), None),
        (
            "PATCH",
            format!("/webhooks/{id}"),
            Some(r#"{"description":"changed"}"#),
        ),
        ("DELETE", format!("/webhooks/{id}"), None),
    ];
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let calls: Vec<_> = attempts
            .iter()
            .map(|(method, path, body)| {
                let service = service.clone();
                scope.spawn(move || service.call(method, path, Some(API_KEY), *body))
            })
            .collect();
        calls.into_iter().map(|call| call.join().unwrap()).collect()
    });
    lock.execute_batch("ROLLBACK").unwrap();
    for ((method, path, _), (status, problem)) in attempts.iter().zip(&answers) {
        assert_eq!(status, &503, "{method} {path}: {problem}");
        assert_eq!(problem["code"], "store_unavailable", "{method} {path}");
    }

    // Nothing changed, and everything works again.
    let listed = service.ok("GET", "/webhooks", None);
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["data"][0]["description"], "");
    service.ok("POST", &format!("/webhooks/{id}/test"), None);
    let delivery = receiver.last();
    let signatures = delivery.header("webhook-signature").unwrap();
    assert_eq!(signatures.split(' ').count(), 1, "{signatures}");
    assert!(common::service::verifies_with(&delivery, &secret, None));
    service.ok("POST", &format!("/webhooks/{id}/rotate"), None);
}

/// Connects and either sends a request's headers a byte every 200 ms
/// (slowloris) or nothing; returns how long until the server closed the
/// connection, or `None` if it was still open after 15 s.
fn hold_connection(address: &str, trickle: bool) -> Option<Duration> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(address).unwrap();
    // The read timeout paces the bytes.
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut head = b"GET /openapi.yaml HTTP/1.1\r\nhost: hooksign\r\nx-padding: "
        .iter()
        .chain(std::iter::repeat(&b'a'));
    let mut buffer = [0u8; 512];
    while started.elapsed() < Duration::from_secs(15) {
        if trickle && stream.write_all(&[*head.next().unwrap()]).is_err() {
            return Some(started.elapsed());
        }
        match stream.read(&mut buffer) {
            Ok(0) => return Some(started.elapsed()),
            // An answer (a 408) before the close.
            Ok(_) => {}
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(started.elapsed()),
        }
    }
    None
}

#[test]
fn slow_and_silent_clients_are_cut_off_and_cannot_hold_the_server() {
    let service = Service::start_with(
        &[],
        &["--header-timeout-ms", "1000", "--max-connections", "4"],
    );
    let address = service.base.trim_start_matches("http://").to_string();
    // Every connection the server allows: three slowloris clients and one
    // that never sends a byte.
    let holders: Vec<_> = [true, true, true, false]
        .into_iter()
        .map(|trickle| {
            let address = address.clone();
            std::thread::spawn(move || hold_connection(&address, trickle))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // A real client still gets its answer: a slot frees when the header
    // timeout closes a holder.
    let (status, _) = service.call("GET", "/openapi.yaml", None, None);
    assert_eq!(status, 200);
    for holder in holders {
        let closed = holder.join().unwrap();
        assert!(
            closed.is_some(),
            "a slow or silent client held its connection for 15 s"
        );
    }
}

/// Sends `head` (a request's headers, announcing a 1,000-byte body), then
/// drips the body a byte every 200 ms; returns the answer's status line
/// and when it came, or `None` if nothing came within 15 s.
fn drip_body(address: &str, head: &str) -> Option<(String, Duration)> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 1024];
    while started.elapsed() < Duration::from_secs(15) {
        if stream.write_all(b" ").is_err() && answer.is_empty() {
            return None;
        }
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => answer.extend_from_slice(&buffer[..read]),
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
        if answer.windows(4).any(|end| end == b"\r\n\r\n") {
            break;
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    let status = answer.lines().next()?.to_string();
    Some((status, started.elapsed()))
}

#[test]
fn dripped_bodies_are_cut_off_and_requests_without_a_key_do_not_wait_for_theirs() {
    let service = Service::start_with(
        &[],
        &["--body-timeout-ms", "1000", "--max-connections", "8"],
    );
    let address = service.base.trim_start_matches("http://").to_string();
    let head = |path: &str, key: Option<&str>| {
        let authorization = key.map_or(String::new(), |key| {
            format!("authorization: Bearer {key}\r\n")
        });
        format!(
            "POST {path} HTTP/1.1\r\nhost: hooksign\r\n{authorization}content-type: application/json\r\ncontent-length: 1000\r\n\r\n"
        )
    };
    // Eight clients, every connection the server allows: six drip bodies
    // with a key, to the API and to the gateway; two with none.
    let requests = [
        (head("/webhooks", Some(API_KEY)), "408"),
        (head("/events", Some(API_KEY)), "408"),
        (head("/events", Some(API_KEY)), "408"),
        (head("/events", Some(API_KEY)), "408"),
        (head("/inbound/shop", None), "408"),
        (head("/inbound/shop", None), "408"),
        (head("/events", None), "401"),
        (head("/webhooks", Some("not-a-key")), "401"),
    ];
    let clients: Vec<_> = requests
        .into_iter()
        .map(|(head, expected)| {
            let address = address.clone();
            std::thread::spawn(move || (drip_body(&address, &head), expected))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // A real client still gets its answer once a slot frees.
    let started = Instant::now();
    let (status, _) = service.call("GET", "/openapi.yaml", None, None);
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_secs(5));
    for client in clients {
        let (answer, expected) = client.join().unwrap();
        let (status, after) = answer.expect("a dripped body held its connection for 15 s");
        assert!(status.contains(expected), "{status}, expected {expected}");
        // No key: answered on the headers. A key: cut off at the timeout.
        let bound = if expected == "401" { 0.8 } else { 4.0 };
        assert!(
            after < Duration::from_secs_f64(bound),
            "{status} after {after:?}"
        );
    }
}

#[test]
fn a_request_past_the_instance_pool_waits_for_a_slot_instead_of_failing() {
    // One connection and no dispatcher: a pool of three instances (one per
    // connection, two for the dispatcher's passes).
    let service = Service::start_with(
        &[
            ("allow_private_targets", "true"),
            ("delivery_timeout_ms", "5000"),
            ("retry_schedule", "0"),
        ],
        &["--max-connections", "1", "--dispatch-interval-ms", "0"],
    );
    let receiver = Counting::start(Duration::from_millis(1500), None);
    for n in 0..4 {
        let body = json!({ "url": receiver.url, "eventTypes": [format!("pool.{n}")] });
        service.ok("POST", "/webhooks", Some(&body.to_string()));
    }
    // Each event's instance answers, then holds its slot while its first
    // attempt waits on the receiver: three events take every slot.
    for n in 0..3 {
        let body = json!({ "type": format!("pool.{n}"), "data": {} });
        service.ok("POST", "/events", Some(&body.to_string()));
    }
    assert_eq!(receiver.requests.load(Ordering::SeqCst), 0);
    // The fourth waits until an instance ends, which is after the receiver
    // has answered its attempt; it is not refused.
    let body = json!({ "type": "pool.3", "data": {} });
    let (status, answer) = service.call("POST", "/events", Some(API_KEY), Some(&body.to_string()));
    assert_eq!(status, 202, "{answer}");
    assert!(receiver.requests.load(Ordering::SeqCst) >= 1);
    assert_eq!(receiver.wait_for(4, 15), 4);
}
