//! One module per task; `args` are what follows the task's name on the command line.

pub mod bench;
pub mod dev;
pub mod fuzz;
pub mod openapi;
pub mod test;
pub mod upgrade;

use xtask::cmd::{fail, Result};

/// The default database for test, bench and fuzz: the local server.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned())
}

/// The arguments a task was given, checked against the flags it takes: `switches` stand
/// alone, `valued` take the next argument. Returns (switches given, (flag, value) pairs,
/// positional arguments).
pub struct Args<'a> {
    pub switches: Vec<&'a str>,
    pub values: Vec<(&'a str, &'a str)>,
    pub positional: Vec<&'a str>,
}

impl<'a> Args<'a> {
    pub fn parse(args: &'a [String], switches: &[&str], valued: &[&str]) -> Result<Args<'a>> {
        let mut parsed = Args {
            switches: Vec::new(),
            values: Vec::new(),
            positional: Vec::new(),
        };
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            let arg = arg.as_str();
            if switches.contains(&arg) {
                parsed.switches.push(arg);
            } else if valued.contains(&arg) {
                let Some(value) = iter.next() else {
                    return fail(format!("{arg} needs a value"));
                };
                parsed.values.push((arg, value));
            } else if arg.starts_with('-') {
                return fail(format!("unknown option {arg} (cargo xtask help)"));
            } else {
                parsed.positional.push(arg);
            }
        }
        Ok(parsed)
    }

    pub fn has(&self, switch: &str) -> bool {
        self.switches.contains(&switch)
    }

    /// The number given with `flag`, or `default`.
    pub fn number(&self, flag: &str, default: u64) -> Result<u64> {
        match self.values.iter().rev().find(|(f, _)| *f == flag) {
            None => Ok(default),
            Some((_, value)) => value
                .parse()
                .or_else(|_| fail(format!("{flag} takes a whole number, not {value}"))),
        }
    }
}
