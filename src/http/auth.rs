//! Who may call `/v1/…`: named API tokens, the rule that a server reachable beyond this
//! machine needs one, and the audit line for every read of customer data.
//!
//! Tokens come from the environment (`http.token_env`, named `default`) and from an
//! optional file (`http.tokens_file`, one `NAME TOKEN` per line). The file is re-read
//! when it changes (checked at most once a second), so revoking one client is deleting
//! its line — no restart, the other clients keep working. Once any token source is
//! configured the API stays closed: a missing, empty or malformed file lets nobody in
//! (it never falls back to anonymous access).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// The name given to the token from `http.token_env`.
pub const ENV_TOKEN_NAME: &str = "default";

/// The caller's name when no token is configured (loopback or `allow_anonymous`).
pub const ANONYMOUS: &str = "anonymous";

/// How often the tokens file's modification time is checked.
const RECHECK: Duration = Duration::from_secs(1);

/// Why the access settings cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// HTTP reaches beyond loopback and nothing protects customer data.
    #[error("http.listen = {listen:?} accepts connections from other machines and no API token is configured, so anyone reaching the port could read customer data; set the variable named by http.token_env ({token_env}) or http.tokens_file, or set http.allow_anonymous = true to serve the API without tokens on purpose")]
    Exposed {
        /// The listen address.
        listen: String,
        /// The configured variable name.
        token_env: String,
    },
    /// The tokens file cannot be read or has a bad line.
    #[error("http.tokens_file {path}: {why}; expected one \"NAME TOKEN\" per line (NAME: letters, digits, '.', '_' or '-'; lines starting with # are comments)")]
    File {
        /// The file.
        path: String,
        /// What is wrong (never the token itself).
        why: String,
    },
}

/// The access settings of a running server.
#[derive(Debug, Default, Clone)]
pub struct AccessConfig {
    /// The token from `http.token_env`, if that variable is set and not empty.
    pub env_token: Option<String>,
    /// `http.token_env` (for messages).
    pub token_env: String,
    /// `http.tokens_file` (empty: none).
    pub tokens_file: String,
    /// `http.allow_anonymous`.
    pub allow_anonymous: bool,
}

#[derive(Debug, Default)]
struct FileState {
    checked: Option<Instant>,
    modified: Option<SystemTime>,
    tokens: Named,
}

/// The token check.
#[derive(Debug)]
pub struct Access {
    env_token: Option<String>,
    file: Option<PathBuf>,
    state: Mutex<FileState>,
}

/// Compares without stopping at the first difference, so timing does not reveal a prefix.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Parses a tokens file's text: `NAME TOKEN` per line, `#` comments, blank lines.
pub fn parse_tokens(text: &str) -> Result<Named, String> {
    let mut out: Named = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(name), Some(token), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("line {} is not \"NAME TOKEN\"", i + 1));
        };
        if !valid_name(name) {
            return Err(format!(
                "line {}: the name is not a valid token name",
                i + 1
            ));
        }
        if out.iter().any(|(n, _)| n == name) {
            return Err(format!("line {}: the name {name} appears twice", i + 1));
        }
        out.push((name.to_string(), token.to_string()));
    }
    Ok(out)
}

/// Named tokens: (name, token).
type Named = Vec<(String, String)>;

fn read_file(path: &Path) -> Result<(Option<SystemTime>, Named), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    Ok((modified, parse_tokens(&text)?))
}

