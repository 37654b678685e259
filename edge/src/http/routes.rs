//! The route table: every (path, method) pair and the operation it runs.
//! Both the dispatch and the 405 answer's `Allow` header come from it;
//! [`handle`] runs the checks every request goes through, in the order of
//! docs/API.md.

use crate::dispatch;
use crate::domain::{limits, metrics};
use crate::foundation::config::Config;
use crate::foundation::problem::{Code, Problem};
use crate::http::auth::{
    Caller, authenticate, authenticate_platform, bearer, is_live, presented_key,
    presented_platform_key,
};
use crate::http::context::Api;
use crate::http::dashboard::{self, Asset};
use crate::http::orgs::{self, PlatformCall};
use crate::http::request::check_size;
use crate::http::{api_keys, endpoints, event_types, gateway, messages};
use crate::ids::OrgId;
use crate::platform::{Counted, Platform, Request, Response};

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
    /// The `metrics_token` variable is the credential.
    Metrics,
    /// A dashboard link's token is the credential.
    OpenSession,
    /// A platform key is the credential.
    Platform(PlatformOperation),
    /// An API key or a dashboard session is the credential; under
    /// `/orgs/{org}`, a platform key.
    Api(ApiOperation),
}

/// The operations of the platform's API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PlatformOperation {
    ListOrgs,
    CreateOrg,
    GetOrg,
    PatchOrg,
    DeleteOrg,
    CreateDashboardLink,
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
    Recover,
    ListHeld,
    SendEvent,
    ListMessages,
    GetMessage,
    Resend,
    InboundStats,
    ListKeys,
    CreateKey,
    RevokeKey,
    ListEventTypes,
    CreateEventType,
    GetEventType,
    PatchEventType,
    DeleteEventType,
}

use ApiOperation::*;
use PlatformOperation::*;

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
    ("/webhooks/{}/recover", "POST", Operation::Api(Recover)),
    ("/webhooks/{}/held", "GET", Operation::Api(ListHeld)),
    ("/events", "POST", Operation::Api(SendEvent)),
    ("/messages", "GET", Operation::Api(ListMessages)),
    ("/messages/{}", "GET", Operation::Api(GetMessage)),
    ("/messages/{}/resend", "POST", Operation::Api(Resend)),
    ("/dispatch", "POST", Operation::Dispatch),
    ("/metrics", "GET", Operation::Metrics),
    ("/api-keys", "GET", Operation::Api(ListKeys)),
    ("/api-keys", "POST", Operation::Api(CreateKey)),
    ("/api-keys/{}", "DELETE", Operation::Api(RevokeKey)),
    ("/event-types", "GET", Operation::Api(ListEventTypes)),
    ("/event-types", "POST", Operation::Api(CreateEventType)),
    ("/event-types/{}", "GET", Operation::Api(GetEventType)),
    ("/event-types/{}", "PATCH", Operation::Api(PatchEventType)),
    ("/event-types/{}", "DELETE", Operation::Api(DeleteEventType)),
    ("/inbound/{}", "POST", Operation::Receive),
    ("/inbound/{}/stats", "GET", Operation::Api(InboundStats)),
    ("/dashboard/sessions", "POST", Operation::OpenSession),
    ("/orgs", "GET", Operation::Platform(ListOrgs)),
    ("/orgs", "POST", Operation::Platform(CreateOrg)),
    ("/orgs/{}", "GET", Operation::Platform(GetOrg)),
    ("/orgs/{}", "PATCH", Operation::Platform(PatchOrg)),
    ("/orgs/{}", "DELETE", Operation::Platform(DeleteOrg)),
    (
        "/orgs/{}/dashboard-links",
        "POST",
        Operation::Platform(CreateDashboardLink),
    ),
];

