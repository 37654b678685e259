//! What every handler of the organisation's API is given: the platform,
//! the variables, the authenticated organisation and the time.

use crate::foundation::config::Config;
use crate::ids::OrgId;
use crate::platform::{Platform, Response};

/// One authenticated request's context.
pub struct Api<'a, P: Platform> {
    pub platform: &'a P,
    pub config: &'a Config,
    pub org: &'a OrgId,
    /// The listed id of the API key the request came with.
    pub key_id: &'a str,
    /// The request's time, Unix seconds.
    pub now_s: i64,
}

/// An answer that carries a secret: never stored by a cache.
pub fn with_secret(mut response: Response) -> Response {
    response
        .headers
        .push(("cache-control".into(), "no-store".into()));
    response
}
