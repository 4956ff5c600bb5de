//! Which web origins may open `/ws` (`--allowed-origins`): by default only pages of the server's
//! own origin (the `Origin` header names the request's `Host`) and clients that send no `Origin`
//! at all (native apps, scripts; browsers always send one). Entries add exact origins
//! (`https://app.example.org`), origins with any port (`http://localhost:*`), or everything
//! (`*`). It only decides; the upgrade handler refuses with 403.

/// The origins allowed to open WebSockets.
#[derive(Debug, Clone, Default)]
pub(crate) struct OriginPolicy {
    any: bool,
    /// Lower-cased `scheme://host[:port]`.
    exact: Vec<String>,
    /// Lower-cased `scheme://host` of entries ending in `:*`.
    any_port: Vec<String>,
}

impl OriginPolicy {
    /// The policy for `--allowed-origins` entries (checked by [`valid_entry`] at start).
    pub(crate) fn new(entries: &[String]) -> Self {
        let mut policy = Self::default();
        for entry in entries.iter().map(|e| e.trim().to_ascii_lowercase()) {
            if entry == "*" {
                policy.any = true;
            } else if let Some(base) = entry.strip_suffix(":*") {
                policy.any_port.push(base.to_owned());
            } else {
                policy.exact.push(entry.trim_end_matches('/').to_owned());
            }
        }
        policy
    }

    /// Whether a request with these `Origin` and `Host` headers may upgrade.
    pub(crate) fn allows(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        let Some(origin) = origin else {
            return true;
        };
        if self.any {
            return true;
        }
        let origin = origin.trim().to_ascii_lowercase();
        if host.is_some_and(|host| same_origin(&origin, &host.to_ascii_lowercase())) {
            return true;
        }
        if self.exact.contains(&origin) {
            return true;
        }
        let without_port = match origin.rsplit_once(':') {
            Some((base, port)) if port.bytes().all(|b| b.is_ascii_digit()) => base,
            _ => origin.as_str(),
        };
        self.any_port.iter().any(|base| base == without_port)
    }
}

/// Whether `origin` (`scheme://authority`) names the same host and port as `host`.
fn same_origin(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    if authority == host {
        return true;
    }
    // A default port may be written on one side only.
    let default_port = match scheme {
        "http" => ":80",
        "https" => ":443",
        _ => return false,
    };
    host.strip_suffix(default_port) == Some(authority)
        || authority.strip_suffix(default_port) == Some(host)
}

/// Whether an `--allowed-origins` entry has a usable form.
pub(crate) fn valid_entry(entry: &str) -> bool {
    let entry = entry.trim();
    if entry == "*" {
        return true;
    }
    let Some((scheme, rest)) = entry.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https")
        && !rest.is_empty()
        && !rest.trim_end_matches('/').contains('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(entries: &[&str]) -> OriginPolicy {
        OriginPolicy::new(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn default_is_same_origin_plus_native_clients() {
        let p = policy(&[]);
        assert!(p.allows(None, Some("chat.example.org")));
        assert!(p.allows(Some("https://chat.example.org"), Some("chat.example.org")));
        assert!(p.allows(
            Some("https://Chat.Example.org"),
            Some("chat.example.org:443")
        ));
        assert!(p.allows(Some("http://127.0.0.1:8080"), Some("127.0.0.1:8080")));
        assert!(!p.allows(Some("http://127.0.0.1:9999"), Some("127.0.0.1:8080")));
        assert!(!p.allows(Some("https://evil.example"), Some("chat.example.org")));
        assert!(!p.allows(Some("null"), Some("chat.example.org")));
        assert!(!p.allows(Some("https://chat.example.org"), None));
    }

    #[test]
    fn entries_add_origins() {
        let p = policy(&["https://app.example.org", "http://localhost:*"]);
        assert!(p.allows(Some("https://app.example.org"), Some("api.example.org")));
        assert!(!p.allows(Some("http://app.example.org"), Some("api.example.org")));
        assert!(p.allows(Some("http://localhost:5173"), Some("api.example.org")));
        assert!(p.allows(Some("http://localhost"), Some("api.example.org")));
        assert!(!p.allows(Some("http://localhost.evil:1"), Some("api.example.org")));
        assert!(policy(&["*"]).allows(Some("null"), Some("x")));
    }

    #[test]
    fn entry_forms() {
        for good in [
            "*",
            "https://a.example",
            "http://localhost:*",
            "http://h:8080/",
        ] {
            assert!(valid_entry(good), "{good}");
        }
        for bad in ["", "a.example", "ftp://a", "https://", "https://a/path"] {
            assert!(!valid_entry(bad), "{bad}");
        }
    }
}
