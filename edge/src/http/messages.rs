//! Messages' handlers: `POST /events` (a message and its deliveries), the
//! message log, one message with its deliveries, and resends.

use serde_json::{Value, json};

use crate::dispatch::MAX_FOLLOW_UP;
use crate::dispatch::operational::is_operational;
use crate::domain::delivery::{self, DeliveryRecord, FirstAttempts};
use crate::domain::endpoint;
use crate::domain::event_type;
use crate::domain::message::{self, Accepted, DAY_SECONDS, Event, MessageRecord};
use crate::domain::metrics;
use crate::foundation::encoding::{new_message_id, rfc3339};
use crate::foundation::problem::Problem;
use crate::http::context::Api;
use crate::http::request::{Body, Query};
use crate::ids::{EndpointId, MessageId};
use crate::platform::{DeliveryRef, FollowUp, Platform, Request, Response};
use crate::store::ReadAhead;

/// `POST /events`: stores the message and its deliveries, then answers
/// 202; the first attempts follow the answer (`Response::follow_up`). A
/// repost of an accepted id answers 200 with the message.
pub fn send_event<P: Platform>(api: &Api<'_, P>, request: &Request) -> Result<Response, Problem> {
    let event = event_fields(request)?;
    let now_ms = api.platform.now_millis();
    let platform = &ReadAhead::new(api.platform);
    message::read_first(platform, api.org, &event, now_ms)?;
    if let Some(schema) =
        event_type::get(platform, api.org, &event.event_type)?.and_then(|record| record.schema)
    {
        event_type::check_data(&schema, &event.data)?;
    }
    let first = FirstAttempts::leased(api.config.delivery_timeout_ms, now_ms, MAX_FOLLOW_UP)?;
    match message::accept(
        platform,
        api.org,
        api.now_s,
        event,
        &first,
        api.config.max_stored_bytes_per_org,
    )? {
        Accepted::Before(found) => Ok(Response::json(200, &view(api, &found)?)),
        Accepted::Written(written, deliveries, follow_up) => {
            metrics::count_event(api.platform);
            // The deliveries as this request stored them: no read again.
            let mut response = Response::json(202, &view_of(&written, &deliveries));
            response.follow_up = follow_up;
            Ok(response)
        }
    }
}

/// The message with each endpoint's delivery, as stored now (one without
/// a record as its message stands for it).
fn view<P: Platform>(api: &Api<'_, P>, message: &MessageRecord) -> Result<Value, Problem> {
    let refs: Vec<DeliveryRef> = message
        .endpoints
        .iter()
        .map(|endpoint| message.delivery(endpoint))
        .collect();
    let deliveries: Vec<(EndpointId, DeliveryRecord)> = message
        .endpoints
        .iter()
        .cloned()
        .zip(delivery::get_many(api.platform, &refs)?)
        .map(|(endpoint, record)| (endpoint, record.unwrap_or_else(|| message.unwritten())))
        .collect();
    Ok(view_of(message, &deliveries))
}

/// The message with these deliveries.
fn view_of(message: &MessageRecord, deliveries: &[(EndpointId, DeliveryRecord)]) -> Value {
    let deliveries: Vec<Value> = deliveries
        .iter()
        .map(|(endpoint, record)| record.view(endpoint))
        .collect();
    json!({
        "id": message.id,
        "type": message.event_type,
        "createdAt": rfc3339(message.created_at_s),
        "data": message.data(),
        "deliveries": deliveries,
    })
}

/// How many log entries one page looks at, at most.
const MAX_SCANNED: usize = 1_000;

