//! A crate's modules and the modules each one uses, read from its source
//! (every `crate::` path, use trees included, outside comments and test
//! modules; a `mod.rs` also uses the children it names). Shared by the
//! tests that keep the edge crate's layers and the host's modules free of
//! circles.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One module: its path (`domain::endpoint`; the root is `""`), its code
/// without comments and test modules, and its source as written.
pub struct Module {
    pub path: String,
    code: String,
    source: String,
}

pub struct Crate {
    pub modules: Vec<Module>,
}

impl Crate {
    /// Every `.rs` file under `src`.
    pub fn read(src: &str) -> Crate {
        let mut sources = Vec::new();
        collect(Path::new(src), Path::new(src), &mut sources);
        let borrowed: Vec<(&str, &str)> = sources
            .iter()
            .map(|(file, code)| (file.as_str(), code.as_str()))
            .collect();
        Crate::from_sources(&borrowed)
    }

    /// Files (relative to `src`) and their code.
    pub fn from_sources(sources: &[(&str, &str)]) -> Crate {
        let modules = sources
            .iter()
            .map(|(file, code)| Module {
                path: module_path(file),
                code: code_only(code),
                source: code.to_string(),
            })
            .collect();
        Crate { modules }
    }

    pub fn module(&self, path: &str) -> Option<&Module> {
        self.modules.iter().find(|module| module.path == path)
    }

    /// The other modules `module` uses.
    pub fn uses<'a>(&'a self, module: &'a Module) -> impl Iterator<Item = &'a Module> + 'a {
        let mut used = BTreeSet::new();
        for path in crate_paths(&module.code) {
            if let Some(target) = self.owner(&path) {
                used.insert(target);
            }
        }
        // A parent names its children without `crate::`.
        for child in self.children(&module.path) {
            let name = child.rsplit("::").next().unwrap();
            if contains_word(&module.code, &format!("{name}::")) {
                used.insert(child.to_string());
            }
        }
        used.remove(&module.path);
        used.into_iter().filter_map(move |path| self.module(&path))
    }

    /// `module::function (N lines)` for every function longer than `max`
    /// lines, from its signature to its closing brace.
    pub fn long_functions(&self, max: usize) -> Vec<String> {
        let mut long = Vec::new();
        for module in &self.modules {
            let lines: Vec<&str> = module.source.lines().collect();
            for (start, line) in lines.iter().enumerate() {
                let Some(name) = function_name(line) else {
                    continue;
                };
                let indent = &line[..line.len() - line.trim_start().len()];
                let close = format!("{indent}}}");
                let end = lines[start..]
                    .iter()
                    .position(|line| *line == close)
                    .map_or(lines.len(), |offset| start + offset);
                let length = end - start + 1;
                if length > max {
                    long.push(format!("{}::{name} ({length} lines)", module.path));
                }
            }
        }
        long
    }

    /// A circle of modules that use each other, if there is one.
    pub fn circle(&self) -> Option<Vec<String>> {
        let graph: BTreeMap<&str, Vec<&str>> = self
            .modules
            .iter()
            .map(|module| {
                let used = self.uses(module).map(|used| used.path.as_str()).collect();
                (module.path.as_str(), used)
            })
            .collect();
        let mut done = BTreeSet::new();
        for start in graph.keys() {
            let mut trail = Vec::new();
            if let Some(circle) = visit(&graph, start, &mut trail, &mut done) {
                return Some(circle);
            }
        }
        None
    }

    /// The deepest module a `crate::` path names (`domain::endpoint` for
    /// `domain::endpoint::EndpointRecord`).
    fn owner(&self, path: &str) -> Option<String> {
        let segments: Vec<&str> = path.split("::").collect();
        (1..=segments.len())
            .rev()
            .map(|length| segments[..length].join("::"))
            .find(|candidate| self.module(candidate).is_some())
    }

    fn children<'a>(&'a self, parent: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.modules
            .iter()
            .map(|module| module.path.as_str())
            .filter(move |path| {
                path.strip_prefix(parent)
                    .and_then(|rest| {
                        rest.strip_prefix("::")
                            .or(parent.is_empty().then_some(rest))
                    })
                    .is_some_and(|rest| !rest.is_empty() && !rest.contains("::"))
            })
    }
}

