//! Organisations as records, made and removed through the platform's API
//! (docs/API.md, "The platform's API"). `orgs/{org}` holds a record and
//! `orgs` the sorted ids of every recorded organisation (written only when
//! one is created or removed). The organisations of the `api_keys`
//! variable need no record: they exist while the variable names them.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::foundation::encoding::rfc3339;
use crate::foundation::problem::{Code, Problem};
use crate::ids::OrgId;
use crate::platform::Platform;
use crate::store::{self, get_json, keys, update_json, update_or_default};

/// The longest organisation id.
pub const MAX_ID_LEN: usize = 64;

/// The longest organisation name, in characters.
pub const MAX_NAME_LEN: usize = 200;

/// A recorded organisation. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgRecord {
    pub id: OrgId,
    pub name: String,
    #[serde(rename = "createdAt")]
    pub created_at_s: i64,
    /// Set when its deletion began: from then on it is gone to every
    /// credential, and a deletion that was cut off is finished by the next.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleting: bool,
    /// The creating request's token: how its own write is told from
    /// another's identical one.
    #[serde(default)]
    pub claim: String,
}

impl OrgRecord {
    /// The API's view of it.
    pub fn view(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "createdAt": rfc3339(self.created_at_s),
            "bootstrap": false,
        })
    }
}

/// The API's view of an organisation of `api_keys` without a record.
fn bootstrap_view(org: &OrgId) -> Value {
    json!({ "id": org, "name": org, "createdAt": null, "bootstrap": true })
}

/// Whether `id` can name a new organisation: 1 to 64 lowercase letters,
/// digits and `-`.
pub fn is_valid_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
}

fn taken(org: &OrgId) -> Problem {
    Problem::new(Code::Conflict, format!("the organisation {org} exists"))
}

/// Stores a new organisation's record, then lists it. 409 `conflict` when
/// the id is taken.
pub fn create(platform: &impl Platform, record: &OrgRecord) -> Result<(), Problem> {
    store::create_json(platform, &keys::org_record(&record.id), record, || {
        taken(&record.id)
    })?;
    update_or_default(platform, keys::ORGS, |ids: &mut Vec<OrgId>| {
        store::insert_sorted(ids, &record.id);
    })
}

/// An organisation its credentials may act as.
pub enum Live {
    /// Recorded, and not being deleted.
    Recorded(OrgRecord),
    /// Of `api_keys`, without a record (one is made when it is renamed).
    Bootstrap,
}

impl Live {
    /// The API's view.
    pub fn view(&self, org: &OrgId) -> Value {
        match self {
            Live::Recorded(record) => record.view(),
            Live::Bootstrap => bootstrap_view(org),
        }
    }
}

/// The organisation if it is live: recorded and not being deleted, or of
/// `api_keys` (`bootstrap`), which is never deleted.
pub fn live(
    platform: &impl Platform,
    org: &OrgId,
    bootstrap: bool,
) -> Result<Option<Live>, Problem> {
    Ok(match get(platform, org)? {
        Some(record) if !record.deleting => Some(Live::Recorded(record)),
        _ if bootstrap => Some(Live::Bootstrap),
        _ => None,
    })
}

/// [`live`], without reading what an organisation of `api_keys` need not.
pub fn is_live(platform: &impl Platform, org: &OrgId, bootstrap: bool) -> Result<bool, Problem> {
    Ok(bootstrap || live(platform, org, false)?.is_some())
}

/// A recorded organisation, deleting or not.
pub fn get(platform: &impl Platform, org: &OrgId) -> Result<Option<OrgRecord>, Problem> {
    get_json(platform, &keys::org_record(org))
}

/// The ids of the recorded organisations, sorted.
pub fn ids(platform: &impl Platform) -> Result<Vec<OrgId>, Problem> {
    Ok(get_json(platform, keys::ORGS)?.unwrap_or_default())
}

/// Changes a live organisation's record (`fallback`: the record of an
/// organisation of `api_keys` that has none yet); 404 when it has none.
pub fn change(
    platform: &impl Platform,
    org: &OrgId,
    fallback: Option<OrgRecord>,
    change: impl Fn(&mut OrgRecord),
) -> Result<OrgRecord, Problem> {
    let changed = update_json(
        platform,
        &keys::org_record(org),
        |stored: Option<OrgRecord>| {
            let Some(mut record) = stored.or_else(|| fallback.clone()) else {
                return Ok((None, None));
            };
            if record.deleting {
                return Ok((None, None));
            }
            change(&mut record);
            Ok((Some(record.clone()), Some(record)))
        },
    )?;
    changed.ok_or_else(|| Problem::not_found(format!("no organisation {org}")))
}

/// Marks a recorded organisation as being deleted (or finds it so);
/// `false` when it has no record.
pub fn begin_delete(platform: &impl Platform, org: &OrgId) -> Result<bool, Problem> {
    update_json(
        platform,
        &keys::org_record(org),
        |stored: Option<OrgRecord>| {
            Ok(match stored {
                None => (None, false),
                Some(record) if record.deleting => (None, true),
                Some(mut record) => {
                    record.deleting = true;
                    (Some(record), true)
                }
            })
        },
    )
}

/// Removes an erased organisation's record and its entry in the list.
pub fn remove(platform: &impl Platform, org: &OrgId) -> Result<(), Problem> {
    update_or_default(platform, keys::ORGS, |ids: &mut Vec<OrgId>| {
        ids.retain(|id| id != org);
    })?;
    store::remove(platform, &keys::org_record(org))
}
