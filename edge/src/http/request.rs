//! Request parsing: JSON bodies read field by field (collecting every
//! problem, so one answer lists every bad field), query strings and path ids.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::domain::endpoint::{
    MAX_EVENT_TYPE_CHARS, MAX_EVENT_TYPES, refused_header_name, refused_header_value,
};
use crate::foundation::problem::{Code, FieldError, Problem};
use crate::ids::EndpointId;
use crate::platform::Request;

/// The largest request body accepted: 1 MiB.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The longest string a body field may hold, in characters.
pub const MAX_STRING_CHARS: usize = 4096;

/// A JSON number without a fractional part (JSON Schema's `integer`: `5.0`
/// is one), as an `i64`.
fn whole_number(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| {
        // Beyond ±2^53 a float no longer holds every whole number exactly.
        const EXACT: f64 = 9_007_199_254_740_992.0;
        value
            .as_f64()
            .filter(|number| number.fract() == 0.0 && number.abs() <= EXACT)
            .map(|number| number as i64)
    })
}

/// A JSON object body, read field by field; problems are collected so that
/// one answer lists every bad field.
pub struct Body {
    fields: Map<String, Value>,
    errors: Vec<FieldError>,
}

impl Body {
    /// Parses the body; an empty body is an empty object unless `required`.
    pub fn parse(request: &Request, required: bool) -> Result<Body, Problem> {
        if request.body.iter().all(u8::is_ascii_whitespace) && !required {
            return Ok(Body {
                fields: Map::new(),
                errors: Vec::new(),
            });
        }
        let value: Value = serde_json::from_slice(&request.body).map_err(|error| {
            Problem::new(
                Code::InvalidJson,
                format!(
                    "the body is not JSON (line {}, column {})",
                    error.line(),
                    error.column()
                ),
            )
        })?;
        match value {
            Value::Object(fields) => Ok(Body {
                fields,
                errors: Vec::new(),
            }),
            _ => Err(Problem::field("body", "must be a JSON object")),
        }
    }

    pub fn error(&mut self, path: &str, message: &str) {
        self.errors.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }

    pub fn take(&mut self, name: &str) -> Option<Value> {
        self.fields.remove(name)
    }

    pub fn required_string(&mut self, name: &str) -> Option<String> {
        match self.take(name) {
            None | Some(Value::Null) => {
                self.error(name, "is required");
                None
            }
            Some(value) => self.string(name, value),
        }
    }

    pub fn optional_string(&mut self, name: &str) -> Option<String> {
        match self.take(name) {
            None | Some(Value::Null) => None,
            Some(value) => self.string(name, value),
        }
    }

    fn string(&mut self, name: &str, value: Value) -> Option<String> {
        match value {
            Value::String(text) if text.chars().count() <= MAX_STRING_CHARS => Some(text),
            Value::String(_) => {
                self.error(
                    name,
                    &format!("must be at most {MAX_STRING_CHARS} characters"),
                );
                None
            }
            _ => {
                self.error(name, "must be a string");
                None
            }
        }
    }

    /// A whole number from `min` to `max` that may be cleared: absent,
    /// `None` (leave it); null, `Some(None)`.
    pub fn clearable_integer(&mut self, name: &str, min: i64, max: i64) -> Option<Option<i64>> {
        match self.fields.get(name) {
            None => None,
            Some(Value::Null) => {
                self.take(name);
                Some(None)
            }
            Some(_) => Some(self.optional_integer(name, min, max)),
        }
    }

