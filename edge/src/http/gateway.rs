//! The receiver gateway: `POST /inbound/{source}` verifies a delivery with
//! the source's keyring (docs/SPEC.md section 3, through the hooksign library),
//! refuses replays, and forwards what verified to the origin.
//!
//! The replay marks and counters are [`crate::domain::inbound`]'s.

use hooksign::{DEFAULT_TOLERANCE_SECONDS, Keyring, MAX_TOLERANCE_SECONDS, Scheme, Verified};

use crate::domain::inbound::{self, ORIGIN_REJECTED, Outcome};
use crate::foundation::config::{Config, InboundSource};
use crate::foundation::encoding::new_uuid;
use crate::foundation::problem::{Code, Problem};
use crate::http::request::MAX_BODY_BYTES;
use crate::ids::OrgId;
use crate::platform::{
    OutboundRequest, OutboundResponse, Platform, Request, Response, SendFailure,
};
use crate::store::ReadAhead;

/// How much of the origin's answer the gateway relays: 1 MiB, as much as it
/// accepts; the rest is dropped unread.
pub const MAX_RELAYED_BYTES: usize = MAX_BODY_BYTES;

/// `POST /inbound/{source}`: verify, refuse a replay, forward, relay.
pub async fn receive(
    platform: &impl Platform,
    config: &Config,
    name: &str,
    request: &Request,
) -> Result<Response, Problem> {
    let source = config.inbound_sources.get(name)?;
    let now = platform.now_millis().div_euclid(1000);
    let tolerance = source
        .tolerance_seconds
        .unwrap_or(DEFAULT_TOLERANCE_SECONDS);
    let token = new_uuid()?;
    let verified = verify(platform, source, name, request, now, tolerance)?;
    let until = verified.timestamp.saturating_add(i64::from(tolerance));
    let platform = &ReadAhead::new(platform);
    inbound::read_first(platform, name, &verified.id, until)?;
    if !inbound::mark(platform, name, &verified.id, until, now, &token)? {
        let duplicate = Outcome::Rejected(Code::DuplicateDelivery.as_str());
        inbound::count(platform, name, duplicate)?;
        return Err(Problem::new(
            Code::DuplicateDelivery,
            "this webhook-id was already accepted within the tolerance window",
        ));
    }
    let answer = forward(platform, config, source, request, &verified).await;
    let accepted = matches!(&answer, Ok(response) if (200..300).contains(&response.status));
    if accepted {
        inbound::remember_accepted(platform, name, &verified.id, until)?;
    } else {
        inbound::unmark(platform, name, &verified.id, &token)?;
    }
    let outcome = match &answer {
        _ if accepted => Outcome::Accepted {
            secret: verified.secret,
        },
        Ok(_) => Outcome::Rejected(ORIGIN_REJECTED),
        Err(SendFailure::Timeout) => Outcome::Rejected(Code::OriginTimeout.as_str()),
        Err(SendFailure::Failed(_) | SendFailure::Refused(_)) => {
            Outcome::Rejected(Code::OriginUnreachable.as_str())
        }
    };
    inbound::count(platform, name, outcome)?;
    relay(answer, config)
}

/// Verifies the delivery with the source's keyring; a failure is counted
/// (sampled past the first hundred) and becomes the problem of its library
/// error.
fn verify<'r>(
    platform: &impl Platform,
    source: &InboundSource,
    name: &str,
    request: &'r Request,
    now: i64,
    tolerance: u32,
) -> Result<Verified<'r>, Problem> {
    let keyring = Keyring::from_records_for(source.scheme, &source.secrets).map_err(|_| {
        Problem::new(
            Code::InvalidConfiguration,
            format!("inbound source {name} has an invalid secret"),
        )
    })?;
    keyring
        .verify(&request.headers, &request.body, now, tolerance)
        .or_else(|error| {
            let code = Code::of_verification(error);
            if code == Code::InvalidConfiguration {
                return Err(Problem::new(
                    code,
                    format!(
                        "inbound source {name} has a tolerance over {MAX_TOLERANCE_SECONDS} seconds"
                    ),
                ));
            }
            inbound::count_refusal(platform, name, code)?;
            Err(Problem::new(code, error.to_string()).with_cause(error.code(), error.to_string()))
        })
}

