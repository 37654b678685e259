//! Several `hooksign serve` nodes on one real Redis (`--store redis://…`):
//! concurrent changes through different nodes lose nothing, deliveries go
//! out once per attempt with a dispatcher on every node, a killed node
//! loses no delivery, and Redis going away is a 503 that heals.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::redis::RedisServer;
use common::service::{API_KEY, Receiver, Service};
use serde_json::{Value, json};

const LOCAL: [(&str, &str); 3] = [
    ("allow_private_targets", "true"),
    ("delivery_timeout_ms", "1000"),
    ("auto_pause_after", "1000"),
];

fn node(redis: &RedisServer, extra: &[(&str, &str)]) -> Service {
    let mut variables = LOCAL.to_vec();
    variables.extend_from_slice(extra);
    Service::start_with(&variables, &["--store", &redis.url()])
}

fn post_event(service: &Service, id: &str) {
    let (status, answer) = service.call(
        "POST",
        "/events",
        Some(API_KEY),
        Some(&json!({ "type": "t", "data": {}, "id": id }).to_string()),
    );
    assert_eq!(status, 202, "{answer}");
}

#[test]
fn the_api_on_redis_keeps_its_data_and_never_shows_the_password() {
    let redis = RedisServer::start(Some("s3cret-redis-pass"));
    let receiver = Receiver::start();
    receiver.answer(204);
    let service = node(&redis, &[]);
    let (id, secret) = service.create(&receiver.url);
    let message = service.event("t");
    assert_eq!(message["deliveries"][0]["status"], "succeeded", "{message}");
    // Another node on the same Redis sees the same endpoint and attempts.
    let other = node(&redis, &[]);
    let endpoint = other.ok("GET", &format!("/webhooks/{id}"), None);
    assert!(endpoint["lastSuccessAt"].is_string(), "{endpoint}");
    let log = service.stop() + &other.stop();
    assert!(!log.contains("s3cret-redis-pass"), "{log}");
    // Redis's own file holds the keyring sealed, never in clear.
    let persisted = redis.persisted();
    assert!(persisted.contains(&format!("endpoint/{id}")));
    assert!(persisted.contains("\"sealed\""));
    assert!(!persisted.contains(secret.trim_start_matches("whsec_")));
}

#[test]
fn rediss_with_a_private_ca_and_a_password_works_and_is_verified() {
    let redis = RedisServer::start_tls(Some("s3cret-tls-pass"));
    let ca = redis.ca_path();
    let service = Service::start_with(
        &LOCAL,
        &["--store", &redis.url(), "--store-ca", ca.to_str().unwrap()],
    );
    let receiver = Receiver::start();
    let (id, _) = service.create(&receiver.url);
    let other = Service::start_with(
        &LOCAL,
        &["--store", &redis.url(), "--store-ca", ca.to_str().unwrap()],
    );
    other.ok("GET", &format!("/webhooks/{id}"), None);
    // Without the CA the server's certificate is refused: no connection.
    let untrusting = Service::start_with(&LOCAL, &["--store", &redis.url()]);
    let (status, problem) = untrusting.call("GET", "/webhooks", Some(API_KEY), None);
    assert_eq!(
        (status, problem["code"].as_str()),
        (503, Some("store_unavailable")),
        "{problem}"
    );
    let log = service.stop() + &other.stop() + &untrusting.stop();
    assert!(!log.contains("s3cret-tls-pass"), "{log}");
}

