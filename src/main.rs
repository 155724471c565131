//! The `churnwatch` binary.

/// mimalloc instead of the system allocator: outputs, histories and librdkafka buffers
/// are many small short-lived allocations. Measured on one core: replay of 600 k events
/// 173-176 k vs 149-160 k events/s (`examples/split`), and resident state 197 vs 200
/// bytes per customer at 1 M customers (`examples/memory`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Parser;

use churnwatch::cli::{Cli, Command, RulesCommand};
use churnwatch::config::Config;
use churnwatch::core::time::parse_rfc3339;
use churnwatch::gen::{GenOptions, Generator};
use churnwatch::kafka::{wall_clock, RunOptions, Service, Status};
use churnwatch::produce::{produce, ProduceOptions};
use churnwatch::replay::{replay, ReplayOptions};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if reader_went_away(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", message(&e));
            ExitCode::from(2)
        }
    }
}

/// Whether the error is a closed pipe on the output (`churnwatch replay … --output - |
/// head`): the reader has what it wanted, so, like other command-line tools, exit quietly
/// instead of reporting "Broken pipe" as a failure.
fn reader_went_away(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// The error and its causes on one line, each cause once: the boundary errors name
/// their cause in their own message (`cannot open FILE: No such file…`) and also expose
/// it as their source, so printing the whole chain said everything twice.
fn message(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    msg
}

fn init_logs(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&cfg.log.level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour codes only on a terminal: in a file, a pipe or a log collector they are
    // noise around every level and field name.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
        .with_writer(io::stderr);
    let _ = if cfg.log.format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// The tier names in rule order (the console's series are indexed like this).
fn tier_names(s: &churnwatch::core::Settings) -> Vec<String> {
    s.tiers.iter().map(|t| t.name.to_string()).collect()
}

/// `KEY=VALUE` client settings; `env:NAME` values come from the environment.
fn client_settings(pairs: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    pairs
        .iter()
        .map(|p| {
            let (k, v) = p.split_once('=').with_context(|| {
                format!("--client {p:?} must be KEY=VALUE, e.g. security.protocol=SASL_SSL")
            })?;
            let v = match v.strip_prefix("env:") {
                Some(name) => std::env::var(name).with_context(|| {
                    format!("--client {k}=env:{name}: the environment variable {name} is not set")
                })?,
                None => v.to_string(),
            };
            Ok((k.trim().to_string(), v))
        })
        .collect()
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Replay {
            config,
            input,
            output,
            profiles,
            profiles_as_published,
            dead_letters,
            report,
            until,
            print,
            quiet,
        } => {
            let cfg = Config::load(config.as_deref())?;
            init_logs(&cfg);
            let until = match until {
                Some(u) => Some(parse_rfc3339(&u).with_context(|| {
                    format!("--until {u:?} is not an RFC 3339 instant; write it like 2026-07-01T00:00:00Z")
                })?),
                None => None,
            };
            let settings = Arc::new(cfg.settings()?);
            replay(
                settings,
                &ReplayOptions {
                    input,
                    output,
                    profiles,
                    profiles_as_published,
                    dead_letters,
                    report,
                    until,
                    print,
                    progress: !quiet,
                },
            )?;
            Ok(())
        }
        Command::Run { config } => {
            let cfg = Config::load(config.as_deref())?;
            init_logs(&cfg);
            let settings = Arc::new(cfg.settings()?);
            let kafka = cfg.kafka.compile()?;
            let status = Status::new();
            let live = churnwatch::http::Live::new(tier_names(&settings));
            let service = Service::new(RunOptions {
                settings,
                kafka,
                clock: wall_clock(),
                hook: Some(live.hook()),
                status: status.clone(),
                advertised_url: cfg.http.advertised(),
            })?;
            // The rule file on disk is the record of the rules: a reload reads it again
            // (with the same environment), as a restart would.
            let path = config.clone();
            service.set_rules_source(Arc::new(move || {
                Config::load(path.as_deref())
                    .and_then(|c| Ok(c.settings()?))
                    .map_err(|e| e.to_string())
            }));
            let _bg = churnwatch::http::start(
                &cfg.http.listen,
                &cfg.http.access(),
                Some((service.handle(), live)),
                status,
            )?;
            service.run()?;
            Ok(())
        }
        Command::Demo {
            config,
            customers,
            rate,
            days_per_second,
            seconds,
            listen,
            seed,
            verbose,
        } => {
            let mut cfg = Config::load(config.as_deref())?;
            // The demo's stdout is the alerts; only problems go to the log (RUST_LOG
            // overrides).
            cfg.log.level = "warn".into();
            init_logs(&cfg);
            let settings = Arc::new(cfg.settings()?);
            churnwatch::demo::run(
                settings,
                &churnwatch::demo::DemoOptions {
                    customers,
                    rate,
                    days_per_second,
                    seconds,
                    listen,
                    seed,
                    verbose,
                },
            )?;
            Ok(())
        }
        Command::Fit {
            input,
            as_of,
            unit,
            json,
            config,
        } => {
            let cfg = Config::load(config.as_deref())?;
            let settings = cfg.settings()?;
            let instant = if as_of.len() == 10 {
                parse_rfc3339(&format!("{as_of}T00:00:00Z"))
            } else {
                parse_rfc3339(&as_of)
            };
            let Some(instant) = instant else {
                bail!("--as-of {as_of:?} is not a date; write it like 1997-09-30");
            };
            let unit_days = if unit == "days" { 1.0 } else { 7.0 };
            let day = churnwatch::core::time::day_of(instant);
            let r = churnwatch::fit::fit_file(&input, day, unit_days, &settings.limits)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print!("{}", churnwatch::fit::describe(&r, &as_of));
            }
            Ok(())
        }
        Command::Rules {
            command:
                RulesCommand::Diff {
                    config,
                    url,
                    token_env,
                    input,
                    until,
                    current,
                    samples,
                    json,
                },
        } => {
            let candidate = Config::load(Some(&config))?;
            let d = match (url, input) {
                (Some(url), _) => {
                    let token = token_env
                        .map(|v| churnwatch::rules_diff::token_from_env(&v))
                        .transpose()?;
                    let text = std::fs::read_to_string(&config)
                        .with_context(|| format!("cannot read {}", config.display()))?;
                    churnwatch::rules_diff::diff_remote(&url, token.as_deref(), &text, samples)?
                }
                (None, Some(input)) => {
                    let until = match until {
                        Some(u) => Some(parse_instant(&u).with_context(|| {
                            format!("--until {u:?} is not a time; write it like 2026-03-31 or 2026-03-31T00:00:00Z")
                        })?),
                        None => None,
                    };
                    let running = Arc::new(Config::load(current.as_deref())?.settings()?);
                    churnwatch::rules_diff::diff_replay(
                        running,
                        Arc::new(candidate.settings()?),
                        &input,
                        until,
                        samples,
                    )?
                }
                (None, None) => bail!("give --url (a running instance) or --input (a replay)"),
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&d)?);
            } else {
                print!("{}", churnwatch::rules_diff::describe(&d));
            }
            Ok(())
        }
        Command::CheckConfig { file } => {
            let cfg = Config::load(file.as_deref())?;
            let settings = cfg.settings()?;
            // Everything is validated before anything is printed, so "valid." is never
            // followed by an error about the Kafka part.
            let k = cfg.kafka.compile()?;
            let listen = cfg.http.listen.trim();
            if !listen.is_empty() {
                use std::net::ToSocketAddrs;
                if let Err(e) = listen.to_socket_addrs() {
                    bail!("http.listen = {listen:?} is not an address to listen on ({e}); write it like \"0.0.0.0:8080\", or \"\" to turn HTTP off");
                }
                churnwatch::http::Access::new(listen, &cfg.http.access())?;
            }
            println!(
                "{}: valid.\n",
                file.as_deref()
                    .map_or("built-in defaults".into(), |p| p.display().to_string())
            );
            print!("{}", settings.explain());
            println!(
                "\nKafka (churnwatch run):\n  brokers {}, group {}, input topic {}\n  outputs: tier changes -> {}, warnings -> {}, profiles -> {} (compacted), dead letters -> {}\n  state: changelog {} (compacted), commit every {:?}, idle partitions follow the clock after {}, drain {:?}\n  create missing topics: {}",
                k.brokers,
                k.group_id,
                k.input_topic,
                k.topics.tier_changes,
                k.topics.warnings,
                k.topics.profiles,
                k.topics.dead_letters,
                k.topics.changelog,
                k.commit_interval,
                k.idle_timeout.map_or("never".to_string(), |d| format!("{d:?}")),
                k.drain_timeout,
                k.create_topics,
            );
            for line in churnwatch::kafka::config::describe_client(&k.client) {
                println!("  client: {line}");
            }
            if listen.is_empty() {
                println!("\nHTTP: off");
            } else {
                println!(
                    "\nHTTP: {listen}\n  endpoints: {}",
                    churnwatch::http::ENDPOINTS.join(" ")
                );
                let a = cfg.http.access();
                let tokens = match (a.env_token.is_some(), a.tokens_file.trim()) {
                    (false, "") => "none configured".to_string(),
                    (env, file) => [
                        env.then(|| format!("${} (name \"default\")", a.token_env)),
                        (!file.is_empty())
                            .then(|| format!("named tokens from {file} (re-read on change)")),
                    ]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" and "),
                };
                println!("  API tokens: {tokens}; customer look-ups are logged with the token's name (target churnwatch::audit)");
            }
            Ok(())
        }
        Command::Gen {
            customers,
            events,
            seed,
            out,
            start,
            days,
            duplicates,
            bad,
            brokers,
            topic,
            rate,
            client,
        } => {
            let Some(start) = parse_rfc3339(&start) else {
                bail!("--start {start:?} is not an RFC 3339 instant; write it like 2024-01-01T00:00:00Z");
            };
            if !(0.0..=1.0).contains(&duplicates) || !(0.0..=1.0).contains(&bad) {
                bail!("--duplicates and --bad are fractions between 0 and 1");
            }
            if customers == 0 {
                bail!("--customers must be at least 1");
            }
            if rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
                bail!("--rate must be a positive number of events per second");
            }
            let g = Generator::new(GenOptions {
                customers,
                events,
                seed,
                start,
                days,
                duplicates,
                bad,
            });
            if let (Some(brokers), Some(topic)) = (brokers, topic) {
                let opts = ProduceOptions {
                    brokers,
                    topic: topic.clone(),
                    rate,
                    client: client_settings(&client)?,
                    progress: true,
                };
                let t0 = Instant::now();
                let n = produce(g, &opts)?;
                eprintln!(
                    "gen: {n} events delivered to topic {topic} in {:.2} s",
                    t0.elapsed().as_secs_f64()
                );
                return Ok(());
            }
            let out = out.expect("clap requires --out without --topic");
            let mut w: Box<dyn Write> = if out.as_os_str() == "-" {
                Box::new(BufWriter::new(io::stdout()))
            } else {
                let f = File::create(&out)
                    .with_context(|| format!("cannot create {}", out.display()))?;
                Box::new(BufWriter::with_capacity(1 << 20, f))
            };
            let mut g = g;
            let t0 = Instant::now();
            let mut last = Instant::now();
            let mut buf = Vec::with_capacity(512);
            let mut n = 0u64;
            while g.next_line(&mut buf) {
                buf.push(b'\n');
                w.write_all(&buf)?;
                n += 1;
                if n % 65_536 == 0 && last.elapsed().as_secs() >= 2 {
                    last = Instant::now();
                    eprintln!(
                        "gen: {n} lines ({:.0}/s)",
                        n as f64 / t0.elapsed().as_secs_f64()
                    );
                }
            }
            w.flush()?;
            eprintln!(
                "gen: wrote {n} lines in {:.2} s",
                t0.elapsed().as_secs_f64()
            );
            Ok(())
        }
    }
}

/// An RFC 3339 instant, or a date (its start, UTC).
fn parse_instant(s: &str) -> Option<churnwatch::core::time::Ts> {
    if s.len() == 10 {
        parse_rfc3339(&format!("{s}T00:00:00Z"))
    } else {
        parse_rfc3339(s)
    }
}
