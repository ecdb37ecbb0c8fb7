//! The checks that need the network: that the origin serves a settings document this edge
//! accepts and takes the edge's secret for the edge's, and that something answers upstream.

use std::time::Duration;

use latch_edge::EdgeConfig;
use latch_shared::api::{paths, Caller, CallerAnswer};

use crate::report::Report;

const TIMEOUT: Duration = Duration::from_secs(5);

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client with rustls builds")
}

/// The settings document, parsed as the worker parses it, and the secret the edge will
/// present (`None`: not known here, so not checked).
pub async fn origin(config: &EdgeConfig, edge_secret: Option<&str>, report: &mut Report) {
    let client = client();
    let url = latch_edge::settings::url(config);
    let found = match fetch(&client, &url, None).await {
        Ok((200, body)) => latch_edge::settings::parse(&body)
            .map_err(|err| format!("ORIGIN_URL: the settings document at {url} is refused: {err}")),
        Ok((status, _)) => Err(format!(
            "ORIGIN_URL: {url} answered {status}, not the origin's settings document: is \
             ORIGIN_URL the Latch origin?"
        )),
        Err(err) => Err(format!("ORIGIN_URL: cannot reach {url}: {err}")),
    };
    // Not the origin: asking it about the secret would only blame the secret.
    if let Err(problem) = found {
        return report.error(problem);
    }
    let Some(secret) = edge_secret else {
        return;
    };
    let url = format!("{}{}", config.origin_url, paths::CALLER);
    match fetch(&client, &url, Some(secret)).await {
        Ok((200, body)) => match serde_json::from_str::<CallerAnswer>(&body) {
            Ok(CallerAnswer { caller: Caller::Edge }) => {}
            Ok(CallerAnswer { caller: Caller::App }) => report.error(
                "EDGE_SECRET is the origin's API key (LATCH_API_KEY), not its edge secret \
                 (LATCH_EDGE_SECRET): the edge would hold admin powers",
            ),
            Err(err) => report.error(format!("ORIGIN_URL: {url} answered unexpected JSON: {err}")),
        },
        Ok((401, _)) => report.error(
            "EDGE_SECRET: the origin refuses it; it must equal the origin's LATCH_EDGE_SECRET",
        ),
        Ok((404, _)) => report.note(format!(
            "EDGE_SECRET not checked: the origin at {} predates {}",
            config.origin_url,
            paths::CALLER
        )),
        Ok((status, _)) => report.error(format!("ORIGIN_URL: {url} answered {status}")),
        Err(err) => report.error(format!("ORIGIN_URL: cannot reach {url}: {err}")),
    }
}

/// Whether anything answers at the upstream: a warning only, since the app may start later.
pub async fn upstream(config: &EdgeConfig, report: &mut Report) {
    if let Err(err) = fetch(&client(), &format!("{}/", config.upstream_url), None).await {
        report.warning(format!(
            "UPSTREAM_URL: nothing answers at {} yet ({err}); requests will get 502 until \
             the app runs",
            config.upstream_url
        ));
    }
}

async fn fetch(
    client: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
) -> Result<(u16, String), String> {
    let mut request = client.get(url);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(|err| describe(&err))?;
    let status = response.status().as_u16();
    let body = response.text().await.map_err(|err| describe(&err))?;
    Ok((status, body))
}

/// reqwest's error with its causes ("connection refused" is a cause, not the error).
fn describe(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}
