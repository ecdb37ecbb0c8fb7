//! The database: one pool over Postgres or SQLite (sqlx's `Any` driver), and the embedded
//! migrations. The SQL is written once, portably: `$n` placeholders, `RETURNING`, `ON CONFLICT`.

use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::AnyPool;
use sqlx::Executor;

pub type Pool = AnyPool;

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Connects and brings the schema up to date.
pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Pool> {
    sqlx::any::install_default_drivers();
    let is_sqlite = url.starts_with("sqlite:");
    if is_sqlite {
        create_sqlite_parent_dir(url)?;
    }
    let pool = AnyPoolOptions::new()
        // SQLite serialises writers anyway; a few connections keep readers concurrent.
        .max_connections(if is_sqlite { max_connections.min(4) } else { max_connections })
        .acquire_timeout(Duration::from_secs(5))
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                if is_sqlite {
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; \
                         PRAGMA synchronous = NORMAL;",
                    )
                    .await?;
                }
                Ok(())
            })
        })
        .connect(url)
        .await?;
    migrate(&pool, is_sqlite).await?;
    Ok(pool)
}

/// Brings the schema up to date. On Postgres the migrator holds an advisory lock, so instances
/// starting together take turns. SQLite has no such lock: a second instance can find a
/// migration unapplied, wait for the first one's write lock, then fail on what the first one
/// just created. Each migration commits with its record, so asking again sees it applied.
async fn migrate(pool: &Pool, is_sqlite: bool) -> anyhow::Result<()> {
    let mut attempt = 1;
    loop {
        match MIGRATOR.run(pool).await {
            Ok(()) => return Ok(()),
            Err(err) if is_sqlite && attempt < 5 => {
                tracing::debug!(attempt, error = %err, "migration raced another instance; retrying");
                tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                attempt += 1;
            }
            Err(err) => return Err(err.into()),
        }
    }
}

fn create_sqlite_parent_dir(url: &str) -> anyhow::Result<()> {
    let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path.starts_with(':') || path.starts_with("file:") {
        return Ok(());
    }
    if let Some(parent) = std::path::Path::new(path).parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent)?;
        }
    }
    Ok(())
}

/// Whether the database answers.
pub async fn ping(pool: &Pool) -> bool {
    sqlx::query("SELECT 1").execute(pool).await.is_ok()
}
