//! One attempt: signs a message with every secret of the endpoint usable
//! now, POSTs it, and records the attempt with its effect on the
//! endpoint's delivery state (auto-pause is the endpoint's rule:
//! [`EndpointRecord::apply_outcome`]).

use hooksign::{Keyring, SecretRecord};

use crate::dispatch::operational;
use crate::domain::attempt::{self, Attempt};
use crate::domain::endpoint::{self, EndpointRecord};
use crate::domain::metrics::{self, AttemptOutcome};
use crate::foundation::config::Config;
use crate::foundation::encoding::{new_uuid, rfc3339};
use crate::foundation::problem::{Code, Problem};
use crate::ids::MessageId;
use crate::platform::{OutboundRequest, OutboundResponse, Platform, SendFailure};

/// How much of a receiver's body an attempt keeps, and of its headers a
/// test send answers with.
pub const KEPT_RESPONSE_BYTES: usize = 4096;

/// A receiver's headers as a test send answers with them: whole headers,
/// in the order received, up to [`KEPT_RESPONSE_BYTES`] of names and
/// values; the rest is left out (90 headers of 4 KB made a 361 KB answer).
pub fn kept_headers(headers: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut room = KEPT_RESPONSE_BYTES;
    headers
        .into_iter()
        .take_while(|(name, value)| {
            let size = name.len() + value.len();
            let fits = size <= room;
            room = room.saturating_sub(size);
            fits
        })
        .collect()
}

/// One message to one endpoint.
pub struct Message<'a> {
    /// The `webhook-id`, the same for every attempt of the message.
    pub id: &'a MessageId,
    /// The event type.
    pub event_type: &'a str,
    /// The envelope, as sent.
    pub body: &'a [u8],
    /// A test send changes no delivery state.
    pub test: bool,
    /// Which attempt of the message at this endpoint this is, from 1.
    pub attempt_number: u32,
}

/// One attempt's result.
pub struct Delivered {
    /// The attempt, as recorded.
    pub attempt: Attempt,
    /// The receiver's answer, if there was one.
    pub response: Option<OutboundResponse>,
    /// The endpoint with the attempt's effect, or `None` if it was deleted
    /// meanwhile.
    pub endpoint: Option<EndpointRecord>,
    /// Why the attempt is not on the endpoint's record, if it is not (the
    /// store failed after the send): `endpoint` is then the effect it would
    /// have had, so that the delivery is still settled by what the
    /// receiver answered and never sent again for the store's sake.
    pub unrecorded: Option<Problem>,
}

