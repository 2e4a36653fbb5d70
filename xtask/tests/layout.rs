//! The source layout's rules, checked on every file of the three crates:
//! - no import cycle between modules that are not nested in one another (a module may use its
//!   parent's items and re-export its children's; two siblings, or cousins, may not depend on
//!   each other in both directions, directly or through others);
//! - no `#[path]` attribute: a module lives where its name says.
//!
//! A reference is any `crate::a::b` or `super::a` path in a file (in `use` lines, including
//! braced groups, and inline), resolved to the deepest module of the crate it names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const CRATES: [&str; 3] = ["shared", "origin", "edge"];

/// A module's path below its crate root (`[]` is the root).
type Module = Vec<String>;
/// Which modules each module refers to.
type Edges = BTreeMap<Module, BTreeSet<Module>>;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file below `src` (`lib.rs` is the root, `a/mod.rs` is `a`).
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if !matches!(stem, "lib" | "mod" | "main") {
        parts.push(stem.to_owned());
    }
    parts
}

/// The paths a file names: `crate::…` absolute, `super::…` relative to `module`.
fn referenced_paths(text: &str, module: &[String]) -> Vec<Vec<String>> {
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < code.len() {
        let rest = &code[i..];
        let at_word_start =
            i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        let base: Option<(Vec<String>, usize)> = if !at_word_start {
            None
        } else if rest.starts_with("crate::") {
            Some((Vec::new(), "crate::".len()))
        } else if rest.starts_with("super::") {
            // `super` of a file module is its parent; of a `mod.rs`, the parent of its directory.
            let mut parent = module.to_vec();
            let mut len = 0;
            let mut r = rest;
            while let Some(after) = r.strip_prefix("super::") {
                parent.pop();
                len += "super::".len();
                r = after;
            }
            Some((parent, len))
        } else {
            None
        };
        let Some((base, skip)) = base else {
            i += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        };
        i += skip;
        let tail = &code[i..];
        for path in expand(tail) {
            let mut full = base.clone();
            full.extend(path);
            out.push(full);
        }
    }
    out
}

/// `a::b::{c, d::e}` → [a::b::c, a::b::d::e]; `a::b` → [a::b]. Only the segments that can be
/// modules matter, so a group is expanded one level deep.
fn expand(tail: &str) -> Vec<Vec<String>> {
    let mut prefix = Vec::new();
    let mut rest = tail;
    loop {
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if end > 0 {
            prefix.push(rest[..end].to_owned());
            rest = &rest[end..];
            match rest.strip_prefix("::") {
                Some(after) => rest = after,
                None => return vec![prefix],
            }
        } else if let Some(group) = rest.strip_prefix('{') {
            let close = group.find('}').unwrap_or(group.len());
            return group[..close]
                .split(',')
                .map(|item| {
                    let mut path = prefix.clone();
                    path.extend(
                        item.trim()
                            .split("::")
                            .map(|s| s.trim().to_owned())
                            .filter(|s| !s.is_empty() && s != "self" && !s.starts_with('{')),
                    );
                    path
                })
                .collect();
        } else {
            return vec![prefix];
        }
    }
}

/// The deepest known module a path names.
fn resolve(path: &[String], modules: &BTreeSet<Vec<String>>) -> Vec<String> {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|m| modules.contains(m))
        .unwrap_or_default()
}

fn nested(a: &[String], b: &[String]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// The dependency graph between a crate's modules, and its `#[path]` attributes.
fn graph(krate: &str) -> (Edges, Vec<String>) {
    let src = repo().join(krate).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut edges = Edges::new();
    let mut path_attributes = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        if text.lines().any(|l| l.trim_start().starts_with("#[path")) {
            path_attributes.push(file.display().to_string());
        }
        let module = module_of(&src, file);
        for path in referenced_paths(&text, &module) {
            let target = resolve(&path, &modules);
            if !nested(&module, &target) {
                edges.entry(module.clone()).or_default().insert(target);
            }
        }
    }
    (edges, path_attributes)
}

/// A cycle through `start`, if any (depth-first).
fn cycle_from(start: &Module, edges: &Edges) -> Option<Vec<Module>> {
    let mut stack = vec![(start.clone(), vec![start.clone()])];
    let mut seen = BTreeSet::new();
    while let Some((node, trail)) = stack.pop() {
        for next in edges.get(&node).into_iter().flatten() {
            if next == start {
                return Some(trail.clone());
            }
            if seen.insert(next.clone()) {
                let mut longer = trail.clone();
                longer.push(next.clone());
                stack.push((next.clone(), longer));
            }
        }
    }
    None
}

#[test]
fn no_import_cycle_between_modules_and_no_path_attributes() {
    let mut problems = Vec::new();
    for krate in CRATES {
        let (edges, path_attributes) = graph(krate);
        assert!(
            edges.len() > 5,
            "{krate}: too few references found; the scan is broken"
        );
        for file in path_attributes {
            problems.push(format!("#[path] in {file}"));
        }
        let mut reported = BTreeSet::new();
        for module in edges.keys() {
            if let Some(cycle) = cycle_from(module, &edges) {
                let mut key = cycle.clone();
                key.sort();
                if reported.insert(key) {
                    let names: Vec<String> = cycle.iter().map(|m| m.join("::")).collect();
                    problems.push(format!("{krate}: cycle {}", names.join(" → ")));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_scan_sees_a_cycle_and_a_group() {
    let modules: BTreeSet<Vec<String>> = [vec![], vec!["a".into()], vec!["b".into()]].into();
    let paths = referenced_paths(
        "use crate::{a::X, b};\nfn f() { super::b::g() }",
        &["a".into()],
    );
    let targets: BTreeSet<_> = paths.iter().map(|p| resolve(p, &modules)).collect();
    assert!(targets.contains(&vec!["a".to_owned()]));
    assert!(targets.contains(&vec!["b".to_owned()]));
    let edges = BTreeMap::from([
        (vec!["a".to_owned()], BTreeSet::from([vec!["b".to_owned()]])),
        (vec!["b".to_owned()], BTreeSet::from([vec!["a".to_owned()]])),
    ]);
    assert!(cycle_from(&vec!["a".to_owned()], &edges).is_some());
}
