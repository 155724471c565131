//! Deployment files and the observability surface: Prometheus config and alert rules
//! through promtool (including rule unit tests), the service on librdkafka's mock cluster
//! scraped and checked by `promtool check metrics`, every metric the dashboard and the
//! alerts use present in that scrape, the API token, and the wiring of docker-compose.yml
//! and the Kubernetes manifests against config/ and deploy/.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_yaml::Value;

#[path = "support/mock.rs"]
mod mock;
#[path = "support/net.rs"]
mod net;
use net::{free_port, http_get};

const BIN: &str = env!("CARGO_BIN_EXE_churnwatch");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn promtool() -> Command {
    let ok = Command::new("promtool")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "promtool is not installed: run `scripts/install-tools.sh promtool` (scripts/test.sh does this)");
    Command::new("promtool")
}

fn run_ok(mut c: Command) -> String {
    let o = c.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{c:?} failed:\n{text}");
    text
}

#[test]
fn prometheus_config_and_rules_pass_promtool_with_their_unit_tests() {
    let mut c = promtool();
    c.args(["check", "config"])
        .arg(root().join("deploy/prometheus/prometheus.yml"));
    run_ok(c);
    let mut c = promtool();
    c.args(["check", "rules"])
        .arg(root().join("deploy/prometheus/alerts.yml"));
    assert!(run_ok(c).contains("SUCCESS: 9 rules found"));
    let mut c = promtool();
    c.current_dir(root().join("deploy/prometheus"))
        .args(["test", "rules", "alerts_test.yml"]);
    run_ok(c);
}

/// Metric names a PromQL expression refers to.
fn metric_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = expr.as_bytes();
    let mut i = 0;
    while let Some(pos) = expr[i..].find("churnwatch_") {
        let start = i + pos;
        let mut end = start;
        while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
            end += 1;
        }
        out.push(expr[start..end].to_string());
        i = end;
    }
    out
}

fn get(port: u16, path: &str, token: Option<&str>) -> (u16, String) {
    http_get(port, path, token).unwrap_or_else(|| panic!("GET {path}: no answer"))
}

