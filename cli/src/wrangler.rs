//! What `wrangler deploy` would give the worker, read from `wrangler.toml`: the `[vars]`, the
//! KV namespaces and the routes of the top level or of one `[env.NAME]` (wrangler does not
//! inherit `vars` or `kv_namespaces` into an environment, so neither does this), and secrets
//! from a `.dev.vars`-style file.

use std::collections::BTreeMap;
use std::path::Path;

use toml::Value;

/// One environment of a `wrangler.toml`.
#[derive(Debug, Default)]
pub struct Deployment {
    /// `[vars]` (values that are not strings are kept as wrangler passes them: JSON text).
    pub vars: BTreeMap<String, String>,
    /// `(binding, id)` of each `[[kv_namespaces]]`.
    pub kv_namespaces: Vec<(String, String)>,
    /// The route patterns (`route`, `routes`), as written.
    pub routes: Vec<String>,
}

impl Deployment {
    pub fn read(path: &Path, env: Option<&str>) -> Result<Deployment, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
        Deployment::parse(&text, env).map_err(|err| format!("{}: {err}", path.display()))
    }

    pub fn parse(text: &str, env: Option<&str>) -> Result<Deployment, String> {
        let root: toml::Table = text.parse().map_err(|err: toml::de::Error| err.to_string())?;
        let table = match env {
            None => &root,
            Some(name) => root
                .get("env")
                .and_then(|envs| envs.get(name))
                .and_then(Value::as_table)
                .ok_or_else(|| format!("there is no [env.{name}]"))?,
        };
        let vars = match table.get("vars") {
            None => BTreeMap::new(),
            Some(Value::Table(vars)) => vars
                .iter()
                .map(|(name, value)| {
                    let text = match value {
                        Value::String(text) => text.clone(),
                        other => serde_json::to_string(other).unwrap_or_default(),
                    };
                    (name.clone(), text)
                })
                .collect(),
            Some(_) => return Err("vars must be a table".into()),
        };
        let kv_namespaces = table
            .get("kv_namespaces")
            .and_then(Value::as_array)
            .map(|namespaces| {
                namespaces
                    .iter()
                    .map(|namespace| {
                        let field = |key| {
                            namespace.get(key).and_then(Value::as_str).unwrap_or("").to_owned()
                        };
                        (field("binding"), field("id"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let pattern = |route: &Value| match route {
            Value::String(pattern) => Some(pattern.clone()),
            Value::Table(route) => route.get("pattern").and_then(Value::as_str).map(str::to_owned),
            _ => None,
        };
        let mut routes: Vec<String> = table.get("route").and_then(pattern).into_iter().collect();
        if let Some(list) = table.get("routes").and_then(Value::as_array) {
            routes.extend(list.iter().filter_map(pattern));
        }
        Ok(Deployment { vars, kv_namespaces, routes })
    }
}

/// `NAME=value` lines, as in `.dev.vars` (dotenv: `#` comments, optional `export `, values
/// optionally in single or double quotes).
pub fn read_secrets_file(path: &Path) -> Result<BTreeMap<String, String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    parse_dotenv(&text).map_err(|err| format!("{}: {err}", path.display()))
}

pub fn parse_dotenv(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut values = BTreeMap::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((name, value)) = line.split_once('=') else {
            return Err(format!("line {}: expected NAME=value", number + 1));
        };
        let value = value.trim();
        let unquoted = ['"', '\'']
            .iter()
            .find_map(|quote| value.strip_prefix(*quote)?.strip_suffix(*quote))
            .unwrap_or(value);
        values.insert(name.trim().to_owned(), unquoted.to_owned());
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOML: &str = r#"
name = "edge"
[vars]
ORIGIN_URL = "http://127.0.0.1:3567"
BLACKLIST_CACHE_SECS = 10
[[kv_namespaces]]
binding = "BLACKLIST"
id = "local"

[env.production]
routes = [{ pattern = "app.test/*", zone_name = "app.test" }, "api.app.test/*"]
[env.production.vars]
ORIGIN_URL = "https://sessions.app.test"
[[env.production.kv_namespaces]]
binding = "BLACKLIST"
id = "abc123"
"#;

    #[test]
    fn an_environment_has_its_own_vars_and_namespaces_only() {
        let top = Deployment::parse(TOML, None).unwrap();
        assert_eq!(top.vars["ORIGIN_URL"], "http://127.0.0.1:3567");
        assert_eq!(top.vars["BLACKLIST_CACHE_SECS"], "10", "a number is passed as its text");
        assert!(top.routes.is_empty());
        let production = Deployment::parse(TOML, Some("production")).unwrap();
        assert_eq!(production.vars.len(), 1, "vars are not inherited: {:?}", production.vars);
        assert_eq!(production.kv_namespaces, [("BLACKLIST".to_owned(), "abc123".to_owned())]);
        assert_eq!(production.routes, ["app.test/*", "api.app.test/*"]);
    }

    #[test]
    fn a_missing_environment_or_broken_file_is_named() {
        assert_eq!(
            Deployment::parse(TOML, Some("staging")).unwrap_err(),
            "there is no [env.staging]"
        );
        assert!(Deployment::parse("vars = [", None).is_err());
    }

    #[test]
    fn dev_vars_lines_are_read_like_dotenv() {
        let values = parse_dotenv(
            "# secrets\nEDGE_SECRET=\"a=b c\"\nexport ASSERTION_KEYS='k1,k2'\n\nPLAIN = x\n",
        )
        .unwrap();
        assert_eq!(values["EDGE_SECRET"], "a=b c");
        assert_eq!(values["ASSERTION_KEYS"], "k1,k2");
        assert_eq!(values["PLAIN"], "x");
        assert_eq!(parse_dotenv("oops").unwrap_err(), "line 1: expected NAME=value");
    }
}
