//! docs/deploy.md as a runbook: its fenced blocks, their marks, and what the blocks write
//! (`export NAME='value'` files, JWKS documents), for the tests that run them
//! (`system-tests/tests/runbook.rs`, `rotation.rs`).

use std::collections::BTreeMap;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;
use shared::keys::Jwks;

use crate::process::repo_root;

/// What may follow `bash` in a shell block's info string (see the guide's introduction).
pub const MARKS: [&str; 5] = ["runbook", "replicas", "docker", "cloudflare", "toolchain"];

/// A fenced block of the guide: the `## ` section it is in, its info string, its text.
pub struct Block {
    pub section: String,
    pub info: String,
    pub text: String,
    pub line: usize,
}

pub fn guide() -> String {
    std::fs::read_to_string(repo_root().join("docs/deploy.md")).unwrap()
}

pub fn fenced_blocks(doc: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut section = String::new();
    let mut open: Option<Block> = None;
    for (n, line) in doc.lines().enumerate() {
        let fence = line.trim_start().strip_prefix("```");
        match open.take() {
            Some(block) if fence.is_some_and(|rest| rest.trim().is_empty()) => blocks.push(block),
            Some(mut block) => {
                block.text.push_str(line);
                block.text.push('\n');
                open = Some(block);
            }
            None => match fence {
                Some(info) => {
                    open = Some(Block {
                        section: section.clone(),
                        info: info.trim().to_owned(),
                        text: String::new(),
                        line: n + 1,
                    })
                }
                None => {
                    if let Some(heading) = line.strip_prefix("## ") {
                        heading.trim().clone_into(&mut section);
                    }
                }
            },
        }
    }
    assert!(open.is_none(), "docs/deploy.md: a fence is never closed");
    blocks
}

/// A shell block's mark, and whether it is a long-running `serve` block (`runbook serve`,
/// `replicas serve`); an error for a shell block without a known mark (or not written as
/// `bash`).
pub fn mark(block: &Block) -> Result<Option<(&str, bool)>, String> {
    let words: Vec<&str> = block.info.split_whitespace().collect();
    let shell = ["", "bash", "sh", "shell", "console", "zsh"];
    let language = words.first().copied().unwrap_or("");
    if !shell.contains(&language) {
        return Ok(None);
    }
    let at = format!("docs/deploy.md:{} ({})", block.line, block.section);
    if language != "bash" {
        return Err(format!(
            "{at}: a shell block is written ```bash <mark>, not ```{}",
            block.info
        ));
    }
    match words[1..] {
        [mark] if MARKS.contains(&mark) => Ok(Some((mark, false))),
        [mark @ ("runbook" | "replicas"), "serve"] => Ok(Some((mark, true))),
        _ => Err(format!(
            "{at}: ```{} needs one of the marks {MARKS:?} (or `runbook serve`, `replicas serve`)",
            block.info
        )),
    }
}

/// `export NAME='value'` lines, as `origin keygen --format shell` writes them.
pub fn shell_values(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("export "))
        .map(|line| {
            let (name, value) = line.split_once('=').expect("export NAME='value'");
            let value = value
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .expect("a single-quoted value");
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

/// The `kid` in a token's header.
pub fn kid(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

pub fn jwks_kids(json: &str) -> Vec<String> {
    let jwks: Jwks = serde_json::from_str(json).unwrap_or_else(|e| panic!("a JWKS: {e}"));
    jwks.keys.into_iter().map(|k| k.kid).collect()
}

/// `PATH` for the blocks: `origin` first, then PostgreSQL's client programs when the inherited
/// `PATH` lacks them (Debian keeps them per major version), then the inherited directories.
pub fn blocks_path(origin_dir: &Path) -> String {
    let inherited = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![origin_dir.to_path_buf()];
    if !std::env::split_paths(&inherited).any(|d| d.join("pg_dump").exists()) {
        if let Some(pg) = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("pg_dump").exists())
            .max()
        {
            dirs.push(pg);
        }
    }
    dirs.extend(std::env::split_paths(&inherited));
    std::env::join_paths(dirs)
        .unwrap()
        .into_string()
        .expect("a UTF-8 PATH")
}
