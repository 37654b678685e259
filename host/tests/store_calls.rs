//! Store calls per operation, counted by `hooksign serve --log-store-calls`
//! (a counting wrapper around the store, one line per request's instance,
//! its first attempts included), held under ceilings so they cannot creep
//! back. The ceilings are today's counts; issue #24's targets are beside
//! them, and each lever that lowers a count lowers its ceiling.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::service::{Receiver, Service, local};
use hooksign::{Keyring, SecretRecord};
use serde_json::json;

/// The count on the line `hooksign: {what}: N store calls (…)` that the
/// service logs after `before` lines, waiting for it.
fn store_calls(service: &Service, what: &str, before: usize) -> u64 {
    let prefix = format!("hooksign: {what}: ");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let log = service.log.lock().unwrap().clone();
        let found = log
            .lines()
            .skip(before)
            .find_map(|line| line.strip_prefix(&prefix).map(str::to_string));
        if let Some(rest) = found {
            return rest.split(' ').next().unwrap().parse().unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no line for {what} in {log}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn lines(service: &Service) -> usize {
    service.log.lock().unwrap().lines().count()
}

/// `(operation, calls, #24's target)`.
type Row = (&'static str, u64, u64);

#[test]
fn store_calls_per_operation_stay_under_their_ceilings() {
    let mut variables = local().to_vec();
    let sources = json!({ "shop": {
        "secrets": [{ "key": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }],
        "forwardUrl": "RECEIVER",
    } });
    let receiver = Receiver::start();
    let sources = sources.to_string().replace("RECEIVER", &receiver.url);
    variables.push(("inbound_sources", &sources));
    let service = Service::start_with(
        &variables,
        &["--log-store-calls", "--dispatch-interval-ms", "0"],
    );
    let mut rows: Vec<Row> = Vec::new();

    let before = lines(&service);
    let (id, _) = service.create(&receiver.url);
    rows.push((
        "endpoint create",
        store_calls(&service, "POST /webhooks", before),
        6,
    ));

    let before = lines(&service);
    service.ok("POST", &format!("/webhooks/{id}/rotate"), Some("{}"));
    let what = format!("POST /webhooks/{id}/rotate");
    rows.push(("rotate", store_calls(&service, &what, before), 6));

    let before = lines(&service);
    service.ok("POST", &format!("/webhooks/{id}/test"), None);
    let what = format!("POST /webhooks/{id}/test");
    rows.push(("test send", store_calls(&service, &what, before), 6));

    // An event's first attempts follow its answer, in the same instance.
    // The first entry of an organisation in a second (or a minute) of the
    // queue also lists the second (and the minute): the cheapest of three
    // events, posted one after the other, is the usual cost.
    let mut event = |subscribers: usize, operation: &'static str, target: u64| {
        let calls = (0..3)
            .map(|_| {
                let before = lines(&service);
                service.event(&format!("calls.{subscribers}"));
                store_calls(&service, "POST /events", before)
            })
            .min()
            .unwrap();
        rows.push((operation, calls, target));
    };
    event(1, "event, 1 subscriber, first attempt included", 12);
    for _ in 0..9 {
        service.create(&receiver.url);
    }
    event(10, "event, 10 subscribers, first attempts included", 30);

    // As with events, the cheapest of three: the first delivery whose mark
    // expires in a new ten seconds also lists those seconds.
    let body = br#"{"type":"order.paid"}"#;
    let keyring =
        Keyring::from_records(&[SecretRecord::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")])
            .unwrap();
    let calls = (0..3)
        .map(|n| {
            let id = format!("msg_calls_{n}");
            let timestamp = hooksign::unix_now();
            let signature = keyring.sign(&id, timestamp, body).unwrap();
            let before = lines(&service);
            let (status, _, _) = service.raw_with_headers(
                "/inbound/shop",
                &[
                    ("webhook-id", id),
                    ("webhook-timestamp", timestamp.to_string()),
                    ("webhook-signature", signature),
                ],
                body,
            );
            assert_eq!(status, 200);
            store_calls(&service, "POST /inbound/shop", before)
        })
        .min()
        .unwrap();
    rows.push(("gateway verify and forward", calls, 4));

    let ceilings = CEILINGS;
    assert_eq!(rows.len(), ceilings.len());
    println!("| operation | store calls | ceiling | target |");
    println!("|---|---:|---:|---:|");
    for ((operation, calls, target), ceiling) in rows.iter().zip(ceilings) {
        println!("| {operation} | {calls} | {ceiling} | {target} |");
    }
    for ((operation, calls, _), ceiling) in rows.iter().zip(ceilings) {
        assert!(
            calls <= &ceiling,
            "{operation}: {calls} store calls, over its ceiling of {ceiling}"
        );
    }
}

/// Today's counts on `hooksign serve`'s SQLite store, whose swaps are
/// truthful, in the order of the rows above (at 0a3d94f: 7, 5, 6, 58, 254,
/// 17; BENCHMARKS.md). An event's count includes the one atomic step that
/// charges its message to the organisation's storage budget (issue #27),
/// and the read of its type in the event-type catalogue (issue #26); an
/// organisation listed in the day's retention list reads no more of it;
/// a swap begins from the value its instance last read or wrote, when it
/// has one (`host/src/edge_imports.rs`); an event reads what it reads
/// first in one batch, and its subscribers with their deliveries in
/// another (`edge/src/store/read_ahead.rs`); the gateway's replay mark
/// is one swap, read ahead with the expiry lists it updates; an event's
/// queue entry and log entry are one batch write; an event writes no
/// record of the deliveries its first attempts send (its message stands
/// for them until each attempt's result is recorded). A first attempt
/// writes its delivery's first record with the attempt, in one batch, no
/// swap; attempts answered in one round of the instance's event loop go
/// in one batch together: how many go together depends on when the
/// receiver answers, so the ceiling of 10 subscribers is for each written
/// alone (10 and 2 per further subscriber; 20 here, all together).
const CEILINGS: [u64; 6] = [3, 2, 3, 10, 28, 4];