#[test]
fn concurrent_changes_through_three_nodes_lose_nothing() {
    let redis = RedisServer::start(None);
    let receiver = Receiver::start();
    let nodes: Vec<Arc<Service>> = (0..3).map(|_| Arc::new(node(&redis, &[]))).collect();
    let (id, first) = nodes[0].create(&receiver.url);
    // Nine rotations, three through each node, at once.
    let rotations: Vec<_> = (0..9)
        .map(|n| {
            let (node, id) = (nodes[n % 3].clone(), id.clone());
            std::thread::spawn(move || {
                let rotated = node.ok("POST", &format!("/webhooks/{id}/rotate"), None);
                rotated["signingSecret"].as_str().unwrap().to_string()
            })
        })
        .collect();
    let mut secrets: Vec<String> = rotations
        .into_iter()
        .map(|rotation| rotation.join().unwrap())
        .collect();
    secrets.push(first);
    // Patches of different fields through different nodes, at once.
    let patches: Vec<_> = [
        json!({ "description": "patched" }),
        json!({ "eventTypes": ["a.b"] }),
    ]
    .into_iter()
    .enumerate()
    .map(|(n, patch)| {
        let (node, id) = (nodes[n].clone(), id.clone());
        std::thread::spawn(move || {
            node.ok(
                "PATCH",
                &format!("/webhooks/{id}"),
                Some(&patch.to_string()),
            );
        })
    })
    .collect();
    for patch in patches {
        patch.join().unwrap();
    }
    let endpoint = nodes[2].ok("GET", &format!("/webhooks/{id}"), None);
    assert_eq!(endpoint["description"], "patched");
    assert_eq!(endpoint["eventTypes"], json!(["a.b"]));
    // Every secret still signs: the test send carries ten signatures, and
    // each secret verifies one of them.
    nodes[1].ok("POST", &format!("/webhooks/{id}/test"), None);
    let received = receiver.last();
    let signature = received.header("webhook-signature").unwrap().to_string();
    assert_eq!(signature.split(' ').count(), 10, "{signature}");
    for secret in &secrets {
        assert!(
            signature
                .split(' ')
                .any(|entry| common::service::verifies_with(&received, secret, Some(entry))),
            "a rotation was lost"
        );
    }
}

#[test]
fn events_on_any_node_go_out_once_per_attempt() {
    let redis = RedisServer::start(None);
    let receiver = Receiver::start();
    // Every first attempt fails: the retries are the dispatchers'.
    receiver.answer(500);
    let extra = [("retry_schedule", "0,1,1")];
    let nodes: Vec<Service> = (0..3)
        .map(|_| {
            let mut variables = LOCAL.to_vec();
            variables.extend_from_slice(&extra);
            Service::start_with(
                &variables,
                &["--store", &redis.url(), "--dispatch-interval-ms", "200"],
            )
        })
        .collect();
    nodes[0].create(&receiver.url);
    for n in 0..15 {
        post_event(&nodes[n % 3], &format!("evt_{n}"));
    }
    receiver.wait_for(45, 30);
    std::thread::sleep(Duration::from_millis(1500));
    let mut hits: BTreeMap<(String, String), usize> = BTreeMap::new();
    for request in receiver.received.lock().unwrap().iter() {
        let key = (
            request.header("webhook-id").unwrap().to_string(),
            request.header("hooksign-attempt").unwrap().to_string(),
        );
        *hits.entry(key).or_insert(0) += 1;
    }
    assert_eq!(hits.len(), 45, "{hits:?}");
    assert!(hits.values().all(|count| *count == 1), "{hits:?}");
}

#[test]
fn a_killed_node_loses_no_delivery() {
    let redis = RedisServer::start(None);
    let receiver = Receiver::start();
    receiver.answer(204);
    // Four workers, 20 ms each: deliveries are still going out at the kill.
    receiver
        .delay_ms
        .store(20, std::sync::atomic::Ordering::SeqCst);
    receiver.workers(4);
    let survivor = node(&redis, &[]);
    let doomed = node(&redis, &[]);
    survivor.create(&receiver.url);
    for n in 0..100 {
        post_event(&doomed, &format!("evt_{n}"));
    }
    drop(doomed); // SIGKILL, mid-dispatch
    let deadline = Instant::now() + Duration::from_secs(60);
    let distinct = || {
        let mut ids: Vec<String> = receiver
            .received
            .lock()
            .unwrap()
            .iter()
            .map(|request| request.header("webhook-id").unwrap().to_string())
            .collect();
        ids.sort();
        ids.dedup();
        ids.len()
    };
    while distinct() < 100 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(distinct(), 100, "deliveries lost with the node");
    drop(survivor);
}