/// Marks the gateway's own forwards, the only requests `hooksign serve`
/// lets reach an internal origin (a tenant's endpoint at the same address
/// is checked like any other); the host removes it before sending.
/// Deliveries carry a fixed set of headers, so no tenant can set it.
pub const GATEWAY_FORWARD_HEADER: &str = "hooksign-gateway-forward";

/// A provider's headers that say what a delivery is (its event type), which
/// the origin needs as much as the body.
pub fn passed_on(scheme: Scheme) -> &'static [&'static str] {
    match scheme {
        Scheme::StandardWebhooks | Scheme::Stripe | Scheme::Slack => &[],
        Scheme::Github => &["x-github-event", "x-github-hook-id"],
        Scheme::Shopify => &["x-shopify-topic", "x-shopify-shop-domain"],
    }
}

/// Sends the verified delivery to the source's origin.
async fn forward(
    platform: &impl Platform,
    config: &Config,
    source: &InboundSource,
    request: &Request,
    verified: &Verified<'_>,
) -> Result<OutboundResponse, SendFailure> {
    let mut headers = vec![
        ("webhook-id".to_string(), verified.id.to_string()),
        (
            "webhook-timestamp".to_string(),
            verified.timestamp.to_string(),
        ),
        (
            "hooksign-verified-secret".to_string(),
            verified.secret.to_string(),
        ),
        // Only this request may reach an operator's internal origin.
        (GATEWAY_FORWARD_HEADER.to_string(), "1".to_string()),
    ];
    if let Some(content_type) = request.header("content-type") {
        headers.push(("content-type".into(), content_type.into()));
    }
    for name in passed_on(source.scheme) {
        if let Some(value) = request.header(name) {
            headers.push(((*name).into(), value.into()));
        }
    }
    let forwarded = OutboundRequest::post(
        source.forward_url.clone(),
        headers,
        request.body.clone(),
        MAX_RELAYED_BYTES,
    );
    platform.send(forwarded, config.delivery_timeout_ms).await
}

/// The origin's answer (status, body and content type), or the problem of
/// its failure.
fn relay(
    answer: Result<OutboundResponse, SendFailure>,
    config: &Config,
) -> Result<Response, Problem> {
    match answer {
        Ok(response) => Ok(Response::new(
            response.status,
            response
                .headers
                .into_iter()
                .filter(|(header, _)| header.eq_ignore_ascii_case("content-type"))
                .collect(),
            response.body,
        )),
        Err(SendFailure::Timeout) => {
            let detail = format!(
                "the origin did not answer within {} ms",
                config.delivery_timeout_ms
            );
            Err(Problem::new(Code::OriginTimeout, detail.clone()).with_cause("timeout", detail))
        }
        Err(SendFailure::Failed(reason) | SendFailure::Refused(reason)) => Err(Problem::new(
            Code::OriginUnreachable,
            format!("the delivery verified but could not be forwarded: {reason}"),
        )
        .with_cause("connection_failed", reason)),
    }
}

/// `GET /inbound/{source}/stats`: for the source's organisation only; to
/// any other, a source that does not exist.
pub fn stats(
    platform: &impl Platform,
    config: &Config,
    org: &OrgId,
    name: &str,
) -> Result<Response, Problem> {
    let source = config.inbound_sources.get(name)?;
    if source.org.as_deref() != Some(org.as_str()) {
        return Err(Problem::not_found(format!("no inbound source {name}")));
    }
    let stats = inbound::stats(platform, name, source.secrets.len())?;
    Ok(Response::json(200, &stats))
}
