//! The token and secret settings the edge and the origin both read (issuer, audience,
//! algorithm, the HS256 secret, the reset-token and request-signing secrets), loaded by one
//! function with one set of defaults and rules. Each side passes its own way of reading a
//! variable (Worker vars and secrets, the origin's command line and environment); every
//! problem names the variable at fault and never echoes a secret's value.

use crate::keys::Algorithm;
use crate::signing::{RequestSigner, MIN_SECRET_BYTES};
use crate::token::{Audience, ResetTokens};

pub const DEFAULT_ISSUER: &str = "auth-api";
pub const DEFAULT_AUDIENCE: &str = "auth-api";
pub const DEFAULT_ALGORITHM: &str = "EdDSA";

/// A configuration problem: the variable and what is wrong with it (never its value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct SettingError {
    pub variable: &'static str,
    pub problem: String,
}

impl SettingError {
    pub fn new(variable: &'static str, problem: impl Into<String>) -> Self {
        Self {
            variable,
            problem: problem.into(),
        }
    }
}

/// A variable that must be set and not empty.
pub fn required(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<String, SettingError> {
    lookup(name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| SettingError::new(name, "is not set"))
}

/// A value that is set and not empty.
fn set(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.is_empty())
}

/// A shared secret: set, not empty, and at least [`MIN_SECRET_BYTES`] long.
pub fn secret<'a>(value: Option<&'a str>, name: &'static str) -> Result<&'a str, SettingError> {
    match set(value) {
        None => Err(SettingError::new(name, "is not set")),
        Some(value) => secret_value(name, value),
    }
}

/// A secret that may be a comma-separated list during a rotation: the first signs or derives,
/// every one verifies. Each value must be a whole secret; the list is never empty.
pub fn secrets<'a>(
    value: Option<&'a str>,
    name: &'static str,
) -> Result<Vec<&'a str>, SettingError> {
    let Some(value) = set(value) else {
        return Err(SettingError::new(name, "is not set"));
    };
    value
        .split(',')
        .map(|one| match one.trim() {
            "" => Err(SettingError::new(name, "has an empty value in its list")),
            one => secret_value(name, one),
        })
        .collect()
}

/// The bytes of each value of a secret list, for the constructors that take them.
pub fn bytes_of<S: AsRef<str>>(secrets: &[S]) -> Vec<&[u8]> {
    secrets.iter().map(|s| s.as_ref().as_bytes()).collect()
}

fn secret_value<'a>(name: &'static str, value: &'a str) -> Result<&'a str, SettingError> {
    if value.len() < MIN_SECRET_BYTES {
        return Err(SettingError::new(
            name,
            format!("must be at least {MIN_SECRET_BYTES} bytes"),
        ));
    }
    Ok(value)
}

/// What both sides derive from the token and secret settings.
pub struct TokenSettings {
    pub audience: Audience,
    pub algorithm: Algorithm,
    /// `JWT_SECRET`, read (and checked) only when the algorithm is HS256: the current secret
    /// first, then those that still verify during a rotation. Empty for EdDSA.
    pub hs256_secrets: Vec<String>,
    /// `RESET_TOKEN_SECRET`, current first (the origin derives its activation keys from it).
    pub reset_secrets: Vec<String>,
    pub resets: ResetTokens,
    pub signer: RequestSigner,
}

/// The raw values [`TokenSettings`] is made from, however a side reads them. `None` or empty
/// is unset: the secrets are then missing, issuer, audience and algorithm take their defaults.
#[derive(Default, Clone, Copy)]
pub struct TokenParts<'a> {
    pub issuer: Option<&'a str>,
    pub audience: Option<&'a str>,
    pub algorithm: Option<&'a str>,
    pub jwt_secret: Option<&'a str>,
    pub reset_token_secret: Option<&'a str>,
    pub origin_signing_secret: Option<&'a str>,
}

