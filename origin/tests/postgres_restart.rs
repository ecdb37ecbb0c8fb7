//! Postgres restarted under load: the service recovers by itself and loses no committed session.
//! Needs the throwaway cluster of `scripts/test.sh` (it restarts it), so it skips against an
//! external `DATABASE_URL`.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::*;

fn restart_postgres(dir: &str) {
    let pg_ctl = std::process::Command::new("pg_config")
        .arg("--bindir")
        .output()
        .map(|out| format!("{}/pg_ctl", String::from_utf8_lossy(&out.stdout).trim()))
        .unwrap_or_else(|_| "/usr/lib/postgresql/15/bin/pg_ctl".into());
    let data = format!("{dir}/data");
    let args = ["-D", data.as_str(), "-m", "fast", "-w", "restart"];
    let is_root = std::process::Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    let status = if is_root {
        std::process::Command::new("runuser")
            .args(["-u", "postgres", "--", &pg_ctl])
            .args(args)
            .stdout(std::process::Stdio::null())
            .status()
    } else {
        std::process::Command::new(&pg_ctl).args(args).stdout(std::process::Stdio::null()).status()
    };
    assert!(status.unwrap().success(), "pg_ctl restart failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_restart_under_load_loses_no_committed_session() {
    let Ok(dir) = std::env::var("LATCH_TEST_PG_DIR") else {
        eprintln!("skipped: no throwaway cluster (LATCH_TEST_PG_DIR) to restart");
        return;
    };
    let store = Store::postgres().await.expect("scripts/test.sh provides Postgres");
    let origin = Arc::new(Origin::start(&store).await);
    let committed: Arc<Mutex<Vec<serde_json::Value>>> = Default::default();
    let failures = Arc::new(Mutex::new(Vec::<(Instant, StatusCode)>::new()));
    let stop = Arc::new(AtomicBool::new(false));

    let workers: Vec<_> = (0..6)
        .map(|worker| {
            let (origin, committed, failures, stop) =
                (origin.clone(), committed.clone(), failures.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let reply = origin
                        .api(
                            axum::http::Method::POST,
                            "/v1/sessions",
                            Some(serde_json::json!({"user_id": format!("load-{worker}-{n}")})),
                        )
                        .await;
                    if reply.status == StatusCode::OK {
                        committed.lock().unwrap().push(reply.body);
                    } else {
                        assert_eq!(reply.error(), "GENERAL_ERROR", "{:?}", reply.body);
                        failures.lock().unwrap().push((Instant::now(), reply.status));
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(700)).await;
    let restarting = Instant::now();
    tokio::task::spawn_blocking(move || restart_postgres(&dir)).await.unwrap();
    let restarted = Instant::now();
    // Keep the load on well past the 2 s the service gets to recover.
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.await.unwrap();
    }

    let failures = failures.lock().unwrap().clone();
    let late: Vec<_> = failures
        .iter()
        .filter(|(at, _)| at.duration_since(restarted) > Duration::from_secs(2))
        .collect();
    assert!(late.is_empty(), "still failing 2 s after the restart: {late:?}");
    eprintln!(
        "restart took {:?}; {} requests failed during it",
        restarted - restarting,
        failures.len()
    );

    let committed = committed.lock().unwrap().clone();
    assert!(committed.len() > 50, "the load ran: {} sessions", committed.len());
    for issued in &committed {
        let reply = origin.verify(&access_token(issued)).await;
        assert_eq!(reply.status, StatusCode::OK, "committed session lost: {:?}", reply.body);
    }
}
