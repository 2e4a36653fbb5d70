//! Parse-don't-validate newtypes for the user's identity fields, and the password policies.
//!
//! Messages are Django's own, so clients that display DRF errors show the same text.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::common_passwords;

pub const EMAIL_MAX_CHARS: usize = 254;
pub const USERNAME_MAX_CHARS: usize = 150;
pub const NAME_MAX_CHARS: usize = 150;
/// Django's password fields accept up to 128 characters.
pub const PASSWORD_MAX_CHARS: usize = 128;

pub const MSG_INVALID_EMAIL: &str = "Enter a valid email address.";
pub const MSG_INVALID_USERNAME: &str =
    "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters.";
pub const MSG_NOT_8_DIGITS: &str = "Password must be exactly 8 digits.";
pub const MSG_TOO_COMMON: &str = "This password is too common.";
/// DRF's `CharField` messages that the parsers here and the form reader (`crate::form`) share.
pub const MSG_BLANK: &str = "This field may not be blank.";

pub fn max_length_message(max: usize) -> String {
    format!("Ensure this field has no more than {max} characters.")
}

pub const MSG_PASSWORD_MISMATCH: &str = "The two password fields didn't match.";

/// An email address as stored: trimmed, domain lowercased (Django's `normalize_email`), and
/// checked with Django's dot-atom and hostname rules. Uniqueness is case-insensitive on the
/// whole address (the database indexes `lower(email)`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let value = raw.trim();
        if value.chars().count() > EMAIL_MAX_CHARS {
            return Err(MSG_INVALID_EMAIL);
        }
        let (local, domain) = value.rsplit_once('@').ok_or(MSG_INVALID_EMAIL)?;
        // The rules apply to the address as stored: lowercasing can lengthen a domain or turn
        // a letter into a letter plus a combining mark ('İ' becomes "i\u{307}"), and a stored
        // address must parse again to itself wherever it is read back.
        let domain = domain.to_lowercase();
        let email = format!("{local}@{domain}");
        if !is_dot_atom(local) || !is_domain(&domain) || email.chars().count() > EMAIL_MAX_CHARS {
            return Err(MSG_INVALID_EMAIL);
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key for case-insensitive lookups (OTP store, throttle identity, unique index).
    pub fn lookup_key(&self) -> String {
        self.0.to_lowercase()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Email::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// RFC 5322 dot-atom, as Django's `EmailValidator.user_regex` (quoted local parts are refused:
/// no mail provider of our users issues them, and they complicate every downstream system).
fn is_dot_atom(local: &str) -> bool {
    const SPECIALS: &str = "-!#$%&'*+/=?^_`{}|~";
    !local.is_empty()
        && local.split('.').all(|atom| {
            !atom.is_empty()
                && atom
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || SPECIALS.contains(c))
        })
}

/// Django's hostname + TLD rule: labels of letters (any script), digits and inner hyphens,
/// 1–63 characters, at least two labels, the TLD not numeric; `localhost` is allowed alone.
fn is_domain(domain: &str) -> bool {
    if domain.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 || domain.len() > 253 {
        return false;
    }
    let label_ok = |label: &str| {
        let n = label.chars().count();
        (1..=63).contains(&n)
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| {
                c.is_ascii_alphanumeric() || c == '-' || (!c.is_ascii() && c.is_alphanumeric())
            })
    };
    let tld = labels[labels.len() - 1];
    labels.iter().all(|l| label_ok(l))
        && tld.chars().count() >= 2
        && !tld.chars().all(|c| c.is_ascii_digit())
}

/// Django's `UnicodeUsernameValidator`: letters, digits and `@.+-_`, at most 150 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let value = raw.trim();
        if value.is_empty() {
            return Err(MSG_BLANK.to_owned());
        }
        if value.chars().count() > USERNAME_MAX_CHARS {
            return Err(max_length_message(USERNAME_MAX_CHARS));
        }
        if !value
            .chars()
            .all(|c| c.is_alphanumeric() || "@.+-_".contains(c))
        {
            return Err(MSG_INVALID_USERNAME.to_owned());
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which rules a new password must satisfy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PasswordPolicy {
    /// The original service's rule: exactly 8 ASCII digits, not common, not similar to the
    /// username or email. Kept as the default for compatibility with existing clients.
    #[default]
    Seed,
    /// Opt-in: 12–128 characters of anything, not common, not similar.
    Strong,
}

impl std::str::FromStr for PasswordPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "seed" => Ok(Self::Seed),
            "strong" => Ok(Self::Strong),
            other => Err(format!(
                "unknown password policy {other:?} (expected seed or strong)"
            )),
        }
    }
}

