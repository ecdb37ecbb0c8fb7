//! How long session creates wait while expired sessions are purged, on the embedded SQLite.
//!
//! For each way of purging — the origin's batched purge, and one `DELETE` over every expired
//! row (what the origin did before) — the bench fills a fresh database with `--expired`
//! expired sessions, then purges while one task creates sessions back to back, and reports the
//! purge's duration and the creates' latencies (median and worst) as one JSON line each.

use std::time::{Duration, Instant};

use clap::Parser;
use latch_origin::clock::Clock;
use latch_origin::config::Config;
use latch_shared::api::{CreateSessionRequest, UserId};
use serde_json::json;

#[derive(Parser, Debug)]
#[command(about = "Create latency during a purge of expired sessions, on SQLite")]
struct Args {
    /// Expired sessions to purge.
    #[arg(long, default_value_t = 200_000)]
    expired: i64,
    /// Directory for the throwaway databases.
    #[arg(long, default_value = "target/purge-bench")]
    dir: std::path::PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    for batched in [true, false] {
        std::fs::create_dir_all(&args.dir)?;
        let path = args.dir.join(format!("purge-{batched}.db"));
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        let config = Config::for_tests(&format!("sqlite://{}?mode=rwc", path.display()));
        let state = latch_origin::build(&config, Clock::default()).await?;
        let sessions = state.sessions.clone();
        let now = sessions.now_ms();
        let mut inserted = 0;
        while inserted < args.expired {
            let mut tx = sessions.pool().begin().await?;
            for n in inserted..(inserted + 10_000).min(args.expired) {
                sqlx::query(
                    "INSERT INTO sessions (handle, user_id, current_hash, created_at, expires_at) \
                     VALUES ($1, 'old', 'x', $2, $3)",
                )
                .bind(format!("expired-{n}"))
                .bind(now - 10_000)
                .bind(now - 1)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            inserted = (inserted + 10_000).min(args.expired);
        }

        let creator = sessions.clone();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop_creating = stop.clone();
        let creates = tokio::spawn(async move {
            let mut latencies = Vec::new();
            while !stop_creating.load(std::sync::atomic::Ordering::Relaxed) {
                let started = Instant::now();
                let request = CreateSessionRequest {
                    user_id: UserId::Text("creator".into()),
                    jwt_payload: None,
                    session_info: None,
                    device: None,
                };
                creator.create(request, None).await.expect("a create succeeds");
                latencies.push(started.elapsed());
            }
            latencies
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = Instant::now();
        let purged = if batched {
            sessions.purge_expired().await.map_err(|err| anyhow::anyhow!("{err:?}"))?
        } else {
            sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
                .bind(now)
                .execute(sessions.pool())
                .await?
                .rows_affected()
        };
        let purge_ms = started.elapsed().as_secs_f64() * 1000.0;
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut latencies = creates.await?;
        latencies.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{}",
            json!({
                "purge": if batched { "batched" } else { "one statement" },
                "expired": args.expired,
                "purged": purged,
                "purge_ms": purge_ms,
                "creates": latencies.len(),
                "create_p50_ms": ms(latencies[latencies.len() / 2]),
                "create_max_ms": ms(*latencies.last().unwrap()),
            })
        );
    }
    Ok(())
}
