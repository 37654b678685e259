//! The platform's API without a runtime (issue #25): organisations as
//! records, a platform key acting as any of them under `/orgs/{org}`,
//! dashboard links and sessions, and a deletion that leaves nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use hooksign::{Keyring, SecretRecord};
use hooksign_edge::testing::{FakePlatform, SwapDefect, answer};
use hooksign_edge::{Request, handle, platform_key_entry};
use serde_json::{Value, json};

const ORG_KEY: &str = "sgn_live_acme_bootstrap";
const PLATFORM_KEY: &str = "sgn_plat_the_platform";

fn fake() -> FakePlatform {
    let platform = support::platform(ORG_KEY);
    platform.set_variable("platform_keys", platform_key_entry(PLATFORM_KEY));
    platform.set_variable("max_endpoints_per_host", "1000");
    platform
}

/// One request with `key` as its bearer, its follow-up sends made; the
/// status and the JSON body (null if none).
fn call(
    fake: &FakePlatform,
    key: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    call_with_host(fake, key, method, path, body, None)
}

fn call_with_host(
    fake: &FakePlatform,
    key: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
    host: Option<&str>,
) -> (u16, Value) {
    let mut headers = vec![("authorization".to_string(), format!("Bearer {key}"))];
    if let Some(host) = host {
        headers.push(("host".into(), host.into()));
    }
    let (path, query) = match path.split_once('?') {
        Some((path, query)) => (path, Some(query.to_string())),
        None => (path, None),
    };
    let request = Request {
        method: method.into(),
        path: path.into(),
        query,
        headers,
        body: body
            .map(|body| body.to_string().into_bytes())
            .unwrap_or_default(),
    };
    let response = futures::executor::block_on(handle(fake, &request));
    let _ = futures::executor::block_on(hooksign_edge::follow_up(fake, &response.follow_up));
    (
        response.status,
        serde_json::from_slice(&response.body).unwrap_or(Value::Null),
    )
}

fn call_without_key(fake: &FakePlatform, path: &str) -> u16 {
    let request = Request {
        method: "GET".into(),
        path: path.into(),
        ..Request::default()
    };
    futures::executor::block_on(handle(fake, &request)).status
}

fn platform(fake: &FakePlatform, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    call(fake, PLATFORM_KEY, method, path, body)
}

/// A new organisation's first key, minted by the platform.
fn onboard(fake: &FakePlatform, id: &str) -> String {
    let (status, org) = platform(
        fake,
        "POST",
        "/orgs",
        Some(json!({ "id": id, "name": "Globex Corp" })),
    );
    assert_eq!(status, 201, "{org}");
    assert_eq!(org["id"], id);
    let path = format!("/orgs/{id}/api-keys");
    let (status, minted) = platform(fake, "POST", &path, Some(json!({ "name": "first" })));
    assert_eq!(status, 201, "{minted}");
    assert!(
        minted["apiKey"]["mintedBy"]
            .as_str()
            .unwrap()
            .starts_with("platform-")
    );
    minted["key"].as_str().unwrap().to_string()
}

/// Whether the last send verifies with `secret`.
fn last_send_verifies_with(fake: &FakePlatform, secret: &str) -> bool {
    let request = fake.sent.borrow().last().unwrap().clone();
    Keyring::from_records(&[SecretRecord::new(secret)])
        .unwrap()
        .verify(&request.headers, &request.body, fake.now_ms.get() / 1000, 0)
        .is_ok()
}

