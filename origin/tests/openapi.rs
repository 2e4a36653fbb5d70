//! The OpenAPI document the edge serves is generated from the Rust types and must be current.

const SCHEMA_FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../edge/assets/api/schema/index.json"
);

#[test]
fn served_schema_file_is_current() {
    let on_disk = std::fs::read_to_string(SCHEMA_FILE).unwrap_or_default();
    assert!(
        on_disk == origin::openapi::document(),
        "edge/assets/api/schema/index.json is stale: run `cargo run -p origin -- openapi --out edge/assets/api/schema/index.json`"
    );
}

#[test]
fn every_api_md_row_is_documented() {
    let doc: serde_json::Value = serde_json::from_str(&origin::openapi::document()).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let rows = [
        ("post", "/api/auth/users/", "201"),
        ("get", "/api/auth/users/", "403"),
        ("post", "/api/auth/users/activation/", "403"),
        ("post", "/api/auth/users/resend_activation/", "204"),
        ("post", "/api/auth/jwt/create/", "401"),
        ("post", "/api/auth/jwt/refresh/", "401"),
        ("post", "/api/auth/jwt/verify/", "200"),
        ("post", "/api/auth/logout/", "204"),
        ("get", "/api/auth/me/", "200"),
        ("patch", "/api/auth/me/", "400"),
        ("get", "/api/auth/users/me/", "200"),
        ("patch", "/api/auth/users/me/", "400"),
        ("delete", "/api/auth/me/", "204"),
        ("delete", "/api/auth/users/me/", "400"),
        ("post", "/api/auth/users/set_username/", "204"),
        ("post", "/api/auth/users/set_password/", "400"),
        ("get", "/api/auth/sessions/", "200"),
        ("delete", "/api/auth/sessions/{id}/", "404"),
        ("post", "/api/auth/sessions/revoke-others/", "200"),
        ("post", "/api/auth/password/reset/", "200"),
        ("post", "/api/auth/password/reset/verify-otp/", "400"),
        ("post", "/api/auth/password/reset/confirm/", "204"),
        ("get", "/.well-known/jwks.json", "200"),
        ("get", "/api/schema/", "200"),
        ("get", "/swagger/", "200"),
        ("get", "/redoc/", "200"),
    ];
    for (method, path, status) in rows {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} missing");
        assert!(
            op["responses"][status].is_object(),
            "{method} {path} lacks {status}"
        );
    }
    assert_eq!(
        doc["paths"]["/api/auth/me/"]["get"]["security"][0]["bearer"],
        serde_json::json!([])
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(
        doc["paths"]["/api/auth/jwt/create/"]["post"]["responses"]["429"]["headers"]["Retry-After"]
            .is_object()
    );
}

/// Every request body the document publishes and the parser both sides use for it.
type Parse = fn(&serde_json::Value) -> Result<(), shared::api::FieldErrors>;

fn parsers() -> Vec<(&'static str, Parse)> {
    use shared::api::{
        DeleteMeRequest, LoginRequest, PatchMeRequest, RefreshRequest, RegisterRequest,
        ResendActivationRequest, ResetRequest, SetPasswordRequest, SetUsernameRequest,
        VerifyRequest,
    };
    use shared::form::FromForm;
    fn parse<T: FromForm>(body: &serde_json::Value) -> Result<(), shared::api::FieldErrors> {
        T::parse(body).map(|_| ())
    }
    vec![
        ("RegisterRequest", parse::<RegisterRequest>),
        ("LoginRequest", parse::<LoginRequest>),
        ("RefreshRequest", parse::<RefreshRequest>),
        ("VerifyRequest", parse::<VerifyRequest>),
        ("PatchMeRequest", parse::<PatchMeRequest>),
        ("DeleteMeRequest", parse::<DeleteMeRequest>),
        ("SetUsernameRequest", parse::<SetUsernameRequest>),
        ("SetPasswordRequest", parse::<SetPasswordRequest>),
        ("ResetRequest", parse::<ResetRequest>),
        ("ResendActivationRequest", parse::<ResendActivationRequest>),
    ]
}

/// A value the field's own checks accept, `len` characters long.
fn valid(field: &str, len: usize) -> String {
    match field {
        "email" => {
            let domain = "@example.com";
            format!(
                "{}{domain}",
                "a".repeat(len.saturating_sub(domain.len()).max(1))
            )
        }
        _ => "a".repeat(len.max(1)),
    }
}

/// What the published schema says about each request body is what the parser does: a body of
/// every field at its documented maximum is accepted, one character more is refused with DRF's
/// length message; a required field left out is "This field is required.", an optional one is
/// not missed; null is refused unless the schema allows it. A field added to the parser but
/// not documented (or the other way round), or a limit changed on one side only, fails here.
#[test]
fn request_schemas_say_what_the_parsers_accept() {
    use serde_json::{json, Map, Value};
    use shared::form::{max_length_message, MSG_NULL, MSG_REQUIRED};

    let doc: Value = serde_json::from_str(&origin::openapi::document()).unwrap();
    for (name, parse) in parsers() {
        let schema = &doc["components"]["schemas"][name];
        let properties = schema["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{name} has no properties"));
        let required: Vec<&str> = schema["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let max = |field: &str| {
            properties[field]["maxLength"]
                .as_u64()
                .unwrap_or_else(|| panic!("{name}.{field} documents no maxLength"))
                as usize
        };
        let full: Map<String, Value> = properties
            .keys()
            .map(|field| (field.clone(), json!(valid(field, max(field)))))
            .collect();
        assert_eq!(
            parse(&Value::Object(full.clone())),
            Ok(()),
            "{name}: every field at its documented maxLength"
        );
        for field in properties.keys() {
            let mut body = full.clone();
            body.insert(field.clone(), json!(valid(field, max(field) + 1)));
            let errors =
                parse(&Value::Object(body)).expect_err(&format!("{name}.{field} too long"));
            let messages = errors.get(field).unwrap_or_default();
            assert!(
                messages.contains(&max_length_message(max(field))),
                "{name}.{field}: {errors:?}"
            );

            let mut body = full.clone();
            body.remove(field);
            let outcome = parse(&Value::Object(body));
            if required.contains(&field.as_str()) {
                let errors = outcome.expect_err(&format!("{name}.{field} is required"));
                assert_eq!(errors.get(field), Some(&[MSG_REQUIRED.to_owned()][..]));
            } else {
                assert_eq!(outcome, Ok(()), "{name}.{field} is documented as optional");
            }

            let nullable = properties[field]["type"]
                .as_array()
                .is_some_and(|types| types.contains(&json!("null")));
            let mut body = full.clone();
            body.insert(field.clone(), Value::Null);
            let outcome = parse(&Value::Object(body));
            if nullable {
                assert_eq!(outcome, Ok(()), "{name}.{field} is documented as nullable");
            } else {
                let errors = outcome.expect_err(&format!("{name}.{field} null"));
                assert_eq!(errors.get(field), Some(&[MSG_NULL.to_owned()][..]));
            }
        }
        // Nothing the parser requires is missing from the document.
        let errors = parse(&json!({})).err().unwrap_or_default();
        for field in properties.keys() {
            let required_by_parser = errors.get(field).is_some();
            assert_eq!(
                required_by_parser,
                required.contains(&field.as_str()),
                "{name}.{field}: required by the parser vs the document"
            );
        }
    }
}