impl TokenSettings {
    /// `lookup` returns a variable's value, if set (the Worker's vars and secrets).
    pub fn load(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingError> {
        let values = [
            "JWT_ISSUER",
            "JWT_AUDIENCE",
            "JWT_ALGORITHM",
            "JWT_SECRET",
            "RESET_TOKEN_SECRET",
            "ORIGIN_SIGNING_SECRET",
        ]
        .map(lookup);
        let [issuer, audience, algorithm, jwt_secret, reset, signing] = &values;
        Self::from_parts(TokenParts {
            issuer: issuer.as_deref(),
            audience: audience.as_deref(),
            algorithm: algorithm.as_deref(),
            jwt_secret: jwt_secret.as_deref(),
            reset_token_secret: reset.as_deref(),
            origin_signing_secret: signing.as_deref(),
        })
    }

    /// The settings from their raw values, with one set of defaults and rules for both sides.
    pub fn from_parts(parts: TokenParts<'_>) -> Result<Self, SettingError> {
        let audience = Audience {
            issuer: set(parts.issuer).unwrap_or(DEFAULT_ISSUER).to_owned(),
            audience: set(parts.audience).unwrap_or(DEFAULT_AUDIENCE).to_owned(),
        };
        let algorithm: Algorithm = set(parts.algorithm)
            .unwrap_or(DEFAULT_ALGORITHM)
            .parse()
            .map_err(|e: crate::keys::KeyError| {
                SettingError::new("JWT_ALGORITHM", e.to_string())
            })?;
        let hs256_secrets = match algorithm {
            Algorithm::EdDSA => Vec::new(),
            Algorithm::HS256 => {
                if set(parts.jwt_secret).is_none() {
                    return Err(SettingError::new(
                        "JWT_SECRET",
                        "is required when JWT_ALGORITHM=HS256",
                    ));
                }
                owned(secrets(parts.jwt_secret, "JWT_SECRET")?)
            }
        };
        let reset = secrets(parts.reset_token_secret, "RESET_TOKEN_SECRET")?;
        let resets = ResetTokens::rotating(&bytes_of(&reset), audience.clone())
            .map_err(|e| SettingError::new("RESET_TOKEN_SECRET", e.to_string()))?;
        let signing = secrets(parts.origin_signing_secret, "ORIGIN_SIGNING_SECRET")?;
        let signer = RequestSigner::with_secrets(&bytes_of(&signing))
            .map_err(|e| SettingError::new("ORIGIN_SIGNING_SECRET", e.to_string()))?;
        Ok(Self {
            audience,
            algorithm,
            hs256_secrets,
            reset_secrets: owned(reset),
            resets,
            signer,
        })
    }
}

fn owned(values: Vec<&str>) -> Vec<String> {
    values.into_iter().map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn good() -> HashMap<&'static str, String> {
        HashMap::from([
            ("ORIGIN_SIGNING_SECRET", "s".repeat(32)),
            ("RESET_TOKEN_SECRET", "r".repeat(32)),
        ])
    }

