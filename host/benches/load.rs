//! Load on `hooksign serve` over loopback: creates, rotations, deletes, test
//! sends, events and receiver-gateway deliveries at several concurrencies,
//! with keep-alive clients; then durable delivery: event accept latency with
//! receivers that take 1 s, deliveries/s to 100 endpoints, and the drain of
//! a 10,000-delivery backlog. Prints requests/s, p50 and p99 per operation
//! (the tables in BENCHMARKS.md), and fails if any answer is a 5xx or any
//! attempt or delivery is missing.
//!
//! `cargo bench --locked --bench load` (the components must be built first,
//! as for the tests).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::http_server::Counting;
use common::service::{API_KEY, Service};
use serde_json::{Value, json};

/// Requests per operation and concurrency.
const REQUESTS: usize = 200;
const CONCURRENCIES: [usize; 3] = [1, 4, 16];
/// Endpoints that take the test sends, and the events.
const BUSY_ENDPOINTS: usize = 2;
/// Events per setup in the scale-out rows: at 200 they lasted 0.15 s, as
/// much each node's first requests as its steady pace.
const SCALE_OUT_EVENTS: usize = 2_000;

/// The receiver gateway's source: signed with this secret, forwarded to the
/// fast receiver.
const INBOUND_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn main() {
    let receiver = Counting::start(Duration::ZERO, None);
    let sources = json!({
        "shop": { "secrets": [{ "key": INBOUND_SECRET }], "forwardUrl": receiver.url, "org": "acme" }
    })
    .to_string();
    let service = Service::start(&[
        ("allow_private_targets", "true"),
        ("delivery_timeout_ms", "5000"),
        ("inbound_sources", &sources),
    ]);
    let inbound =
        hooksign::Keyring::from_records(&[hooksign::SecretRecord::new(INBOUND_SECRET)]).unwrap();
    let client = Client {
        base: service.base.clone(),
    };
    println!("| operation | concurrency | requests | requests/s | p50 | p99 |");
    println!("|---|---:|---:|---:|---:|---:|");
    let mut server_errors = 0;
    for concurrency in CONCURRENCIES {
        let event_type = format!("load.c{concurrency}");
        let create_body = json!({ "url": receiver.url, "eventTypes": ["load.never"] }).to_string();
        let (created, figures) = client.run(concurrency, |agent, _| {
            let (status, body) = client.call(agent, "POST", "/webhooks", Some(&create_body));
            (status, body["endpoint"]["id"].as_str().map(str::to_string))
        });
        server_errors += figures.report("create", concurrency);
        let created: Vec<String> = created.into_iter().flatten().collect();

        let rotate_body = json!({ "graceSeconds": 0 }).to_string();
        let (_, figures) = client.run(concurrency, |agent, n| {
            let path = format!("/webhooks/{}/rotate", created[n % created.len()]);
            (client.call(agent, "POST", &path, Some(&rotate_body)).0, ())
        });
        server_errors += figures.report("rotate", concurrency);

        // Deleted again, so that every level's events scan the same few
        // endpoints (an event reads each of the organisation's endpoints).
        let (_, figures) = client.run(concurrency, |agent, n| {
            let path = format!("/webhooks/{}", created[n]);
            (client.call(agent, "DELETE", &path, None).0, ())
        });
        server_errors += figures.report("delete", concurrency);

        // The busy endpoints: they take every test send and every event.
        let busy: Vec<String> = (0..BUSY_ENDPOINTS)
            .map(|_| {
                let body = json!({ "url": receiver.url, "eventTypes": [event_type] }).to_string();
                let (_, created) = client.call(&client.agent(), "POST", "/webhooks", Some(&body));
                created["endpoint"]["id"].as_str().unwrap().to_string()
            })
            .collect();
        let (sent, figures) = client.run(concurrency, |agent, n| {
            let path = format!("/webhooks/{}/test", busy[n % BUSY_ENDPOINTS]);
            let (status, body) = client.call(agent, "POST", &path, None);
            (status, body["attempt"]["id"].as_str().map(str::to_string))
        });
        server_errors += figures.report("test", concurrency);
        let sent: BTreeSet<String> = sent.into_iter().flatten().collect();
        assert_eq!(sent.len(), REQUESTS, "test sends without an attempt");
        let recorded: BTreeSet<String> = busy
            .iter()
            .flat_map(|id| client.attempts(id))
            .map(|attempt| attempt["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(recorded, sent, "test-send attempts lost");

        let event_body = json!({ "type": event_type, "data": { "load": true } }).to_string();
        let (_, figures) = client.run(concurrency, |agent, _| {
            (
                client.call(agent, "POST", "/events", Some(&event_body)).0,
                (),
            )
        });
        server_errors += figures.report("event (2 deliveries)", concurrency);
        // Per busy endpoint: the test sends above, then the events
        // (REQUESTS in all), of which the ring keeps the newest 200. The
        // deliveries follow the 202s: wait for them.
        for id in &busy {
            let events = || {
                client
                    .attempts(id)
                    .iter()
                    .filter(|attempt| attempt["eventType"] == event_type.as_str())
                    .count()
            };
            let deadline = Instant::now() + Duration::from_secs(60);
            while events() < REQUESTS.min(200) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            assert_eq!(events(), REQUESTS.min(200), "event attempts lost on {id}");
        }
    }
    // Events again, at 4 clients, with 600 endpoints of the organisation
    // that subscribe to something else: an event must not read them.
    {
        let create_body = json!({ "url": receiver.url, "eventTypes": ["load.never"] }).to_string();
        let crowd = client.run_n(4, 600, |agent, _| {
            (
                client
                    .call(agent, "POST", "/webhooks", Some(&create_body))
                    .0,
                (),
            )
        });
        server_errors += crowd.1.errors();
        let event_body = json!({ "type": "load.c4", "data": { "load": true } }).to_string();
        let (_, figures) = client.run(4, |agent, _| {
            (
                client.call(agent, "POST", "/events", Some(&event_body)).0,
                (),
            )
        });
        server_errors += figures.report("event (2 deliveries), 600 other endpoints", 4);
    }

    // The receiver gateway: verify, mark against replay, forward, count.
    let mut accepted = 0;
    for concurrency in CONCURRENCIES {
        let (_, figures) = client.run(concurrency, |agent, n| {
            let body = format!(r#"{{"order":{n}}}"#);
            let id = format!("msg_c{concurrency}_{n}");
            let headers = inbound
                .sign_headers(&id, hooksign::unix_now(), body.as_bytes())
                .unwrap();
            let mut request = agent.post(&format!("{}/inbound/shop", client.base));
            for (name, value) in &headers {
                request = request.set(name, value);
            }
            let status = match request.send_string(&body) {
                Ok(response) | Err(ureq::Error::Status(_, response)) => response.status(),
                Err(error) => panic!("POST /inbound/shop: {error}"),
            };
            (status, ())
        });
        server_errors += figures.report("inbound (verify, forward)", concurrency);
        accepted += REQUESTS;
    }
    let (_, stats) = client.call(&client.agent(), "GET", "/inbound/shop/stats", None);
    assert_eq!(stats["accepted"], accepted, "gateway counts lost: {stats}");

    let expected = CONCURRENCIES.len() * REQUESTS * (1 + BUSY_ENDPOINTS)
        + REQUESTS * BUSY_ENDPOINTS
        + accepted;
    let deadline = Instant::now() + Duration::from_secs(60);
    while receiver.requests.load(Ordering::SeqCst) < expected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let delivered = receiver.requests.load(Ordering::SeqCst);
    println!(
        "\nreceiver got {delivered} deliveries (expected {expected}); 5xx answers: {server_errors}"
    );
    assert_eq!(delivered, expected, "deliveries lost");
    assert_eq!(server_errors, 0, "the service answered 5xx");
    drop(service);
    durable_delivery();
    scale_out();
}

/// Creates and events at 16 clients on one node with the embedded store,
/// one node on Redis, and two and three nodes on one Redis (requests
/// spread over the nodes in turn). Every delivery must arrive.
fn scale_out() {
    use common::redis::RedisServer;
    println!("\n| setup | operation | concurrency | requests | requests/s | p50 | p99 |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    let receiver = Counting::start(Duration::ZERO, None);
    let variables = [
        ("allow_private_targets", "true"),
        ("delivery_timeout_ms", "5000"),
    ];
    for (setup, nodes) in [
        ("1 node, SQLite", 0),
        ("1 node, Redis", 1),
        ("2 nodes, Redis", 2),
        ("3 nodes, Redis", 3),
    ] {
        let redis = RedisServer::start(None);
        let services: Vec<Service> = if nodes == 0 {
            vec![Service::start(&variables)]
        } else {
            (0..nodes)
                .map(|_| Service::start_with(&variables, &["--store", &redis.url()]))
                .collect()
        };
        let clients: Vec<Client> = services
            .iter()
            .map(|service| Client {
                base: service.base.clone(),
            })
            .collect();
        let before = receiver.requests.load(Ordering::SeqCst);
        let body = json!({ "url": receiver.url, "eventTypes": ["scale"] }).to_string();
        for _ in 0..BUSY_ENDPOINTS {
            let (status, _) =
                clients[0].call(&clients[0].agent(), "POST", "/webhooks", Some(&body));
            assert_eq!(status, 201);
        }
        let create_body = json!({ "url": receiver.url, "eventTypes": ["never"] }).to_string();
        let event_body = json!({ "type": "scale", "data": { "load": true } }).to_string();
        for (operation, path, body, requests) in [
            ("create", "/webhooks", &create_body, REQUESTS),
            (
                "event (2 deliveries)",
                "/events",
                &event_body,
                SCALE_OUT_EVENTS,
            ),
        ] {
            let (_, figures) = clients[0].run_n(16, requests, |agent, n| {
                let client = &clients[n % clients.len()];
                (client.call(agent, "POST", path, Some(body)).0, ())
            });
            assert_eq!(figures.errors(), 0, "{setup}: 5xx on {operation}");
            figures.report(&format!("{setup} | {operation}"), 16);
        }
        let expected = before + SCALE_OUT_EVENTS * BUSY_ENDPOINTS;
        let delivered = wait_for(&receiver.requests, expected, Duration::from_secs(120));
        assert!(delivered >= expected, "{setup}: deliveries lost");
        drop(services);
    }
}

/// Durable delivery: how fast events are accepted when receivers are slow,
/// how fast deliveries go out to 100 endpoints, and how fast a backlog of
/// 10,000 held deliveries drains once its endpoints are unpaused.
fn durable_delivery() {
    let variables = [
        ("allow_private_targets", "true"),
        ("delivery_timeout_ms", "5000"),
        ("auto_pause_after", "1000000"),
    ];
    // Accept latency must not depend on the receivers: they take 1 s.
    let slow = Counting::start(Duration::from_secs(1), None);
    let service = Service::start(&variables);
    let client = Client {
        base: service.base.clone(),
    };
    for _ in 0..BUSY_ENDPOINTS {
        let body = json!({ "url": slow.url, "eventTypes": ["slow"] }).to_string();
        assert_eq!(
            client
                .call(&client.agent(), "POST", "/webhooks", Some(&body))
                .0,
            201
        );
    }
    let event_body = json!({ "type": "slow", "data": { "load": true } }).to_string();
    let mut accepted = 0;
    for concurrency in CONCURRENCIES {
        let (_, figures) = client.run(concurrency, |agent, _| {
            (
                client.call(agent, "POST", "/events", Some(&event_body)).0,
                (),
            )
        });
        assert_eq!(figures.errors(), 0, "5xx accepting events");
        figures.report("event accepted (receivers take 1 s)", concurrency);
        accepted += REQUESTS * BUSY_ENDPOINTS;
    }
    // At least once: an attempt that timed out while the receiver still
    // answered is retried, and the receiver counts both.
    let delivered = wait_for(&slow.requests, accepted, Duration::from_secs(120));
    println!(
        "\nslow receivers: {delivered} requests for {accepted} deliveries ({} retried after a timeout)",
        delivered.saturating_sub(accepted)
    );
    assert!(delivered >= accepted, "slow deliveries lost");
    drop(service);

    // Deliveries/s to 100 endpoints: 20 events, 2,000 deliveries.
    let fast = Counting::start(Duration::ZERO, None);
    let service = Service::start(&variables);
    let client = Client {
        base: service.base.clone(),
    };
    let endpoints: Vec<String> = (0..100)
        .map(|_| {
            let body = json!({ "url": fast.url, "eventTypes": ["fan"] }).to_string();
            let (_, created) = client.call(&client.agent(), "POST", "/webhooks", Some(&body));
            created["endpoint"]["id"].as_str().unwrap().to_string()
        })
        .collect();
    let fan_body = json!({ "type": "fan", "data": { "load": true } }).to_string();
    let started = Instant::now();
    let (_, figures) = client.run_n(4, 20, |agent, _| {
        (client.call(agent, "POST", "/events", Some(&fan_body)).0, ())
    });
    assert_eq!(figures.errors(), 0, "5xx accepting events");
    let delivered = wait_for(&fast.requests, 2000, Duration::from_secs(120));
    let took = started.elapsed();
    println!(
        "\ndelivery to 100 endpoints: {delivered} deliveries in {:.2} s, {:.0} deliveries/s",
        took.as_secs_f64(),
        delivered as f64 / took.as_secs_f64()
    );
    assert_eq!(delivered, 2000, "fan-out deliveries lost");
    // The receiver counts before the attempts are recorded: wait for those,
    // so that the pauses below do not race them.
    for id in &endpoints {
        let deadline = Instant::now() + Duration::from_secs(60);
        while client.attempts(id).len() < 20 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    // A backlog: 100 endpoints paused, 100 events held for each; then all
    // unpaused at once, as when a receiver comes back.
    let pause = |paused: bool| {
        for id in &endpoints {
            let body = json!({ "paused": paused }).to_string();
            let path = format!("/webhooks/{id}");
            let (status, answer) = client.call(&client.agent(), "PATCH", &path, Some(&body));
            assert_eq!(status, 200, "{answer}");
        }
    };
    pause(true);
    let (_, figures) = client.run_n(4, 100, |agent, _| {
        (client.call(agent, "POST", "/events", Some(&fan_body)).0, ())
    });
    assert_eq!(figures.errors(), 0, "5xx holding events");
    let before = fast.requests.load(Ordering::SeqCst);
    let started = Instant::now();
    pause(false);
    let drained = wait_for(&fast.requests, before + 10_000, Duration::from_secs(300)) - before;
    let took = started.elapsed();
    println!(
        "backlog: {drained} held deliveries drained in {:.2} s after unpausing, {:.0} deliveries/s",
        took.as_secs_f64(),
        drained as f64 / took.as_secs_f64()
    );
    assert_eq!(drained, 10_000, "backlog deliveries lost");
}

/// Waits until `count` reaches `target` or `limit` passes; returns it.
fn wait_for(count: &AtomicUsize, target: usize, limit: Duration) -> usize {
    let deadline = Instant::now() + limit;
    while count.load(Ordering::SeqCst) < target && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    count.load(Ordering::SeqCst)
}

struct Client {
    base: String,
}

impl Client {
    /// A keep-alive client of its own, per thread.
    fn agent(&self) -> ureq::Agent {
        ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(30))
            .build()
    }

    fn call(
        &self,
        agent: &ureq::Agent,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> (u16, Value) {
        let request = agent
            .request(method, &format!("{}{path}", self.base))
            .set("authorization", &format!("Bearer {API_KEY}"));
        let result = match body {
            Some(body) => request
                .set("content-type", "application/json")
                .send_string(body),
            None => request.call(),
        };
        let response = match result {
            Ok(response) | Err(ureq::Error::Status(_, response)) => response,
            Err(error) => panic!("{method} {path}: {error}"),
        };
        let status = response.status();
        (status, response.into_json().unwrap_or(Value::Null))
    }

    fn attempts(&self, id: &str) -> Vec<Value> {
        let path = format!("/webhooks/{id}/attempts?limit=200");
        let (status, body) = self.call(&self.agent(), "GET", &path, None);
        assert_eq!(status, 200, "{body}");
        body["data"].as_array().unwrap().clone()
    }

    /// Runs `REQUESTS` calls of `each` (given a request number) on
    /// `concurrency` threads; returns what each call kept, and the figures.
    fn run<T: Send>(
        &self,
        concurrency: usize,
        each: impl Fn(&ureq::Agent, usize) -> (u16, T) + Sync,
    ) -> (Vec<T>, Figures) {
        self.run_n(concurrency, REQUESTS, each)
    }

    /// [`Client::run`] with `requests` calls.
    fn run_n<T: Send>(
        &self,
        concurrency: usize,
        requests: usize,
        each: impl Fn(&ureq::Agent, usize) -> (u16, T) + Sync,
    ) -> (Vec<T>, Figures) {
        let started = Instant::now();
        let results: Vec<(u16, Duration, T)> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..concurrency)
                .map(|thread| {
                    let each = &each;
                    scope.spawn(move || {
                        let agent = self.agent();
                        (thread..requests)
                            .step_by(concurrency)
                            .map(|n| {
                                let sent = Instant::now();
                                let (status, kept) = each(&agent, n);
                                (status, sent.elapsed(), kept)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            threads
                .into_iter()
                .flat_map(|thread| thread.join().unwrap())
                .collect()
        });
        let wall = started.elapsed();
        let mut latencies: Vec<Duration> = results.iter().map(|(_, took, _)| *took).collect();
        latencies.sort_unstable();
        let statuses = results.iter().map(|(status, _, _)| *status).collect();
        let kept = results.into_iter().map(|(_, _, kept)| kept).collect();
        (
            kept,
            Figures {
                wall,
                latencies,
                statuses,
            },
        )
    }
}

struct Figures {
    wall: Duration,
    latencies: Vec<Duration>,
    statuses: Vec<u16>,
}

impl Figures {
    /// How many answers were 5xx.
    fn errors(&self) -> usize {
        self.statuses
            .iter()
            .filter(|status| **status >= 500)
            .count()
    }

    /// Prints a table row; returns how many answers were 5xx.
    fn report(&self, operation: &str, concurrency: usize) -> usize {
        let percentile = |p: usize| {
            let index = (self.latencies.len() * p).div_ceil(100).saturating_sub(1);
            self.latencies[index].as_secs_f64() * 1e3
        };
        println!(
            "| {operation} | {concurrency} | {} | {:.0} | {:.2} ms | {:.2} ms |",
            self.latencies.len(),
            self.latencies.len() as f64 / self.wall.as_secs_f64(),
            percentile(50),
            percentile(99),
        );
        let unexpected: Vec<u16> = self
            .statuses
            .iter()
            .copied()
            .filter(|status| !(200..300).contains(status))
            .collect();
        if !unexpected.is_empty() {
            eprintln!("{operation} at {concurrency}: answers {unexpected:?}");
        }
        self.errors()
    }
}
