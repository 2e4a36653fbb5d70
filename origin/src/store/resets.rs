//! Used password-reset tokens.

use tokio_postgres::types::Type;

use crate::db::Sql;

/// Records `jti` as used; false when it already was (single use, race-free by primary key).
pub async fn consume(
    client: &impl Sql,
    jti: &str,
    user_id: i64,
) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .execute(
            "INSERT INTO password_resets (jti, user_id) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING",
            &[(&jti, Type::TEXT), (&user_id, Type::INT8)],
        )
        .await?
        == 1)
}

pub async fn is_used(client: &impl Sql, jti: &str) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM password_resets WHERE jti = $1)",
            &[(&jti, Type::TEXT)],
        )
        .await?
        .get(0))
}
