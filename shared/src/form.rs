//! Reading a JSON request body the way DRF serializers do: every field is checked, every
//! problem is reported under its field name, and nothing is parsed further than needed.
//!
//! Typed `serde` structs would answer a missing field with a parse error for the whole body;
//! DRF clients expect `{"email": ["This field is required."]}` instead, so bodies are read
//! through this small form reader.

use serde_json::{Map, Value};

use crate::api::FieldErrors;

pub const MSG_REQUIRED: &str = "This field is required.";
pub const MSG_NULL: &str = "This field may not be null.";
pub const MSG_BLANK: &str = "This field may not be blank.";
pub const MSG_NOT_STRING: &str = "Not a valid string.";

pub fn max_length_message(max: usize) -> String {
    format!("Ensure this field has no more than {max} characters.")
}

pub fn min_length_message(min: usize) -> String {
    format!("Ensure this field has at least {min} characters.")
}

/// Whether a `Content-Type` value names JSON (`application/json`, any parameters, any case),
/// the only media type the API parses (DRF's `JSONParser`).
pub fn is_json_media_type(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case("application/json")
}

/// DRF's answer when the body is JSON but not an object.
pub fn not_a_dict_message(value: &Value) -> String {
    let kind = match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    };
    format!("Invalid data. Expected a dictionary, but got {kind}.")
}

/// A JSON object being read field by field, collecting DRF-shaped errors.
pub struct Form<'a> {
    fields: &'a Map<String, Value>,
    errors: FieldErrors,
}

impl<'a> Form<'a> {
    /// The body must be a JSON object; anything else is a `non_field_errors` error.
    pub fn new(body: &'a Value) -> Result<Self, FieldErrors> {
        match body {
            Value::Object(fields) => Ok(Self {
                fields,
                errors: FieldErrors::default(),
            }),
            other => Err(FieldErrors::single(
                "non_field_errors",
                not_a_dict_message(other),
            )),
        }
    }

    /// A required string (DRF `CharField`: trimmed, not blank, at most `max` characters).
    pub fn required(&mut self, name: &str, max: usize) -> Option<String> {
        match self.fields.get(name) {
            None => {
                self.errors.add(name, MSG_REQUIRED);
                None
            }
            Some(value) => self.string(name, value, max, false),
        }
    }

    /// An optional string: absent is `None`; present must be valid (blank allowed when
    /// `allow_blank`, as for first/last names).
    pub fn optional(&mut self, name: &str, max: usize, allow_blank: bool) -> Option<String> {
        let value = self.fields.get(name)?;
        self.string(name, value, max, allow_blank)
    }

    /// Whether the body mentions `name` at all (for read-only fields a client tries to write).
    pub fn has(&self, name: &str) -> bool {
        self.fields.contains_key(name)
    }

    /// Record an error found by a later check (a validator, a uniqueness test).
    pub fn error(&mut self, name: &str, message: impl Into<String>) {
        self.errors.add(name, message);
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// Ok when no field had an error.
    pub fn finish(self) -> Result<(), FieldErrors> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self.errors)
        }
    }

    fn string(
        &mut self,
        name: &str,
        value: &Value,
        max: usize,
        allow_blank: bool,
    ) -> Option<String> {
        let text = match value {
            Value::Null => {
                self.errors.add(name, MSG_NULL);
                return None;
            }
            Value::String(s) => s.trim().to_owned(),
            // DRF's CharField accepts numbers (and renders them as text), not booleans.
            Value::Number(n) => n.to_string(),
            _ => {
                self.errors.add(name, MSG_NOT_STRING);
                return None;
            }
        };
        if text.is_empty() && !allow_blank {
            self.errors.add(name, MSG_BLANK);
            return None;
        }
        if text.chars().count() > max {
            self.errors.add(name, max_length_message(max));
            return None;
        }
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn required_field_errors_like_drf() {
        let body = json!({"b": null, "c": "  ", "d": true, "e": "x".repeat(11), "f": 12345678});
        let mut form = Form::new(&body).unwrap();
        assert_eq!(form.required("a", 10), None);
        assert_eq!(form.required("b", 10), None);
        assert_eq!(form.required("c", 10), None);
        assert_eq!(form.required("d", 10), None);
        assert_eq!(form.required("e", 10), None);
        assert_eq!(form.required("f", 10).as_deref(), Some("12345678"));
        let errors = form.finish().unwrap_err();
        assert_eq!(
            serde_json::to_value(&errors).unwrap(),
            json!({
                "a": [MSG_REQUIRED],
                "b": [MSG_NULL],
                "c": [MSG_BLANK],
                "d": [MSG_NOT_STRING],
                "e": ["Ensure this field has no more than 10 characters."],
            })
        );
    }

    #[test]
    fn optional_fields() {
        let body = json!({"first_name": "", "last_name": " Doe "});
        let mut form = Form::new(&body).unwrap();
        assert_eq!(form.optional("username", 150, false), None);
        assert_eq!(form.optional("first_name", 150, true).as_deref(), Some(""));
        assert_eq!(
            form.optional("last_name", 150, true).as_deref(),
            Some("Doe")
        );
        assert!(form.has("first_name") && !form.has("role"));
        assert!(form.finish().is_ok());
    }

    #[test]
    fn json_media_type() {
        assert!(is_json_media_type("application/json"));
        assert!(is_json_media_type("Application/JSON; charset=utf-8"));
        assert!(!is_json_media_type("text/plain"));
        assert!(!is_json_media_type("application/jsonp"));
        assert!(!is_json_media_type(""));
    }

    #[test]
    fn non_object_bodies() {
        for (body, kind) in [
            (json!([1]), "list"),
            (json!("x"), "str"),
            (json!(1), "int"),
            (json!(1.5), "float"),
            (json!(null), "NoneType"),
            (json!(true), "bool"),
        ] {
            let errors = Form::new(&body).err().unwrap();
            assert_eq!(
                serde_json::to_value(&errors).unwrap(),
                json!({"non_field_errors": [format!("Invalid data. Expected a dictionary, but got {kind}.")]})
            );
        }
    }
}
