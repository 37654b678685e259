//! The platform's API end to end through `hooksign serve` (issue #25), on
//! the embedded SQLite store and on a real Redis: a customer onboarded
//! from nothing, each credential kept to its routes, and a deleted
//! organisation leaving nothing in the store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::redis::RedisServer;
use common::service::{API_KEY, Receiver, Service, local, verifies_with};
use serde_json::{Value, json};

const PLATFORM_KEY: &str = "sgn_plat_the_platform_test_key_0123";
/// An id that nothing else in the store holds.
const ORG: &str = "initech-7f3q";

/// A service on the store in `data`, with the platform key.
fn start(data: &std::path::Path, arguments: &[&str]) -> Service {
    let entry = hooksign_edge::platform_key_entry(PLATFORM_KEY);
    let mut variables = local().to_vec();
    variables.push(("platform_keys", &entry));
    variables.push(("retry_schedule", "0,60"));
    Service::start_in(data, &variables, arguments)
}

fn platform(service: &Service, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let body = body.map(|body| body.to_string());
    service.call(method, path, Some(PLATFORM_KEY), body.as_deref())
}

/// Onboards [`ORG`] from nothing and sends it an event that its receiver
/// verifies; leaves a failing endpoint's retry queued, a second key, a
/// dashboard session and an unopened link. Returns the customer's key and
/// the session's token.
fn onboard_and_use(service: &Service, receiver: &Receiver) -> (String, String) {
    let (status, org) = platform(
        service,
        "POST",
        "/orgs",
        Some(json!({ "id": ORG, "name": "Initech" })),
    );
    assert_eq!(status, 201, "{org}");
    let (status, minted) = platform(
        service,
        "POST",
        &format!("/orgs/{ORG}/api-keys"),
        Some(json!({ "name": "first" })),
    );
    assert_eq!(status, 201, "{minted}");
    let key = minted["key"].as_str().unwrap().to_string();
    // The customer, with its own key, creates an endpoint.
    let body = json!({ "url": receiver.url }).to_string();
    let (status, created) = service.call("POST", "/webhooks", Some(&key), Some(&body));
    assert_eq!(status, 201, "{created}");
    let secret = created["signingSecret"].as_str().unwrap().to_string();
    // The platform posts an event as the customer; the receiver verifies it.
    let event = json!({ "type": "invoice.paid", "data": { "total": 12 } });
    let (status, accepted) = platform(service, "POST", &format!("/orgs/{ORG}/events"), Some(event));
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(receiver.wait_for(1, 10), 1);
    assert!(verifies_with(&receiver.last(), &secret, None));
    // More of it to erase: a delivery that failed and waits for its retry,
    // a second key, a session and a link.
    let dead = json!({ "url": format!("{}/fails", receiver.url) }).to_string();
    receiver.answer(500);
    service.call("POST", "/webhooks", Some(&key), Some(&dead));
    let event = json!({ "type": "invoice.failed", "data": {} });
    platform(service, "POST", &format!("/orgs/{ORG}/events"), Some(event));
    service.call(
        "POST",
        "/api-keys",
        Some(&key),
        Some(r#"{"name":"second"}"#),
    );
    let (_, link) = platform(
        service,
        "POST",
        &format!("/orgs/{ORG}/dashboard-links"),
        None,
    );
    let token = link["url"]
        .as_str()
        .unwrap()
        .split_once("#link=")
        .unwrap()
        .1
        .to_string();
    let (status, session) = service.call("POST", "/dashboard/sessions", Some(&token), None);
    assert_eq!(status, 201, "{session}");
    platform(
        service,
        "POST",
        &format!("/orgs/{ORG}/dashboard-links"),
        None,
    );
    (key, session["token"].as_str().unwrap().to_string())
}

fn isolation(service: &Service, key: &str, session: &str) {
    let (_, listed) = service.call("GET", "/webhooks", Some(key), None);
    let endpoint = listed["data"][0]["id"].as_str().unwrap();
    assert_eq!(
        platform(
            service,
            "GET",
            &format!("/orgs/{ORG}/webhooks/{endpoint}"),
            None
        )
        .0,
        200
    );
    assert_eq!(
        platform(
            service,
            "GET",
            &format!("/orgs/acme/webhooks/{endpoint}"),
            None
        )
        .0,
        404
    );
    for credential in [key, API_KEY, session] {
        assert_eq!(service.call("GET", "/orgs", Some(credential), None).0, 404);
        assert_eq!(
            service
                .call(
                    "GET",
                    &format!("/orgs/{ORG}/webhooks"),
                    Some(credential),
                    None
                )
                .0,
            404
        );
    }
    assert_eq!(platform(service, "GET", "/webhooks", None).0, 401);
    let (status, problem) =
        service.call("POST", "/api-keys", Some(session), Some(r#"{"name":"x"}"#));
    assert_eq!((status, problem["code"].as_str()), (403, Some("forbidden")));
}

fn delete(service: &Service, key: &str, session: &str) {
    let (status, body) = platform(service, "DELETE", &format!("/orgs/{ORG}"), None);
    assert_eq!(status, 204, "{body}");
    assert_eq!(service.call("GET", "/webhooks", Some(key), None).0, 401);
    assert_eq!(service.call("GET", "/webhooks", Some(session), None).0, 401);
    assert_eq!(
        platform(service, "GET", &format!("/orgs/{ORG}"), None).0,
        404
    );
    // acme is untouched.
    assert_eq!(service.call("GET", "/webhooks", Some(API_KEY), None).0, 200);
}

#[test]
fn on_sqlite_a_deleted_organisation_leaves_nothing_in_the_file() {
    let receiver = Receiver::start();
    receiver.answer(204);
    let data = tempfile::tempdir().unwrap();
    let service = start(data.path(), &[]);
    service.create(&receiver.url);
    let (key, session) = onboard_and_use(&service, &receiver);
    isolation(&service, &key, &session);
    delete(&service, &key, &session);
    let data = data.path();
    let log = service.stop();
    assert!(!log.contains(PLATFORM_KEY), "{log}");
    // Opened, read and closed once more (as the next start does), SQLite
    // folds its WAL into the file.
    let connection = rusqlite::Connection::open(data.join("key_value.db")).unwrap();
    let rows: i64 = connection
        .query_row("SELECT count(*) FROM spin_key_value", [], |row| row.get(0))
        .unwrap();
    assert!(rows > 0);
    drop(connection);
    assert!(!data.join("key_value.db-wal").exists());
    let file = std::fs::read(data.join("key_value.db")).unwrap();
    let text = String::from_utf8_lossy(&file);
    assert!(text.contains("endpoint/"), "acme's endpoint is in the file");
    assert!(!text.contains(ORG), "the file still holds {ORG}");
}

#[test]
fn on_redis_a_deleted_organisation_leaves_no_key_or_value() {
    let redis = RedisServer::start(None);
    let receiver = Receiver::start();
    receiver.answer(204);
    let data = tempfile::tempdir().unwrap();
    let service = start(data.path(), &["--store", &redis.url()]);
    service.create(&receiver.url);
    let (key, session) = onboard_and_use(&service, &receiver);
    isolation(&service, &key, &session);
    let before = redis_text(&redis);
    assert!(before.matches(ORG).count() > 10, "{before}");
    delete(&service, &key, &session);
    let after = redis_text(&redis);
    let left: Vec<&str> = after.lines().filter(|line| line.contains(ORG)).collect();
    assert!(left.is_empty(), "left in Redis: {left:#?}");
    assert!(after.contains("endpoint/"));
}

/// Every key in Redis with its value (strings; other types by key).
fn redis_text(redis: &RedisServer) -> String {
    let mut connection = redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut connection).unwrap();
    keys.into_iter()
        .map(|key| {
            let value: Option<Vec<u8>> = redis::cmd("GET")
                .arg(&key)
                .query(&mut connection)
                .unwrap_or(None);
            format!(
                "{key} {}",
                String::from_utf8_lossy(&value.unwrap_or_default())
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn of_browsers_opening_one_link_at_once_exactly_one_is_signed_in() {
    let redis = RedisServer::start(None);
    for arguments in [vec![], vec!["--store".to_string(), redis.url()]] {
        let data = tempfile::tempdir().unwrap();
        let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
        let service = std::sync::Arc::new(start(data.path(), &arguments));
        platform(
            &service,
            "POST",
            "/orgs",
            Some(json!({ "id": ORG, "name": "Initech" })),
        );
        let (_, link) = platform(
            &service,
            "POST",
            &format!("/orgs/{ORG}/dashboard-links"),
            None,
        );
        let token = link["url"]
            .as_str()
            .unwrap()
            .split_once("#link=")
            .unwrap()
            .1
            .to_string();
        let opens: Vec<_> = (0..8)
            .map(|_| {
                let (service, token) = (service.clone(), token.clone());
                std::thread::spawn(move || {
                    service.call("POST", "/dashboard/sessions", Some(&token), None)
                })
            })
            .collect();
        let mut statuses: Vec<u16> = opens
            .into_iter()
            .map(|open| open.join().unwrap().0)
            .collect();
        statuses.sort_unstable();
        assert_eq!(
            statuses,
            [201, 410, 410, 410, 410, 410, 410, 410],
            "{arguments:?}"
        );
    }
}
