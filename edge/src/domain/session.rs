//! Dashboard links and sessions (docs/API.md, "Dashboard links"). A link's
//! token opens one session, once: `dashlink/{sha256}` holds the link and
//! `dashlink/{sha256}/opened` counts its opens, atomically on every store,
//! so of two browsers opening it at once exactly one counts 1. A session's
//! token is kept by its hash too (`session/{sha256}`). Tokens are never
//! stored in clear. `org/{org}/sessions` lists both kinds with their
//! expiry: expired ones are removed as new ones are listed, and all of
//! them when the organisation is deleted.

use serde::{Deserialize, Serialize};

use crate::foundation::problem::Problem;
use crate::ids::OrgId;
use crate::platform::Platform;
use crate::store::keys::{self, OrgList};
use crate::store::{self, get_json, get_org_list, set_json, update_org_list};

/// A link or a session, as stored. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Grant {
    pub org: OrgId,
    #[serde(rename = "expiresAt")]
    pub expires_at_s: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Link,
    Session,
}

/// An entry of the organisation's list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Listed {
    kind: Kind,
    hash: String,
    #[serde(rename = "expiresAt")]
    expires_at_s: i64,
}

impl Listed {
    fn remove(&self, platform: &impl Platform) -> Result<(), Problem> {
        match self.kind {
            Kind::Link => {
                store::remove(platform, &keys::dashboard_link(&self.hash))?;
                store::remove(platform, &keys::dashboard_link_opened(&self.hash))
            }
            Kind::Session => store::remove(platform, &keys::session(&self.hash)),
        }
    }
}

/// Why a link opened no session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No such link (never made, or removed).
    Unknown,
    /// Past its expiry.
    Expired,
    /// Opened before.
    Used,
}

/// Stores a link (`hash`: its token's SHA-256 in hex), then lists it.
pub fn create_link(
    platform: &impl Platform,
    hash: &str,
    grant: &Grant,
    now: i64,
) -> Result<(), Problem> {
    set_json(platform, &keys::dashboard_link(hash), grant)?;
    list(platform, Kind::Link, hash, grant, now)
}

/// Opens a link once: the session `session_hash` for its organisation,
/// until `session_expires_at_s`.
pub fn open_link(
    platform: &impl Platform,
    link_hash: &str,
    session_hash: &str,
    session_expires_at_s: i64,
    now: i64,
) -> Result<Result<Grant, Refusal>, Problem> {
    let Some(link) = get_json::<Grant>(platform, &keys::dashboard_link(link_hash))? else {
        return Ok(Err(Refusal::Unknown));
    };
    if link.expires_at_s <= now {
        return Ok(Err(Refusal::Expired));
    }
    if platform.increment(&keys::dashboard_link_opened(link_hash), 1)? != 1 {
        return Ok(Err(Refusal::Used));
    }
    let session = Grant {
        org: link.org,
        expires_at_s: session_expires_at_s,
    };
    set_json(platform, &keys::session(session_hash), &session)?;
    list(platform, Kind::Session, session_hash, &session, now)?;
    Ok(Ok(session))
}

/// The organisation of an unexpired session.
pub fn find_session(
    platform: &impl Platform,
    hash: &str,
    now: i64,
) -> Result<Option<Grant>, Problem> {
    Ok(get_json::<Grant>(platform, &keys::session(hash))?
        .filter(|session| session.expires_at_s > now))
}

/// Lists a link or session, removing the expired ones listed before.
fn list(
    platform: &impl Platform,
    kind: Kind,
    hash: &str,
    grant: &Grant,
    now: i64,
) -> Result<(), Problem> {
    let entry = Listed {
        kind,
        hash: hash.to_string(),
        expires_at_s: grant.expires_at_s,
    };
    let mut expired = Vec::new();
    update_org_list(
        platform,
        OrgList::Sessions,
        &grant.org,
        |listed: &mut Vec<Listed>| {
            // Gathered over every try: a confirming read finds them gone.
            for old in listed.iter().filter(|listed| listed.expires_at_s <= now) {
                if !expired.contains(old) {
                    expired.push(old.clone());
                }
            }
            listed.retain(|listed| listed.expires_at_s > now);
            if !listed.contains(&entry) {
                listed.push(entry.clone());
            }
        },
    )?;
    for listed in expired {
        listed.remove(platform)?;
    }
    Ok(())
}

/// Removes every link and session of the organisation, and their list.
pub fn erase(platform: &impl Platform, org: &OrgId) -> Result<(), Problem> {
    let listed: Vec<Listed> = get_org_list(platform, OrgList::Sessions, org)?;
    for entry in &listed {
        entry.remove(platform)?;
    }
    store::remove(platform, &keys::org_list(OrgList::Sessions, org))
}
