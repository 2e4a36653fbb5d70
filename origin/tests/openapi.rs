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
        ("post", "/api/auth/jwt/create/", "401"),
        ("post", "/api/auth/jwt/refresh/", "401"),
        ("post", "/api/auth/jwt/verify/", "200"),
        ("post", "/api/auth/logout/", "204"),
        ("get", "/api/auth/me/", "200"),
        ("patch", "/api/auth/me/", "400"),
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