/// The user attributes a password must not resemble.
pub struct UserAttributes<'a> {
    pub username: &'a str,
    pub email: &'a str,
}

impl PasswordPolicy {
    pub const STRONG_MIN_CHARS: usize = 12;

    /// Every message that applies, in Django's validator order (all are reported, not just
    /// the first, as `validate_password` does).
    pub fn check(self, password: &str, user: &UserAttributes<'_>) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        match self {
            Self::Seed => {
                if password.len() != 8 || !password.bytes().all(|b| b.is_ascii_digit()) {
                    errors.push(MSG_NOT_8_DIGITS.to_owned());
                }
            }
            Self::Strong => {
                let n = password.chars().count();
                if n < Self::STRONG_MIN_CHARS {
                    errors.push(format!(
                        "This password is too short. It must contain at least {} characters.",
                        Self::STRONG_MIN_CHARS
                    ));
                }
                if n > PASSWORD_MAX_CHARS {
                    errors.push(format!(
                        "This password is too long. It must contain at most {PASSWORD_MAX_CHARS} characters."
                    ));
                }
            }
        }
        if common_passwords::contains(password.to_lowercase().trim()) {
            errors.push(MSG_TOO_COMMON.to_owned());
        }
        if let Some(name) = similar_attribute(password, user) {
            errors.push(format!("The password is too similar to the {name}."));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// Django's `UserAttributeSimilarityValidator` (max similarity 0.7): the attribute and each of
/// its `\W+`-separated parts are compared with `SequenceMatcher.quick_ratio`. Returns the
/// attribute's verbose name when one is too similar.
fn similar_attribute(password: &str, user: &UserAttributes<'_>) -> Option<&'static str> {
    const MAX_SIMILARITY: f64 = 0.7;
    let password: Vec<char> = password.to_lowercase().chars().collect();
    for (value, verbose_name) in [(user.username, "username"), (user.email, "email address")] {
        if value.is_empty() {
            continue;
        }
        let lower = value.to_lowercase();
        let parts = lower
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .chain(std::iter::once(lower.as_str()));
        for part in parts {
            let part: Vec<char> = part.chars().collect();
            if exceeds_maximum_length_ratio(password.len(), MAX_SIMILARITY, part.len()) {
                continue;
            }
            if quick_ratio(&password, &part) >= MAX_SIMILARITY {
                return Some(verbose_name);
            }
        }
    }
    None
}

/// Django skips comparisons that cannot reach the threshold (see `password_validation.py`).
fn exceeds_maximum_length_ratio(pwd_len: usize, max_similarity: f64, value_len: usize) -> bool {
    let length_bound_similarity = max_similarity / 2.0 * pwd_len as f64;
    pwd_len >= 10 * value_len && (value_len as f64) < length_bound_similarity
}

/// `difflib.SequenceMatcher(a, b).quick_ratio()`: 2·|multiset intersection| / (|a| + |b|),
/// and 1.0 for two empty sequences.
pub fn quick_ratio(a: &[char], b: &[char]) -> f64 {
    let total = a.len() + b.len();
    if total == 0 {
        return 1.0;
    }
    let mut available = std::collections::HashMap::<char, usize>::new();
    for &c in b {
        *available.entry(c).or_default() += 1;
    }
    let mut matches = 0usize;
    for c in a {
        if let Some(n) = available.get_mut(c) {
            if *n > 0 {
                *n -= 1;
                matches += 1;
            }
        }
    }
    2.0 * matches as f64 / total as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn user<'a>(username: &'a str, email: &'a str) -> UserAttributes<'a> {
        UserAttributes { username, email }
    }

    #[test]
    fn email_normalises_domain_only() {
        let e = Email::parse("  John.Doe@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "John.Doe@example.com");
        assert_eq!(e.lookup_key(), "john.doe@example.com");
    }

    #[test]
    fn email_rejections() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a@b.c",
            "a..b@example.com",
            ".a@example.com",
            "a.@example.com",
            "a b@example.com",
            "a@-example.com",
            "a@example-.com",
            "a@example.123",
            "a@exa mple.com",
            "\"quoted\"@example.com",
        ] {
            assert_eq!(Email::parse(bad), Err(MSG_INVALID_EMAIL), "{bad:?}");
        }
        let long_local = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long_local).is_err());
    }

