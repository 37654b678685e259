//! Problem documents (RFC 9457) and the catalogue of their codes: every
//! error the service answers is one [`Code`], whose status and title live
//! here and nowhere else.

use serde::Serialize;

use crate::platform::{Response, StoreError};

/// Every problem's `type` is this and its code, kebab-case.
pub const PROBLEM_TYPE_BASE: &str = "https://thesignup.app/problems/";

/// How many field errors a problem document lists; past it, the detail
/// says how many more there were.
pub const MAX_LISTED_FIELD_ERRORS: usize = 32;

/// Every problem code the service answers with (docs/API.md, Errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// 400: one or more fields, query parameters or path ids are invalid.
    ValidationFailed,
    /// 400: the body is not JSON.
    InvalidJson,
    /// 400: the target is an internal address.
    ForbiddenTarget,
    /// 400: a webhook header is missing (gateway).
    MissingHeader,
    /// 400: a webhook header is repeated or malformed (gateway).
    InvalidHeader,
    /// 401: no API key.
    MissingCredentials,
    /// 401: an unknown API key.
    InvalidCredentials,
    /// 401: the webhook timestamp is too old (gateway).
    TimestampTooOld,
    /// 401: the webhook timestamp is too new (gateway).
    TimestampTooNew,
    /// 401: no secret of the source is usable now (gateway).
    NoUsableSecret,
    /// 401: no signature matches (gateway).
    NoMatchingSignature,
    /// 403: the credential may not do this (a dashboard session minting or
    /// revoking API keys).
    Forbidden,
    /// 404: no such route, endpoint or source.
    NotFound,
    /// 405: the route does not take this method.
    MethodNotAllowed,
    /// 409: the rotation would keep more than
    /// [`hooksign::MAX_PREVIOUS_SECRETS`] previous secrets.
    TooManySecrets,
    /// 409: the webhook id was already accepted (gateway).
    DuplicateDelivery,
    /// 409: the event id was accepted with another type or payload.
    IdempotencyConflict,
    /// 409: a bootstrap key (the `api_keys` variable) cannot be revoked here.
    BootstrapKey,
    /// 409: the id is taken (an organisation).
    Conflict,
    /// 410: the dashboard link was opened before.
    LinkUsed,
    /// 410: the dashboard link is past its expiry.
    LinkExpired,
    /// 409: the organisation has as many endpoints as `max_endpoints_per_org`.
    QuotaExceeded,
    /// 413: the body is over 1 MiB.
    PayloadTooLarge,
    /// 422: an event's data does not match its type's JSON Schema.
    SchemaMismatch,
    /// 429: the API key is over `rate_limit_per_key` (with `Retry-After`).
    RateLimited,
    /// 500: a variable is malformed.
    InvalidConfiguration,
    /// 500: an endpoint's stored keyring cannot be used.
    InvalidKeyring,
    /// 500: the component failed (answered by the host).
    InternalError,
    /// 502: the gateway's origin could not be reached.
    OriginUnreachable,
    /// 503: the key-value store failed; nothing was half-written.
    StoreUnavailable,
    /// 503: other requests kept changing the same record first.
    StoreBusy,
    /// 503: no secret or identifier could be generated.
    RandomUnavailable,
    /// 503: the request ran past its deadline (answered by the host).
    RequestTimeout,
    /// 408: the request's body did not arrive in time (answered by the host).
    BodyTimeout,
    /// 504: the gateway's origin did not answer in time.
    OriginTimeout,
}

