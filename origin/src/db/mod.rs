//! The connection pool, the embedded migrations, and how statements reach the server.

use std::future::Future;
use std::ops::{Deref, DerefMut};

use anyhow::Context;
use deadpool_postgres::{
    GenericClient, Manager, ManagerConfig, PoolError, RecyclingMethod, Runtime,
};
use secrecy::ExposeSecret;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Error, GenericClient as _, Row, Statement};

use crate::config::DatabaseArgs;
pub use crate::config::Statements;

mod migrations;

pub use migrations::{migrate, ready, status, MigrationStatus};

/// The pool, with TLS as DATABASE_URL's `sslmode` says (`crate::tls::postgres`), and its connections
/// sending statements as DATABASE_STATEMENTS says.
pub fn pool(args: &DatabaseArgs) -> anyhow::Result<Pool> {
    let target = crate::tls::postgres::parse(args.database_url.expose_secret())?;
    let connector =
        crate::tls::postgres::connector(&target).context("DATABASE_URL's TLS settings")?;
    let manager = Manager::from_config(
        target.config,
        connector,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let inner = deadpool_postgres::Pool::builder(manager)
        .max_size(args.database_pool_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(std::time::Duration::from_secs(5)))
        .create_timeout(Some(std::time::Duration::from_secs(5)))
        .build()
        .context("building the database pool")?;
    Ok(Pool {
        inner,
        statements: args.database_statements,
        migration_lock_timeout: args.migration_lock_timeout,
    })
}

/// The deadpool pool and the statement mode every connection taken from it uses.
#[derive(Clone)]
pub struct Pool {
    inner: deadpool_postgres::Pool,
    statements: Statements,
    /// MIGRATION_LOCK_TIMEOUT, in seconds.
    migration_lock_timeout: u64,
}

impl Pool {
    /// A pooled connection.
    pub async fn get(&self) -> Result<Client, PoolError> {
        Ok(Client {
            inner: self.inner.get().await?,
            statements: self.statements,
        })
    }
}

/// For what does not run statements (`status()` for the metrics).
impl Deref for Pool {
    type Target = deadpool_postgres::Pool;
    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

/// A pooled connection; [`Sql`] runs statements on it.
pub struct Client {
    inner: deadpool_postgres::Object,
    statements: Statements,
}

impl Client {
    pub async fn transaction(&mut self) -> Result<Transaction<'_>, Error> {
        Ok(Transaction {
            inner: self.inner.transaction().await?,
            statements: self.statements,
        })
    }
}

/// The driver's connection as it is: for refinery (whose statements run in transactions, which
/// any pooler keeps on one server connection) and `batch_execute`; parameterised statements go
/// through [`Sql`].
impl Deref for Client {
    type Target = deadpool_postgres::Object;
    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl DerefMut for Client {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.inner
    }
}

/// A transaction on a pooled connection; [`Sql`] runs statements in it.
pub struct Transaction<'a> {
    inner: deadpool_postgres::Transaction<'a>,
    statements: Statements,
}

impl Transaction<'_> {
    pub async fn commit(self) -> Result<(), Error> {
        self.inner.commit().await
    }

    pub async fn rollback(self) -> Result<(), Error> {
        self.inner.rollback().await
    }
}

/// A parameter with its PostgreSQL type. Both modes bind the same types, so a statement that
/// works in one works in the other.
pub type Param<'a> = (&'a (dyn ToSql + Sync), Type);

