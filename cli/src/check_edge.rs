//! `latch check-edge`: the edge worker's own validation (`latch_edge::EdgeConfig::from_lookup`,
//! the code the worker runs on its first request) run before the worker, on the variables it
//! will get, plus what only a deployment can get wrong: secrets in `[vars]`, a missing or
//! placeholder KV namespace, template hosts left in, an origin that refuses the secret.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use latch_edge::{EdgeConfig, KV_BINDING, SECRETS};

use crate::report::Report;
use crate::{probe, wrangler};

/// Checks the edge's variables with the worker's own validation, before the worker runs or is
/// deployed. Without --config the variables come from the environment (how `scripts/run.sh`
/// calls it); with --config they are what `wrangler deploy [--env NAME]` would deploy, and
/// the secrets come from --secrets or the environment (wrangler keeps deployed secrets where
/// this cannot read them). Exits 1 if anything would make the edge refuse to serve.
#[derive(Args, Debug)]
pub struct CheckEdge {
    /// A wrangler.toml to check, as `wrangler deploy` reads it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The wrangler environment to check (`wrangler deploy --env NAME`).
    #[arg(long, value_name = "NAME", requires = "config")]
    env: Option<String>,
    /// Secrets in `.dev.vars` form (NAME=value lines); each also read from the environment.
    #[arg(long, value_name = "FILE", requires = "config")]
    secrets: Option<PathBuf>,
    /// Also fetch the origin's settings document from ORIGIN_URL, parse it as the worker does,
    /// and ask the origin whether it takes EDGE_SECRET for the edge's secret.
    #[arg(long)]
    probe_origin: bool,
    /// Also warn if nothing answers at UPSTREAM_URL yet.
    #[arg(long)]
    probe_upstream: bool,
}

/// A valid stand-in for each of [`SECRETS`] the check cannot see, so that everything else is
/// still checked.
const STAND_INS: [&str; SECRETS.len()] =
    ["unseen-secret-unseen-secret-unseen", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"];

impl CheckEdge {
    pub fn run(&self) -> ExitCode {
        let mut report = Report::default();
        let source = match &self.config {
            None => "the environment".to_owned(),
            Some(path) => match &self.env {
                None => path.display().to_string(),
                Some(env) => format!("{} [env.{env}]", path.display()),
            },
        };
        let (values, unseen) = match self.values(&mut report) {
            Ok(found) => found,
            Err(err) => {
                eprintln!("latch check-edge: {err}");
                return ExitCode::from(2);
            }
        };
        let config = check(&values, self.config.is_some(), &mut report);
        if let Some(config) = &config {
            if self.probe_origin || self.probe_upstream {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a current-thread runtime builds");
                runtime.block_on(async {
                    if self.probe_origin {
                        let secret = Some("EDGE_SECRET")
                            .filter(|name| !unseen.contains(name))
                            .and_then(|name| values.get(name))
                            .map(String::as_str);
                        probe::origin(config, secret, &mut report).await;
                    }
                    if self.probe_upstream {
                        probe::upstream(config, &mut report).await;
                    }
                });
            }
        }
        print!("{report}");
        if report.has_errors() {
            println!("latch check-edge: {source}: the edge would not serve; fix the errors above");
            ExitCode::FAILURE
        } else {
            println!("latch check-edge: {source}: ok");
            ExitCode::SUCCESS
        }
    }

    /// The variables the worker would see, and the secrets among them the check cannot see
    /// (stood in for, so that everything else is still checked).
    fn values(
        &self,
        report: &mut Report,
    ) -> Result<(BTreeMap<String, String>, Vec<&'static str>), String> {
        let Some(path) = &self.config else {
            return Ok((std::env::vars().collect(), Vec::new()));
        };
        let deployment = wrangler::Deployment::read(path, self.env.as_deref())?;
        check_deployment(&deployment, report);
        let mut values = deployment.vars;
        let file = match &self.secrets {
            Some(path) => wrangler::read_secrets_file(path)?,
            None => BTreeMap::new(),
        };
        let mut unseen = Vec::new();
        for (name, stand_in) in SECRETS.into_iter().zip(STAND_INS) {
            if values.contains_key(name) {
                report.error(format!(
                    "{name} is in [vars], which are public (the dashboard, the repository): \
                     remove it and run `wrangler secret put {name}`"
                ));
            }
            match file.get(name).cloned().or_else(|| std::env::var(name).ok()) {
                Some(secret) => {
                    values.insert(name.to_owned(), secret);
                }
                None => {
                    values.insert(name.to_owned(), stand_in.to_owned());
                    unseen.push(name);
                    report.note(format!(
                        "{name} not checked: a secret, kept by `wrangler secret put {name}`; \
                         pass it in the environment or --secrets to check it"
                    ));
                }
            }
        }
        Ok((values, unseen))
    }
}

/// The worker's own validation, and the warnings it has no reason to give at run time.
fn check(
    values: &BTreeMap<String, String>,
    deploying: bool,
    report: &mut Report,
) -> Option<EdgeConfig> {
    let config = match EdgeConfig::from_lookup(|name| values.get(name).cloned()) {
        Ok(config) => config,
        Err(err) => {
            for problem in err.problems {
                report.error(problem);
            }
            return None;
        }
    };
    for (name, url) in [("ORIGIN_URL", &config.origin_url), ("UPSTREAM_URL", &config.upstream_url)]
    {
        if is_loopback(url) {
            if deploying {
                report.warning(format!(
                    "{name} is this machine ({url}): right for `wrangler dev`, unreachable for \
                     a deployed worker"
                ));
            }
        } else if url.starts_with("http://") {
            report.warning(format!(
                "{name} is plain http ({url}): the edge secret and the identity assertion \
                 would cross the network unencrypted"
            ));
        }
        if is_template_host(url) {
            report.error(format!("{name} is still the template's example host ({url})"));
        }
    }
    Some(config)
}

/// What wrangler.toml itself can get wrong for the edge.
fn check_deployment(deployment: &wrangler::Deployment, report: &mut Report) {
    let blacklist: Vec<&str> = deployment
        .kv_namespaces
        .iter()
        .filter(|(binding, _)| binding == KV_BINDING)
        .map(|(_, id)| id.as_str())
        .collect();
    match blacklist.as_slice() {
        [] => report.error(format!(
            "no [[kv_namespaces]] binding {KV_BINDING:?}: the revocation blacklist has nowhere \
             to live (wrangler does not inherit kv_namespaces into an [env])"
        )),
        [id] if id.is_empty() || id.chars().all(|c| c == '0') => report.error(format!(
            "the {KV_BINDING} namespace's id is a placeholder ({id:?}): put the id \
             `wrangler kv namespace create {KV_BINDING}` prints"
        )),
        [_] => {}
        _ => report.error(format!("{KV_BINDING} is bound twice in kv_namespaces")),
    }
    for route in &deployment.routes {
        if is_template_host(route) {
            report.error(format!("route {route:?} is still the template's example host"));
        }
    }
}

fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or(bracketed),
        None => host.split(':').next().unwrap_or(host),
    }
}

