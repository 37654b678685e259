//! Durable delivery end to end through `hooksign serve`: retries on the
//! schedule, exhaustion and auto-pause, a crash with deliveries pending,
//! two dispatchers on one store, idempotent event ids, and receivers that
//! stream for ever. Time is compressed with `retry_schedule`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::service::{API_KEY, Receiver, Service};
use serde_json::{Value, json};

const FAST: [(&str, &str); 2] = [
    ("allow_private_targets", "true"),
    ("delivery_timeout_ms", "1000"),
];

fn with<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut variables = FAST.to_vec();
    variables.extend_from_slice(extra);
    variables
}

fn post_event(service: &Service, id: &str, event_type: &str) -> Value {
    let (status, answer) = service.call(
        "POST",
        "/events",
        Some(API_KEY),
        Some(&json!({ "type": event_type, "data": { "id": id }, "id": id }).to_string()),
    );
    assert_eq!(status, 202, "{answer}");
    answer
}

/// (webhook-id and endpoint path, hooksign-attempt) of every request a
/// receiver got, counted.
fn hits(receiver: &Receiver) -> BTreeMap<(String, String), usize> {
    let mut hits = BTreeMap::new();
    for request in receiver.received.lock().unwrap().iter() {
        let mut message = request.header("webhook-id").unwrap().to_string();
        if request.path != "/hook" {
            message.push_str(&request.path);
        }
        let key = (
            message,
            request.header("hooksign-attempt").unwrap().to_string(),
        );
        *hits.entry(key).or_insert(0) += 1;
    }
    hits
}

#[test]
fn a_receiver_that_fails_three_times_gets_the_event_once_it_is_up() {
    let service = Service::start(&with(&[("retry_schedule", "0,1,1,1")]));
    let receiver = Receiver::start();
    receiver.script(&[500, 503, 500]);
    receiver.answer(204);
    service.create(&receiver.url);
    post_event(&service, "evt_flaky", "order.paid");
    let message = service.message_when("evt_flaky", |delivery| delivery["status"] != "pending");
    assert_eq!(message["deliveries"][0]["status"], "succeeded", "{message}");
    assert_eq!(message["deliveries"][0]["attempts"], 4);
    let attempts: Vec<String> = hits(&receiver)
        .into_keys()
        .map(|(id, attempt)| format!("{id}#{attempt}"))
        .collect();
    assert_eq!(
        attempts,
        ["evt_flaky#1", "evt_flaky#2", "evt_flaky#3", "evt_flaky#4"]
    );
}

#[test]
fn an_empty_dispatch_token_is_unset_and_the_dispatcher_runs_with_its_own() {
    // Empty, as the edge reads it, is no token: the service makes one.
    let service = Service::start(&with(&[("retry_schedule", "0,1"), ("dispatch_token", "")]));
    let receiver = Receiver::start();
    receiver.script(&[500]);
    receiver.answer(204);
    service.create(&receiver.url);
    post_event(&service, "evt_retried", "order.paid");
    let message = service.message_when("evt_retried", |delivery| delivery["status"] != "pending");
    assert_eq!(message["deliveries"][0]["status"], "succeeded", "{message}");
    assert_eq!(message["deliveries"][0]["attempts"], 2);
}

#[test]
fn without_the_dispatcher_loop_the_first_attempt_still_goes_out() {
    let service = Service::start_with(&with(&[]), &["--dispatch-interval-ms", "0"]);
    let receiver = Receiver::start();
    receiver.answer(204);
    service.create(&receiver.url);
    post_event(&service, "evt_no_loop", "order.paid");
    assert_eq!(receiver.wait_for(1, 10), 1);
    let message = service.message_when("evt_no_loop", |delivery| delivery["status"] != "pending");
    assert_eq!(message["deliveries"][0]["status"], "succeeded", "{message}");
    // Nothing retries a failure without the loop: the next slot waits.
    receiver.answer(500);
    post_event(&service, "evt_no_retry", "order.paid");
    assert_eq!(receiver.wait_for(2, 10), 2);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(receiver.count(), 2);
}

