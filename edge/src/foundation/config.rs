//! The service's variables (docs/API.md, Configuration), read per request
//! as Spin does. The host reads the same variables through
//! [`Config::from_variables`], so each rule has this one home.

use std::collections::BTreeMap;

use hooksign::{Scheme, SecretRecord};
use serde::{Deserialize, Serialize};

use crate::foundation::credentials::{ApiKeys, BearerToken, ConfiguredToken, PlatformKeys};
use crate::foundation::problem::{Code, Problem};
use crate::foundation::seal::SecretPolicy;
use crate::platform::Platform;

/// `auto_pause_after` when unset.
pub const DEFAULT_AUTO_PAUSE_AFTER: u32 = 5;

/// `delivery_timeout_ms` when unset.
pub const DEFAULT_DELIVERY_TIMEOUT_MS: u64 = 15_000;

/// `retry_schedule` when unset: the delay before each attempt, in seconds
/// (Svix's: at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h).
pub const DEFAULT_RETRY_SCHEDULE: [u64; 8] = [0, 5, 300, 1800, 7200, 18_000, 36_000, 36_000];

/// `retention_days` when unset.
pub const DEFAULT_RETENTION_DAYS: u64 = 7;

/// `max_endpoints_per_org` when unset.
pub const DEFAULT_MAX_ENDPOINTS_PER_ORG: u64 = 1000;

/// `rate_limit_per_key` when unset: requests per second per API key
/// (Stripe's default for live mode is 100).
pub const DEFAULT_RATE_LIMIT_PER_KEY: u64 = 100;

/// `max_endpoints_per_host` when unset: an organisation's endpoints on
/// one target host, so that one event cannot become a thousand POSTs to
/// one host.
pub const DEFAULT_MAX_ENDPOINTS_PER_HOST: u64 = 10;

/// `max_api_keys_per_org` when unset: live (unrevoked) minted keys per
/// organisation.
pub const DEFAULT_MAX_API_KEYS_PER_ORG: u64 = 100;

/// `max_stored_bytes_per_org` when unset: 10 GiB of stored messages.
pub const DEFAULT_MAX_STORED_BYTES_PER_ORG: u64 = 10 << 30;

/// `max_in_flight_per_endpoint` when unset: no limit. A dispatch pass
/// sends each endpoint's deliveries one at a time, so under a cap the
/// deliveries past it go one at a time: with receivers that take a second,
/// a burst of 600 to one endpoint would take ten minutes (BENCHMARKS.md).
pub const DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT: u64 = 0;

/// `dispatch_concurrency` when unset: sends in flight per dispatch pass.
pub const DEFAULT_DISPATCH_CONCURRENCY: u64 = 16;

/// The variables, parsed.
#[derive(Debug, Clone)]
pub struct Config {
    /// The organisation of each API key.
    pub api_keys: ApiKeys,
    /// The platform's keys, over every organisation.
    pub platform_keys: PlatformKeys,
    /// The service's public origin (`https://hooks.example.com`), for the
    /// dashboard links it makes; unset, the request's `Host`.
    pub public_url: Option<String>,
    /// Consecutive failed event deliveries that pause an endpoint.
    pub auto_pause_after: u32,
    /// How long a delivery may take, in milliseconds.
    pub delivery_timeout_ms: u64,
    /// Whether loopback and private targets may be used (local development).
    pub allow_private_targets: bool,
    /// The receiver gateway's sources.
    pub inbound_sources: InboundSources,
    /// The delay before each attempt of a delivery, in seconds; its length
    /// is the number of attempts.
    pub retry_schedule: Vec<u64>,
    /// How long messages and their deliveries are kept, in days.
    pub retention_days: u64,
    /// Sends in flight per dispatch pass.
    pub dispatch_concurrency: usize,
    /// The bearer token of `POST /dispatch`; unset, the route refuses all.
    pub dispatch_token: Option<BearerToken>,
    /// The bearer token of `GET /metrics`; unset, the route is not there
    /// and nothing is counted.
    pub metrics_token: Option<BearerToken>,
    /// How endpoints' keyrings are kept: `sealing_keys`,
    /// `insecure_plaintext_secrets`.
    pub secrets: SecretPolicy,
    /// Endpoints an organisation may have.
    pub max_endpoints_per_org: usize,
    /// Endpoints an organisation may have on one target host.
    pub max_endpoints_per_host: usize,
    /// Requests per second per API key, and the burst; 0: no limit.
    pub rate_limit_per_key: u64,
    /// Requests per second of all an organisation's keys together, and the
    /// burst; 0: no limit. Unset: `rate_limit_per_key`.
    pub rate_limit_per_org: u64,
    /// Live minted API keys an organisation may have.
    pub max_api_keys_per_org: usize,
    /// Bytes of stored messages an organisation may have; 0: no limit.
    pub max_stored_bytes_per_org: u64,
    /// Sends to one endpoint at once; 0: no limit.
    pub max_in_flight_per_endpoint: u64,
}

