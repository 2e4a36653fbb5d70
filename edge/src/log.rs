//! Structured logs: one JSON object per line on the Worker's console (`wrangler tail`, Workers
//! Logs, Logpush), with the request id the origin logs too. Only fixed messages, the method and
//! path (never the query string, headers or bodies) and error descriptions go in: never a
//! token, password, code or secret.

use serde::Serialize;
use serde_json::{json, Value};

use crate::http::EdgeRequest;

fn line(level: &str, request_id: &str, message: &str, fields: Value) -> String {
    let mut object = json!({ "level": level, "request_id": request_id, "message": message });
    if let (Some(object), Value::Object(fields)) = (object.as_object_mut(), fields) {
        object.extend(fields);
    }
    object.to_string()
}

/// Which answers get an access line (ACCESS_LOG). Every request is already in Cloudflare's own
/// invocation log (method, URL, status, CPU and wall time); the Worker's line adds the request id
/// that the origin's lines carry too. It costs a `console.log` (about 80 µs of CPU per request
/// on workerd, measured: a tenth of the cheapest route) and a billed log event, so by default
/// only the answers worth following up get one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AccessLog {
    /// Every answer.
    All,
    /// Answers with status 400 or above (the default).
    #[default]
    Errors,
    /// None (errors of the Worker itself are still logged).
    Off,
}

impl AccessLog {
    pub fn parse(value: &str) -> Result<Self, &'static str> {
        match value.trim() {
            "all" => Ok(Self::All),
            "errors" => Ok(Self::Errors),
            "off" => Ok(Self::Off),
            _ => Err("must be all, errors or off"),
        }
    }

    /// Whether an answer with `status` gets an access line.
    pub fn logs(self, status: u16) -> bool {
        match self {
            Self::All => true,
            Self::Errors => status >= 400,
            Self::Off => false,
        }
    }
}

/// The access log line of one request, serialized straight from a struct (no JSON tree).
pub fn answered(request_id: &str, request: &EdgeRequest, status: u16, duration_ms: u64) {
    worker::console_log!("{}", access_line(request_id, request, status, duration_ms));
}

#[derive(Serialize)]
struct AccessLine<'a> {
    level: &'static str,
    request_id: &'a str,
    message: &'static str,
    method: &'a str,
    path: &'a str,
    status: u16,
    duration_ms: u64,
}

fn access_line(request_id: &str, request: &EdgeRequest, status: u16, duration_ms: u64) -> String {
    let line = AccessLine {
        level: "info",
        request_id,
        message: "answered",
        method: &request.method,
        path: &request.path,
        status,
        duration_ms,
    };
    serde_json::to_string(&line).unwrap_or_default()
}

pub fn error(request_id: &str, message: &str, error: &str) {
    worker::console_error!(
        "{}",
        line("error", request_id, message, json!({ "error": error }))
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_lines_follow_the_setting() {
        let statuses = [200, 204, 301, 400, 401, 429, 500, 503];
        let logged = |setting: &str| -> Vec<u16> {
            let policy = AccessLog::parse(setting).unwrap();
            statuses.into_iter().filter(|s| policy.logs(*s)).collect()
        };
        assert_eq!(logged("all"), statuses);
        assert_eq!(logged("errors"), [400, 401, 429, 500, 503]);
        assert_eq!(logged(" off "), Vec::<u16>::new());
        assert_eq!(AccessLog::default(), AccessLog::Errors);
        assert!(AccessLog::parse("ALL").is_err() && AccessLog::parse("").is_err());
    }

    #[test]
    fn one_json_object_with_the_request_id() {
        let text = line(
            "info",
            "abc",
            "answered",
            json!({"status": 200, "path": "/x"}),
        );
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            parsed,
            json!({"level": "info", "request_id": "abc", "message": "answered", "status": 200, "path": "/x"})
        );
        assert!(!text.contains('\n'));
    }

    #[test]
    fn access_line_names_the_request_and_escapes_it() {
        let request = EdgeRequest {
            method: "GET".into(),
            path: "/api/\"x\"".into(),
            query: Some("secret=1".into()),
            public_base: "https://api.example.com".into(),
            origin_header: None,
            authorization: Some("Bearer abc.def.ghi".into()),
            cf_connecting_ip: None,
            user_agent: None,
            content_type: None,
            body: crate::http::RequestBody::Read(b"{\"password\":\"pw\"}".to_vec()),
        };
        let text = access_line("r1", &request, 401, 3);
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            parsed,
            json!({"level": "info", "request_id": "r1", "message": "answered", "method": "GET",
                   "path": "/api/\"x\"", "status": 401, "duration_ms": 3})
        );
        for secret in ["secret=1", "abc.def", "password"] {
            assert!(!text.contains(secret), "{text}");
        }
    }
}