/// `GET /messages`: newest first, a day of the log at a time.
pub fn list<P: Platform>(api: &Api<'_, P>, request: &Request) -> Result<Response, Problem> {
    let query = Query::parse(request);
    let limit = query.limit(50)? as usize;
    let wanted_type = query.get("type");
    let today = api.now_s.div_euclid(DAY_SECONDS);
    let oldest = today - api.config.retention_days as i64;
    // A cursor is `DAY.POSITION`: continue below that entry of that day.
    let (mut day, mut below) = match query.get("cursor") {
        None => (today, None),
        Some(cursor) => {
            let parsed = cursor.split_once('.').and_then(|(day, position)| {
                Some((day.parse::<i64>().ok()?, position.parse::<u64>().ok()?))
            });
            let (day, position) = parsed
                .filter(|(day, _)| (oldest..=today).contains(day))
                .ok_or_else(|| Problem::field("query.cursor", "is not a cursor from this list"))?;
            (day, Some(position))
        }
    };
    let mut data = Vec::new();
    let mut next_cursor = None;
    let mut scanned = 0;
    while day >= oldest && next_cursor.is_none() {
        message::visit_log(api.platform, api.org, day, below, |position, entry| {
            // A page ends when full, or once it has looked at enough
            // entries for a type that is rare: the cursor goes on.
            if data.len() == limit || scanned == MAX_SCANNED {
                next_cursor = Some(format!("{day}.{}", position + 1));
                return false;
            }
            scanned += 1;
            if wanted_type.is_none_or(|wanted| wanted == entry.event_type) {
                data.push(json!({
                    "id": entry.id,
                    "type": entry.event_type,
                    "createdAt": rfc3339(entry.created_at_s),
                }));
            }
            true
        })?;
        day -= 1;
        below = None;
    }
    Ok(Response::json(
        200,
        &json!({ "data": data, "nextCursor": next_cursor }),
    ))
}

/// `GET /messages/{id}`.
pub fn get<P: Platform>(api: &Api<'_, P>, id: &str) -> Result<Response, Problem> {
    let message = load(api, id)?;
    Ok(Response::json(200, &view(api, &message)?))
}

/// `POST /messages/{id}/resend` `{endpointId}`: a new attempt at once,
/// whatever the delivery's status.
pub fn resend<P: Platform>(
    api: &Api<'_, P>,
    id: &str,
    request: &Request,
) -> Result<Response, Problem> {
    let mut body = Body::parse(request, true)?;
    let endpoint = body.required_string("endpointId");
    body.finish()?;
    let Some(endpoint) = endpoint else {
        return Err(Problem::field("endpointId", "is required"));
    };
    let endpoint = EndpointId::parse(&endpoint)
        .ok_or_else(|| Problem::field("endpointId", "is not a UUID"))?;
    let message = load(api, id)?;
    endpoint::load(api.platform, api.org, &endpoint)?;
    let now_ms = api.platform.now_millis();
    let delivery = message.delivery(&endpoint);
    let record = delivery::resent(api.platform, &delivery, now_ms)?;
    message::add_endpoint(api.platform, &message, &endpoint)?;
    delivery::enqueue(api.platform, &delivery, now_ms)?;
    let mut response = Response::json(202, &record.view(&endpoint));
    response.follow_up = FollowUp::of(vec![delivery]);
    Ok(response)
}

/// A message of the caller's organisation, accepted whole.
fn load<P: Platform>(api: &Api<'_, P>, id: &str) -> Result<MessageRecord, Problem> {
    message::find(api.platform, api.org, &MessageId::new(id))?
        .filter(|message| message.accepted)
        .ok_or_else(|| Problem::not_found(format!("no message {id}")))
}

/// `{type, data, id?}` of `POST /events`; a missing id is made.
fn event_fields(request: &Request) -> Result<Event, Problem> {
    let mut body = Body::parse(request, true)?;
    let event_type = body.required_string("type");
    let data = body.take("data");
    let id = body.optional_string("id");
    if event_type.as_deref() == Some("") {
        body.error("type", "must not be empty");
    }
    if event_type.as_deref().is_some_and(is_operational) {
        body.error("type", "hooksign.* types are the service's own");
    }
    if data.is_none() {
        body.error("data", "is required");
    }
    if id.as_deref().is_some_and(|id| !is_readable_message_id(id)) {
        body.error(
            "id",
            &format!(
                "must be 1 to {} printable ASCII characters without `.`, spaces, `/`, `?`, `#` or `%`",
                hooksign::MAX_ID_LEN
            ),
        );
    }
    body.finish()?;
    let (Some(event_type), Some(data)) = (event_type, data) else {
        return Err(Problem::field("type", "is required"));
    };
    let id = match id {
        Some(id) => MessageId::new(id),
        None => new_message_id()?,
    };
    Ok(Event {
        event_type,
        data,
        id,
        skip: None,
    })
}

/// A message id Standard Webhooks allows that is also one path segment as
/// it is, so that `GET /messages/{id}` reads it back.
fn is_readable_message_id(id: &str) -> bool {
    hooksign::is_valid_message_id(id) && !id.contains(['/', '?', '#', '%'])
}
