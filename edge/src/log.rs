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
