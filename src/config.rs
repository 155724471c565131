//! Configuration loading: the embedded `config/default.toml`, then the file given with
//! `--config`, then `CHURNWATCH__SECTION__KEY` environment variables. Unknown keys are
//! errors. The rule-set sections are validated by the core's [`Settings::compile`].

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::Deserialize;

use crate::core::settings::{
    AnalyticsConfig, ChurnProbabilityConfig, ClvConfig, CoreConfig, FactsConfig, LimitsConfig,
    OutputsConfig, Settings, TiersConfig, TimeConfig, WarningsConfig, DEFAULT_TOML,
};

/// `[log]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `human` or `json`.
    pub format: String,
    /// A level or a tracing filter directive.
    pub level: String,
}

/// The whole configuration file. It lists the core's sections again rather than
/// flattening `CoreConfig`, because serde cannot combine `flatten` with
/// `deny_unknown_fields`, and unknown keys must be errors.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[limits]`
    pub limits: LimitsConfig,
    /// `[money]`
    pub money: crate::core::settings::MoneyConfig,
    /// `[time]`
    pub time: TimeConfig,
    /// `[facts]`
    pub facts: FactsConfig,
    /// `[churn_probability]`
    pub churn_probability: ChurnProbabilityConfig,
    /// `[tiers]`
    pub tiers: TiersConfig,
    /// `[warnings]`
    pub warnings: WarningsConfig,
    /// `[analytics]`
    pub analytics: AnalyticsConfig,
    /// `[clv]`
    pub clv: ClvConfig,
    /// `[dead_letters]`
    pub dead_letters: crate::core::settings::DeadLettersConfig,
    /// `[outputs]`
    pub outputs: OutputsConfig,
    /// `[interventions]`
    pub interventions: crate::core::settings::InterventionsConfig,
    /// `[log]`
    pub log: LogConfig,
    /// `[kafka]` (the service)
    pub kafka: crate::kafka::KafkaConfig,
    /// `[http]`
    pub http: crate::kafka::config::HttpConfig,
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file does not exist.
    #[error("config file {0} not found; pass an existing file with --config, or leave --config out to use the defaults")]
    NotFound(PathBuf),
    /// Syntax errors, unknown keys, wrong types (figment names the key and the source;
    /// an unknown key also gets the nearest valid one).
    #[error("invalid configuration: {}", explain(.0))]
    Parse(Box<figment::Error>),
    /// The values do not make a valid rule set.
    #[error("invalid rule set: {0}")]
    Rules(#[from] crate::core::settings::ConfigError),
}

impl Config {
    /// Loads defaults, the optional file and the environment.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with_env(path, true)
    }

    /// Like [`Config::load`], optionally ignoring the environment (for tests).
    pub fn load_with_env(path: Option<&Path>, env: bool) -> Result<Config, ConfigError> {
        let mut fig = Figment::from(Toml::string(DEFAULT_TOML));
        if let Some(p) = path {
            if !p.is_file() {
                return Err(ConfigError::NotFound(p.to_path_buf()));
            }
            fig = fig.merge(Toml::file(p));
        }
        if env {
            fig = fig.merge(EnvText(Env::prefixed("CHURNWATCH__").split("__")));
        }
        // Lossy: a number or a boolean may be written as text (all of the environment's
        // scalars are text, see `EnvText`); strings stay strings.
        let cfg: Config = fig
            .extract_lossy()
            .map_err(|e| ConfigError::Parse(Box::new(e)))?;
        cfg.settings()?;
        Ok(cfg)
    }

    /// Loads defaults, `text` (a config file's content: a candidate rule set sent to
    /// `POST /v1/rules/diff`) and the environment, as [`Config::load`] would the file.
    pub fn from_text(text: &str) -> Result<Config, ConfigError> {
        let fig = Figment::from(Toml::string(DEFAULT_TOML))
            .merge(Toml::string(text))
            .merge(EnvText(Env::prefixed("CHURNWATCH__").split("__")));
        let cfg: Config = fig
            .extract_lossy()
            .map_err(|e| ConfigError::Parse(Box::new(e)))?;
        cfg.settings()?;
        Ok(cfg)
    }

    /// The rule-set sections.
    pub fn core(&self) -> CoreConfig {
        CoreConfig {
            limits: self.limits.clone(),
            money: self.money.clone(),
            time: self.time.clone(),
            facts: self.facts.clone(),
            churn_probability: self.churn_probability.clone(),
            tiers: self.tiers.clone(),
            warnings: self.warnings.clone(),
            analytics: self.analytics.clone(),
            clv: self.clv.clone(),
            dead_letters: self.dead_letters.clone(),
            outputs: self.outputs.clone(),
            interventions: self.interventions.clone(),
        }
    }

    /// The compiled rule set.
    pub fn settings(&self) -> Result<Settings, crate::core::settings::ConfigError> {
        Settings::compile(&self.core())
    }
}

