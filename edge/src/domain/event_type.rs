//! The organisation's event-type catalogue: each type's description, an
//! optional JSON Schema for its events' `data` (checked when an event is
//! posted), and whether it is deprecated. `eventtype/{org}/{name}` holds a
//! type, `org/{org}/eventtypes` the names, sorted. Once the catalogue has
//! a type, endpoints may subscribe only to listed types.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::foundation::encoding::rfc3339;
use crate::foundation::problem::{Code, FieldError, Problem};
use crate::ids::OrgId;
use crate::platform::Platform;
use crate::store::keys::{self, OrgList};
use crate::store::{self, get_json, get_org_list, update_json, update_org_list};

/// An event type, as stored. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeRecord {
    pub name: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
    pub deprecated: bool,
    #[serde(rename = "createdAt")]
    pub created_at_s: i64,
    #[serde(rename = "updatedAt")]
    pub updated_at_s: i64,
    /// The creating request's token: how its own write is told from
    /// another's identical one.
    #[serde(default)]
    pub claim: String,
}

impl EventTypeRecord {
    /// The API's view of it.
    pub fn view(&self) -> Value {
        json!({
            "name": self.name,
            "description": self.description,
            "schema": self.schema,
            "deprecated": self.deprecated,
            "createdAt": rfc3339(self.created_at_s),
            "updatedAt": rfc3339(self.updated_at_s),
        })
    }
}

/// Whether `name` can name an event type: 1 to 256 letters, digits and
/// `._:-`, and not one of the service's own (`hooksign.*`).
pub fn is_valid_name(name: &str) -> bool {
    (1..=256).contains(&name.len())
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"._:-".contains(&byte))
        && !name.starts_with(crate::domain::endpoint::OPERATIONAL_PREFIX)
}

/// Why a JSON Schema cannot be used, if it cannot.
pub fn schema_problem(schema: &Value) -> Option<String> {
    jsonschema::validator_for(schema)
        .err()
        .map(|error| format!("is not a usable JSON Schema: {error}"))
}

/// 422 `schema_mismatch` with a field error per violation of `schema`
/// by `data` (paths under `data`), if there is one.
pub fn check_data(schema: &Value, data: &Value) -> Result<(), Problem> {
    // Checked when it was stored: a schema that no longer compiles checks nothing.
    let Ok(validator) = jsonschema::validator_for(schema) else {
        return Ok(());
    };
    let errors: Vec<FieldError> = validator
        .iter_errors(data)
        .map(|error| FieldError {
            path: format!("data{}", error.instance_path().as_str().replace('/', ".")),
            message: error.to_string(),
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Problem::listing(Code::SchemaMismatch, errors))
    }
}

/// A type of the catalogue.
pub fn get(
    platform: &impl Platform,
    org: &OrgId,
    name: &str,
) -> Result<Option<EventTypeRecord>, Problem> {
    get_json(platform, &keys::event_type(org, name))
}

/// The catalogue's names, sorted.
pub fn names(platform: &impl Platform, org: &OrgId) -> Result<Vec<String>, Problem> {
    get_org_list(platform, OrgList::EventTypes, org)
}

/// Stores a new type, then lists it; 409 `conflict` if it exists.
pub fn create(
    platform: &impl Platform,
    org: &OrgId,
    record: &EventTypeRecord,
) -> Result<(), Problem> {
    store::create_json(
        platform,
        &keys::event_type(org, &record.name),
        record,
        || {
            Problem::new(
                Code::Conflict,
                format!("the event type {} exists", record.name),
            )
        },
    )?;
    update_org_list(
        platform,
        OrgList::EventTypes,
        org,
        |names: &mut Vec<String>| store::insert_sorted(names, &record.name),
    )
}

/// Changes a type; 404 if there is none.
pub fn change(
    platform: &impl Platform,
    org: &OrgId,
    name: &str,
    change: impl Fn(&mut EventTypeRecord),
) -> Result<EventTypeRecord, Problem> {
    let changed = update_json(
        platform,
        &keys::event_type(org, name),
        |stored: Option<EventTypeRecord>| {
            Ok(match stored {
                None => (None, None),
                Some(mut record) => {
                    change(&mut record);
                    (Some(record.clone()), Some(record))
                }
            })
        },
    )?;
    changed.ok_or_else(|| not_found(name))
}

/// Unlists a type, then removes it; 404 if there is none.
pub fn delete(platform: &impl Platform, org: &OrgId, name: &str) -> Result<(), Problem> {
    get(platform, org, name)?.ok_or_else(|| not_found(name))?;
    update_org_list(
        platform,
        OrgList::EventTypes,
        org,
        |names: &mut Vec<String>| {
            names.retain(|listed| listed != name);
        },
    )?;
    store::remove(platform, &keys::event_type(org, name))
}

/// Removes the whole catalogue.
pub fn erase(platform: &impl Platform, org: &OrgId) -> Result<(), Problem> {
    for name in names(platform, org)? {
        store::remove(platform, &keys::event_type(org, &name))?;
    }
    store::remove(platform, &keys::org_list(OrgList::EventTypes, org))
}

fn not_found(name: &str) -> Problem {
    Problem::not_found(format!("no event type {name}"))
}
