//! `cargo xtask openapi [--check]`: the OpenAPI document the Worker serves, generated from the
//! Rust types (`origin openapi`).

use std::path::Path;
use std::process::Command;

use xtask::cmd::{fail, output, step, Result};

use super::Args;

pub const SCHEMA_FILE: &str = "edge/assets/api/schema/index.json";

pub fn run(root: &Path, args: &[String]) -> Result {
    let args = Args::parse(args, &["--check"], &[])?;
    step("generating the OpenAPI document (origin openapi)");
    let document = output(Command::new("cargo").current_dir(root).args([
        "run", "--quiet", "--locked", "-p", "origin", "--", "openapi",
    ]))?;
    let path = root.join(SCHEMA_FILE);
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if args.has("--check") {
        if current != document {
            return fail(format!(
                "{SCHEMA_FILE} is not current: run `cargo xtask openapi`"
            ));
        }
        println!("{SCHEMA_FILE} is current");
    } else if current == document {
        println!("{SCHEMA_FILE} was current already");
    } else {
        std::fs::write(&path, document)?;
        println!("wrote {SCHEMA_FILE}");
    }
    Ok(())
}