/// Signs with every secret usable now, POSTs, and records the attempt's
/// effect on the endpoint's delivery state; the attempt joins `attempts`'
/// next write, which the caller makes ([`attempt::Group::write`]).
pub async fn deliver(
    platform: &impl Platform,
    config: &Config,
    endpoint: &EndpointRecord,
    message: &Message<'_>,
    attempts: &attempt::Group,
) -> Result<Delivered, Problem> {
    let started_ms = platform.now_millis();
    let now = started_ms.div_euclid(1000);
    let secrets = config.secrets.open(&endpoint.id, &endpoint.secrets)?;
    let mut headers: Vec<(String, String)> = endpoint.headers.clone().into_iter().collect();
    if let Some(stored) = &endpoint.sensitive_headers {
        headers.extend(config.secrets.open_headers(&endpoint.id, stored)?);
    }
    let request = signed_request(endpoint, &secrets, headers, message, now)?;
    // Everything that can fail before the send does: after it, only the
    // record of it may.
    let attempt_id = new_uuid()?;
    let in_flight = attempts.send_starts();
    let result = platform.send(request, config.delivery_timeout_ms).await;
    drop(in_flight);
    let duration_ms = u64::try_from(platform.now_millis() - started_ms).unwrap_or(0);
    let (succeeded, status, error) = outcome(&result, config.delivery_timeout_ms);
    metrics::count_attempt(platform, attempt_outcome(&result));
    let attempt = Attempt {
        id: attempt_id,
        endpoint_id: endpoint.id.clone(),
        message_id: message.id.clone(),
        event_type: message.event_type.to_string(),
        test: message.test,
        attempt_number: message.attempt_number,
        attempted_at: rfc3339(now),
        succeeded,
        response_status: status,
        response_body: result.as_ref().ok().map(|response| {
            // Hosts read at most this much; a platform that reads more is cut here.
            let kept = &response.body[..response.body.len().min(KEPT_RESPONSE_BYTES)];
            String::from_utf8_lossy(kept).into_owned()
        }),
        duration_ms,
        error,
    };
    // What the last change made did: a swap refused for another's write
    // runs the change again on that write (which may have paused the
    // endpoint itself), and a confirming read that finds this attempt
    // counted already runs it no more.
    let mut paused_now = false;
    let mut effect = |record: &mut EndpointRecord| {
        if !message.test {
            let was_paused = record.paused;
            record.apply_outcome(succeeded, status, now, config.auto_pause_after);
            paused_now = !was_paused && record.paused;
        }
    };
    let (endpoint, unrecorded) = match endpoint::record_attempt(platform, &attempt, &mut effect) {
        Ok(Some((written, number))) => {
            if paused_now {
                // Dropped if it cannot be stored: the pause stands.
                let _ = operational::endpoint_disabled(platform, config, &written);
            }
            let unrecorded = attempts.join_attempt(number, &attempt).err();
            (Some(written), unrecorded)
        }
        Ok(None) => (None, None),
        Err(problem) => {
            let mut expected = endpoint.clone();
            effect(&mut expected);
            (Some(expected), Some(problem))
        }
    };
    Ok(Delivered {
        attempt,
        response: result.ok(),
        endpoint,
        unrecorded,
    })
}

/// The POST of a message with the endpoint's custom `headers`, signed at
/// `now` with every secret usable then.
fn signed_request(
    endpoint: &EndpointRecord,
    secrets: &[SecretRecord],
    mut headers: Vec<(String, String)>,
    message: &Message<'_>,
    now: i64,
) -> Result<OutboundRequest, Problem> {
    let signed = Keyring::from_records(secrets)
        .and_then(|keyring| keyring.sign_headers(message.id.as_str(), now, message.body))
        .map_err(|error| {
            Problem::new(
                Code::InvalidKeyring,
                format!(
                    "the endpoint's stored keyring cannot sign: {}",
                    error.code()
                ),
            )
            .with_cause(error.code(), error.to_string())
        })?;
    headers.extend([
        ("content-type".to_string(), "application/json".to_string()),
        // Receivers dedupe on webhook-id; the number tells retries apart.
        (
            "hooksign-attempt".to_string(),
            message.attempt_number.to_string(),
        ),
    ]);
    headers.extend(
        signed
            .into_iter()
            .map(|(name, value)| (name.to_string(), value)),
    );
    Ok(OutboundRequest::post(
        endpoint.url.clone(),
        headers,
        message.body.to_vec(),
        KEPT_RESPONSE_BYTES,
    ))
}

/// Whether an exchange succeeded, the receiver's status, and the error.
fn outcome(
    result: &Result<OutboundResponse, SendFailure>,
    timeout_ms: u64,
) -> (bool, Option<u16>, Option<String>) {
    match result {
        Ok(response) if (200..300).contains(&response.status) => {
            (true, Some(response.status), None)
        }
        Ok(response) => (
            false,
            Some(response.status),
            Some(format!("the endpoint answered {}", response.status)),
        ),
        Err(failure) => (false, None, Some(failure.reason(timeout_ms))),
    }
}

/// An exchange's outcome, as the metrics count it.
fn attempt_outcome(result: &Result<OutboundResponse, SendFailure>) -> AttemptOutcome {
    match result {
        Ok(response) if (200..300).contains(&response.status) => AttemptOutcome::Succeeded,
        Ok(response) => AttemptOutcome::Failed(match response.status / 100 {
            class @ 3..=5 => class,
            _ => 0,
        }),
        Err(SendFailure::Timeout) => AttemptOutcome::TimedOut,
        Err(SendFailure::Failed(_)) => AttemptOutcome::ConnectionFailed,
        Err(SendFailure::Refused(_)) => AttemptOutcome::Refused,
    }
}