    #[test]
    fn email_accepts_django_valid_forms() {
        for ok in [
            "a@example.com",
            "first.last+tag@sub.example.co.uk",
            "x!#$%&'*+/=?^_`{}|~-@example.org",
            "user@localhost",
            "user@bücher.de",
            "u@xn--bcher-kva.de",
        ] {
            assert!(Email::parse(ok).is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn username_rules() {
        assert_eq!(
            Username::parse(" alice.b+c@d-e_f ").unwrap().as_str(),
            "alice.b+c@d-e_f"
        );
        assert!(Username::parse("Zoë").is_ok());
        assert_eq!(Username::parse("a b").unwrap_err(), MSG_INVALID_USERNAME);
        assert_eq!(Username::parse("a/b").unwrap_err(), MSG_INVALID_USERNAME);
        assert_eq!(Username::parse("   ").unwrap_err(), MSG_BLANK);
        assert_eq!(
            Username::parse(&"a".repeat(151)).unwrap_err(),
            "Ensure this field has no more than 150 characters."
        );
        assert!(Username::parse(&"a".repeat(150)).is_ok());
    }

    #[test]
    fn seed_policy_accepts_eight_uncommon_digits() {
        assert_eq!(
            PasswordPolicy::Seed.check("73926481", &user("alice", "alice@example.com")),
            Ok(())
        );
    }

    #[test]
    fn seed_policy_rejections_collect_every_message() {
        let u = user("alice", "alice@example.com");
        let errs = |p: &str| PasswordPolicy::Seed.check(p, &u).unwrap_err();
        assert_eq!(errs("7392648"), vec![MSG_NOT_8_DIGITS]);
        assert_eq!(errs("739264810"), vec![MSG_NOT_8_DIGITS]);
        assert_eq!(errs("7392648a"), vec![MSG_NOT_8_DIGITS]);
        // Non-ASCII digits are not digits for this rule (Django's validator uses [0-9]).
        assert_eq!(errs("٧٣٩٢٦٤٨١"), vec![MSG_NOT_8_DIGITS]);
        assert_eq!(errs("12345678"), vec![MSG_TOO_COMMON]);
        assert_eq!(errs("password"), vec![MSG_NOT_8_DIGITS, MSG_TOO_COMMON]);
    }

    #[test]
    fn similarity_to_username_and_email() {
        let u = user("84736251", "someone@example.com");
        assert_eq!(
            PasswordPolicy::Seed.check("84736251", &u).unwrap_err(),
            vec!["The password is too similar to the username."]
        );
        let u = user("bob", "84736251@example.com");
        assert_eq!(
            PasswordPolicy::Seed.check("84736215", &u).unwrap_err(),
            vec!["The password is too similar to the email address."]
        );
    }

    #[test]
    fn strong_policy() {
        let u = user("alice", "alice@example.com");
        assert_eq!(
            PasswordPolicy::Strong.check("violet-harbour-tram-91", &u),
            Ok(())
        );
        assert_eq!(
            PasswordPolicy::Strong.check("short", &u).unwrap_err(),
            vec!["This password is too short. It must contain at least 12 characters."]
        );
        assert_eq!(
            PasswordPolicy::Strong
                .check(&"x7".repeat(65), &u)
                .unwrap_err(),
            vec!["This password is too long. It must contain at most 128 characters."]
        );
        assert!(PasswordPolicy::Strong
            .check("alice@example.com", &u)
            .unwrap_err()
            .contains(&"The password is too similar to the email address.".to_owned()));
    }

    #[test]
    fn quick_ratio_matches_difflib() {
        // Values computed with CPython's difflib.SequenceMatcher(a=..., b=...).quick_ratio().
        let r = |a: &str, b: &str| {
            quick_ratio(
                &a.chars().collect::<Vec<_>>(),
                &b.chars().collect::<Vec<_>>(),
            )
        };
        assert_eq!(r("", ""), 1.0);
        assert_eq!(r("abcd", "bcde"), 0.75);
        assert_eq!(r("aab", "abb"), 2.0 * 2.0 / 6.0);
        assert_eq!(r("12345678", "87654321"), 1.0);
        assert_eq!(r("abc", "xyz"), 0.0);
    }

    #[test]
    fn policy_names_parse() {
        assert_eq!("seed".parse::<PasswordPolicy>(), Ok(PasswordPolicy::Seed));
        assert_eq!(
            "strong".parse::<PasswordPolicy>(),
            Ok(PasswordPolicy::Strong)
        );
        assert!("weak".parse::<PasswordPolicy>().is_err());
    }

    #[test]
    fn an_address_whose_lowercase_domain_breaks_the_rules_is_refused() {
        // Found by cargo-fuzz: 'İ' lowercases to 'i' plus U+0307 (a combining mark, not a
        // letter), so the stored form would not parse again.
        assert_eq!(Email::parse("#@5.00ҜB5.İҜ00a "), Err(MSG_INVALID_EMAIL));
        // Other scripts' capitals still lowercase to letters and are kept.
        let e = Email::parse("a@ҜB5.ÄÖ.de").unwrap();
        assert_eq!(e.as_str(), "a@ҝb5.äö.de");
        assert_eq!(Email::parse(e.as_str()), Ok(e));
    }

    proptest! {
        #[test]
        fn a_parsed_email_with_capitals_of_any_script_reparses_to_itself(
            local in "[a-zA-Z0-9+_-]{1,20}",
            domain in "[a-zA-Z0-9ÄÖİΣҜẞ-]{1,10}(\\.[a-zA-Z0-9ÄÖİΣҜẞ-]{1,10}){0,2}\\.[a-zA-ZİΣ]{2,6}",
        ) {
            if let Ok(e) = Email::parse(&format!("{local}@{domain}")) {
                prop_assert_eq!(Email::parse(e.as_str()), Ok(e.clone()));
                prop_assert!(e.as_str().chars().count() <= EMAIL_MAX_CHARS);
            }
        }

        #[test]
        fn parsed_email_reparses_to_itself(local in "[a-z0-9!#%+_-]{1,20}(\\.[a-z0-9_-]{1,10}){0,2}",
                                           domain in "[a-z0-9]{1,10}(\\.[a-z0-9]{1,10}){0,2}\\.[a-z]{2,6}") {
            let raw = format!("{local}@{domain}");
            let e = Email::parse(&raw).unwrap();
            prop_assert_eq!(Email::parse(e.as_str()).unwrap(), e.clone());
            prop_assert_eq!(e.lookup_key(), raw.to_lowercase());
        }

        #[test]
        fn email_parse_never_panics_and_bounds_length(s in "\\PC{0,400}") {
            if let Ok(e) = Email::parse(&s) {
                prop_assert!(e.as_str().chars().count() <= EMAIL_MAX_CHARS);
                prop_assert!(e.as_str().contains('@'));
            }
        }

        #[test]
        fn seed_accepts_only_eight_ascii_digits(p in "\\PC{0,12}") {
            let verdict = PasswordPolicy::Seed.check(&p, &user("", ""));
            let eight_digits = p.len() == 8 && p.bytes().all(|b| b.is_ascii_digit());
            if !eight_digits {
                prop_assert!(verdict.unwrap_err().contains(&MSG_NOT_8_DIGITS.to_owned()));
            }
        }

        #[test]
        fn username_accepts_exactly_the_django_alphabet(s in "[\\w@.+\\-/ #]{1,20}") {
            let ok = s.trim().chars().all(|c| c.is_alphanumeric() || "@.+-_".contains(c)) && !s.trim().is_empty();
            prop_assert_eq!(Username::parse(&s).is_ok(), ok);
        }

        #[test]
        fn quick_ratio_is_symmetric_and_bounded(a in "[a-e]{0,12}", b in "[a-e]{0,12}") {
            let a: Vec<char> = a.chars().collect();
            let b: Vec<char> = b.chars().collect();
            let r = quick_ratio(&a, &b);
            prop_assert!((0.0..=1.0).contains(&r));
            prop_assert_eq!(r, quick_ratio(&b, &a));
        }
    }
}