#[test]
fn a_receiver_that_never_answers_exhausts_the_schedule_then_pauses_and_holds() {
    let service = Service::start(&with(&[
        ("retry_schedule", "0,1,1"),
        ("auto_pause_after", "4"),
        ("delivery_timeout_ms", "300"),
    ]));
    let receiver = Receiver::start();
    // Answers long after the delivery timeout: every attempt times out.
    receiver
        .delay_ms
        .store(2000, std::sync::atomic::Ordering::SeqCst);
    let (id, _) = service.create(&receiver.url);
    post_event(&service, "evt_lost_1", "t");
    let message = service.message_when("evt_lost_1", |delivery| delivery["status"] != "pending");
    assert_eq!(message["deliveries"][0]["status"], "failed", "{message}");
    assert_eq!(message["deliveries"][0]["attempts"], 3);
    assert!(
        message["deliveries"][0]["lastError"]
            .as_str()
            .unwrap()
            .contains("no answer within 300 ms")
    );
    // The fourth failure in a row pauses it; what follows is held.
    post_event(&service, "evt_lost_2", "t");
    let message = service.message_when("evt_lost_2", |delivery| delivery["status"] == "held");
    assert_eq!(message["deliveries"][0]["status"], "held", "{message}");
    let endpoint = service.ok("GET", &format!("/webhooks/{id}"), None);
    assert_eq!(endpoint["paused"], true, "{endpoint}");
    let held = post_event(&service, "evt_lost_3", "t");
    assert_eq!(held["deliveries"][0]["status"], "held");

    // The receiver is back; unpausing delivers what was held, in order.
    receiver
        .delay_ms
        .store(0, std::sync::atomic::Ordering::SeqCst);
    receiver.answer(204);
    let before = receiver.count();
    service.ok(
        "PATCH",
        &format!("/webhooks/{id}"),
        Some(r#"{"paused": false}"#),
    );
    for event in ["evt_lost_2", "evt_lost_3"] {
        let message = service.message_when(event, |delivery| delivery["status"] == "succeeded");
        assert_eq!(message["deliveries"][0]["status"], "succeeded", "{message}");
    }
    let order: Vec<String> = receiver.received.lock().unwrap()[before..]
        .iter()
        .map(|request| request.header("webhook-id").unwrap().to_string())
        .collect();
    assert_eq!(order, ["evt_lost_2", "evt_lost_3"]);
}

#[test]
fn a_killed_service_delivers_everything_after_its_restart() {
    let data = tempfile::tempdir().unwrap();
    let receiver = Receiver::start();
    receiver.answer(204);
    // Slow enough that many deliveries are pending or in flight at the
    // kill: four workers, 20 ms each.
    receiver
        .delay_ms
        .store(20, std::sync::atomic::Ordering::SeqCst);
    receiver.workers(4);
    let variables = with(&[("retry_schedule", "0,1,1,1,1")]);
    let service = Service::start_in(data.path(), &variables, &[]);
    for endpoint in 0..5 {
        service.create(&format!("{}/{endpoint}", receiver.url));
    }
    // 100 events to 5 endpoints: 500 deliveries, posted from 4 threads.
    let service = Arc::new(service);
    let posters: Vec<_> = (0..4)
        .map(|thread| {
            let service = service.clone();
            std::thread::spawn(move || {
                for n in 0..25 {
                    post_event(&service, &format!("evt_{thread}_{n}"), "t");
                }
            })
        })
        .collect();
    for poster in posters {
        poster.join().unwrap();
    }
    let at_kill = receiver.count();
    drop(Arc::try_unwrap(service).ok().unwrap()); // SIGKILL (Child::kill)
    assert!(at_kill < 500, "everything went out before the kill");

    let _restarted = Service::start_in(data.path(), &variables, &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while distinct_messages(&receiver) < 500 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let hits = hits(&receiver);
    let duplicates: usize = hits.values().map(|count| count - 1).sum();
    // Duplicates: attempts the killed service had sent (the receiver got
    // them after the kill) but not recorded, sent again after the restart.
    println!(
        "killed after {at_kill} of 500 deliveries; {} received in all, {duplicates} duplicates",
        receiver.count()
    );
    assert_eq!(distinct_messages(&receiver), 500, "deliveries lost");
}

/// Distinct (message, endpoint) pairs a receiver got: each endpoint has a
/// path of its own.
fn distinct_messages(receiver: &Receiver) -> usize {
    let received = receiver.received.lock().unwrap();
    let mut pairs: Vec<(&str, &str)> = received
        .iter()
        .map(|request| (request.header("webhook-id").unwrap(), request.path.as_str()))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    pairs.len()
}

#[test]
fn two_dispatchers_on_one_store_never_send_one_attempt_twice() {
    let data = tempfile::tempdir().unwrap();
    // Failures must not pause the endpoint here.
    let variables = with(&[("retry_schedule", "0,1,1"), ("auto_pause_after", "1000")]);
    let first = Service::start_in(data.path(), &variables, &["--dispatch-interval-ms", "200"]);
    let second = Service::start_in(data.path(), &variables, &["--dispatch-interval-ms", "200"]);
    let receiver = Receiver::start();
    // Every first attempt fails: the retries are the dispatchers'.
    receiver.answer(500);
    first.create(&receiver.url);
    for n in 0..20 {
        let service = if n % 2 == 0 { &first } else { &second };
        post_event(service, &format!("evt_{n}"), "t");
    }
    // Three attempts each, the last two by either dispatcher.
    receiver.wait_for(60, 30);
    std::thread::sleep(Duration::from_millis(1500));
    let hits = hits(&receiver);
    assert_eq!(hits.len(), 60, "{hits:?}");
    assert!(hits.values().all(|count| *count == 1), "{hits:?}");
}

#[test]
fn an_event_id_sends_once_even_when_posted_concurrently() {
    let service = Arc::new(Service::start(&with(&[])));
    let receiver = Receiver::start();
    receiver.answer(204);
    service.create(&receiver.url);
    let body = json!({ "type": "t", "data": { "n": 1 }, "id": "evt_once" }).to_string();
    let posts: Vec<_> = (0..6)
        .map(|_| {
            let (service, body) = (service.clone(), body.clone());
            std::thread::spawn(move || {
                service
                    .call("POST", "/events", Some(API_KEY), Some(&body))
                    .0
            })
        })
        .collect();
    let statuses: Vec<u16> = posts.into_iter().map(|post| post.join().unwrap()).collect();
    assert!(
        statuses.iter().all(|status| matches!(status, 200 | 202)),
        "{statuses:?}"
    );
    service.message_when("evt_once", |delivery| delivery["status"] != "pending");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(receiver.count(), 1);
    let (status, conflict) = service.call(
        "POST",
        "/events",
        Some(API_KEY),
        Some(&json!({ "type": "t", "data": { "n": 2 }, "id": "evt_once" }).to_string()),
    );
    assert_eq!(
        (status, conflict["code"].as_str()),
        (409, Some("idempotency_conflict"))
    );
}

/// A receiver that answers 200 with a body of `megabytes` MB, written in
/// 64 KiB pieces until done or the peer hangs up.
fn streaming_receiver(megabytes: usize) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/stream", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut request = [0u8; 65_536];
                let _ = stream.read(&mut request);
                let total = megabytes << 20;
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {total}\r\n\r\n");
                if stream.write_all(head.as_bytes()).is_err() {
                    return;
                }
                let piece = vec![b'x'; 65_536];
                for _ in 0..total / piece.len() {
                    if stream.write_all(&piece).is_err() {
                        return;
                    }
                }
            });
        }
    });
    url
}

