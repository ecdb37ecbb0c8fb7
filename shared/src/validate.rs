//! Checks of configuration values that the edge and the origin both make, written once. Each
//! returns the message that names the setting, for a start-up error that lists every problem.

/// The shortest secret either side accepts (the edge secret, the API key, …).
pub const MIN_SECRET_LEN: usize = 16;

/// A shared secret long enough to resist guessing.
pub fn secret(name: &str, value: &str) -> Result<(), String> {
    if value.len() < MIN_SECRET_LEN {
        return Err(format!("{name}: must be at least {MIN_SECRET_LEN} characters"));
    }
    Ok(())
}

/// An absolute `http://` or `https://` URL with a host.
pub fn http_url(name: &str, url: &str) -> Result<(), String> {
    let host = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    match host {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') => Ok(()),
        _ => Err(format!("{name}: {url:?} is not an http(s) URL")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_secrets_are_refused_by_name() {
        assert_eq!(
            secret("EDGE_SECRET", "short"),
            Err("EDGE_SECRET: must be at least 16 characters".into())
        );
        assert!(secret("EDGE_SECRET", "0123456789abcdef").is_ok());
    }

    #[test]
    fn only_absolute_http_urls_pass() {
        for good in ["http://127.0.0.1:3567", "https://edge.example.com/base"] {
            assert!(http_url("x", good).is_ok(), "{good}");
        }
        for bad in ["ftp://x", "127.0.0.1:3567", "http://", "https:///path", "", "HTTP//x"] {
            assert!(http_url("x", bad).is_err(), "{bad}");
        }
    }
}