/// A request's route: the operation, the path's `{}` segment, and the
/// organisation a platform key acts as (`/orgs/{org}/…`).
#[derive(Debug, Clone, Copy)]
struct Routed<'p> {
    operation: Operation,
    /// The table's pattern.
    pattern: &'static str,
    parameter: &'p str,
    acting_as: Option<&'p str>,
}

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
/// path, 405 with the path's methods for another method. Every route of
/// the organisation's API is also served under `/orgs/{org}`, for a
/// platform key acting as that organisation: the same table, once.
fn route<'p>(path: &'p str, method: &str) -> Result<Routed<'p>, Problem> {
    let direct = route_in_table(path, method);
    if !matches!(&direct, Err(problem) if problem.code() == Code::NotFound.as_str()) {
        return direct;
    }
    let Some((org, rest)) = path
        .strip_prefix("/orgs/")
        .and_then(|tail| tail.split_once('/'))
        .filter(|(org, _)| !org.is_empty())
    else {
        return direct;
    };
    let rest = &path[path.len() - rest.len() - 1..];
    match route_in_table(rest, method) {
        Ok(routed) if matches!(routed.operation, Operation::Api(_)) => Ok(Routed {
            acting_as: Some(org),
            ..routed
        }),
        Err(problem) if problem.code() == Code::MethodNotAllowed.as_str() => Err(problem),
        _ => direct,
    }
}