/// An error in words. An unknown key names its section and where it was written, and
/// suggests the nearest valid key ("did you mean `brokers`?"): figment's own message
/// lists every valid key of the section, which hides the one that was meant.
fn explain(e: &figment::Error) -> String {
    let mut out = Vec::new();
    for one in e.clone() {
        let figment::error::Kind::UnknownField(found, expected) = &one.kind else {
            out.push(one.to_string());
            continue;
        };
        let mut path = one.path.clone();
        if path.last() == Some(found) {
            path.pop();
        }
        let section = if path.is_empty() {
            "at the top level".to_string()
        } else {
            format!("in section [{}]", path.join("."))
        };
        let source = match one.metadata.as_ref() {
            Some(m) => match &m.source {
                Some(figment::Source::File(f)) => format!(" of {}", f.display()),
                _ if m.name.contains("environment") => {
                    " (from a CHURNWATCH__… environment variable)".to_string()
                }
                _ => String::new(),
            },
            None => String::new(),
        };
        let hint = match nearest(found, expected) {
            Some(k) => format!("did you mean `{k}`?"),
            None => format!("valid keys: {}", expected.join(", ")),
        };
        out.push(format!("unknown key `{found}` {section}{source}; {hint}"));
    }
    out.join("; ")
}

/// The valid key closest to `found` by edit distance, if it is close enough to be a typo
/// (at most a third of its length, and at most 3 edits).
fn nearest<'a>(found: &str, valid: &[&'a str]) -> Option<&'a str> {
    let found = found.to_ascii_lowercase();
    valid
        .iter()
        .map(|v| (edit_distance(&found, v), *v))
        .filter(|(d, v)| *d <= 3 && *d * 3 <= v.len().max(3))
        .min()
        .map(|(_, v)| v)
}

/// Levenshtein distance over characters (keys are short: the quadratic cost is nothing).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let up = row[j + 1];
            row[j + 1] = (up + 1).min(row[j] + 1).min(diag + usize::from(ca != *cb));
            diag = up;
        }
    }
    row[b.len()]
}

/// `CHURNWATCH__SECTION__KEY` variables with their scalar values kept as the text that
/// was written. figment's `Env` parses every value, so `CHURNWATCH__KAFKA__GROUP_ID=2024`
/// became a number and was refused for a string setting, and a value like `007` or
/// `1.10` would have lost its text. Arrays and tables (`[7, 30]`) are still parsed; the
/// lossy extraction turns text into a number or a boolean where the setting is one.
struct EnvText(Env);

impl Provider for EnvText {
    fn metadata(&self) -> Metadata {
        self.0.metadata()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for (key, raw) in self.0.iter() {
            let parsed: Value = raw.parse().unwrap_or_else(|_| Value::from(raw.clone()));
            let value = match parsed {
                Value::Dict(..) | Value::Array(..) => parsed,
                _ => Value::from(raw),
            };
            if let Some(nested) = figment::util::nest(key.as_str(), value).into_dict() {
                merge(&mut dict, nested);
            }
        }
        Ok(Profile::Default.collect(dict))
    }
}