#[test]
fn service_metrics_pass_promtool_cover_dashboard_and_alerts_and_the_api_needs_its_token() {
    let cluster = mock::cluster(2);
    let brokers = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    // The report comparison below needs the service's two partitions and replay's single
    // stream to have fired the same deadlines: each partition's watermark stops at its
    // own last event, replay's at the stream's. A seed whose customers have no deadline
    // between those instants (seed 9 had one once the generator's CRM answers changed its
    // draws: a time-driven warning at 2025-12-31 that only replay fired).
    let gen = |extra: &[&str]| {
        let mut c = Command::new(BIN);
        c.args([
            "gen",
            "--customers",
            "150",
            "--events",
            "2500",
            "--seed",
            "10",
            "--bad",
            "0.01",
        ])
        .args(extra);
        run_ok(c)
    };
    gen(&["--out", events.to_str().unwrap()]);
    gen(&["--brokers", &brokers, "--topic", "customer-events"]);
    let lines = std::fs::read_to_string(&events).unwrap().lines().count() as u64;

    let port = free_port();
    let token = "t0ken-for-tests";
    let mut child = Command::new(BIN)
        .arg("run")
        .env("CHURNWATCH__KAFKA__BROKERS", &brokers)
        .env("CHURNWATCH__KAFKA__IDLE_TIMEOUT", "0s")
        .env("CHURNWATCH__HTTP__LISTEN", format!("127.0.0.1:{port}"))
        .env("CHURNWATCH_API_TOKEN", token)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    loop {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "service did not consume the input"
        );
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            let (code, body) = get(port, "/v1/status", Some(token));
            if code == 200 {
                let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                let durable = v["partitions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|p| p["durable_offset"] == p["next_offset"]);
                if v["events"].as_u64().unwrap_or(0) >= lines && durable {
                    break;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    // The API needs the token; probes and metrics do not.
    assert_eq!(get(port, "/v1/status", None).0, 401);
    assert_eq!(get(port, "/v1/customers/C0000001", Some("wrong")).0, 401);
    assert_eq!(get(port, "/healthz", None).0, 200);
    assert_eq!(get(port, "/readyz", None).0, 200);
    assert_eq!(get(port, "/v1/customers/nobody", Some(token)).0, 404);
    // A wrong path says which ones exist.
    let (code, body) = get(port, "/v1/customer/C0000001", None);
    assert_eq!(code, 404);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["error"]
        .as_str()
        .unwrap()
        .contains("/v1/customer/C0000001"));
    assert!(v["endpoints"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("/v1/customers/{id}")));
    let first = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .find_map(|l| {
            serde_json::from_str::<serde_json::Value>(l).ok()?["customer_id"]
                .as_str()
                .map(str::to_string)
        })
        .unwrap();
    let (code, body) = get(port, &format!("/v1/customers/{first}"), Some(token));
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["customer_id"], first.as_str());
    assert!(v["input"]["offset"].as_i64().unwrap() >= 0, "{v}");
    assert!(
        v["tier"].is_string()
            && v["warning"]["level"].is_string()
            && v["facts"]["p_alive"].is_number(),
        "{v}"
    );

    // The live report equals replay's report of the same events.
    let report_file = dir.path().join("report.json");
    let mut c = Command::new(BIN);
    c.args(["replay", "--quiet", "--output", "/dev/null", "--input"])
        .arg(&events)
        .arg("--report")
        .arg(&report_file);
    run_ok(c);
    let want: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_file).unwrap()).unwrap();
    assert_eq!(get(port, "/v1/report", None).0, 401);
    let (code, body) = get(port, "/v1/report", Some(token));
    assert_eq!(code, 200, "{body}");
    let mut got: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(got["scope"], "instance");
    assert_eq!(got["partitions"], serde_json::json!([0, 1]));
    for k in ["scope", "partitions"] {
        got.as_object_mut().unwrap().remove(k);
    }
    assert_eq!(got, want, "/v1/report differs from replay --report");
    assert_eq!(got["overall"]["customers"].as_u64(), Some(150), "{got}");

    // A real scrape passes promtool, and has every metric the dashboard and alerts use.
    let (code, scrape) = get(port, "/metrics", None);
    assert_eq!(code, 200);
    let mut check = promtool()
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        check
            .stdin
            .take()
            .unwrap()
            .write_all(scrape.as_bytes())
            .unwrap();
    }
    let o = check.wait_with_output().unwrap();
    let complaints = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.status.success() && complaints.trim().is_empty(),
        "promtool check metrics: {complaints}"
    );
    let mut names = BTreeSet::new();
    for l in scrape.lines().filter(|l| l.starts_with("# TYPE ")) {
        let mut it = l.split_whitespace().skip(2);
        let (name, kind) = (it.next().unwrap(), it.next().unwrap());
        names.insert(name.to_string());
        if kind == "histogram" {
            for s in ["_bucket", "_sum", "_count"] {
                names.insert(format!("{name}{s}"));
            }
        }
    }
    assert!(scrape.contains("churnwatch_events_consumed_total{type=\"order\"}"));
    // The population report as metrics: value tiers, ABC classes, campaigns.
    assert!(scrape.contains("churnwatch_report_value_tier_customers{value_tier=\"A\"}"));
    assert!(scrape.contains("churnwatch_report_abc_spend_share{class=\"A\"}"));
    assert!(scrape.contains("churnwatch_report_overall{figure=\"repurchase_rate\"}"));
    assert!(scrape.contains("churnwatch_report_campaign{campaign="));
    assert!(!scrape.contains("C0000"), "no customer id in any metric");
    let dash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("deploy/grafana/dashboards/churnwatch.json")).unwrap(),
    )
    .unwrap();
    let mut used = 0;
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            for n in metric_names(t["expr"].as_str().unwrap()) {
                used += 1;
                assert!(
                    names.contains(&n),
                    "panel {:?} uses {n}, which the service does not export",
                    p["title"]
                );
            }
        }
    }
    assert!(used >= 14, "the dashboard queries churnwatch metrics");
    let rules = yaml("deploy/prometheus/alerts.yml");
    for r in rules["groups"][0]["rules"].as_sequence().unwrap() {
        for n in metric_names(r["expr"].as_str().unwrap()) {
            assert!(
                names.contains(&n),
                "alert {:?} uses {n}, which the service does not export",
                r["alert"]
            );
        }
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}

fn port_of(listen: &str) -> u16 {
    listen.rsplit(':').next().unwrap().parse().unwrap()
}

fn load_config(text: &str) -> churnwatch::config::Config {
    let f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(f.path(), text).unwrap();
    churnwatch::config::Config::load_with_env(Some(f.path()), false).unwrap()
}

/// The Kafka version the tests run against (`KAFKA_VERSION` in scripts/kafka.sh).
fn tested_kafka_version() -> String {
    let script = std::fs::read_to_string(root().join("scripts/kafka.sh")).unwrap();
    let line = script
        .lines()
        .find(|l| l.starts_with("KAFKA_VERSION="))
        .expect("scripts/kafka.sh sets KAFKA_VERSION");
    line.split(":-")
        .nth(1)
        .and_then(|v| v.split('}').next())
        .expect("KAFKA_VERSION=\"${KAFKA_VERSION:-X.Y.Z}\"")
        .to_string()
}