/// The service's peak resident memory, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_receiver_that_streams_100_mb_or_hangs_stalls_nothing_else() {
    let service = Service::start(&with(&[("delivery_timeout_ms", "5000")]));
    let streaming = streaming_receiver(100);
    let hanging = Receiver::start();
    hanging
        .delay_ms
        .store(10_000, std::sync::atomic::Ordering::SeqCst);
    let healthy = Receiver::start();
    healthy.answer(204);
    let (streaming_id, _) = service.create(&streaming);
    service.create(&hanging.url);
    service.create(&healthy.url);
    // Warm: one instance has run, so the peak below is what the stream adds.
    service.ok("GET", "/webhooks", None);
    let before = peak_rss_kib(service.pid());
    let started = Instant::now();
    post_event(&service, "evt_big", "t");
    assert_eq!(healthy.wait_for(1, 10), 1);
    let healthy_after = started.elapsed();
    let message = service.message_when("evt_big", |delivery| {
        delivery["attempts"].as_u64() > Some(0)
    });
    let attempts = service.ok("GET", &format!("/webhooks/{streaming_id}/attempts"), None);
    let body = attempts["data"][0]["responseBody"].as_str().unwrap_or("");
    assert_eq!(body.len(), 4096, "{message}");
    let grown_mib = (peak_rss_kib(service.pid()).saturating_sub(before)) / 1024;
    println!("healthy receiver served after {healthy_after:?}; peak RSS grew {grown_mib} MiB");
    assert!(grown_mib < 32, "the stream was buffered: {grown_mib} MiB");
    assert!(
        healthy_after < Duration::from_secs(4),
        "the healthy endpoint waited {healthy_after:?}"
    );
}