fn route_in_table<'p>(path: &'p str, method: &str) -> Result<Routed<'p>, Problem> {
    let mut allowed = Vec::new();
    for (pattern, route_method, operation) in ROUTES {
        if let Some(parameter) = matches(pattern, path) {
            if *route_method == method {
                return Ok(Routed {
                    operation: *operation,
                    pattern,
                    parameter,
                    acting_as: None,
                });
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
    let started_ms = platform.now_millis();
    let counted = Counted::new(platform);
    let response = match respond(&counted, request).await {
        Ok(response) => finished(response),
        Err(problem) => finished(problem.into_response()),
    };
    let (calls, errors) = counted.counts();
    let millis = u64::try_from(platform.now_millis() - started_ms).unwrap_or(0);
    metrics::count_request(platform, &route_label(request), millis, calls, errors);
    response
}

/// The route a request matched, as the metrics label it (`{id}` for the
/// path's parameter; `/orgs/{org}` before a route acted on by a platform
/// key); `unmatched` for none.
fn route_label(request: &Request) -> String {
    match route(&request.path, &request.method) {
        Err(_) => "unmatched".into(),
        Ok(routed) => label(routed.pattern, routed.acting_as.is_some()),
    }
}

fn label(pattern: &str, acting: bool) -> String {
    let pattern = pattern.replace("{}", "{id}");
    if acting {
        format!("/orgs/{{org}}{pattern}")
    } else {
        pattern
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
        Ok(routed) => match (routed.operation, routed.acting_as) {
            (Operation::Platform(_), _) | (Operation::Api(_), Some(_)) => {
                presented_platform_key(request).err()?
            }
            (Operation::Api(_), None) => presented_key(request).err()?,
            _ => return None,
        },
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
    let routed = route(&request.path, &request.method)?;
    let parameter = routed.parameter;
    let operation = match routed.operation {
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
        Operation::Dispatch => return dispatch_pass(platform, request).await,
        Operation::Metrics => return scrape(platform, request),
        Operation::OpenSession => {
            let config = Config::load(platform)?;
            check_size(request)?;
            let now = platform.now_millis().div_euclid(1000);
            return orgs::open_session(platform, &config, request, now);
        }
        Operation::Platform(operation) => {
            return run_platform(platform, operation, parameter, request);
        }
        Operation::Api(operation) => operation,
    };
    let config = Config::load(platform)?;
    let now = platform.now_millis().div_euclid(1000);
    let caller = match routed.acting_as {
        None => authenticate(&config, platform, request, now)?,
        Some(org) => act_as(&config, platform, request, org)?,
    };
    check_size(request)?;
    if caller.by_session && matches!(operation, CreateKey | RevokeKey) {
        return Err(Problem::new(
            Code::Forbidden,
            "a dashboard session may not mint or revoke API keys",
        ));
    }
    let api = Api {
        platform,
        config: &config,
        org: &caller.org,
        key_id: &caller.key_id,
        now_s: now,
    };
    run(&api, operation, parameter, request).await
}

/// `POST /dispatch`: one pass, for the `dispatch_token`.
async fn dispatch_pass(platform: &impl Platform, request: &Request) -> Result<Response, Problem> {
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
    Ok(Response::json(
        200,
        &dispatch::pass(platform, &config).await?,
    ))
}

/// `GET /metrics` for the `metrics_token`: 404 while it is unset, 401 for
/// another token.
fn scrape(platform: &impl Platform, request: &Request) -> Result<Response, Problem> {
    let config = Config::load(platform)?;
    let Some(token) = &config.metrics_token else {
        return Err(Problem::not_found("no route /metrics"));
    };
    if !token.admits(bearer(request)) {
        return Err(Problem::new(
            Code::InvalidCredentials,
            "GET /metrics takes the metrics_token variable as a bearer token",
        ));
    }
    let sources: Vec<metrics::Source<'_>> = config
        .inbound_sources
        .usable()
        .map(|(name, source)| metrics::Source {
            name,
            secrets: source.secrets.len(),
        })
        .collect();
    let mut routes: Vec<String> = ROUTES
        .iter()
        .map(|(pattern, _, _)| label(pattern, false))
        .collect();
    routes.extend(
        ROUTES
            .iter()
            .filter(|(_, _, operation)| matches!(operation, Operation::Api(_)))
            .map(|(pattern, _, _)| label(pattern, true)),
    );
    routes.push("unmatched".into());
    routes.dedup();
    let routes: Vec<&str> = routes.iter().map(String::as_str).collect();
    let text = metrics::render(platform, &routes, &sources)?;
    Ok(Response::new(
        200,
        vec![(
            "content-type".into(),
            "text/plain; version=0.0.4; charset=utf-8".into(),
        )],
        text.into_bytes(),
    ))
}

/// A platform key acting as a live organisation; 404 for any other.
fn act_as(
    config: &Config,
    platform: &impl Platform,
    request: &Request,
    org: &str,
) -> Result<Caller, Problem> {
    let key_id = authenticate_platform(config, platform, request)?;
    let org = OrgId::new(org);
    if !is_live(config, platform, &org)? {
        return Err(Problem::not_found(format!("no organisation {org}")));
    }
    Ok(Caller {
        org,
        key_id,
        by_session: false,
    })
}

/// Runs an operation of the platform's API; `id` is the path's parameter.
fn run_platform(
    platform: &impl Platform,
    operation: PlatformOperation,
    id: &str,
    request: &Request,
) -> Result<Response, Problem> {
    let config = Config::load(platform)?;
    authenticate_platform(&config, platform, request)?;
    check_size(request)?;
    let call = PlatformCall {
        platform,
        config: &config,
        now_s: platform.now_millis().div_euclid(1000),
    };
    let org = &OrgId::new(id);
    match operation {
        ListOrgs => orgs::list(&call, request),
        CreateOrg => orgs::create(&call, request),
        GetOrg => orgs::get(&call, org),
        PatchOrg => orgs::patch(&call, org, request),
        DeleteOrg => orgs::delete(&call, org),
        CreateDashboardLink => orgs::create_link(&call, org, request),
    }
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
        Recover => endpoints::recover(api, id, request),
        ListHeld => endpoints::held(api, id, request),
        SendEvent => messages::send_event(api, request),
        ListMessages => messages::list(api, request),
        GetMessage => messages::get(api, id),
        Resend => messages::resend(api, id, request),
        InboundStats => gateway::stats(api.platform, api.config, api.org, id),
        ListKeys => api_keys::list(api),
        CreateKey => api_keys::create(api, request),
        RevokeKey => api_keys::revoke(api, id),
        ListEventTypes => event_types::list(api),
        CreateEventType => event_types::create(api, request),
        GetEventType => event_types::get(api, id),
        PatchEventType => event_types::patch(api, id, request),
        DeleteEventType => event_types::delete(api, id),
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