#[test]
fn compose_and_kubernetes_name_the_kafka_version_the_tests_use() {
    let v = tested_kafka_version();
    let major = v.split('.').next().unwrap();
    let c = yaml("docker-compose.yml");
    for svc in ["kafka", "kafka-init"] {
        let image = c["services"][svc]["image"].as_str().unwrap();
        assert_eq!(
            image,
            format!("apache/kafka:{v}"),
            "{svc} runs the tested Kafka"
        );
    }
    let cm = std::fs::read_to_string(root().join("deploy/k8s/configmap.yaml")).unwrap();
    assert!(
        cm.contains(&format!("Apache Kafka {major}.x"))
            && cm.contains(&format!("apache/kafka {v}")),
        "deploy/k8s/configmap.yaml names the Kafka version the tests use ({v})"
    );
}

#[test]
fn compose_stack_is_wired_to_config_and_deploy_files() {
    let c = yaml("docker-compose.yml");
    let s = &c["services"];
    let docker = load_config(&std::fs::read_to_string(root().join("config/docker.toml")).unwrap());
    let listen_port = port_of(&docker.http.listen);
    assert!(
        docker.http.listen.starts_with("0.0.0.0:"),
        "containers listen on all interfaces"
    );

    // Every file the stack mounts or builds from exists.
    for (name, svc) in s.as_mapping().unwrap() {
        if let Some(b) = svc.get("build") {
            assert!(
                root()
                    .join(b.as_str().unwrap())
                    .join("Dockerfile")
                    .is_file(),
                "{name:?}: build context"
            );
        }
        for v in svc
            .get("volumes")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            let host = v.as_str().unwrap().split(':').next().unwrap();
            assert!(
                root().join(host).exists(),
                "{name:?} mounts {host}, which does not exist"
            );
        }
    }
    let cw = &s["churnwatch"];
    assert_eq!(
        cw["ports"][0].as_str().unwrap(),
        format!("{listen_port}:{listen_port}")
    );
    let brokers = cw["environment"]["CHURNWATCH__KAFKA__BROKERS"]
        .as_str()
        .unwrap();
    assert_eq!(brokers, docker.kafka.brokers);
    assert!(s["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
        .as_str()
        .unwrap()
        .contains(brokers));
    // Listening on all interfaces, the service refuses to start without an API token; the
    // stack passes the user's (and compose itself refuses to start without one).
    let token_var = cw["environment"][docker.http.token_env.as_str()]
        .as_str()
        .unwrap_or_else(|| panic!("compose passes {} to churnwatch", docker.http.token_env));
    assert!(
        token_var.starts_with("${CHURNWATCH_API_TOKEN:?"),
        "{token_var}"
    );
    let mut no_token = docker.http.access();
    no_token.env_token = None;
    assert!(churnwatch::http::Access::new(&docker.http.listen, &no_token).is_err());
    no_token.env_token = Some("a-token-from-the-environment".into());
    assert!(churnwatch::http::Access::new(&docker.http.listen, &no_token).is_ok());
    let mount = cw["volumes"][0].as_str().unwrap();
    assert!(mount.starts_with("./config/docker.toml:/etc/churnwatch/churnwatch.toml"));
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains("/etc/churnwatch/churnwatch.toml")
            && dockerfile.contains(&format!("EXPOSE {listen_port}"))
    );
    assert!(dockerfile.contains("USER 10001") && dockerfile.contains("HEALTHCHECK"));
    // The image runs on Debian's libssl3, so it must not build the vendored OpenSSL.
    assert!(
        dockerfile.contains("libssl3") && dockerfile.contains("--no-default-features"),
        "the Dockerfile builds against the system OpenSSL it ships"
    );
    assert!(dockerfile.contains(&format!("127.0.0.1:{listen_port}/healthz")));

    // The topic the init job creates is the one the service and the generator use.
    // The value after `flag` in a compose service's command list.
    let arg = |service: &str, flag: &str| -> String {
        let cmd = s[service]["command"].as_sequence().unwrap();
        let i = cmd.iter().position(|a| a.as_str() == Some(flag)).unwrap();
        cmd[i + 1].as_str().unwrap().to_string()
    };
    let topic = arg("kafka-init", "--topic");
    assert_eq!(topic, docker.kafka.input_topic);
    assert_eq!(arg("generator", "--topic"), topic);
    assert_eq!(arg("generator", "--brokers"), brokers);

    // Prometheus scrapes the service where it listens; Grafana finds Prometheus and the dashboards.
    let prom = yaml("deploy/prometheus/prometheus.yml");
    let target = prom["scrape_configs"][0]["static_configs"][0]["targets"][0]
        .as_str()
        .unwrap();
    assert_eq!(target, format!("churnwatch:{listen_port}"));
    assert_eq!(
        prom["scrape_configs"][0]["metrics_path"].as_str(),
        Some("/metrics")
    );
    let prom_port = s["prometheus"]["ports"][0]
        .as_str()
        .unwrap()
        .split(':')
        .next_back()
        .unwrap();
    let ds = yaml("deploy/grafana/provisioning/datasources/prometheus.yml");
    assert_eq!(
        ds["datasources"][0]["url"].as_str().unwrap(),
        format!("http://prometheus:{prom_port}")
    );
    let uid = ds["datasources"][0]["uid"].as_str().unwrap();
    let dash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("deploy/grafana/dashboards/churnwatch.json")).unwrap(),
    )
    .unwrap();
    for p in dash["panels"].as_array().unwrap() {
        assert_eq!(
            p["datasource"]["uid"].as_str(),
            Some(uid),
            "panel {:?}",
            p["title"]
        );
    }
    let prov = yaml("deploy/grafana/provisioning/dashboards/churnwatch.yml");
    let path = prov["providers"][0]["options"]["path"].as_str().unwrap();
    let vols: Vec<&str> = s["grafana"]["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        vols.iter().any(|v| v.contains(&format!(":{path}"))),
        "dashboards mounted at {path}"
    );
}

