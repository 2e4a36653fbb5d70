//! Structured logs: one JSON object per line on the Worker's console (`wrangler tail`, Workers
//! Logs, Logpush), with the request id the origin logs too. Only fixed messages, the method and
//! path (never the query string, headers or bodies) and error descriptions go in: never a
//! token, password, code or secret.

use serde_json::{json, Value};

fn line(level: &str, request_id: &str, message: &str, fields: Value) -> String {
    let mut object = json!({ "level": level, "request_id": request_id, "message": message });
    if let (Some(object), Value::Object(fields)) = (object.as_object_mut(), fields) {
        object.extend(fields);
    }
    object.to_string()
}

pub fn info(request_id: &str, message: &str, fields: Value) {
    worker::console_log!("{}", line("info", request_id, message, fields));
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
}
