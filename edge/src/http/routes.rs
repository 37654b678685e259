//! The route table: every (path, method) pair and the operation it runs.
//! Both the dispatch and the 405 answer's `Allow` header come from it;
//! [`handle`] runs the checks every request goes through, in the order of
//! docs/API.md.

use crate::dispatch;
use crate::domain::limits;
use crate::foundation::config::Config;
use crate::foundation::problem::{Code, Problem};
use crate::http::auth::{authenticate, bearer, presented_key};
use crate::http::context::Api;
use crate::http::dashboard::{self, Asset};
use crate::http::request::check_size;
use crate::http::{api_keys, endpoints, gateway, messages};
use crate::platform::{Platform, Request, Response};

/// The OpenAPI document, served at `GET /openapi.yaml`.
const OPENAPI: &str = include_str!("../../../openapi.yaml");

/// What a route does, grouped by the credential it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    /// No credential.
    OpenApi,
    /// No credential: the page asks for the key and calls the API with it.
    Dashboard(Asset),
    /// The signature is the credential.
    Receive,
    /// The `dispatch_token` variable is the credential.
    Dispatch,
    /// An API key is the credential.
    Api(ApiOperation),
}

/// The operations of the organisation's API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ApiOperation {
    ListEndpoints,
    CreateEndpoint,
    GetEndpoint,
    PatchEndpoint,
    DeleteEndpoint,
    RotateSecret,
    ListAttempts,
    TestSend,
    SendEvent,
    ListMessages,
    GetMessage,
    Resend,
    InboundStats,
    ListKeys,
    CreateKey,
    RevokeKey,
}

use ApiOperation::*;

/// Path patterns (`{}` is one segment, handed to the operation), methods
/// and operations; a path's methods are listed in this order in `Allow`.
const ROUTES: &[(&str, &str, Operation)] = &[
    ("/openapi.yaml", "GET", Operation::OpenApi),
    ("/", "GET", Operation::Dashboard(Asset::Home)),
    ("/dashboard", "GET", Operation::Dashboard(Asset::Page)),
    (
        "/dashboard/app.js",
        "GET",
        Operation::Dashboard(Asset::Script),
    ),
    (
        "/dashboard/app.css",
        "GET",
        Operation::Dashboard(Asset::Style),
    ),
    ("/webhooks", "GET", Operation::Api(ListEndpoints)),
    ("/webhooks", "POST", Operation::Api(CreateEndpoint)),
    ("/webhooks/{}", "GET", Operation::Api(GetEndpoint)),
    ("/webhooks/{}", "PATCH", Operation::Api(PatchEndpoint)),
    ("/webhooks/{}", "DELETE", Operation::Api(DeleteEndpoint)),
    ("/webhooks/{}/rotate", "POST", Operation::Api(RotateSecret)),
    ("/webhooks/{}/attempts", "GET", Operation::Api(ListAttempts)),
    ("/webhooks/{}/test", "POST", Operation::Api(TestSend)),
    ("/events", "POST", Operation::Api(SendEvent)),
    ("/messages", "GET", Operation::Api(ListMessages)),
    ("/messages/{}", "GET", Operation::Api(GetMessage)),
    ("/messages/{}/resend", "POST", Operation::Api(Resend)),
    ("/dispatch", "POST", Operation::Dispatch),
    ("/api-keys", "GET", Operation::Api(ListKeys)),
    ("/api-keys", "POST", Operation::Api(CreateKey)),
    ("/api-keys/{}", "DELETE", Operation::Api(RevokeKey)),
    ("/inbound/{}", "POST", Operation::Receive),
    ("/inbound/{}/stats", "GET", Operation::Api(InboundStats)),
];

/// The path's `{}` segment if it matches the pattern (`""` for a pattern
/// without one).
fn matches<'p>(pattern: &str, path: &'p str) -> Option<&'p str> {
    let mut segments = path.strip_prefix('/')?.split('/');
    let mut parameter = "";
    for expected in pattern.trim_start_matches('/').split('/') {
        let segment = segments.next()?;
        if expected == "{}" {
            parameter = segment;
        } else if expected != segment {
            return None;
        }
    }
    segments.next().is_none().then_some(parameter)
}

/// The operation for a request and its path parameter; 404 for an unknown
/// path, 405 with the path's methods for another method.
fn route<'p>(path: &'p str, method: &str) -> Result<(Operation, &'p str), Problem> {
    let mut allowed = Vec::new();
    for (pattern, route_method, operation) in ROUTES {
        if let Some(parameter) = matches(pattern, path) {
            if *route_method == method {
                return Ok((*operation, parameter));
            }
            allowed.push(*route_method);
        }
    }
    if allowed.is_empty() {
        Err(Problem::not_found(format!("no route {path}")))
    } else {
        Err(Problem::method_not_allowed(allowed.join(", ")))
    }
}