#[test]
fn kubernetes_manifests_agree_on_ports_probes_labels_and_shutdown() {
    let cm = yaml("deploy/k8s/configmap.yaml");
    let toml_text = cm["data"]["churnwatch.toml"].as_str().unwrap();
    let cfg = load_config(toml_text);
    let k = cfg
        .kafka
        .compile_with_env(|n| Some(format!("value-of-{n}")))
        .expect("the ConfigMap's config is valid");
    let port = port_of(&cfg.http.listen) as u64;

    let secret = yaml("deploy/k8s/secret.yaml");
    for needed in ["KAFKA_PASSWORD", cfg.http.token_env.as_str()] {
        assert!(
            secret["stringData"].get(needed).is_some(),
            "secret lacks {needed}"
        );
    }
    assert!(toml_text.contains("env:KAFKA_PASSWORD"));

    let d = yaml("deploy/k8s/deployment.yaml");
    let labels = &d["spec"]["template"]["metadata"]["labels"];
    assert_eq!(&d["spec"]["selector"]["matchLabels"], labels);
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["ports"][0]["containerPort"].as_u64(), Some(port));
    let port_name = c["ports"][0]["name"].as_str().unwrap();
    assert_eq!(
        c["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/healthz")
    );
    assert_eq!(
        c["readinessProbe"]["httpGet"]["path"].as_str(),
        Some("/readyz")
    );
    for p in ["livenessProbe", "readinessProbe", "startupProbe"] {
        assert_eq!(c[p]["httpGet"]["port"].as_str(), Some(port_name), "{p}");
    }
    assert_eq!(
        c["envFrom"][0]["secretRef"]["name"],
        secret["metadata"]["name"]
    );
    // Replicas forward look-ups to each other at their pod address, on the HTTP port.
    let advertised = c["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "CHURNWATCH__HTTP__ADVERTISED_URL")
        .expect("the pod advertises its address");
    assert_eq!(
        advertised["value"].as_str(),
        Some(format!("http://$(POD_IP):{port}").as_str())
    );
    let mount = c["volumeMounts"][0]["mountPath"].as_str().unwrap();
    let args: Vec<&str> = c["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        args,
        ["run", "--config", &format!("{mount}/churnwatch.toml")]
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"],
        cm["metadata"]["name"]
    );
    assert!(
        c["resources"]["requests"]["memory"].is_string()
            && c["resources"]["limits"]["memory"].is_string()
    );
    let grace = d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .unwrap();
    assert!(
        Duration::from_secs(grace) > k.drain_timeout,
        "terminationGracePeriodSeconds ({grace}) must exceed kafka.drain_timeout ({:?})",
        k.drain_timeout
    );

    let svc = yaml("deploy/k8s/service.yaml");
    assert_eq!(&svc["spec"]["selector"], labels);
    assert_eq!(
        svc["spec"]["ports"][0]["targetPort"].as_str(),
        Some(port_name)
    );
    let sm = yaml("deploy/k8s/servicemonitor.yaml");
    assert_eq!(
        sm["spec"]["endpoints"][0]["port"],
        svc["spec"]["ports"][0]["name"]
    );
    assert_eq!(
        sm["spec"]["endpoints"][0]["path"].as_str(),
        Some("/metrics")
    );
    assert_eq!(
        &sm["spec"]["selector"]["matchLabels"],
        &svc["metadata"]["labels"]
    );
    let pdb = yaml("deploy/k8s/pdb.yaml");
    assert_eq!(&pdb["spec"]["selector"]["matchLabels"], labels);
}
