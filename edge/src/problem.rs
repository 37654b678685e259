use serde::Serialize;

use crate::Response;

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
    #[serde(skip)]
    allow: Option<&'static str>,
}

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Where: a body field (`url`), `query.limit`, or `path.id`.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

impl Problem {
    /// A problem with a status, a snake_case code, a title and a detail.
    pub fn new(
        status: u16,
        code: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Problem {
        Problem(Box::new(Document {
            type_uri: format!("https://thesignup.app/problems/{}", code.replace('_', "-")),
            title,
            status,
            detail: detail.into(),
            code,
            errors: Vec::new(),
            allow: None,
        }))
    }

    /// 400 `validation_failed` listing each bad field.
    pub fn validation(errors: Vec<FieldError>) -> Problem {
        let detail = match errors.as_slice() {
            [only] => format!("{}: {}", only.path, only.message),
            _ => format!("{} fields are invalid", errors.len()),
        };
        let mut problem = Problem::new(400, "validation_failed", "Validation failed", detail);
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
        Problem::new(404, "not_found", "Not found", detail)
    }

    /// 405 `method_not_allowed`, naming the allowed methods.
    pub fn method_not_allowed(allow: &'static str) -> Problem {
        let mut problem = Problem::new(
            405,
            "method_not_allowed",
            "Method not allowed",
            format!("this resource allows {allow}"),
        );
        problem.0.allow = Some(allow);
        problem
    }

    /// 503 `store_unavailable`: the key-value store failed; nothing was half-written.
    pub fn store_unavailable() -> Problem {
        Problem::new(
            503,
            "store_unavailable",
            "Store unavailable",
            "the key-value store failed; try again",
        )
    }

    /// 503 `store_busy`: other requests kept changing the same record first.
    pub fn store_busy() -> Problem {
        Problem::new(
            503,
            "store_busy",
            "Store busy",
            "other requests kept changing the same record; try again",
        )
    }

    /// 503 `random_unavailable`: no secret or identifier could be generated.
    pub fn random_unavailable() -> Problem {
        Problem::new(
            503,
            "random_unavailable",
            "Random source unavailable",
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
            response.headers.push(("allow".into(), allow.into()));
        }
        response
    }
}

impl From<crate::StoreError> for Problem {
    fn from(_: crate::StoreError) -> Problem {
        Problem::store_unavailable()
    }
}
