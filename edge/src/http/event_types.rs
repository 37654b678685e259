//! The event-type catalogue's handlers: create, list, read, change,
//! delete.

use serde_json::{Value, json};

use crate::domain::event_type::{self, EventTypeRecord};
use crate::foundation::encoding::new_uuid;
use crate::foundation::problem::Problem;
use crate::http::context::Api;
use crate::http::request::Body;
use crate::platform::{Platform, Request, Response};

/// `schema`: a JSON Schema object (or `true`/`false`); absent, `None`;
/// null, `Some(None)` (no schema).
fn schema(body: &mut Body) -> Option<Option<Value>> {
    let value = body.take("schema")?;
    match value {
        Value::Null => Some(None),
        Value::Object(_) | Value::Bool(_) => {
            if let Some(problem) = event_type::schema_problem(&value) {
                body.error("schema", &problem);
            }
            Some(Some(value))
        }
        _ => {
            body.error("schema", "must be a JSON Schema (an object)");
            None
        }
    }
}

/// `POST /event-types` `{name, description?, schema?, deprecated?}`.
pub fn create<P: Platform>(api: &Api<'_, P>, request: &Request) -> Result<Response, Problem> {
    let mut body = Body::parse(request, true)?;
    let name = body.required_string("name");
    let description = body.optional_string("description");
    let schema = schema(&mut body);
    let deprecated = body.optional_bool("deprecated");
    if name
        .as_deref()
        .is_some_and(|name| !event_type::is_valid_name(name))
    {
        body.error(
            "name",
            "must be 1 to 256 letters, digits and ._:- (hooksign.* are the service's own)",
        );
    }
    body.finish()?;
    let name = name.ok_or_else(|| Problem::field("name", "is required"))?;
    let record = EventTypeRecord {
        name,
        description: description.unwrap_or_default(),
        schema: schema.flatten(),
        deprecated: deprecated.unwrap_or(false),
        created_at_s: api.now_s,
        updated_at_s: api.now_s,
        claim: new_uuid()?,
    };
    event_type::create(api.platform, api.org, &record)?;
    Ok(Response::json(201, &record.view()))
}

/// `GET /event-types`: the catalogue, by name.
pub fn list<P: Platform>(api: &Api<'_, P>) -> Result<Response, Problem> {
    let mut data = Vec::new();
    for name in event_type::names(api.platform, api.org)? {
        if let Some(record) = event_type::get(api.platform, api.org, &name)? {
            data.push(record.view());
        }
    }
    Ok(Response::json(200, &json!({ "data": data })))
}

/// `GET /event-types/{name}`.
pub fn get<P: Platform>(api: &Api<'_, P>, name: &str) -> Result<Response, Problem> {
    let record = event_type::get(api.platform, api.org, name)?
        .ok_or_else(|| Problem::not_found(format!("no event type {name}")))?;
    Ok(Response::json(200, &record.view()))
}

/// `PATCH /event-types/{name}` `{description?, schema?, deprecated?}`.
pub fn patch<P: Platform>(
    api: &Api<'_, P>,
    name: &str,
    request: &Request,
) -> Result<Response, Problem> {
    let mut body = Body::parse(request, true)?;
    let description = body.optional_string("description");
    let schema = schema(&mut body);
    let deprecated = body.optional_bool("deprecated");
    body.finish()?;
    let record = event_type::change(api.platform, api.org, name, |record| {
        if let Some(description) = &description {
            record.description.clone_from(description);
        }
        if let Some(schema) = &schema {
            record.schema.clone_from(schema);
        }
        if let Some(deprecated) = deprecated {
            record.deprecated = deprecated;
        }
        record.updated_at_s = api.now_s;
    })?;
    Ok(Response::json(200, &record.view()))
}

/// `DELETE /event-types/{name}`.
pub fn delete<P: Platform>(api: &Api<'_, P>, name: &str) -> Result<Response, Problem> {
    event_type::delete(api.platform, api.org, name)?;
    Ok(Response::new(204, Vec::new(), Vec::new()))
}