/// Runs parameterised statements as DATABASE_STATEMENTS says: `named` prepares each statement
/// once per connection (cached, with the given parameter types) and executes it by name;
/// `unnamed` sends it with its parameters in one round trip on the unnamed statement, which
/// PgBouncer's transaction pooling (before 1.21) does not break: nothing outlives the statement.
pub trait Sql: Sync {
    fn query(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> impl Future<Output = Result<Vec<Row>, Error>> + Send;

    /// Exactly one row (an error otherwise).
    fn query_one(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> impl Future<Output = Result<Row, Error>> + Send;

    /// At most one row (an error if more).
    fn query_opt(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> impl Future<Output = Result<Option<Row>, Error>> + Send;

    /// The number of rows affected.
    fn execute(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> impl Future<Output = Result<u64, Error>> + Send;
}

/// A connection or transaction as both drivers see it: deadpool's (statement cache) and
/// tokio-postgres's (`*_typed`).
trait Conn: GenericClient + Send {
    type Pg: tokio_postgres::GenericClient + Sync;
    fn pg(&self) -> &Self::Pg;
}

impl Conn for deadpool_postgres::Object {
    type Pg = tokio_postgres::Client;
    fn pg(&self) -> &Self::Pg {
        self
    }
}

impl<'a> Conn for deadpool_postgres::Transaction<'a> {
    type Pg = tokio_postgres::Transaction<'a>;
    fn pg(&self) -> &Self::Pg {
        self
    }
}

/// The cached named statement, prepared with the parameters' types, and the bare values.
async fn named<'p>(
    client: &impl Conn,
    sql: &str,
    params: &'p [Param<'p>],
) -> Result<(Statement, Vec<&'p (dyn ToSql + Sync)>), Error> {
    let types: Vec<Type> = params.iter().map(|(_, ty)| ty.clone()).collect();
    let statement = client.prepare_typed_cached(sql, &types).await?;
    Ok((statement, params.iter().map(|(value, _)| *value).collect()))
}

async fn query(
    client: &impl Conn,
    statements: Statements,
    sql: &str,
    params: &[Param<'_>],
) -> Result<Vec<Row>, Error> {
    match statements {
        Statements::Named => {
            let (statement, values) = named(client, sql, params).await?;
            client.query(&statement, &values).await
        }
        Statements::Unnamed => client.pg().query_typed(sql, params).await,
    }
}

async fn query_one(
    client: &impl Conn,
    statements: Statements,
    sql: &str,
    params: &[Param<'_>],
) -> Result<Row, Error> {
    match statements {
        Statements::Named => {
            let (statement, values) = named(client, sql, params).await?;
            client.query_one(&statement, &values).await
        }
        Statements::Unnamed => client.pg().query_typed_one(sql, params).await,
    }
}

async fn query_opt(
    client: &impl Conn,
    statements: Statements,
    sql: &str,
    params: &[Param<'_>],
) -> Result<Option<Row>, Error> {
    match statements {
        Statements::Named => {
            let (statement, values) = named(client, sql, params).await?;
            client.query_opt(&statement, &values).await
        }
        Statements::Unnamed => client.pg().query_typed_opt(sql, params).await,
    }
}

async fn execute(
    client: &impl Conn,
    statements: Statements,
    sql: &str,
    params: &[Param<'_>],
) -> Result<u64, Error> {
    match statements {
        Statements::Named => {
            let (statement, values) = named(client, sql, params).await?;
            client.execute(&statement, &values).await
        }
        Statements::Unnamed => client.pg().execute_typed(sql, params).await,
    }
}

macro_rules! sql_via_conn {
    ($type:ty) => {
        impl Sql for $type {
            fn query(
                &self,
                sql: &str,
                params: &[Param<'_>],
            ) -> impl Future<Output = Result<Vec<Row>, Error>> + Send {
                query(&self.inner, self.statements, sql, params)
            }

            fn query_one(
                &self,
                sql: &str,
                params: &[Param<'_>],
            ) -> impl Future<Output = Result<Row, Error>> + Send {
                query_one(&self.inner, self.statements, sql, params)
            }

            fn query_opt(
                &self,
                sql: &str,
                params: &[Param<'_>],
            ) -> impl Future<Output = Result<Option<Row>, Error>> + Send {
                query_opt(&self.inner, self.statements, sql, params)
            }

            fn execute(
                &self,
                sql: &str,
                params: &[Param<'_>],
            ) -> impl Future<Output = Result<u64, Error>> + Send {
                execute(&self.inner, self.statements, sql, params)
            }
        }
    };
}

sql_via_conn!(Client);
sql_via_conn!(Transaction<'_>);

/// A pooled connection holding a session-level advisory lock (the migrations', the
/// janitor's). [`AdvisoryLock::release`] unlocks it and gives the connection back to the pool;
/// dropped before that (an error, or the future dropped), the connection leaves the pool, and
/// closing it ends the session and the lock with it: it never serves another request holding
/// the lock.
pub(crate) struct AdvisoryLock {
    key: i64,
    client: Option<Client>,
}

impl AdvisoryLock {
    /// Waits for the lock `key`.
    pub(crate) async fn acquire(client: Client, key: i64) -> anyhow::Result<Self> {
        client
            .execute("SELECT pg_advisory_lock($1)", &[(&key, Type::INT8)])
            .await?;
        Ok(Self {
            key,
            client: Some(client),
        })
    }

    /// The lock `key` if it is free now; `None` if another session holds it.
    pub(crate) async fn try_acquire(client: Client, key: i64) -> anyhow::Result<Option<Self>> {
        let locked: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[(&key, Type::INT8)])
            .await?
            .get(0);
        Ok(locked.then(|| Self {
            key,
            client: Some(client),
        }))
    }

    pub(crate) fn client(&mut self) -> &mut Client {
        self.client.as_mut().expect("held until released")
    }

    /// Unlocks; the connection goes back to the pool.
    pub(crate) async fn release(mut self) -> anyhow::Result<()> {
        let key = self.key;
        self.client()
            .execute("SELECT pg_advisory_unlock($1)", &[(&key, Type::INT8)])
            .await?;
        drop(self.client.take());
        Ok(())
    }
}

impl Drop for AdvisoryLock {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            drop(deadpool_postgres::Object::take(client.inner));
        }
    }
}

/// Whether a database error is a unique-constraint violation on the named index.
pub fn is_unique_violation(e: &tokio_postgres::Error, constraint: &str) -> bool {
    e.as_db_error().is_some_and(|db| {
        *db.code() == tokio_postgres::error::SqlState::UNIQUE_VIOLATION
            && db.constraint() == Some(constraint)
    })
}