impl Code {
    /// The HTTP status, the snake_case code and the title.
    const fn parts(self) -> (u16, &'static str, &'static str) {
        match self {
            Code::ValidationFailed => (400, "validation_failed", "Validation failed"),
            Code::InvalidJson => (400, "invalid_json", "Invalid JSON"),
            Code::ForbiddenTarget => (400, "forbidden_target", "Forbidden target"),
            Code::MissingHeader => (400, "missing_header", "Missing header"),
            Code::InvalidHeader => (400, "invalid_header", "Invalid header"),
            Code::MissingCredentials => (401, "missing_credentials", "Missing credentials"),
            Code::InvalidCredentials => (401, "invalid_credentials", "Invalid credentials"),
            Code::TimestampTooOld => (401, "timestamp_too_old", "Timestamp too old"),
            Code::TimestampTooNew => (401, "timestamp_too_new", "Timestamp too new"),
            Code::NoUsableSecret => (401, "no_usable_secret", "No usable secret"),
            Code::NoMatchingSignature => (401, "no_matching_signature", "No matching signature"),
            Code::Forbidden => (403, "forbidden", "Forbidden"),
            Code::NotFound => (404, "not_found", "Not found"),
            Code::MethodNotAllowed => (405, "method_not_allowed", "Method not allowed"),
            Code::TooManySecrets => (409, "too_many_secrets", "Too many secrets"),
            Code::DuplicateDelivery => (409, "duplicate_delivery", "Duplicate delivery"),
            Code::IdempotencyConflict => (409, "idempotency_conflict", "Idempotency conflict"),
            Code::BootstrapKey => (409, "bootstrap_key", "Bootstrap key"),
            Code::Conflict => (409, "conflict", "Conflict"),
            Code::LinkUsed => (410, "link_used", "Link already used"),
            Code::LinkExpired => (410, "link_expired", "Link expired"),
            Code::QuotaExceeded => (409, "quota_exceeded", "Quota exceeded"),
            Code::PayloadTooLarge => (413, "payload_too_large", "Payload too large"),
            Code::SchemaMismatch => (422, "schema_mismatch", "Data does not match its schema"),
            Code::RateLimited => (429, "rate_limited", "Rate limited"),
            Code::InvalidConfiguration => (500, "invalid_configuration", "Invalid configuration"),
            Code::InvalidKeyring => (500, "invalid_keyring", "Invalid stored keyring"),
            Code::InternalError => (500, "internal_error", "Internal error"),
            Code::OriginUnreachable => (502, "origin_unreachable", "Origin unreachable"),
            Code::StoreUnavailable => (503, "store_unavailable", "Store unavailable"),
            Code::StoreBusy => (503, "store_busy", "Store busy"),
            Code::RandomUnavailable => (503, "random_unavailable", "Random source unavailable"),
            Code::RequestTimeout => (503, "request_timeout", "Request timeout"),
            Code::BodyTimeout => (408, "body_timeout", "Request body timeout"),
            Code::OriginTimeout => (504, "origin_timeout", "Origin timeout"),
        }
    }

    /// The HTTP status.
    pub const fn status(self) -> u16 {
        self.parts().0
    }

    /// The code's title.
    pub const fn title(self) -> &'static str {
        self.parts().2
    }

    /// The snake_case code of the problem document.
    pub const fn as_str(self) -> &'static str {
        self.parts().1
    }

    /// The gateway's problem for a failed verification: 400 for headers it
    /// cannot read, 401 for a delivery that did not verify, 500 for the
    /// source's own configuration (the library checks it too).
    pub const fn of_verification(error: hooksign::Error) -> Code {
        match error {
            hooksign::Error::MissingHeader => Code::MissingHeader,
            hooksign::Error::InvalidHeader => Code::InvalidHeader,
            hooksign::Error::TimestampTooOld => Code::TimestampTooOld,
            hooksign::Error::TimestampTooNew => Code::TimestampTooNew,
            hooksign::Error::NoUsableSecret => Code::NoUsableSecret,
            hooksign::Error::NoMatchingSignature => Code::NoMatchingSignature,
            hooksign::Error::InvalidSecret
            | hooksign::Error::InvalidInput
            | hooksign::Error::TooManySecrets => Code::InvalidConfiguration,
        }
    }
}

/// An `application/problem+json` error (RFC 9457) with hooksign's `code`.
/// Boxed: it travels in every handler's `Err`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem(Box<Document>);

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Document {
    #[serde(rename = "type")]
    type_uri: String,
    title: &'static str,
    status: u16,
    detail: String,
    code: &'static str,
    errors: Vec<FieldError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cause: Option<Cause>,
    #[serde(skip)]
    allow: Option<String>,
    #[serde(skip)]
    retry_after: Option<i64>,
}

/// What underlies a problem: the library's error at the gateway, or how a
/// receiver or origin failed. Never holds anything secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cause {
    /// A machine-readable code: the library's kebab-case error code, or
    /// `timeout` / `connection_failed` for an exchange.
    pub code: String,
    /// What happened, in words.
    pub detail: String,
}

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Where: a body field (`url`), `query.limit`, or `path.id`.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

/// How long a problem's detail may be, in bytes: a 60 KB path quoted in
/// a 404 is cut, not echoed.
pub const MAX_DETAIL: usize = 300;

/// `text` cut to at most `max` bytes at a character boundary, with `…`
/// where it was cut.
fn cut(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max - '…'.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push('…');
    text
}