/// Merges `add` into `into`, nested tables key by key (a later variable wins).
fn merge(into: &mut Dict, add: Dict) {
    for (k, v) in add {
        match (into.get_mut(&k), v) {
            (Some(Value::Dict(_, a)), Value::Dict(_, b)) => merge(a, b),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn defaults_load() {
        let c = Config::load_with_env(None, false).unwrap();
        assert_eq!(c.facts.windows_days, vec![30, 90, 180, 365]);
        assert_eq!(c.log.format, "human");
    }

    #[test]
    fn files_layer_over_defaults_and_replace_rule_lists() {
        let f = file(
            r#"
[facts]
windows_days = [7, 30, 90, 180, 365]
[[tiers.rules]]
name = "vip"
all = ["orders_7d >= 3"]
action = "call them"
"#,
        );
        let c = Config::load_with_env(Some(f.path()), false).unwrap();
        assert_eq!(c.facts.windows_days[0], 7);
        assert_eq!(
            c.facts.new_customer_days, 180,
            "other keys keep their defaults"
        );
        assert_eq!(
            c.tiers.rules.len(),
            1,
            "a rule list in a file replaces the default list"
        );
        assert_eq!(c.tiers.fallback, "regular");
    }

    #[test]
    fn errors_name_the_key() {
        let f = file("[limits]\nmax_mesage_bytes = 5\n");
        let e = Config::load_with_env(Some(f.path()), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_mesage_bytes"), "{e}");
        let f = file("[facts]\nwindows_days = [90, 30]\n");
        let e = Config::load_with_env(Some(f.path()), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("ascending"), "{e}");
        let e = Config::load_with_env(Some(Path::new("/nonexistent/x.toml")), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not found"), "{e}");
    }

    #[test]
    fn an_unknown_key_gets_the_nearest_valid_one_with_its_section_and_file() {
        let f = file("[kafka]\nbrokerz = \"x:9092\"\n");
        let e = Config::load_with_env(Some(f.path()), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean `brokers`?"), "{e}");
        assert!(e.contains("[kafka]"), "{e}");
        assert!(e.contains(&f.path().display().to_string()), "{e}");
        let f = file("[http]\nzzzzzzzz = 1\n");
        let e = Config::load_with_env(Some(f.path()), false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("valid keys: listen, token_env, tokens_file, allow_anonymous"),
            "{e}"
        );
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(
            nearest("group_di", &["group_id", "brokers"]),
            Some("group_id")
        );
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's test jail returns its own error type
    fn environment_overrides() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("CHURNWATCH__LIMITS__MAX_ID_BYTES", "64");
            jail.set_env("CHURNWATCH__TIME__ALLOWED_LATENESS", "5m");
            let c = Config::load(None).expect("loads");
            assert_eq!(c.limits.max_id_bytes, 64);
            assert_eq!(c.time.allowed_lateness, "5m");
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn environment_values_keep_their_text_for_strings_and_convert_for_numbers() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("CHURNWATCH__KAFKA__GROUP_ID", "2024");
            jail.set_env("CHURNWATCH__KAFKA__INPUT_TOPIC", "007");
            jail.set_env("CHURNWATCH__KAFKA__TOPICS__PROFILES", "1.10");
            jail.set_env("CHURNWATCH__KAFKA__PARTITIONS", "8");
            jail.set_env("CHURNWATCH__KAFKA__CREATE_TOPICS", "true");
            jail.set_env("CHURNWATCH__FACTS__WINDOWS_DAYS", "[7, 30, 90, 180, 365]");
            jail.set_env("CHURNWATCH__HTTP__LISTEN", "127.0.0.1:9000");
            let c = Config::load(None).expect("loads");
            assert_eq!(c.kafka.group_id, "2024");
            assert_eq!(c.kafka.input_topic, "007");
            assert_eq!(c.kafka.topics.profiles, "1.10");
            assert_eq!(c.kafka.partitions, 8);
            assert!(c.kafka.create_topics);
            assert_eq!(c.facts.windows_days, vec![7, 30, 90, 180, 365]);
            assert_eq!(c.http.listen, "127.0.0.1:9000");
            jail.set_env("CHURNWATCH__KAFKA__PARTITIONS", "eight");
            let e = Config::load(None).unwrap_err().to_string();
            assert!(e.contains("PARTITIONS"), "{e}");
            assert!(e.contains("CHURNWATCH__"), "{e}");
            Ok(())
        });
    }
}
