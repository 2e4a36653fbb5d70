//! Used password-reset tokens.

use deadpool_postgres::GenericClient;

/// Records `jti` as used; false when it already was (single use, race-free by primary key).
pub async fn consume(
    client: &impl GenericClient,
    jti: &str,
    user_id: i64,
) -> Result<bool, tokio_postgres::Error> {
    let stmt = client
        .prepare_cached("INSERT INTO password_resets (jti, user_id) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING")
        .await?;
    Ok(client.execute(&stmt, &[&jti, &user_id]).await? == 1)
}

pub async fn is_used(
    client: &impl GenericClient,
    jti: &str,
) -> Result<bool, tokio_postgres::Error> {
    let stmt = client
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM password_resets WHERE jti = $1)")
        .await?;
    Ok(client.query_one(&stmt, &[&jti]).await?.get(0))
}