/// True when `listen` only accepts connections from this machine.
pub fn is_loopback(listen: &str) -> bool {
    let host = match listen.rsplit_once(':') {
        Some((h, _)) => h,
        None => listen,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Access {
    /// Checks the settings for a server on `listen` and reads the tokens file once (a bad
    /// file is a start-up error; later changes are re-read while running).
    pub fn new(listen: &str, c: &AccessConfig) -> Result<Access, AuthError> {
        let file = (!c.tokens_file.trim().is_empty()).then(|| PathBuf::from(c.tokens_file.trim()));
        let mut state = FileState::default();
        if let Some(p) = &file {
            let (modified, tokens) = read_file(p).map_err(|why| AuthError::File {
                path: p.display().to_string(),
                why,
            })?;
            state = FileState {
                checked: Some(Instant::now()),
                modified,
                tokens,
            };
        }
        let access = Access {
            env_token: c.env_token.clone().filter(|t| !t.is_empty()),
            file,
            state: Mutex::new(state),
        };
        if !access.required()
            && !c.allow_anonymous
            && !listen.trim().is_empty()
            && !is_loopback(listen)
        {
            return Err(AuthError::Exposed {
                listen: listen.to_string(),
                token_env: c.token_env.clone(),
            });
        }
        Ok(access)
    }

    /// Whether `/v1/…` needs a token.
    pub fn required(&self) -> bool {
        self.env_token.is_some() || self.file.is_some()
    }

    /// The name of the caller presenting `given` (a bearer token), `Some(ANONYMOUS)` when
    /// no token is required, `None` when the token is missing, unknown or revoked.
    pub fn caller(&self, given: Option<&str>) -> Option<String> {
        if !self.required() {
            return Some(ANONYMOUS.to_string());
        }
        let given = given?.as_bytes();
        if let Some(t) = &self.env_token {
            if same(given, t.as_bytes()) {
                return Some(ENV_TOKEN_NAME.to_string());
            }
        }
        let path = self.file.as_ref()?;
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.checked.is_none_or(|t| t.elapsed() >= RECHECK) {
            st.checked = Some(Instant::now());
            let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
            if modified.is_none() || modified != st.modified {
                match read_file(path) {
                    Ok((m, tokens)) => {
                        tracing::info!(tokens = tokens.len(), "http.tokens_file re-read");
                        st.modified = m;
                        st.tokens = tokens;
                    }
                    Err(why) => {
                        // Fail closed: a file being rewritten or broken admits nobody
                        // rather than someone it no longer lists.
                        tracing::error!(file = %path.display(), %why, "http.tokens_file unreadable; no file token is accepted until it is fixed");
                        st.modified = None;
                        st.tokens.clear();
                    }
                }
            }
        }
        // Check every entry (no early exit) so timing does not tell which name matched.
        let mut found = None;
        for (name, token) in &st.tokens {
            if same(given, token.as_bytes()) && found.is_none() {
                found = Some(name.clone());
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(env: Option<&str>, file: &str, anon: bool) -> AccessConfig {
        AccessConfig {
            env_token: env.map(str::to_string),
            token_env: "CHURNWATCH_API_TOKEN".into(),
            tokens_file: file.into(),
            allow_anonymous: anon,
        }
    }

    #[test]
    fn loopback_addresses() {
        for a in [
            "127.0.0.1:8080",
            "127.1.2.3:1",
            "[::1]:80",
            "localhost:9000",
        ] {
            assert!(is_loopback(a), "{a}");
        }
        for a in ["0.0.0.0:8080", "[::]:8080", "10.0.0.5:80", "example.com:80"] {
            assert!(!is_loopback(a), "{a}");
        }
    }

    #[test]
    fn anonymous_beyond_loopback_is_refused_with_the_fix() {
        let e = Access::new("0.0.0.0:8080", &cfg(None, "", false))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("http.allow_anonymous = true") && e.contains("CHURNWATCH_API_TOKEN"),
            "{e}"
        );
        assert!(Access::new("0.0.0.0:8080", &cfg(None, "", true)).is_ok());
        assert!(Access::new("0.0.0.0:8080", &cfg(Some("s3cret-token-value"), "", false)).is_ok());
        let a = Access::new("127.0.0.1:8080", &cfg(None, "", false)).unwrap();
        assert_eq!(a.caller(None).as_deref(), Some(ANONYMOUS));
    }

    #[test]
    fn named_tokens_from_a_file_and_revocation() {
        let dir = std::env::temp_dir().join(format!("cw-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("tokens");
        std::fs::write(
            &f,
            "# clients\ncrm  tok-crm-1234567890\nconsole tok-console-12345\n",
        )
        .unwrap();
        let a = Access::new(
            "0.0.0.0:1",
            &cfg(Some("env-token-123456"), f.to_str().unwrap(), false),
        )
        .unwrap();
        assert_eq!(a.caller(Some("tok-crm-1234567890")).as_deref(), Some("crm"));
        assert_eq!(
            a.caller(Some("tok-console-12345")).as_deref(),
            Some("console")
        );
        assert_eq!(
            a.caller(Some("env-token-123456")).as_deref(),
            Some(ENV_TOKEN_NAME)
        );
        assert_eq!(a.caller(Some("nope")), None);
        assert_eq!(a.caller(None), None);
        // Revoke crm: the file changes, the next check after RECHECK re-reads it.
        std::thread::sleep(RECHECK + Duration::from_millis(50));
        std::fs::write(&f, "console tok-console-12345\n").unwrap();
        let later = SystemTime::now() + Duration::from_secs(5);
        let _ = std::fs::File::options()
            .write(true)
            .open(&f)
            .and_then(|h| h.set_modified(later));
        assert_eq!(a.caller(Some("tok-crm-1234567890")), None);
        assert_eq!(
            a.caller(Some("tok-console-12345")).as_deref(),
            Some("console")
        );
        // A deleted file admits nobody from it (never anonymous).
        std::fs::remove_file(&f).unwrap();
        std::thread::sleep(RECHECK + Duration::from_millis(50));
        assert_eq!(a.caller(Some("tok-console-12345")), None);
        assert_eq!(a.caller(None), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_files_are_refused_without_echoing_tokens() {
        assert!(parse_tokens("a b c").is_err());
        assert!(parse_tokens("bad/name tok").is_err());
        assert!(parse_tokens("x t1\nx t2").unwrap_err().contains("twice"));
        let e = Access::new(
            "127.0.0.1:1",
            &cfg(None, "/nonexistent/churnwatch-tokens", false),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("/nonexistent/churnwatch-tokens") && e.contains("NAME TOKEN"),
            "{e}"
        );
        let e = parse_tokens("crm secret-value extra").unwrap_err();
        assert!(!e.contains("secret-value"), "{e}");
    }
}