fn onboarding_from_nothing(fake: &FakePlatform) {
    let key = onboard(fake, "globex");
    let (status, created) = call(
        fake,
        &key,
        "POST",
        "/webhooks",
        Some(json!({ "url": "https://globex.example/hook" })),
    );
    assert_eq!(status, 201, "{created}");
    let secret = created["signingSecret"].as_str().unwrap().to_string();
    let event = json!({ "type": "invoice.paid", "data": { "n": 1 } });
    let (status, accepted) = platform(fake, "POST", "/orgs/globex/events", Some(event));
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(
        fake.sent.borrow().last().unwrap().url,
        "https://globex.example/hook"
    );
    assert!(last_send_verifies_with(fake, &secret));
    // The customer sees the platform's event as its own.
    let (status, messages) = call(fake, &key, "GET", "/messages", None);
    assert_eq!(status, 200);
    assert_eq!(messages["data"][0]["type"], "invoice.paid");
}

#[test]
fn a_customer_is_onboarded_from_nothing() {
    onboarding_from_nothing(&fake());
}

#[test]
fn onboarding_holds_on_stores_whose_swap_misreports() {
    for defect in [
        SwapDefect::ReportsFailure,
        SwapDefect::ConflictReportsSuccess,
        SwapDefect::AbsentUpserts,
    ] {
        let fake = fake();
        fake.defect.set(Some(defect));
        onboarding_from_nothing(&fake);
        let (status, again) = platform(
            &fake,
            "POST",
            "/orgs",
            Some(json!({ "id": "globex", "name": "x" })),
        );
        assert_eq!(
            (status, again["code"].as_str()),
            (409, Some("conflict")),
            "{defect:?}"
        );
    }
}

