//! The edge crate's layers, kept: every module imports only from its own
//! layer and the layers below, no modules import each other round a
//! circle, and no function is over 80 lines. The order is written here, once; `src/lib.rs` declares the
//! layers in it (checked below) and says what each owns.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../tests/support/imports.rs"]
mod imports;

use imports::{Crate, Module};

/// Lowest first. `testing` is a platform of its own (`FakePlatform`).
const LAYERS: &[&[&str]] = &[
    &["platform", "ids", "testing"],
    &["foundation"],
    &["store"],
    &["domain"],
    &["dispatch"],
    &["http"],
];

fn layer(module: &Module) -> usize {
    let top = module.path.split("::").next().unwrap();
    LAYERS
        .iter()
        .position(|layer| layer.contains(&top))
        .unwrap_or_else(|| panic!("{} is in no layer", module.path))
}

fn edge() -> Crate {
    Crate::read(concat!(env!("CARGO_MANIFEST_DIR"), "/src"))
}

#[test]
fn modules_import_only_from_their_layer_and_below() {
    let edge = edge();
    let mut upward = Vec::new();
    for module in edge.modules.iter().filter(|module| !module.path.is_empty()) {
        for used in edge.uses(module) {
            if layer(used) > layer(module) {
                upward.push(format!("{} imports {}", module.path, used.path));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports from a higher layer: {upward:#?}"
    );
}

#[test]
fn no_modules_import_each_other_round_a_circle() {
    let circle = edge().circle();
    assert!(circle.is_none(), "a circle of imports: {circle:?}");
}

#[test]
fn the_crate_declares_the_layers_in_their_order() {
    let root = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/lib.rs")).unwrap();
    let declared: Vec<&str> = root
        .lines()
        .filter_map(|line| line.strip_prefix("mod "))
        .map(|name| name.trim_end_matches(';'))
        .collect();
    let expected: Vec<&str> = LAYERS
        .iter()
        .flat_map(|layer| layer.iter().copied())
        .filter(|name| *name != "testing")
        .collect();
    assert_eq!(declared, expected);
}

#[test]
fn no_function_is_over_80_lines() {
    let long = edge().long_functions(80);
    assert!(long.is_empty(), "split these: {long:#?}");
}

#[test]
fn the_checks_see_an_upward_import_and_a_circle() {
    let edge = Crate::from_sources(&[
        ("store/mod.rs", "use crate::domain::endpoint::X;"),
        ("domain/mod.rs", "pub mod endpoint;"),
        ("domain/endpoint.rs", "use crate::domain::message;"),
        (
            "domain/message.rs",
            "use crate::domain::{endpoint::{self, Y}};",
        ),
    ]);
    let store = edge.module("store").unwrap();
    let used: Vec<&str> = edge
        .uses(store)
        .map(|module| module.path.as_str())
        .collect();
    assert_eq!(used, ["domain::endpoint"]);
    assert!(edge.circle().is_some());
    let long = format!("fn long() {{\n{}}}\n", "    step();\n".repeat(80));
    let functions = Crate::from_sources(&[("lib.rs", &long)]);
    assert_eq!(functions.long_functions(80), ["::long (82 lines)"]);
}