#[test]
fn recovery_after_an_outage_delivers_the_failed_deliveries_once_each_in_order() {
    let service = Service::start(&with(&[
        ("retry_schedule", "0"),
        ("auto_pause_after", "1000"),
    ]));
    let receiver = Receiver::start();
    receiver.answer(503);
    let (id, _) = service.create(&receiver.url);
    let ids: Vec<String> = (0..6).map(|n| format!("outage-{n}")).collect();
    for message in &ids {
        post_event(&service, message, "t");
        let failed = service.message_when(message, |delivery| delivery["status"] == "failed");
        assert_eq!(failed["deliveries"][0]["status"], "failed", "{failed}");
    }
    assert_eq!(receiver.count(), 6);
    // The receiver is back.
    receiver.answer(204);
    let window = json!({ "since": "2020-01-01T00:00:00Z" }).to_string();
    let recovered = service.ok("POST", &format!("/webhooks/{id}/recover"), Some(&window));
    assert_eq!(recovered["count"], 6, "{recovered}");
    assert_eq!(receiver.wait_for(12, 15), 12);
    for message in &ids {
        let done = service.message_when(message, |delivery| delivery["status"] == "succeeded");
        assert_eq!(done["deliveries"][0]["status"], "succeeded", "{done}");
    }
    // Once each, in the order they were accepted, and nothing more.
    std::thread::sleep(Duration::from_millis(1500));
    let received = receiver.received.lock().unwrap();
    let again: Vec<&str> = received[6..]
        .iter()
        .map(|request| request.header("webhook-id").unwrap())
        .collect();
    assert_eq!(again, ids.iter().map(String::as_str).collect::<Vec<_>>());
}

#[test]
fn an_auto_paused_endpoint_produces_one_disabled_event_for_another() {
    let service = Service::start(&with(&[("retry_schedule", "0"), ("auto_pause_after", "2")]));
    let broken = Receiver::start();
    broken.answer(500);
    let watcher = Receiver::start();
    watcher.answer(204);
    let created = service.ok(
        "POST",
        "/webhooks",
        Some(&json!({ "url": broken.url, "eventTypes": ["t"] }).to_string()),
    );
    let broken_id = created["endpoint"]["id"].as_str().unwrap().to_string();
    let created = service.ok(
        "POST",
        "/webhooks",
        Some(
            &json!({ "url": watcher.url, "eventTypes": ["hooksign.endpoint.disabled"] })
                .to_string(),
        ),
    );
    let secret = created["signingSecret"].as_str().unwrap().to_string();
    for n in 0..3 {
        post_event(&service, &format!("breaking-{n}"), "t");
    }
    assert_eq!(watcher.wait_for(1, 10), 1);
    // One, whatever else happens meanwhile.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(watcher.count(), 1);
    let announced = watcher.last();
    assert!(common::service::verifies_with(&announced, &secret, None));
    let envelope: Value = serde_json::from_slice(&announced.body).unwrap();
    assert_eq!(envelope["type"], "hooksign.endpoint.disabled");
    assert_eq!(envelope["data"]["endpointId"], broken_id.as_str());
    let endpoint = service.ok("GET", &format!("/webhooks/{broken_id}"), None);
    assert_eq!(endpoint["paused"], true);
}
