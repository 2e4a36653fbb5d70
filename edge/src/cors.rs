//! CORS for browser clients: `CORS_ALLOWED_ORIGINS` is a comma-separated list of origins
//! (`https://app.example.com`), or `*`. Preflights are answered at the edge.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsPolicy {
    /// No cross-origin access (the default).
    None,
    Any,
    List(Vec<String>),
}

pub const ALLOW_HEADERS: &str = "authorization, content-type, x-request-id";
pub const EXPOSE_HEADERS: &str = "retry-after, x-request-id, www-authenticate";
pub const MAX_AGE_SECS: &str = "86400";

impl CorsPolicy {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(Self::None);
        }
        if raw == "*" {
            return Ok(Self::Any);
        }
        let mut origins = Vec::new();
        for origin in raw.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            let valid = (origin.starts_with("https://") || origin.starts_with("http://"))
                && !origin.ends_with('/')
                && origin
                    .split("://")
                    .nth(1)
                    .is_some_and(|host| !host.is_empty() && !host.contains('/'));
            if !valid {
                return Err(format!(
                    "{origin:?} is not an origin like https://app.example.com"
                ));
            }
            origins.push(origin.to_ascii_lowercase());
        }
        Ok(Self::List(origins))
    }

    /// The `Access-Control-Allow-Origin` value for a request from `origin`, if allowed.
    pub fn allow(&self, origin: &str) -> Option<String> {
        match self {
            Self::None => None,
            Self::Any => Some("*".to_owned()),
            Self::List(list) => list
                .iter()
                .any(|o| o.eq_ignore_ascii_case(origin))
                .then(|| origin.to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_wildcard() {
        assert_eq!(CorsPolicy::parse("").unwrap(), CorsPolicy::None);
        assert_eq!(CorsPolicy::parse("*").unwrap(), CorsPolicy::Any);
        let p = CorsPolicy::parse("https://a.example.com, http://localhost:3000").unwrap();
        assert_eq!(
            p.allow("https://a.example.com").as_deref(),
            Some("https://a.example.com")
        );
        assert_eq!(
            p.allow("http://localhost:3000").as_deref(),
            Some("http://localhost:3000")
        );
        assert_eq!(p.allow("https://evil.example.com"), None);
        assert_eq!(CorsPolicy::Any.allow("https://x.example"), Some("*".into()));
        assert_eq!(CorsPolicy::None.allow("https://x.example"), None);
    }

    #[test]
    fn rejects_non_origins() {
        for bad in [
            "a.example.com",
            "https://a.example.com/",
            "https://a.example.com/path",
            "ftp://x",
            "https://",
        ] {
            assert!(CorsPolicy::parse(bad).is_err(), "{bad}");
        }
    }
}