fn visit<'a>(
    graph: &BTreeMap<&'a str, Vec<&'a str>>,
    node: &'a str,
    trail: &mut Vec<&'a str>,
    done: &mut BTreeSet<&'a str>,
) -> Option<Vec<String>> {
    if let Some(at) = trail.iter().position(|seen| *seen == node) {
        return Some(trail[at..].iter().map(|seen| seen.to_string()).collect());
    }
    if done.contains(node) {
        return None;
    }
    trail.push(node);
    for next in graph.get(node).into_iter().flatten() {
        if let Some(circle) = visit(graph, next, trail, done) {
            return Some(circle);
        }
    }
    trail.pop();
    done.insert(node);
    None
}

fn collect(root: &Path, dir: &Path, sources: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(root, &path, sources);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            let file = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            sources.push((file, std::fs::read_to_string(&path).unwrap()));
        }
    }
}

/// `domain/endpoint.rs` → `domain::endpoint`; `domain/mod.rs` → `domain`;
/// `lib.rs` → the root, `""`; a binary's `main.rs` stays `main` (it uses
/// the library as any crate does, not through `crate::`).
fn module_path(file: &str) -> String {
    let file = file.trim_end_matches(".rs");
    let file = file.strip_suffix("/mod").unwrap_or(file);
    if file == "lib" {
        return String::new();
    }
    file.replace('/', "::")
}

/// The code without comments and without `#[cfg(test)]` modules (tests
/// may reach anything).
fn code_only(code: &str) -> String {
    let mut kept = String::new();
    let mut skipping_tests = false;
    for line in code.lines() {
        if line.trim_start().starts_with("#[cfg(test)]") {
            skipping_tests = true;
        }
        if skipping_tests {
            continue;
        }
        let line = match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        };
        kept.push_str(line);
        kept.push('\n');
    }
    kept
}

/// The name of the function a line declares, if it declares one.
fn function_name(line: &str) -> Option<&str> {
    let mut rest = line.trim_start();
    for qualifier in ["pub(crate) ", "pub ", "const ", "async "] {
        rest = rest.strip_prefix(qualifier).unwrap_or(rest);
    }
    let rest = rest.strip_prefix("fn ")?;
    let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_'))?;
    Some(&rest[..end])
}

fn contains_word(code: &str, word: &str) -> bool {
    code.match_indices(word).any(|(at, _)| {
        code[..at]
            .chars()
            .next_back()
            .is_none_or(|before| !(before.is_alphanumeric() || before == '_' || before == ':'))
    })
}

/// Every path that starts with `crate::`, use trees expanded:
/// `crate::a::{b, c::{self, D}}` gives `a::b`, `a::c` and `a::c::D`.
fn crate_paths(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        expand("", rest, &mut paths);
    }
    paths
}

/// Expands the path at the start of `text` under `prefix`.
fn expand(prefix: &str, text: &str, paths: &mut Vec<String>) {
    let text = text.trim_start();
    if let Some(group) = text.strip_prefix('{') {
        for item in split_group(group) {
            expand(prefix, item, paths);
        }
        return;
    }
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(text.len());
    let path = text[..end].trim_end_matches(':');
    let joined = match (prefix.is_empty(), path) {
        (_, "self") | (_, "") => prefix.to_string(),
        (true, _) => path.to_string(),
        (false, _) => format!("{prefix}::{path}"),
    };
    let joined = joined.trim_end_matches("::self").to_string();
    if text[..end].ends_with("::") && text[end..].starts_with('{') {
        expand(&joined, &text[end..], paths);
    } else if !joined.is_empty() {
        paths.push(joined);
    }
}

/// The items of a use group, up to its closing brace.
fn split_group(group: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (at, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&group[start..at]);
                return items;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    items
}