/// Serves one request. Checks run in the order of docs/API.md: route,
/// credentials, body size, JSON, fields, then the endpoint.
pub async fn handle(platform: &impl Platform, request: &Request) -> Response {
    match respond(platform, request).await {
        Ok(response) => finished(response),
        Err(problem) => finished(problem.into_response()),
    }
}

/// The answer to a request whose headers settle it, before its body is
/// read (`request.body` is not looked at): an unknown route or method, or
/// an API route whose headers present no API key. The host asks before it
/// reads a body, so a client with no key cannot hold a connection by
/// sending one slowly (issue #27).
pub fn answer_before_body(request: &Request) -> Option<Response> {
    let refused = match route(&request.path, &request.method) {
        Err(problem) => problem,
        Ok((Operation::Api(_), _)) => presented_key(request).err()?,
        Ok(_) => return None,
    };
    Some(finished(refused.into_response()))
}

fn finished(mut response: Response) -> Response {
    // No answer is ever sniffed into another type (a problem as HTML).
    if !response
        .headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case(NOSNIFF.0))
    {
        response.headers.push((NOSNIFF.0.into(), NOSNIFF.1.into()));
    }
    response
}

/// The header every answer carries.
pub const NOSNIFF: (&str, &str) = ("x-content-type-options", "nosniff");

async fn respond(platform: &impl Platform, request: &Request) -> Result<Response, Problem> {
    let (operation, parameter) = route(&request.path, &request.method)?;
    let operation = match operation {
        Operation::OpenApi => {
            return Ok(Response::new(
                200,
                vec![("content-type".into(), "application/yaml".into())],
                OPENAPI.as_bytes().to_vec(),
            ));
        }
        Operation::Dashboard(asset) => {
            return Ok(dashboard::serve(asset, request.query.as_deref()));
        }
        Operation::Receive => {
            let config = Config::load(platform)?;
            check_size(request)?;
            return gateway::receive(platform, &config, parameter, request).await;
        }
        Operation::Dispatch => {
            let config = Config::load(platform)?;
            if !config
                .dispatch_token
                .as_ref()
                .is_some_and(|token| token.admits(bearer(request)))
            {
                limits::take_dispatch_guess(platform, platform.now_millis())?;
                return Err(Problem::new(
                    Code::InvalidCredentials,
                    "POST /dispatch takes the dispatch_token variable as a bearer token",
                ));
            }
            return Ok(Response::json(
                200,
                &dispatch::pass(platform, &config).await?,
            ));
        }
        Operation::Api(operation) => operation,
    };
    let config = Config::load(platform)?;
    let now = platform.now_millis().div_euclid(1000);
    let caller = authenticate(&config, platform, request, now)?;
    check_size(request)?;
    let api = Api {
        platform,
        config: &config,
        org: &caller.org,
        key_id: &caller.key_id,
        now_s: now,
    };
    run(&api, operation, parameter, request).await
}

/// Runs an operation of the organisation's API; `id` is the path's
/// parameter.
async fn run<P: Platform>(
    api: &Api<'_, P>,
    operation: ApiOperation,
    id: &str,
    request: &Request,
) -> Result<Response, Problem> {
    match operation {
        ListEndpoints => endpoints::list(api, request),
        CreateEndpoint => endpoints::create(api, request),
        GetEndpoint => endpoints::get(api, id),
        PatchEndpoint => endpoints::patch(api, id, request),
        DeleteEndpoint => endpoints::delete(api, id),
        RotateSecret => endpoints::rotate(api, id, request),
        ListAttempts => endpoints::attempts(api, id, request),
        TestSend => endpoints::test(api, id, request).await,
        SendEvent => messages::send_event(api, request),
        ListMessages => messages::list(api, request),
        GetMessage => messages::get(api, id),
        Resend => messages::resend(api, id, request),
        InboundStats => gateway::stats(api.platform, api.config, api.org, id),
        ListKeys => api_keys::list(api),
        CreateKey => api_keys::create(api, request),
        RevokeKey => api_keys::revoke(api, id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_whole_segments() {
        assert_eq!(matches("/webhooks/{}", "/webhooks/abc"), Some("abc"));
        assert_eq!(matches("/webhooks/{}", "/webhooks/"), Some(""));
        assert_eq!(matches("/webhooks", "/webhooks/abc"), None);
        assert_eq!(matches("/webhooks/{}/test", "/webhooks/abc"), None);
        assert_eq!(matches("/events", "events"), None);
    }

    #[test]
    fn another_method_is_405_with_the_paths_methods() {
        let problem = route("/webhooks/x", "PUT")
            .err()
            .map(Problem::into_response);
        let allow = problem.and_then(|response| {
            response
                .headers
                .into_iter()
                .find(|(name, _)| name == "allow")
                .map(|(_, value)| value)
        });
        assert_eq!(allow.as_deref(), Some("GET, PATCH, DELETE"));
        assert!(matches!(route("/nowhere", "GET"), Err(problem) if problem.code() == "not_found"));
    }
}
