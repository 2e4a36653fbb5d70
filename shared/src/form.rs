//! Reading a JSON request body the way DRF serializers do: every field is checked, every
//! problem is reported under its field name, and nothing is parsed further than needed.
//!
//! Typed `serde` structs would answer a missing field with a parse error for the whole body;
//! DRF clients expect `{"email": ["This field is required."]}` instead, so bodies are read
//! through this small form reader.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use crate::validate::{max_length_message, MSG_BLANK};

/// `{"field": ["message", ...]}`, with cross-field errors under `non_field_errors`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"password": ["This password is too common."]})))]
#[serde(transparent)]
pub struct FieldErrors(BTreeMap<String, Vec<String>>);

impl FieldErrors {
    pub fn single(field: &str, message: impl Into<String>) -> Self {
        let mut errors = Self::default();
        errors.add(field, message);
        errors
    }

    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_default()
            .push(message.into());
    }

    pub fn extend(&mut self, field: &str, messages: impl IntoIterator<Item = String>) {
        for m in messages {
            self.add(field, m);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, field: &str) -> Option<&[String]> {
        self.0.get(field).map(Vec::as_slice)
    }
}

pub const MSG_REQUIRED: &str = "This field is required.";
pub const MSG_NULL: &str = "This field may not be null.";
pub const MSG_NOT_STRING: &str = "Not a valid string.";
/// Django's `ProhibitNullCharactersValidator`, which DRF's `CharField` runs: PostgreSQL cannot
/// store U+0000 in `text` (SQLSTATE 22021), so such a value must be a field error, never a 500.
/// It is the only code point a JSON string can carry that PostgreSQL refuses: `serde_json`
/// already refuses lone surrogates as a parse error.
pub const MSG_NULL_CHARACTER: &str = "Null characters are not allowed.";

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

    /// Whether the body has `name` (any value, null included).
    pub fn has(&self, name: &str) -> bool {
        self.fields.contains_key(name)
    }

    /// Record an error found by a later check (a validator, a uniqueness test).
    pub fn error(&mut self, name: &str, message: impl Into<String>) {
        self.errors.add(name, message);
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
            Value::String(s) if s.contains('\0') => {
                self.errors.add(name, MSG_NULL_CHARACTER);
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

/// A request body that reads itself from a JSON object with DRF's field rules (every field
/// checked, every problem reported under its name). The same struct derives the OpenAPI schema
/// (feature `openapi`), and `origin/tests/openapi.rs` checks the published schema against
/// [`FromForm::parse`]: required fields, nullability and length limits cannot drift apart.
pub trait FromForm: Sized {
    /// Reads every field, recording each refusal in `form`; `None` when a required field was
    /// refused. A value may come back although an optional field was refused: callers finish
    /// the form (as [`FromForm::parse`] does) before using it.
    fn read(form: &mut Form<'_>) -> Option<Self>;

    /// The body as `Self`, or every field error.
    fn parse(body: &Value) -> Result<Self, FieldErrors> {
        let mut form = Form::new(body)?;
        let value = Self::read(&mut form);
        form.finish()?;
        // `read` returns `None` only after recording an error, so this is not reached.
        value.ok_or_else(|| FieldErrors::single("non_field_errors", "Invalid data."))
    }
}

/// Djoser's `PasswordRetypeSerializer` fields of a reset confirm: `new_password` and
/// `re_new_password`, both required, and equal (the mismatch reported under
/// `re_new_password`). The password policy is checked by the origin, which knows the account.
pub fn new_password_pair(form: &mut Form<'_>) -> Option<String> {
    use crate::validate::{MSG_PASSWORD_MISMATCH, PASSWORD_MAX_CHARS};
    let new_password = form.required("new_password", PASSWORD_MAX_CHARS);
    let re_new_password = form.required("re_new_password", PASSWORD_MAX_CHARS);
    match (new_password, re_new_password) {
        (Some(a), Some(b)) if a == b => Some(a),
        (Some(_), Some(_)) => {
            form.error("re_new_password", MSG_PASSWORD_MISMATCH);
            None
        }
        _ => None,
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
        assert!(form.finish().is_ok());
    }

    #[test]
    fn null_characters_are_a_field_error_wherever_they_stand() {
        let body = json!({
            "a": "\u{0}",
            "b": "ada\u{0}@example.com",
            "c": " x\u{0}",
            "d": "\u{0}",
            "e": "fine",
        });
        let mut form = Form::new(&body).unwrap();
        assert_eq!(form.required("a", 10), None);
        assert_eq!(form.required("b", 100), None);
        assert_eq!(form.optional("c", 10, true), None);
        assert_eq!(form.optional("d", 10, true), None);
        assert_eq!(form.required("e", 10).as_deref(), Some("fine"));
        let errors = serde_json::to_value(form.finish().unwrap_err()).unwrap();
        for field in ["a", "b", "c", "d"] {
            assert_eq!(errors[field], json!([MSG_NULL_CHARACTER]), "{field}");
        }
        assert!(errors.get("e").is_none());
    }

    #[test]
    fn new_password_pair_must_match() {
        let body = json!({"new_password": "58203917", "re_new_password": "58203917"});
        let mut form = Form::new(&body).unwrap();
        assert_eq!(new_password_pair(&mut form).as_deref(), Some("58203917"));
        assert!(form.finish().is_ok());
        let body = json!({"new_password": "58203917", "re_new_password": "58203918"});
        let mut form = Form::new(&body).unwrap();
        assert_eq!(new_password_pair(&mut form), None);
        assert_eq!(
            serde_json::to_value(form.finish().unwrap_err()).unwrap(),
            json!({"re_new_password": [crate::validate::MSG_PASSWORD_MISMATCH]})
        );
        let body = json!({"re_new_password": "x"});
        let mut form = Form::new(&body).unwrap();
        assert_eq!(new_password_pair(&mut form), None);
        assert_eq!(
            serde_json::to_value(form.finish().unwrap_err()).unwrap(),
            json!({"new_password": [MSG_REQUIRED]})
        );
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
