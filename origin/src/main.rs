use clap::Parser;
use latch_origin::config::{redact_url, Command, Config, Options};
use latch_origin::{build, routes, shutdown_pair, spawn_background_jobs};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let options = match Options::parse().with_file() {
        Ok(options) => options,
        Err(err) => {
            eprintln!("latch-origin: {err}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Some(Command::Healthcheck) = options.command {
        return healthcheck(&options).await;
    }
    let config = match Config::from_options(options) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("latch-origin: {err}");
            return std::process::ExitCode::from(2);
        }
    };
    init_logging(config.json_logs);
    match run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "latch-origin stopped");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `latch-origin healthcheck`: GET /readyz on this configuration's address.
async fn healthcheck(options: &Options) -> std::process::ExitCode {
    let Ok(mut address) = options.listen().parse::<std::net::SocketAddr>() else {
        eprintln!("latch-origin healthcheck: listen is not an address");
        return std::process::ExitCode::from(2);
    };
    if address.ip().is_unspecified() {
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(2))
        .build()
        .expect("the HTTP client builds");
    match client.get(format!("http://{address}/readyz")).send().await {
        Ok(response) if response.status().is_success() => std::process::ExitCode::SUCCESS,
        Ok(response) => {
            eprintln!("latch-origin healthcheck: /readyz answered {}", response.status());
            std::process::ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("latch-origin healthcheck: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging(json: bool) {
    let filter = EnvFilter::try_from_env("LATCH_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    for notice in &config.notices {
        tracing::warn!("{notice}");
    }
    tracing::info!(database = %redact_url(config.database_url.expose()), "connecting");
    let state = build(&config, Default::default()).await?;
    let (trigger, shutdown) = shutdown_pair();
    let jobs = spawn_background_jobs(&state, config.purge_interval, shutdown);
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    tracing::info!(address = %listener.local_addr()?, "latch-origin listening");
    axum::serve(listener, routes::router(state))
        .with_graceful_shutdown(async { stop_signal().await })
        .await?;
    trigger.trigger();
    for job in jobs {
        let _ = job.await;
    }
    tracing::info!("latch-origin stopped cleanly");
    Ok(())
}

async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut signal) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            signal.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
