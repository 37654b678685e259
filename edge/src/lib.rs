//! The hooksign edge service as plain Rust: routing, problem documents,
//! the key-value layout, deliveries and auto-pause. It runs on any
//! [`Platform`]: the Spin HTTP component (`guest/http`) provides one over
//! wasi:keyvalue, Spin's variables and outbound HTTP; the native tests and
//! the fuzz targets use `testing::FakePlatform` (feature `testing`).
//!
//! # Layers
//!
//! Each module imports only from its own layer and the layers below it
//! (`tests/layers.rs` holds the order and fails the build of the tests
//! otherwise), and no two modules import each other, directly or round a
//! circle:
//!
//! | layer | owns |
//! |---|---|
//! | [`http`] | the route table, request parsing, credentials, one handler module per resource, the receiver gateway, the dashboard's files |
//! | [`dispatch`](mod@dispatch) | sending: one signed attempt ([`dispatch::send`]) and the passes that send what is due |
//! | [`domain`] | one module per entity, each with its record type, its rules and its store operations |
//! | [`store`] | the key schema ([`store::keys`], every key the service writes) and the updates that stay right when a store's compare-and-swap misreports |
//! | [`foundation`] | what every layer uses: problem codes, variables, secrets at rest, targets, encodings |
//! | [`platform`], [`ids`] | what the service and its host exchange: [`Request`], [`Response`], [`Platform`]; the typed ids of the records |
//!
//! # Where each concern lives
//!
//! | concern | home |
//! |---|---|
//! | routes and their methods (`Allow`) | [`http::routes`] |
//! | request parsing (JSON bodies, queries, ids, size) | [`http::request`] |
//! | the bearer check (API keys, sessions, platform keys), the rate limit per key | [`http::auth`] |
//! | endpoint handlers, rotation, test sends, custom headers, recovery, held deliveries | [`http::endpoints`] |
//! | events, the message log, resends | [`http::messages`] |
//! | API keys' handlers | [`http::api_keys`] |
//! | the platform's API: organisations, dashboard links, a link's session | [`http::orgs`] |
//! | the receiver gateway | [`http::gateway`] |
//! | the dashboard's files and headers | [`http::dashboard`] |
//! | signing and recording one attempt, auto-pause | [`dispatch::send`], [`domain::endpoint::EndpointRecord::apply_outcome`] |
//! | the dispatcher: due deliveries, leases, retries | [`dispatch`](mod@dispatch) |
//! | operational events (`hooksign.*`): when they are raised, what they say | [`dispatch::operational`] |
//! | endpoints, their index and subscriptions | [`domain::endpoint`] |
//! | attempts, the ring of the newest | [`domain::attempt`] |
//! | messages, the envelope, the log, retention | [`domain::message`] |
//! | deliveries, their status, lease and held lists | [`domain::delivery`] |
//! | the queue: deliveries by due second and organisation, one key per request that listed them | [`domain::queue`] |
//! | API keys as records | [`domain::api_key`] |
//! | organisations as records | [`domain::org`] |
//! | the event-type catalogue and its JSON Schemas | [`domain::event_type`] |
//! | dashboard links and sessions | [`domain::session`] |
//! | an organisation's deletion, everything of it | [`domain::erasure`] |
//! | the gateway's replay marks and counters | [`domain::inbound`] |
//! | limits that hold across nodes | [`domain::limits`] |
//! | the metrics: counts in the store, the Prometheus text | [`domain::metrics`] |
//! | every store key, one encoding rule | [`store::keys`] |
//! | updates confirmed by a read, counters, "count once" | [`store`] |
//! | a request's reads in one batch, answered once each | [`store::ReadAhead`] |
//! | plain writes of a request's own keys in one batch | [`store::Writes`] |
//! | problem codes, statuses, titles | [`foundation::problem`] |
//! | variables and their defaults | [`foundation::config`] |
//! | the `api_keys` and `platform_keys` variables, key, token and dispatch-token formats | [`foundation::credentials`] |
//! | secrets at rest | [`foundation::seal`] |
//! | which targets are internal | [`foundation::target`] |
//! | hex, SHA-256, times, random ids | [`foundation::encoding`] |
//! | the typed ids of organisations, endpoints and messages | [`ids`] |

#![forbid(unsafe_code)]
// The tables above link private modules: CI documents this crate with
// `--document-private-items`, where every link must resolve.
#![allow(rustdoc::private_intra_doc_links)]

mod platform;

mod ids;

mod foundation;

mod store;

mod domain;

mod dispatch;

mod http;

#[cfg(feature = "testing")]
pub mod testing;

pub use dispatch::{PassReport, dispatch, follow_up};
pub use foundation::config::{
    Config, DEFAULT_AUTO_PAUSE_AFTER, DEFAULT_DELIVERY_TIMEOUT_MS, InboundSource, InboundSources,
};
pub use foundation::credentials::{
    API_KEY_PREFIX, BearerToken, ConfiguredToken, MIN_BEARER_TOKEN_LEN, PLATFORM_KEY_PREFIX,
    api_key_entry, is_valid_organisation, new_api_key, new_platform_key, platform_key_entry,
};
pub use foundation::problem::{Code, PROBLEM_TYPE_BASE, Problem};
pub use foundation::seal::new_sealing_key;
pub use foundation::target::is_internal_ip;
pub use http::gateway::{GATEWAY_FORWARD_HEADER, passed_on};
pub use http::{MAX_BODY_BYTES, answer_before_body, handle};
pub use ids::{EndpointId, MessageId, OrgId};
pub use platform::{
    DeliveryRef, FollowUp, OutboundRequest, OutboundResponse, Platform, Request, Response,
    SendFailure, StoreError, TRUTHFUL_SWAPS_VARIABLE, USER_AGENT, batch_answer_in_order,
};
