//! Closed-loop load: `--concurrency` workers each send one request at a time for `--seconds`,
//! after a warm-up, and the run prints one JSON line with throughput and latency percentiles.
//!
//! Both targets speak the same JSON shapes (`bench/seed/server.js` adapts the seed library to
//! them): create `{user_id}`, refresh `{refresh_token}` (each worker follows its own rotation
//! chain), verify `{access_token, anti_csrf_token}`.

use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Target {
    Latch,
    Seed,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Operation {
    Create,
    Refresh,
    Verify,
}

#[derive(Parser, Debug)]
#[command(about = "Closed-loop load against Latch's origin or the seed library")]
struct Args {
    #[arg(long, value_enum)]
    target: Target,
    #[arg(long, value_enum)]
    operation: Operation,
    #[arg(long)]
    base_url: String,
    #[arg(long, default_value = "")]
    api_key: String,
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(long, default_value_t = 2)]
    warmup_seconds: u64,
    /// Latch only: creates carry a device report and a client address, as the edge sends them
    /// ("your devices"), so their parsing and storage are measured.
    #[arg(long)]
    device: bool,
    /// The name the run is reported under (default: the target's).
    #[arg(long)]
    label: Option<String>,
}

struct Client {
    http: reqwest::Client,
    args: Args,
}

impl Client {
    fn path(&self, operation: Operation) -> &'static str {
        match (self.args.target, operation) {
            (Target::Latch, Operation::Create) => "/v1/sessions",
            (Target::Latch, Operation::Refresh) => "/v1/sessions/refresh",
            (Target::Latch, Operation::Verify) => "/v1/sessions/verify",
            (Target::Seed, Operation::Create) => "/create",
            (Target::Seed, Operation::Refresh) => "/refresh",
            (Target::Seed, Operation::Verify) => "/verify",
        }
    }

    async fn call(&self, operation: Operation, mut body: Value) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .post(format!("{}{}", self.args.base_url, self.path(operation)))
            .bearer_auth(&self.args.api_key);
        if self.args.device && matches!(operation, Operation::Create) {
            body["device"] = json!({
                "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
                    (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
                "country": "FR",
                "region": "Île-de-France",
                "city": "Paris",
            });
            request = request.header("x-latch-client-address", "203.0.113.77");
        }
        let response = request.json(&body).send().await?;
        let status = response.status();
        let body: Value = response.json().await?;
        anyhow::ensure!(status.is_success(), "{status}: {body}");
        Ok(body)
    }

    /// Normalises both targets' create/refresh answers to (access, refresh, anti-csrf).
    fn tokens(&self, body: &Value) -> (String, String, Value) {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        match self.args.target {
            Target::Latch => (
                text(&body["tokens"]["access_token"]["value"]),
                text(&body["tokens"]["refresh_token"]["value"]),
                body["tokens"]["anti_csrf_token"].clone(),
            ),
            Target::Seed => (
                text(&body["access_token"]),
                text(&body["refresh_token"]),
                body["anti_csrf_token"].clone(),
            ),
        }
    }
}

async fn worker(
    client: std::sync::Arc<Client>,
    id: usize,
    start: Instant,
    end: Instant,
) -> anyhow::Result<(Vec<u32>, u64)> {
    let op = client.args.operation;
    let created = client.call(Operation::Create, json!({"user_id": format!("bench-{id}")})).await?;
    let (access, mut refresh, anti_csrf) = client.tokens(&created);
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut n = 0u64;
    while Instant::now() < end {
        n += 1;
        let body = match op {
            Operation::Create => json!({"user_id": format!("bench-{id}-{n}")}),
            Operation::Refresh => json!({"refresh_token": refresh}),
            Operation::Verify => json!({"access_token": access, "anti_csrf_token": anti_csrf}),
        };
        let sent = Instant::now();
        match client.call(op, body).await {
            Ok(answer) => {
                if let Operation::Refresh = op {
                    refresh = client.tokens(&answer).1;
                }
                if sent >= start {
                    latencies.push(sent.elapsed().as_micros() as u32);
                }
            }
            Err(err) => {
                errors += 1;
                if errors <= 3 {
                    eprintln!("worker {id}: {err}");
                }
            }
        }
    }
    Ok((latencies, errors))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .timeout(Duration::from_secs(10))
        .build()?;
    let start = Instant::now() + Duration::from_secs(args.warmup_seconds);
    let end = start + Duration::from_secs(args.seconds);
    let client = std::sync::Arc::new(Client { http, args });
    let workers: Vec<_> = (0..client.args.concurrency)
        .map(|id| tokio::spawn(worker(client.clone(), id, start, end)))
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for worker in workers {
        let (mut l, e) = worker.await??;
        latencies.append(&mut l);
        errors += e;
    }
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |us| *us as f64 / 1000.0)
    };
    let args = &client.args;
    println!(
        "{}",
        json!({
            "target": args.label.clone().unwrap_or_else(|| format!("{:?}", args.target).to_lowercase()),
            "operation": format!("{:?}", args.operation).to_lowercase(),
            "concurrency": args.concurrency,
            "seconds": args.seconds,
            "requests": latencies.len(),
            "errors": errors,
            "rps": latencies.len() as f64 / args.seconds as f64,
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
        })
    );
    Ok(())
}