#[test]
fn redis_going_away_mid_load_is_a_503_and_loses_nothing() {
    let mut redis = RedisServer::start(None);
    let receiver = Receiver::start();
    let service = Arc::new(node(&redis, &[]));
    // Four clients create endpoints (bounded: 45 each) while Redis is
    // killed and restarted under them.
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (service, url) = (service.clone(), receiver.url.clone());
            std::thread::spawn(move || {
                let body = json!({ "url": url }).to_string();
                (0..45)
                    .map(|_| {
                        let answer = service.call("POST", "/webhooks", Some(API_KEY), Some(&body));
                        std::thread::sleep(Duration::from_millis(15));
                        answer
                    })
                    .collect::<Vec<(u16, Value)>>()
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(250));
    redis.kill();
    std::thread::sleep(Duration::from_millis(400));
    redis.restart();
    let answers: Vec<(u16, Value)> = clients
        .into_iter()
        .flat_map(|client| client.join().unwrap())
        .collect();
    let mut created = Vec::new();
    let mut unavailable = 0;
    for (status, answer) in &answers {
        match status {
            201 => created.push(answer["endpoint"]["id"].as_str().unwrap().to_string()),
            503 => unavailable += 1,
            _ => panic!("{status}: {answer}"),
        }
    }
    assert!(unavailable > 0, "Redis was never missed");
    // After: every endpoint whose creation answered 201 is listed and
    // whole, and whatever else is listed (created, then answered 503) is
    // whole too.
    let listed = service.ok("GET", "/webhooks?limit=200", None);
    let listed: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|endpoint| endpoint["id"].as_str().unwrap())
        .collect();
    for id in &created {
        assert!(listed.contains(&id.as_str()), "{id} was lost");
    }
    for id in &listed {
        let rotated = service.ok("POST", &format!("/webhooks/{id}/rotate"), None);
        assert!(rotated["signingSecret"].is_string(), "{rotated}");
    }
}

/// The ids of the connections to `redis` other than `control`'s own.
fn other_connections(control: &mut redis::Connection) -> Vec<String> {
    let own: i64 = redis::cmd("CLIENT").arg("ID").query(control).unwrap();
    let listed: String = redis::cmd("CLIENT").arg("LIST").query(control).unwrap();
    listed
        .lines()
        .filter_map(|line| line.split(' ').find_map(|field| field.strip_prefix("id=")))
        .filter(|id| *id != own.to_string())
        .map(str::to_string)
        .collect()
}

#[test]
fn a_command_redis_refuses_keeps_the_nodes_connection() {
    let redis = RedisServer::start(None);
    let receiver = Receiver::start();
    let url = redis.url();
    let service = Service::start_with(&LOCAL, &["--store", &url, "--dispatch-interval-ms", "0"]);
    service.create(&receiver.url);
    let mut control = redis::Client::open(url).unwrap().get_connection().unwrap();
    let connected = other_connections(&mut control);
    assert_eq!(connected.len(), 1, "{connected:?}");
    // Out of memory, Redis refuses writes over the working connection.
    let maxmemory = |bytes: &str, control: &mut redis::Connection| {
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("maxmemory")
            .arg(bytes)
            .query::<()>(control)
            .unwrap();
    };
    maxmemory("1", &mut control);
    let body = json!({ "url": receiver.url }).to_string();
    let (status, problem) = service.call("POST", "/webhooks", Some(API_KEY), Some(&body));
    assert_eq!(status, 503, "{problem}");
    maxmemory("0", &mut control);
    service.create(&receiver.url);
    assert_eq!(
        other_connections(&mut control),
        connected,
        "the same connection"
    );
}

