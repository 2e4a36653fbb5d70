use reqwest::StatusCode;

use crate::helpers::spawn_app;

#[tokio::test]
async fn healthz_and_readyz_answer_unsigned() {
    let app = spawn_app().await;
    let health = app.get_unsigned("/healthz").await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.body["status"], "ok");
    assert_eq!(health.body["version"], origin::VERSION);
    assert_eq!(health.body["commit"], origin::COMMIT);
    let ready = app.get_unsigned("/readyz").await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.body["status"], "ready");
    assert!(ready.headers.contains_key("x-request-id"));
}

#[tokio::test]
async fn readyz_reports_a_missing_migration_as_unavailable() {
    let app = spawn_app().await;
    app.sql("DELETE FROM refinery_schema_history").await;
    let ready = app.get_unsigned("/readyz").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.body["status"], "unavailable");
}

#[tokio::test]
async fn unknown_path_is_a_json_404() {
    let app = spawn_app().await;
    let reply = app.get_unsigned("/nope").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.body["detail"], "Not found.");
}