/// One source of the receiver gateway (an entry of `inbound_sources`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InboundSource {
    /// Its keyring, current secret first.
    pub secrets: Vec<SecretRecord>,
    /// Accepted timestamp distance; 300 seconds when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance_seconds: Option<u32>,
    /// Where verified deliveries go.
    pub forward_url: String,
    /// How its deliveries are signed; Standard Webhooks when absent.
    #[serde(default, skip_serializing_if = "is_standard")]
    pub scheme: Scheme,
    /// The organisation whose API keys may read its counts; without one,
    /// none may (a source is the operator's, not every tenant's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
}

fn is_standard(scheme: &Scheme) -> bool {
    *scheme == Scheme::StandardWebhooks
}

/// The `inbound_sources` variable: a JSON object of sources by name. A
/// malformed variable or source fails only the requests that use it.
#[derive(Debug, Clone, Default)]
pub struct InboundSources(Option<BTreeMap<String, Option<InboundSource>>>);

impl InboundSources {
    /// Parses the variable's text.
    pub fn parse(text: &str) -> InboundSources {
        let sources = serde_json::from_str::<BTreeMap<String, serde_json::Value>>(text).ok();
        InboundSources(sources.map(|sources| {
            sources
                .into_iter()
                .map(|(name, source)| (name, serde_json::from_value(source).ok()))
                .collect()
        }))
    }

    /// A source by name: 404 if there is none, 500 if it is malformed.
    pub fn get(&self, name: &str) -> Result<&InboundSource, Problem> {
        let sources = self.0.as_ref().ok_or_else(|| {
            Problem::new(
                Code::InvalidConfiguration,
                "the variable inbound_sources is not a JSON object",
            )
        })?;
        match sources.get(name) {
            None => Err(Problem::not_found(format!("no inbound source {name}"))),
            Some(None) => Err(Problem::new(
                Code::InvalidConfiguration,
                format!(
                    "inbound source {name} needs secrets, forwardUrl and optionally toleranceSeconds"
                ),
            )),
            Some(Some(source)) => Ok(source),
        }
    }

    /// Every usable source, by name.
    pub fn usable(&self) -> impl Iterator<Item = (&str, &InboundSource)> {
        self.0
            .iter()
            .flatten()
            .filter_map(|(name, source)| Some((name.as_str(), source.as_ref()?)))
    }

    /// The usable sources whose counts the organisation may read.
    pub fn owned_by<'a>(
        &'a self,
        org: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a InboundSource)> + 'a {
        self.usable()
            .filter(move |(_, source)| source.org.as_deref() == Some(org))
    }

    /// The origins the gateway forwards to: the `forwardUrl` of every
    /// usable source.
    pub fn forward_urls(&self) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .flat_map(|sources| sources.values().flatten())
            .map(|source| source.forward_url.as_str())
    }
}

impl Config {
    /// Reads the variables from the platform.
    pub fn load(platform: &impl Platform) -> Result<Config, Problem> {
        Config::from_variables(|name| platform.variable(name))
    }

    /// Reads the variables through `variable`; a malformed one is a 500
    /// `invalid_configuration` that names the variable, never its value.
    pub fn from_variables(variable: impl Fn(&str) -> Option<String>) -> Result<Config, Problem> {
        let read = Variables(&variable);
        let number = |name: &str, default: u64, min: u64| read.number(name, default, min);
        let flag = |name: &str| read.flag(name);
        let (api_keys, platform_keys) = keys(&variable)?;
        let public_url = public_url(variable("public_url"))?;
        let auto_pause_after = u32::try_from(number(
            "auto_pause_after",
            DEFAULT_AUTO_PAUSE_AFTER.into(),
            1,
        )?)
        .map_err(|_| invalid("auto_pause_after", "a whole number in range"))?;
        let delivery_timeout_ms = number("delivery_timeout_ms", DEFAULT_DELIVERY_TIMEOUT_MS, 1)?;
        let allow_private_targets = flag("allow_private_targets")?;
        let retry_schedule = match variable("retry_schedule") {
            None => DEFAULT_RETRY_SCHEDULE.to_vec(),
            Some(text) => parse_retry_schedule(&text).ok_or_else(|| {
                invalid(
                    "retry_schedule",
                    "1 to 20 comma-separated delays of 0 to 604800 seconds",
                )
            })?,
        };
        let retention_days = number("retention_days", DEFAULT_RETENTION_DAYS, 1)?.min(365);
        let dispatch_concurrency =
            number("dispatch_concurrency", DEFAULT_DISPATCH_CONCURRENCY, 1)?.min(256) as usize;
        let insecure_plaintext = flag("insecure_plaintext_secrets")?;
        let secrets =
            SecretPolicy::from_variables(variable("sealing_keys").as_deref(), insecure_plaintext)
                .ok_or_else(|| {
                invalid(
                    "sealing_keys",
                    "a comma-separated list of ID:BASE64 with 32-byte keys and distinct ids",
                )
            })?;
        let max_endpoints_per_org =
            number("max_endpoints_per_org", DEFAULT_MAX_ENDPOINTS_PER_ORG, 1)? as usize;
        let max_endpoints_per_host =
            number("max_endpoints_per_host", DEFAULT_MAX_ENDPOINTS_PER_HOST, 1)? as usize;
        let rate_limit_per_key = number("rate_limit_per_key", DEFAULT_RATE_LIMIT_PER_KEY, 0)?;
        let rate_limit_per_org = number("rate_limit_per_org", rate_limit_per_key, 0)?;
        let max_api_keys_per_org =
            number("max_api_keys_per_org", DEFAULT_MAX_API_KEYS_PER_ORG, 1)? as usize;
        let max_stored_bytes_per_org = number(
            "max_stored_bytes_per_org",
            DEFAULT_MAX_STORED_BYTES_PER_ORG,
            0,
        )?;
        let max_in_flight_per_endpoint = number(
            "max_in_flight_per_endpoint",
            DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT,
            0,
        )?;
        let dispatch_token = bearer_token("dispatch_token", variable("dispatch_token"))?;
        let metrics_token = bearer_token("metrics_token", variable("metrics_token"))?;
        Ok(Config {
            max_in_flight_per_endpoint,
            secrets,
            max_endpoints_per_org,
            max_endpoints_per_host,
            rate_limit_per_key,
            rate_limit_per_org,
            max_api_keys_per_org,
            max_stored_bytes_per_org,
            retry_schedule,
            retention_days,
            dispatch_concurrency,
            dispatch_token,
            metrics_token,
            api_keys,
            platform_keys,
            public_url,
            auto_pause_after,
            delivery_timeout_ms,
            allow_private_targets,
            inbound_sources: variable("inbound_sources")
                .map(|text| InboundSources::parse(&text))
                .unwrap_or_else(|| InboundSources::parse("{}")),
        })
    }
}