#[test]
fn organisations_are_created_listed_renamed_and_checked() {
    let fake = fake();
    let (status, made) = platform(&fake, "POST", "/orgs", Some(json!({ "name": "Initech" })));
    assert_eq!(status, 201, "{made}");
    let generated = made["id"].as_str().unwrap().to_string();
    assert!(generated.starts_with("org-") && generated.len() <= 64);
    for bad in ["Upper", "has space", "", &"x".repeat(65), "under_score"] {
        let (status, problem) = platform(
            &fake,
            "POST",
            "/orgs",
            Some(json!({ "id": bad, "name": "n" })),
        );
        assert_eq!(
            (status, problem["errors"][0]["path"].as_str()),
            (400, Some("id")),
            "{bad}"
        );
    }
    let (status, problem) = platform(
        &fake,
        "POST",
        "/orgs",
        Some(json!({ "id": "acme", "name": "n" })),
    );
    assert_eq!((status, problem["code"].as_str()), (409, Some("conflict")));
    platform(
        &fake,
        "POST",
        "/orgs",
        Some(json!({ "id": "b-org", "name": "B" })),
    );
    // api_keys's organisation is listed beside the records, by id.
    let (status, page) = platform(&fake, "GET", "/orgs?limit=2", None);
    assert_eq!(status, 200);
    let ids: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|org| org["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["acme", "b-org"]);
    assert_eq!(page["data"][0]["bootstrap"], true);
    let cursor = page["nextCursor"].as_str().unwrap();
    let (_, rest) = platform(&fake, "GET", &format!("/orgs?cursor={cursor}"), None);
    assert_eq!(rest["data"][0]["id"], generated.as_str());
    assert_eq!(rest["nextCursor"], Value::Null);
    let (status, renamed) = platform(
        &fake,
        "PATCH",
        "/orgs/b-org",
        Some(json!({ "name": "Bee" })),
    );
    assert_eq!((status, renamed["name"].as_str()), (200, Some("Bee")));
    let (_, fetched) = platform(&fake, "GET", "/orgs/b-org", None);
    assert_eq!(fetched["name"], "Bee");
    assert_eq!(platform(&fake, "GET", "/orgs/nobody", None).0, 404);
    assert_eq!(platform(&fake, "GET", "/orgs/nobody/webhooks", None).0, 404);
    let (status, problem) = platform(&fake, "DELETE", "/orgs/acme", None);
    assert_eq!((status, problem["code"].as_str()), (409, Some("conflict")));
}

#[test]
fn each_credential_reaches_only_its_own_routes() {
    let fake = fake();
    let key = onboard(&fake, "globex");
    let (_, created) = call(
        &fake,
        &key,
        "POST",
        "/webhooks",
        Some(json!({ "url": "https://globex.example/hook" })),
    );
    let id = created["endpoint"]["id"].as_str().unwrap().to_string();
    // The platform key reaches globex's endpoint only under globex.
    assert_eq!(
        platform(&fake, "GET", &format!("/orgs/globex/webhooks/{id}"), None).0,
        200
    );
    assert_eq!(
        platform(&fake, "GET", &format!("/orgs/acme/webhooks/{id}"), None).0,
        404
    );
    // Organisation keys never see the platform's routes.
    for path in [
        "/orgs",
        "/orgs/globex",
        "/orgs/globex/webhooks",
        "/orgs/acme/webhooks",
    ] {
        assert_eq!(call(&fake, &key, "GET", path, None).0, 404, "{path}");
        assert_eq!(call(&fake, ORG_KEY, "GET", path, None).0, 404, "{path}");
        // No credential at all is told what to send.
        assert_eq!(call_without_key(&fake, path), 401, "{path}");
    }
    // A platform key is no organisation's key.
    let (status, problem) = platform(&fake, "GET", "/webhooks", None);
    assert_eq!(
        (status, problem["code"].as_str()),
        (401, Some("invalid_credentials"))
    );
    // An unlisted platform key is refused, not hidden from.
    assert_eq!(
        call(&fake, "sgn_plat_unlisted", "GET", "/orgs", None).0,
        401
    );
    // The same table: 405 with the methods of the route under the prefix.
    assert_eq!(platform(&fake, "PUT", "/orgs/globex/webhooks", None).0, 405);
    assert_eq!(
        platform(&fake, "POST", "/orgs/globex/dispatch", None).0,
        404
    );
}

/// A dashboard link's token, from its URL's fragment.
fn link_token(url: &str) -> String {
    url.split_once("#link=").unwrap().1.to_string()
}

fn open(fake: &FakePlatform, token: &str) -> (u16, Value) {
    call(fake, token, "POST", "/dashboard/sessions", None)
}

#[test]
fn a_dashboard_link_opens_one_session_once() {
    let fake = fake();
    let key = onboard(&fake, "globex");
    call(
        &fake,
        &key,
        "POST",
        "/webhooks",
        Some(json!({ "url": "https://globex.example/hook" })),
    );
    let (status, link) = call_with_host(
        &fake,
        PLATFORM_KEY,
        "POST",
        "/orgs/globex/dashboard-links",
        None,
        Some("127.0.0.1:8080"),
    );
    assert_eq!(status, 201, "{link}");
    let url = link["url"].as_str().unwrap();
    assert!(
        url.starts_with("http://127.0.0.1:8080/dashboard#link=sgn_link_"),
        "{url}"
    );
    let token = link_token(url);
    assert!(
        !String::from_utf8_lossy(
            &fake
                .entries
                .borrow()
                .values()
                .flatten()
                .copied()
                .collect::<Vec<u8>>()
        )
        .contains(&token)
    );
    let (status, opened) = open(&fake, &token);
    assert_eq!(status, 201, "{opened}");
    assert_eq!(opened["org"]["name"], "Globex Corp");
    let session = opened["token"].as_str().unwrap().to_string();
    assert!(session.starts_with("sgn_sess_"));
    let (status, problem) = open(&fake, &token);
    assert_eq!((status, problem["code"].as_str()), (410, Some("link_used")));
    // The session does what the dashboard does, but mints and revokes no key.
    let (status, endpoints) = call(&fake, &session, "GET", "/webhooks", None);
    assert_eq!(
        (status, endpoints["data"].as_array().map(Vec::len)),
        (200, Some(1))
    );
    let (status, problem) = call(
        &fake,
        &session,
        "POST",
        "/api-keys",
        Some(json!({ "name": "x" })),
    );
    assert_eq!((status, problem["code"].as_str()), (403, Some("forbidden")));
    assert_eq!(
        call(&fake, &session, "DELETE", "/api-keys/any", None).0,
        403
    );
    assert_eq!(call(&fake, &session, "GET", "/api-keys", None).0, 200);
    // Twelve hours on, the session is over.
    fake.now_ms.set(fake.now_ms.get() + 12 * 3600 * 1000);
    assert_eq!(call(&fake, &session, "GET", "/webhooks", None).0, 401);
}

#[test]
fn a_link_expires_and_its_lifetime_is_bounded() {
    let fake = fake();
    fake.set_variable("public_url", "https://hooks.example.com/");
    onboard(&fake, "globex");
    let (status, link) = platform(
        &fake,
        "POST",
        "/orgs/globex/dashboard-links",
        Some(json!({ "ttlSeconds": 60 })),
    );
    assert_eq!(status, 201);
    assert!(
        link["url"]
            .as_str()
            .unwrap()
            .starts_with("https://hooks.example.com/dashboard#link=")
    );
    fake.now_ms.set(fake.now_ms.get() + 61_000);
    let (status, problem) = open(&fake, &link_token(link["url"].as_str().unwrap()));
    assert_eq!(
        (status, problem["code"].as_str()),
        (410, Some("link_expired"))
    );
    for ttl in [0, 86_401] {
        let (status, _) = platform(
            &fake,
            "POST",
            "/orgs/globex/dashboard-links",
            Some(json!({ "ttlSeconds": ttl })),
        );
        assert_eq!(status, 400, "{ttl}");
    }
    assert_eq!(open(&fake, "sgn_link_never_made").0, 401);
    assert_eq!(
        platform(&fake, "POST", "/orgs/nobody/dashboard-links", None).0,
        404
    );
}

/// Every stored key and value, as text.
fn stored(fake: &FakePlatform) -> String {
    fake.entries
        .borrow()
        .iter()
        .map(|(key, value)| format!("{key} {}", String::from_utf8_lossy(value)))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn deleting_an_organisation_leaves_nothing_of_it() {
    let fake = fake();
    fake.set_variable(
        "inbound_sources",
        json!({ "gw": { "secrets": [{ "key": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }],
            "forwardUrl": "https://origin.example/hook", "org": "globex" } })
        .to_string(),
    );
    let key = onboard(&fake, "globex");
    // acme, beside it, keeps everything.
    call(
        &fake,
        ORG_KEY,
        "POST",
        "/webhooks",
        Some(json!({ "url": "https://acme.example/hook" })),
    );
    call(
        &fake,
        ORG_KEY,
        "POST",
        "/events",
        Some(json!({ "type": "a", "data": {} })),
    );
    for n in 0..3 {
        call(
            &fake,
            &key,
            "POST",
            "/webhooks",
            Some(json!({ "url": format!("https://globex{n}.example/hook") })),
        );
    }
    // Deliveries that fail stay queued for retries; a paused endpoint holds its.
    *fake.responder.borrow_mut() = Box::new(|_, _| Ok(answer(500)));
    for n in 0..3 {
        call(
            &fake,
            &key,
            "POST",
            "/events",
            Some(json!({ "type": "t", "data": { "n": n } })),
        );
    }
    let (_, listed) = call(&fake, &key, "GET", "/webhooks", None);
    let paused = listed["data"][0]["id"].as_str().unwrap().to_string();
    call(
        &fake,
        &key,
        "PATCH",
        &format!("/webhooks/{paused}"),
        Some(json!({ "paused": true })),
    );
    call(
        &fake,
        &key,
        "POST",
        "/events",
        Some(json!({ "type": "t", "data": {} })),
    );
    call(
        &fake,
        &key,
        "POST",
        &format!("/webhooks/{paused}/test"),
        None,
    );
    call(
        &fake,
        &key,
        "POST",
        "/api-keys",
        Some(json!({ "name": "second" })),
    );
    let (_, link) = platform(&fake, "POST", "/orgs/globex/dashboard-links", None);
    let (_, session) = open(&fake, &link_token(link["url"].as_str().unwrap()));
    platform(&fake, "POST", "/orgs/globex/dashboard-links", None);
    call(&fake, "", "POST", "/inbound/gw", Some(json!({})));
    let before = stored(&fake);
    assert!(before.matches("globex").count() > 20, "{before}");
    let acme_before = before.matches("acme").count();

    let (status, body) = platform(&fake, "DELETE", "/orgs/globex", None);
    assert_eq!(status, 204, "{body}");
    let after = stored(&fake);
    assert!(
        !after.contains("globex"),
        "left behind:\n{}",
        after
            .lines()
            .filter(|line| line.contains("globex"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(after.matches("acme").count(), acme_before);
    assert_eq!(call(&fake, &key, "GET", "/webhooks", None).0, 401);
    assert_eq!(
        call(
            &fake,
            session["token"].as_str().unwrap(),
            "GET",
            "/webhooks",
            None
        )
        .0,
        401
    );
    assert_eq!(platform(&fake, "GET", "/orgs/globex", None).0, 404);
    assert_eq!(platform(&fake, "DELETE", "/orgs/globex", None).0, 404);
    // The dispatcher finds nothing of it either.
    fake.now_ms.set(fake.now_ms.get() + 3_600_000);
    let sent_before = fake.sent.borrow().len();
    futures::executor::block_on(hooksign_edge::dispatch(&fake)).unwrap();
    assert!(
        fake.sent.borrow()[sent_before..]
            .iter()
            .all(|sent| !sent.url.contains("globex"))
    );
    // Its id is free again.
    assert_eq!(
        platform(
            &fake,
            "POST",
            "/orgs",
            Some(json!({ "id": "globex", "name": "again" }))
        )
        .0,
        201
    );
}

#[test]
fn deleting_ends_sessions_at_once_even_before_the_erasure_ends() {
    let fake = fake();
    let key = onboard(&fake, "globex");
    call(
        &fake,
        &key,
        "POST",
        "/webhooks",
        Some(json!({ "url": "https://globex.example/hook" })),
    );
    let (_, link) = platform(&fake, "POST", "/orgs/globex/dashboard-links", None);
    let (_, session) = open(&fake, &link_token(link["url"].as_str().unwrap()));
    let session = session["token"].as_str().unwrap().to_string();
    // A store that fails part-way through the erasure (after the mark,
    // at the endpoint's unlisting): the deletion fails, the organisation
    // is already gone to every credential, and a second deletion ends it.
    fake.writes_left.set(Some(1));
    assert_eq!(platform(&fake, "DELETE", "/orgs/globex", None).0, 503);
    fake.writes_left.set(None);
    assert_eq!(call(&fake, &session, "GET", "/webhooks", None).0, 401);
    assert_eq!(platform(&fake, "GET", "/orgs/globex/webhooks", None).0, 404);
    assert_eq!(platform(&fake, "DELETE", "/orgs/globex", None).0, 204);
    assert!(!stored(&fake).contains("globex"));
}

#[test]
fn a_platform_key_has_its_own_rate_limit() {
    let fake = fake();
    fake.set_variable("rate_limit_per_key", "5");
    let statuses: Vec<u16> = (0..6)
        .map(|_| platform(&fake, "GET", "/orgs", None).0)
        .collect();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429]);
    // Acting as acme draws from the platform key's bucket, not acme's.
    assert_eq!(platform(&fake, "GET", "/orgs/acme/webhooks", None).0, 429);
    assert_eq!(call(&fake, ORG_KEY, "GET", "/webhooks", None).0, 200);
    fake.now_ms.set(fake.now_ms.get() + 1000);
    assert_eq!(platform(&fake, "GET", "/orgs/acme/webhooks", None).0, 200);
}