    pub fn optional_bool(&mut self, name: &str) -> Option<bool> {
        match self.take(name) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(flag)) => Some(flag),
            Some(_) => {
                self.error(name, "must be true or false");
                None
            }
        }
    }

    pub fn optional_integer(&mut self, name: &str, min: i64, max: i64) -> Option<i64> {
        match self.take(name) {
            None | Some(Value::Null) => None,
            Some(value) => match whole_number(&value).filter(|number| (min..=max).contains(number))
            {
                Some(number) => Some(number),
                None => {
                    self.error(name, &format!("must be a whole number from {min} to {max}"));
                    None
                }
            },
        }
    }

    /// `eventTypes`: at most [`MAX_EVENT_TYPES`] names of 1 to
    /// [`MAX_EVENT_TYPE_CHARS`] characters.
    pub fn optional_event_types(&mut self) -> Option<Vec<String>> {
        let value = match self.take("eventTypes") {
            None | Some(Value::Null) => return None,
            Some(value) => value,
        };
        let types: Option<Vec<String>> = value.as_array().and_then(|items| {
            items
                .iter()
                .map(|item| {
                    item.as_str()
                        .filter(|name| {
                            !name.is_empty() && name.chars().count() <= MAX_EVENT_TYPE_CHARS
                        })
                        .map(String::from)
                })
                .collect()
        });
        match types {
            Some(types) if types.len() <= MAX_EVENT_TYPES => Some(types),
            _ => {
                self.error(
                    "eventTypes",
                    &format!(
                        "must be a list of at most {MAX_EVENT_TYPES} strings of 1 to {MAX_EVENT_TYPE_CHARS} characters"
                    ),
                );
                None
            }
        }
    }

    /// `field` (`headers`, `sensitiveHeaders`): an object of custom header
    /// names (taken lowercase) to a value, or to null (to remove it).
    pub fn optional_headers(&mut self, field: &str) -> Option<BTreeMap<String, Option<String>>> {
        let fields = match self.take(field) {
            None | Some(Value::Null) => return None,
            Some(Value::Object(fields)) => fields,
            Some(_) => {
                self.error(field, "must be an object of header names to values");
                return None;
            }
        };
        let mut headers = BTreeMap::new();
        for (name, value) in fields {
            let lower = name.to_ascii_lowercase();
            let path = format!("{field}.{name}");
            if let Some(problem) = refused_header_name(&lower) {
                self.error(&path, problem);
            } else if headers.contains_key(&lower) {
                self.error(&path, "is named twice");
            }
            let value = match value {
                Value::Null => None,
                Value::String(text) => {
                    if let Some(problem) = refused_header_value(&text) {
                        self.error(&path, problem);
                    }
                    Some(text)
                }
                _ => {
                    self.error(&path, "must be a string, or null to remove it");
                    None
                }
            };
            headers.insert(lower, value);
        }
        Some(headers)
    }

    /// Fails with every collected problem, and one per unknown field.
    pub fn finish(mut self) -> Result<(), Problem> {
        let unknown: Vec<String> = self.fields.keys().cloned().collect();
        for name in unknown {
            self.error(&name, "is not a known field");
        }
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(Problem::validation(self.errors))
        }
    }
}

/// The query string's parameters.
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(request: &Request) -> Query {
        let pairs = form_urlencoded::parse(request.query.as_deref().unwrap_or("").as_bytes());
        Query(
            pairs
                .map(|(name, value)| (name.into_owned(), value.into_owned()))
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(candidate, _)| candidate == name)
            .map(|(_, value)| value.as_str())
    }

    /// `limit`: 1 to 200.
    pub fn limit(&self, default: u64) -> Result<u64, Problem> {
        match self.get("limit") {
            None => Ok(default),
            Some(text) => text
                .parse::<u64>()
                .ok()
                .filter(|limit| (1..=200).contains(limit))
                .ok_or_else(|| {
                    Problem::field("query.limit", "must be a whole number from 1 to 200")
                }),
        }
    }
}

/// A path's endpoint id. Endpoint ids are UUIDs; anything else is a bad
/// path, not a missing endpoint.
pub fn endpoint_id(text: &str) -> Result<EndpointId, Problem> {
    EndpointId::parse(text).ok_or_else(|| Problem::field("path.id", "is not a UUID"))
}

/// 413 for a body over [`MAX_BODY_BYTES`].
pub fn check_size(request: &Request) -> Result<(), Problem> {
    if request.body.len() > MAX_BODY_BYTES {
        return Err(Problem::new(
            Code::PayloadTooLarge,
            format!("the body is over {MAX_BODY_BYTES} bytes"),
        ));
    }
    Ok(())
}
