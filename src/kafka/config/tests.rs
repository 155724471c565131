//! Tests of `[kafka]` validation: defaults, owned settings, bad values, secrets.
use super::*;
use crate::config::Config;

fn kafka(extra: &str) -> KafkaConfig {
    let f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(f.path(), extra).unwrap();
    Config::load_with_env(Some(f.path()), false).unwrap().kafka
}

#[test]
fn defaults_compile() {
    let k = kafka("").compile_with_env(|_| None).unwrap();
    assert_eq!(k.commit_interval, Duration::from_millis(100));
    assert_eq!(k.idle_timeout, Some(Duration::from_secs(30)));
    assert_eq!(k.start, Start::Earliest);
    assert_eq!(k.restore_parallelism, 4);
    assert_eq!(k.standby_replicas, 0);
    assert!(k.client.is_empty());
}

#[test]
fn client_settings_flatten_and_read_secrets_from_the_environment() {
    let k = kafka(
        "[kafka.client]\nsecurity.protocol = \"SASL_SSL\"\nsasl.mechanism = \"PLAIN\"\nsasl.password = \"env:KPW\"\n\"socket.timeout.ms\" = 5000\n",
    );
    let s = k
        .compile_with_env(|n| (n == "KPW").then(|| "hunter2".to_string()))
        .unwrap();
    let get = |key: &str| {
        s.client
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get("security.protocol").as_deref(), Some("SASL_SSL"));
    assert_eq!(get("sasl.password").as_deref(), Some("hunter2"));
    assert_eq!(get("socket.timeout.ms").as_deref(), Some("5000"));
    let shown = describe_client(&s.client).join("\n");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("sasl.password = \"***\""), "{shown}");
    let err = k.compile_with_env(|_| None).unwrap_err();
    assert!(
        err.0.contains("environment variable KPW is not set"),
        "{err}"
    );
}

#[test]
fn owned_settings_and_bad_values_are_refused_with_the_fix() {
    let e = kafka("[kafka.client]\n\"enable.auto.commit\" = true\n")
        .compile_with_env(|_| None)
        .unwrap_err();
    assert!(e.0.contains("set by churnwatch"), "{e}");
    let e = kafka("[kafka]\nstart = \"beginning\"\n")
        .compile_with_env(|_| None)
        .unwrap_err();
    assert!(e.0.contains("\"earliest\" or \"latest\""), "{e}");
    let e = kafka("[kafka]\ncommit_interval = \"soon\"\n")
        .compile_with_env(|_| None)
        .unwrap_err();
    assert!(e.0.contains("write it like"), "{e}");
    let e = kafka("[kafka.topics]\nprofiles = \"churnwatch.changelog\"\n")
        .compile_with_env(|_| None)
        .unwrap_err();
    assert!(e.0.contains("must not be shared"), "{e}");
    let e = kafka("[kafka]\ninput_topic = \"churnwatch.profiles\"\n")
        .compile_with_env(|_| None)
        .unwrap_err();
    assert!(e.0.contains("is the input topic"), "{e}");
    let e = kafka("[kafka]\ninput_topic = \"orders,visits\"\n")
        .compile_with_env(|_| None)
        .unwrap_err();
    assert!(e.0.contains("reads one input topic"), "{e}");
    let e = kafka("[kafka.topics]\nwarnings = \"churn warnings\"\n")
        .compile_with_env(|_| None)
        .unwrap_err();
    assert!(
        e.0.contains("kafka.topics.warnings = \"churn warnings\" is not a valid Kafka topic name"),
        "{e}"
    );
    let long = "t".repeat(250);
    let e = kafka(&format!("[kafka]\ninput_topic = \"{long}\"\n"))
        .compile_with_env(|_| None)
        .unwrap_err();
    assert!(e.0.contains("1 to 249"), "{e}");
    assert!(kafka("[kafka]\ninput_topic = \"shop.events_v2-eu\"\n")
        .compile_with_env(|_| None)
        .is_ok());
    let e = kafka("[kafka.client]\n\"fetch.wait.max.msx\" = 10\n")
        .compile_with_env(|_| None)
        .unwrap_err();
    assert!(
        e.0.contains("kafka.client.fetch.wait.max.msx: librdkafka refuses it")
            && e.0.contains("No such configuration property"),
        "{e}"
    );
    let e = kafka("[kafka.client]\n\"socket.timeout.ms\" = \"soon\"\n")
        .compile_with_env(|_| None)
        .unwrap_err();
    assert!(e.0.contains("kafka.client.socket.timeout.ms"), "{e}");
    // A refused setting beside a secret: the answer names the setting, not the secret.
    let e = kafka("[kafka.client]\n\"ssl.key.password\" = \"env:KPW\"\n\"sasl.password.typo\" = \"env:KPW\"\n")
        .compile_with_env(|n| (n == "KPW").then(|| "hunter2".to_string()))
        .unwrap_err();
    assert!(e.0.contains("sasl.password.typo"), "{e}");
    assert!(!e.0.contains("hunter2"), "{e}");
    let e = kafka("[kafka]\nrestore_parallelism = 0\n")
        .compile_with_env(|_| None)
        .unwrap_err();
    assert!(
        e.0.contains("restore_parallelism must be at least 1"),
        "{e}"
    );
    for bad in ["-1", "9"] {
        let e = kafka(&format!("[kafka]\nstandby_replicas = {bad}\n"))
            .compile_with_env(|_| None)
            .unwrap_err();
        assert!(
            e.0.contains("kafka.standby_replicas") && e.0.contains("from 1 to 8"),
            "{e}"
        );
    }
    let k = kafka("[kafka]\nstandby_replicas = 1\n")
        .compile_with_env(|_| None)
        .unwrap();
    assert_eq!(k.standby_replicas, 1);
}

#[test]
fn workers_default_to_the_cores_and_are_checked() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get().min(64));
    let k = kafka("").compile_with_env(|_| None).unwrap();
    assert_eq!(k.workers, cores, "0 (the default) = one worker per core");
    for n in [1, 2, 64] {
        let k = kafka(&format!("[kafka]\nworkers = {n}\n"))
            .compile_with_env(|_| None)
            .unwrap();
        assert_eq!(k.workers, n);
    }
    for bad in ["-1", "65"] {
        let e = kafka(&format!("[kafka]\nworkers = {bad}\n"))
            .compile_with_env(|_| None)
            .unwrap_err();
        assert!(
            e.0.contains("kafka.workers") && e.0.contains("from 1 to 64"),
            "{e}"
        );
    }
}
