//! The host's modules import each other in one direction only: no two
//! reach each other, directly or round a circle (`outbound.rs` and
//! `tls_send.rs` once did); and no function of the host is over 80 lines.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../tests/support/imports.rs"]
mod imports;

#[test]
fn no_host_modules_import_each_other_round_a_circle() {
    let host = imports::Crate::read(concat!(env!("CARGO_MANIFEST_DIR"), "/src"));
    assert!(host.module("outbound").is_some() && host.module("serve").is_some());
    let circle = host.circle();
    assert!(circle.is_none(), "a circle of imports: {circle:?}");
}

#[test]
fn no_host_function_is_over_80_lines() {
    let host = imports::Crate::read(concat!(env!("CARGO_MANIFEST_DIR"), "/src"));
    let long = host.long_functions(80);
    assert!(long.is_empty(), "split these: {long:#?}");
}