    fn load(vars: &HashMap<&'static str, String>) -> Result<TokenSettings, SettingError> {
        TokenSettings::load(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_are_auth_api_and_eddsa() {
        let mut vars = good();
        let settings = load(&vars).unwrap();
        assert_eq!(settings.audience.issuer, "auth-api");
        assert_eq!(settings.audience.audience, "auth-api");
        assert_eq!(settings.algorithm, Algorithm::EdDSA);
        assert!(settings.hs256_secrets.is_empty());
        // Empty is the default too (compose's `${JWT_ISSUER:-}`).
        vars.insert("JWT_ISSUER", String::new());
        assert_eq!(load(&vars).unwrap().audience.issuer, "auth-api");
    }

    #[test]
    fn each_problem_names_its_variable_without_the_value() {
        let short = "short-secret-value-0123";
        let cases: [(&'static str, Option<&str>, &str); 7] = [
            ("ORIGIN_SIGNING_SECRET", None, "is not set"),
            (
                "ORIGIN_SIGNING_SECRET",
                Some(short),
                "must be at least 32 bytes",
            ),
            ("RESET_TOKEN_SECRET", Some(""), "is not set"),
            (
                "RESET_TOKEN_SECRET",
                Some(short),
                "must be at least 32 bytes",
            ),
            ("JWT_ALGORITHM", Some("RS256"), "RS256"),
            (
                "JWT_ALGORITHM",
                Some("HS256"),
                "is required when JWT_ALGORITHM=HS256",
            ),
            ("JWT_ALGORITHM", Some("none"), "none"),
        ];
        for (name, value, problem) in cases {
            let mut vars = good();
            match value {
                Some(v) => vars.insert(name, v.to_owned()),
                None => vars.remove(name),
            };
            let e = load(&vars)
                .err()
                .unwrap_or_else(|| panic!("{name}={value:?} accepted"));
            let expected_variable = if value == Some("HS256") {
                "JWT_SECRET"
            } else {
                name
            };
            assert_eq!(e.variable, expected_variable, "{e}");
            assert!(e.problem.contains(problem), "{e}");
            assert!(!e.to_string().contains(short), "{e}");
        }
    }

    #[test]
    fn the_signing_secret_may_be_a_list_whose_first_signs() {
        let mut vars = good();
        let (new, old) = ("n".repeat(32), "s".repeat(32));
        vars.insert("ORIGIN_SIGNING_SECRET", format!("{new}, {old}"));
        let rotating = load(&vars).unwrap().signer;
        let parts = crate::signing::SignedParts {
            method: "GET",
            path_and_query: "/internal/me",
            timestamp: 1_000,
            identity: crate::signing::Identity::Anonymous,
            body: b"",
            client_network: "",
            client_agent: "",
        };
        let by_old = RequestSigner::new(old.as_bytes()).unwrap().sign(&parts);
        let by_new = RequestSigner::new(new.as_bytes()).unwrap().sign(&parts);
        assert_eq!(rotating.sign(&parts), by_new);
        assert!(rotating.verify(&parts, &by_old, 1_000).is_ok());
        // Every value of the list must be a whole secret.
        vars.insert("ORIGIN_SIGNING_SECRET", format!("{new},short"));
        let e = load(&vars).err().unwrap();
        assert_eq!(e.variable, "ORIGIN_SIGNING_SECRET");
        assert!(!e.to_string().contains(&new), "{e}");
    }

    #[test]
    fn hs256_reads_its_secret() {
        let mut vars = good();
        vars.insert("JWT_ALGORITHM", "HS256".into());
        vars.insert("JWT_SECRET", "short".into());
        let e = load(&vars).err().unwrap();
        assert_eq!(e.variable, "JWT_SECRET");
        assert!(!e.to_string().contains("short"), "{e}");
        vars.insert("JWT_SECRET", "k".repeat(32));
        let settings = load(&vars).unwrap();
        assert_eq!(settings.algorithm, Algorithm::HS256);
        assert_eq!(settings.hs256_secrets, ["k".repeat(32)]);
    }

    #[test]
    fn every_secret_is_a_list_of_whole_secrets() {
        for name in ["ORIGIN_SIGNING_SECRET", "RESET_TOKEN_SECRET", "JWT_SECRET"] {
            let mut vars = good();
            vars.insert("JWT_ALGORITHM", "HS256".into());
            let (new, old) = ("n".repeat(32), "o".repeat(32));
            vars.insert(name, format!("{new}, {old}"));
            vars.entry("JWT_SECRET").or_insert_with(|| "k".repeat(32));
            assert!(load(&vars).is_ok(), "{name}");
            for bad in [format!("{new},"), format!("{new},short"), ",".into()] {
                vars.insert(name, bad.clone());
                let e = load(&vars)
                    .err()
                    .unwrap_or_else(|| panic!("{name}={bad:?}"));
                assert_eq!(e.variable, name);
                assert!(!e.to_string().contains(&new), "{e}");
            }
        }
        let mut vars = good();
        vars.insert(
            "RESET_TOKEN_SECRET",
            format!("{}, {}", "n".repeat(32), "o".repeat(32)),
        );
        assert_eq!(
            load(&vars).unwrap().reset_secrets,
            ["n".repeat(32), "o".repeat(32)]
        );
    }
}