/// A store call's instance waits for Redis without holding its worker
/// thread: while Redis answers nothing, more requests wait on it than the
/// node has threads, and a request that needs no store is answered at once.
#[test]
fn requests_waiting_on_redis_hold_no_worker_thread() {
    let redis = RedisServer::start(None);
    let service = Arc::new(node(&redis, &[]));
    service.ok("GET", "/webhooks", None);
    let port = redis.port.to_string();
    let paused = std::process::Command::new("redis-cli")
        .args(["-p", &port, "CLIENT", "PAUSE", "3000", "ALL"])
        .output()
        .unwrap();
    assert!(paused.status.success(), "{paused:?}");
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let waiting: Vec<_> = (0..4 * cores + 2)
        .map(|_| {
            let service = service.clone();
            std::thread::spawn(move || service.call("GET", "/webhooks", Some(API_KEY), None))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let (status, _) = service.call("GET", "/openapi.yaml", None, None);
    let took = started.elapsed();
    assert_eq!(status, 200);
    assert!(
        took < Duration::from_millis(500),
        "answered after {took:?} while requests waited on Redis"
    );
    // Each waiting request is answered: its call timed out (503), or Redis
    // came back first.
    for request in waiting {
        let (status, answer) = request.join().unwrap();
        assert!(matches!(status, 200 | 503), "{status}: {answer}");
    }
}

#[test]
fn an_organisations_rate_and_key_quota_hold_across_nodes() {
    let redis = RedisServer::start(None);
    let limits = [("rate_limit_per_key", "20"), ("max_api_keys_per_org", "5")];
    let nodes: Vec<Arc<Service>> = (0..2).map(|_| Arc::new(node(&redis, &limits))).collect();

    // Twenty mints at once through two nodes: five live keys, no more.
    let mints: Vec<_> = (0..20)
        .map(|n| {
            let node = nodes[n % 2].clone();
            std::thread::spawn(move || {
                node.call("POST", "/api-keys", Some(API_KEY), Some(r#"{"name":"k"}"#))
            })
        })
        .collect();
    let minted: Vec<(u16, Value)> = mints.into_iter().map(|mint| mint.join().unwrap()).collect();
    let keys: Vec<String> = minted
        .iter()
        .filter(|(status, _)| *status == 201)
        .map(|(_, created)| created["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys.len(), 5, "{minted:?}");
    for (status, answer) in minted.iter().filter(|(status, _)| *status != 201) {
        assert!(
            *status == 429 || answer["code"] == "quota_exceeded",
            "{status} {answer}"
        );
    }
    // Sixty requests at once over three of the minted keys: the
    // organisation's burst of 20, and what refills while they run. The
    // mints spent the bucket; two seconds refill it whole with a margin.
    // (Once 19 passed under the absent-upserts store: a take whose
    // confirming read came after 16 others' had forgotten itself and took
    // again; a record now remembers 64.)
    std::thread::sleep(Duration::from_millis(2100));
    let started = Instant::now();
    let calls: Vec<_> = (0..60)
        .map(|n| {
            let (node, key) = (nodes[n % 2].clone(), keys[n % 3].clone());
            std::thread::spawn(move || node.call("GET", "/webhooks", Some(&key), None).0)
        })
        .collect();
    let statuses: Vec<u16> = calls.into_iter().map(|call| call.join().unwrap()).collect();
    let refilled = (started.elapsed().as_secs_f64() * 20.0).ceil() as usize;
    let passed = statuses.iter().filter(|status| **status == 200).count();
    assert!(
        (20..=20 + refilled).contains(&passed),
        "{passed} passed, {refilled} refilled: {statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|status| *status == 200 || *status == 429)
    );
}

#[test]
fn an_organisations_storage_budget_holds_across_nodes() {
    let redis = RedisServer::start(None);
    let budget = [("max_stored_bytes_per_org", "250000")];
    let nodes: Vec<Arc<Service>> = (0..2).map(|_| Arc::new(node(&redis, &budget))).collect();
    // Six events of about 100 KB at once through two nodes: two fit.
    let blob = "x".repeat(100_000);
    let posts: Vec<_> = (0..6)
        .map(|n| {
            let (node, blob) = (nodes[n % 2].clone(), blob.clone());
            std::thread::spawn(move || {
                let event =
                    json!({ "type": "t", "id": format!("evt_{n}"), "data": { "blob": blob } });
                node.call("POST", "/events", Some(API_KEY), Some(&event.to_string()))
            })
        })
        .collect();
    let answers: Vec<(u16, Value)> = posts.into_iter().map(|post| post.join().unwrap()).collect();
    let accepted = answers.iter().filter(|(status, _)| *status == 202).count();
    assert_eq!(accepted, 2, "{answers:?}");
    for (status, answer) in answers.iter().filter(|(status, _)| *status != 202) {
        assert_eq!(
            (*status, answer["code"].as_str()),
            (409, Some("quota_exceeded"))
        );
    }
    let listed = nodes[1].ok("GET", "/messages", None);
    assert_eq!(listed["data"].as_array().unwrap().len(), 2, "{listed}");
}

#[test]
fn an_endpoints_rate_limit_holds_across_two_nodes() {
    let redis = RedisServer::start(None);
    let nodes = [node(&redis, &[]), node(&redis, &[])];
    let receiver = Receiver::start();
    receiver.answer(204);
    let body = json!({ "url": receiver.url, "rateLimitPerSecond": 5 }).to_string();
    nodes[0].ok("POST", "/webhooks", Some(&body));
    let started = Instant::now();
    for n in 0..30 {
        post_event(&nodes[n % 2], &format!("limited-{n}"));
    }
    // When each delivery arrived, to the poll.
    let mut arrivals = Vec::new();
    while arrivals.len() < 30 && started.elapsed() < Duration::from_secs(20) {
        let count = receiver.count();
        while arrivals.len() < count {
            arrivals.push(started.elapsed().as_secs_f64());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(arrivals.len(), 30, "{arrivals:?}");
    // A bucket of 5 a second with a burst of 5: by any time t, at most
    // 5 + 5 t, whichever node sent them (one more for the poll's grain).
    for (n, at) in arrivals.iter().enumerate() {
        let allowed = 5.0 + 5.0 * at + 1.0;
        assert!(
            (n + 1) as f64 <= allowed,
            "{} by {at:.2} s: {arrivals:?}",
            n + 1
        );
    }
    assert!(arrivals[29] >= 4.0, "{arrivals:?}");
    // Nothing failed while waiting: each delivery succeeded at its first
    // attempt. The receiver counts a request before it answers, so the
    // sender's record of the last ones may come a moment after the count.
    for n in 0..30 {
        let message = nodes[n % 2].message_when(&format!("limited-{n}"), |delivery| {
            delivery["status"] != "pending"
        });
        let delivery = &message["deliveries"][0];
        assert_eq!(
            (&delivery["status"], &delivery["attempts"]),
            (&json!("succeeded"), &json!(1)),
            "{message}"
        );
    }
}

/// A batch write (wasi:keyvalue `set-many`, which an accept makes of its
/// queue and log entries) lands whole on both stores, over what was there;
/// a batch removal removes its keys.
#[test]
fn a_batch_write_lands_whole_on_sqlite_and_on_redis() {
    use hooksign_host::store::{KeyValueStore, RedisStore, SqliteStore};
    let redis = RedisServer::start(None);
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The SQLite store's driver is a task on the runtime it opens on.
    let _entered = runtime.enter();
    let stores: [(&str, Box<dyn KeyValueStore>); 2] = [
        ("sqlite", Box::new(SqliteStore::open(dir.path()).unwrap())),
        (
            "redis",
            Box::new(RedisStore::open(&redis.url(), None).unwrap()),
        ),
    ];
    let pairs: Vec<(String, Vec<u8>)> = (0..3)
        .map(|n| (format!("batch/{n}"), format!("value {n}").into_bytes()))
        .collect();
    let keys: Vec<String> = pairs.iter().map(|(key, _)| key.clone()).collect();
    for (name, store) in stores {
        runtime.block_on(async {
            store.set("batch/0", b"before").await.unwrap();
            store.set_many(&pairs).await.unwrap();
            store.set_many(&[]).await.unwrap();
            let read = store.get_many(&keys).await.unwrap();
            let expected: Vec<(String, Option<Vec<u8>>)> = pairs
                .iter()
                .map(|(key, value)| (key.clone(), Some(value.clone())))
                .collect();
            assert_eq!(read, expected, "{name}");
            // A batch removal (`delete-many`, a dispatch pass's settled queue
            // entries) removes exactly its keys, a missing one among them.
            let removed = [keys[0].clone(), keys[2].clone(), "batch/missing".into()];
            store.delete_many(&removed).await.unwrap();
            store.delete_many(&[]).await.unwrap();
            let read = store.get_many(&keys).await.unwrap();
            let left: Vec<bool> = read.iter().map(|(_, value)| value.is_some()).collect();
            assert_eq!(left, [false, true, false], "{name}");
        });
    }
}