fn is_loopback(url: &str) -> bool {
    let host = host_of(url);
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The hosts the committed template uses, which no deployment can mean (RFC 2606).
fn is_template_host(url: &str) -> bool {
    let host = host_of(url);
    ["example.com", "example.org", "example.net"]
        .iter()
        .any(|example| host == *example || host.ends_with(&format!(".{example}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Severity;

    fn valid() -> BTreeMap<String, String> {
        [
            ("ORIGIN_URL", "https://sessions.app.test"),
            ("UPSTREAM_URL", "https://app-backend.app.test"),
            ("EDGE_SECRET", "a-long-enough-edge-secret-value"),
            ("ASSERTION_KEYS", "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn the_workers_own_validation_names_every_bad_variable() {
        let mut values = valid();
        values.insert("BLACKLIST_CACHE_SECS".into(), "600".into());
        values.insert("PUBLIC_PATHS".into(), "static/*".into());
        let mut report = Report::default();
        assert!(check(&values, true, &mut report).is_none());
        let errors = report.findings(Severity::Error).join("\n");
        assert!(errors.contains("BLACKLIST_CACHE_SECS"), "{errors}");
        assert!(errors.contains("PUBLIC_PATHS"), "{errors}");
    }

    #[test]
    fn a_deployed_edge_pointing_at_this_machine_or_over_plain_http_is_warned_about() {
        let mut values = valid();
        values.insert("ORIGIN_URL".into(), "http://127.0.0.1:3567".into());
        values.insert("UPSTREAM_URL".into(), "http://app.internal".into());
        let mut report = Report::default();
        assert!(check(&values, true, &mut report).is_some());
        let warnings = report.findings(Severity::Warning).join("\n");
        assert!(warnings.contains("ORIGIN_URL is this machine"), "{warnings}");
        assert!(warnings.contains("UPSTREAM_URL is plain http"), "{warnings}");
        let mut local = Report::default();
        values.insert("UPSTREAM_URL".into(), "http://localhost:3000".into());
        check(&values, false, &mut local);
        assert!(local.findings(Severity::Warning).is_empty(), "a local run is meant to be local");
    }

    #[test]
    fn the_templates_placeholders_cannot_be_deployed() {
        let mut values = valid();
        values.insert("ORIGIN_URL".into(), "https://sessions.example.com".into());
        let mut report = Report::default();
        check(&values, true, &mut report);
        let deployment = wrangler::Deployment {
            kv_namespaces: vec![(KV_BINDING.into(), "00000000000000000000000000000000".into())],
            routes: vec!["app.example.com/*".into()],
            ..Default::default()
        };
        check_deployment(&deployment, &mut report);
        let errors = report.findings(Severity::Error).join("\n");
        assert!(errors.contains("ORIGIN_URL is still the template's"), "{errors}");
        assert!(errors.contains("namespace's id is a placeholder"), "{errors}");
        assert!(errors.contains("route \"app.example.com/*\""), "{errors}");
        assert!(!is_template_host("https://notexample.com"));
    }

    #[test]
    fn an_edge_without_its_blacklist_namespace_is_refused() {
        let mut report = Report::default();
        check_deployment(&wrangler::Deployment::default(), &mut report);
        assert!(report.findings(Severity::Error)[0].contains("no [[kv_namespaces]] binding"));
    }

    #[test]
    fn hosts_are_read_from_urls_and_route_patterns() {
        assert_eq!(host_of("https://user@sessions.app.test:8443/x"), "sessions.app.test");
        assert_eq!(host_of("app.example.com/*"), "app.example.com");
        assert!(is_loopback("http://[::1]:3000"));
        assert!(is_loopback("http://localhost:3000/"));
        assert!(!is_loopback("http://127.0.0.1.nip.io"));
    }
}