/// `api_keys` and `platform_keys`.
fn keys(variable: impl Fn(&str) -> Option<String>) -> Result<(ApiKeys, PlatformKeys), Problem> {
    let api_keys = variable("api_keys")
        .map(|text| ApiKeys::parse(&text))
        .unwrap_or_else(|| Some(ApiKeys::default()))
        .ok_or_else(|| invalid("api_keys", "a comma-separated list of ORG:SHA256HEX"))?;
    let platform_keys = variable("platform_keys")
        .map(|text| PlatformKeys::parse(&text))
        .unwrap_or_else(|| Some(PlatformKeys::default()))
        .ok_or_else(|| invalid("platform_keys", "a comma-separated list of SHA256HEX"))?;
    Ok((api_keys, platform_keys))
}

/// `public_url`: unset or empty, none; otherwise an http(s) origin, kept
/// without a trailing `/`.
fn public_url(url: Option<String>) -> Result<Option<String>, Problem> {
    match url.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
            Ok(Some(url.trim_end_matches('/').to_string()))
        }
        Some(_) => Err(invalid("public_url", "an http or https origin")),
    }
}

/// `dispatch_token` or `metrics_token` (`name`): unset or empty, none;
/// shorter than 32 characters, refused.
fn bearer_token(name: &str, token: Option<String>) -> Result<Option<BearerToken>, Problem> {
    match BearerToken::configured(token.as_deref()) {
        ConfiguredToken::Unset => Ok(None),
        ConfiguredToken::TooShort => Err(invalid(name, "at least 32 characters")),
        ConfiguredToken::Token(token) => Ok(Some(BearerToken::new(token))),
    }
}

/// A malformed variable: 500 `invalid_configuration` naming the variable,
/// never its value.
fn invalid(name: &str, rule: &str) -> Problem {
    Problem::new(
        Code::InvalidConfiguration,
        format!("the variable {name} is not {rule}"),
    )
}

/// The variables' reader, with the rules shared by all of one kind.
struct Variables<'a, F: Fn(&str) -> Option<String>>(&'a F);

impl<F: Fn(&str) -> Option<String>> Variables<'_, F> {
    /// A whole number of at least `min`; `default` when unset or empty.
    fn number(&self, name: &str, default: u64, min: u64) -> Result<u64, Problem> {
        match (self.0)(name).as_deref().map(str::trim) {
            None | Some("") => Ok(default),
            Some(text) => text
                .parse::<u64>()
                .ok()
                .filter(|value| *value >= min)
                .ok_or_else(|| invalid(name, "a whole number in range")),
        }
    }

    /// `true` or `false`; unset or empty is `false`.
    fn flag(&self, name: &str) -> Result<bool, Problem> {
        match (self.0)(name).as_deref().map(str::trim) {
            None | Some("") | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(_) => Err(invalid(name, "true or false")),
        }
    }
}

/// `0,5,300`: 1 to 20 delays of at most a week, in seconds.
fn parse_retry_schedule(text: &str) -> Option<Vec<u64>> {
    let schedule = text
        .split(',')
        .map(|delay| {
            delay
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|delay| *delay <= 604_800)
        })
        .collect::<Option<Vec<u64>>>()?;
    (1..=20).contains(&schedule.len()).then_some(schedule)
}