impl Problem {
    /// A problem of the catalogue, with a detail for this occurrence, cut
    /// to [`MAX_DETAIL`] bytes (a detail may quote what it was sent).
    pub fn new(code: Code, detail: impl Into<String>) -> Problem {
        let (status, code, title) = code.parts();
        Problem(Box::new(Document {
            type_uri: format!("{PROBLEM_TYPE_BASE}{}", code.replace('_', "-")),
            title,
            status,
            detail: cut(detail.into(), MAX_DETAIL),
            code,
            errors: Vec::new(),
            cause: None,
            allow: None,
            retry_after: None,
        }))
    }

    /// The same problem with its underlying cause.
    pub fn with_cause(mut self, code: impl Into<String>, detail: impl Into<String>) -> Problem {
        self.0.cause = Some(Cause {
            code: code.into(),
            detail: detail.into(),
        });
        self
    }

    /// With a `Retry-After` header of this many seconds.
    pub fn with_retry_after(mut self, seconds: i64) -> Problem {
        self.0.retry_after = Some(seconds);
        self
    }

    /// 400 `validation_failed` listing each bad field (at most
    /// `MAX_LISTED_FIELD_ERRORS`).
    pub fn validation(errors: Vec<FieldError>) -> Problem {
        Problem::listing(Code::ValidationFailed, errors)
    }

    /// A problem of `code` listing each bad field (at most
    /// `MAX_LISTED_FIELD_ERRORS`).
    pub fn listing(code: Code, mut errors: Vec<FieldError>) -> Problem {
        let detail = match errors.as_slice() {
            [only] => format!("{}: {}", only.path, only.message),
            _ if errors.len() > MAX_LISTED_FIELD_ERRORS => format!(
                "{} fields are invalid; the first {MAX_LISTED_FIELD_ERRORS} are listed",
                errors.len()
            ),
            _ => format!("{} fields are invalid", errors.len()),
        };
        errors.truncate(MAX_LISTED_FIELD_ERRORS);
        let mut problem = Problem::new(code, detail);
        problem.0.errors = errors;
        problem
    }

    /// 400 `validation_failed` for one field.
    pub fn field(path: &str, message: impl Into<String>) -> Problem {
        Problem::validation(vec![FieldError {
            path: path.into(),
            message: message.into(),
        }])
    }

    /// 404 `not_found`.
    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(Code::NotFound, detail)
    }

    /// 405 `method_not_allowed`, naming the allowed methods.
    pub fn method_not_allowed(allow: String) -> Problem {
        let mut problem = Problem::new(
            Code::MethodNotAllowed,
            format!("this resource allows {allow}"),
        );
        problem.0.allow = Some(allow);
        problem
    }

    /// 503 `store_unavailable`.
    pub fn store_unavailable() -> Problem {
        Problem::new(
            Code::StoreUnavailable,
            "the key-value store failed; try again",
        )
    }

    /// 503 `random_unavailable`.
    pub fn random_unavailable() -> Problem {
        Problem::new(
            Code::RandomUnavailable,
            "the random source failed; try again",
        )
    }

    /// The problem's code.
    pub fn code(&self) -> &'static str {
        self.0.code
    }

    /// The HTTP response carrying it.
    pub fn into_response(self) -> Response {
        let mut response = Response::json(self.0.status, &self.0);
        response.headers[0].1 = "application/problem+json".into();
        if let Some(allow) = self.0.allow {
            response.headers.push(("allow".into(), allow));
        }
        if let Some(seconds) = self.0.retry_after {
            response
                .headers
                .push(("retry-after".into(), seconds.to_string()));
        }
        response
    }
}

impl From<StoreError> for Problem {
    fn from(_: StoreError) -> Problem {
        Problem::store_unavailable()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_list_of_field_errors_is_cut_and_counted() {
        let errors = (0..100)
            .map(|n| FieldError {
                path: format!("field{n}"),
                message: "is not a known field".into(),
            })
            .collect();
        let response = Problem::validation(errors).into_response();
        let document: serde_json::Value =
            serde_json::from_slice(&response.body).unwrap_or_default();
        assert_eq!(
            document["errors"].as_array().map(Vec::len),
            Some(MAX_LISTED_FIELD_ERRORS)
        );
        assert_eq!(
            document["detail"],
            "100 fields are invalid; the first 32 are listed"
        );
    }

    #[test]
    fn every_verification_error_has_its_own_problem_or_is_configuration() {
        for error in hooksign::Error::ALL {
            let code = Code::of_verification(error);
            let expected = error.code().replace('-', "_");
            assert!(
                code.as_str() == expected || code == Code::InvalidConfiguration,
                "{error:?} -> {code:?}"
            );
        }
    }
}
