//! The Docker deployment agrees with the binaries, the Makefile and the native
//! stack: a renamed flag, a moved metrics port, a changed partition count or
//! Kafka version, an unpinned image or a secret nobody generates fails here,
//! not at `docker compose up` on someone's machine.
//!
//! No Docker is needed. The files are read as text; what the binaries accept
//! comes from their `--help` (clap prints `[env: NAME=…]` and `[default: …]`
//! for every flag), so the debug binaries must be built first, as for every
//! e2e test. All checks are one function of the files' text, [`problems`],
//! and the second test edits copies of the texts to prove that each check
//! catches a real mismatch.
//!
//! The same `--help` texts keep `docs/configuration.md` honest: every flag and
//! variable they print is in it, and every flag its tables name still exists.

// End-to-end: built only with the feature `make test` turns on (docs/testing.md).
#![cfg(feature = "integration-tests")]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml::Value;

/// The deployment's files, as text, so tests can change them in memory.
#[derive(Clone)]
struct Sources {
    compose: String,
    prometheus_compose: String,
    prometheus_native: String,
    dockerfile: String,
    entrypoint: String,
    healthcheck_script: String,
    secrets_script: String,
    makefile: String,
    kafka_pom: String,
    cargo_toml: String,
}

impl Sources {
    fn from_repository() -> Self {
        let read = |path: &str| {
            let path = repository().join(path);
            std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        };
        Sources {
            compose: read("compose/docker-compose.yml"),
            prometheus_compose: read("compose/prometheus/prometheus.compose.yml"),
            prometheus_native: read("compose/prometheus/prometheus.yml"),
            dockerfile: read("Dockerfile"),
            entrypoint: read("docker/entrypoint.sh"),
            healthcheck_script: read("docker/healthcheck.sh"),
            secrets_script: read("scripts/secrets.sh"),
            makefile: read("Makefile"),
            kafka_pom: read("scripts/kafka/pom.xml"),
            cargo_toml: read("Cargo.toml"),
        }
    }
}

/// What one binary (or subcommand) accepts, from its `--help`.
#[derive(Clone, Debug, Default)]
struct Help {
    /// Every environment variable it reads.
    env: BTreeSet<String>,
    /// The default value behind each variable that has one.
    defaults: BTreeMap<String, String>,
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where the workspace's binaries were built (as the harness finds them).
fn binary(name: &str) -> PathBuf {
    let dir =
        std::env::var_os("ORDERSTREAM_BIN_DIR").map(PathBuf::from).unwrap_or_else(|| repository().join("target/debug"));
    let path = dir.join(name);
    assert!(path.exists(), "{} is missing: build it first (`cargo build --workspace --bins`)", path.display());
    path
}

/// Parses clap's help: each flag's block, its `[env: NAME=…]` and `[default: …]`.
fn parse_help(text: &str) -> Help {
    let mut help = Help::default();
    let mut blocks: Vec<String> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("--") || (trimmed.starts_with('-') && trimmed.get(2..4) == Some(", ")) {
            blocks.push(String::new());
        }
        if let Some(block) = blocks.last_mut() {
            block.push_str(line);
            block.push(' ');
        }
    }
    for block in blocks {
        let Some(env) = bracketed(&block, "[env: ") else { continue };
        let name = env.split('=').next().unwrap().trim().to_string();
        if let Some(default) = bracketed(&block, "[default: ") {
            help.defaults.insert(name.clone(), default.trim_matches('"').to_string());
        }
        help.env.insert(name);
    }
    help
}

/// The text between `open` and the next `]`.
fn bracketed<'a>(text: &'a str, open: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    Some(&text[start..start + text[start..].find(']')?])
}

/// `--help` of each service's binary, with the subcommand compose runs (keyed
/// by service), and of each image's binary as the image runs it (keyed by
/// [`image_key`]).
fn binary_helps(compose: &Value) -> BTreeMap<String, Help> {
    let help = |target: &str, subcommand: Vec<String>| {
        let mut command = Command::new(binary(&format!("orderstream-{target}")));
        command.args(subcommand).arg("--help");
        let output = command.output().unwrap();
        assert!(output.status.success(), "{command:?} failed: {}", String::from_utf8_lossy(&output.stderr));
        parse_help(&String::from_utf8(output.stdout).unwrap())
    };
    let mut helps = BTreeMap::new();
    for (service, target) in our_services(compose) {
        helps.insert(service.clone(), help(&target, subcommand(&compose["services"][service.as_str()])));
        helps.entry(image_key(&target)).or_insert_with(|| help(&target, Vec::new()));
    }
    helps
}

fn image_key(target: &str) -> String {
    format!("image {target}")
}

/// The services built from our Dockerfile: service name → build target.
fn our_services(compose: &Value) -> Vec<(String, String)> {
    services(compose)
        .filter_map(|(name, service)| Some((name, service["build"]["target"].as_str()?.to_string())))
        .collect()
}

fn services(compose: &Value) -> impl Iterator<Item = (String, &Value)> + '_ {
    compose["services"].as_mapping().expect("compose file has services").iter().map(|(k, v)| (text(k), v))
}

fn subcommand(service: &Value) -> Vec<String> {
    service["command"]
        .as_sequence()
        .map(|args| args.iter().map(text).take_while(|arg| !arg.starts_with('-')).collect())
        .unwrap_or_default()
}

/// A YAML scalar as compose reads it (numbers and booleans become strings).
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("expected a scalar, found {other:?}"),
    }
}

fn environment(service: &Value) -> BTreeMap<String, String> {
    match &service["environment"] {
        Value::Mapping(map) => map.iter().map(|(k, v)| (text(k), text(v))).collect(),
        Value::Null => BTreeMap::new(),
        other => panic!("write `environment:` as a mapping, not {other:?}"),
    }
}

/// `${NAME:-default}` → the default; a literal stays itself.
fn interpolation_default(value: &str) -> &str {
    match (value.strip_prefix("${"), value.find(":-")) {
        (Some(_), Some(at)) => value[at + 2..].trim_end_matches('}'),
        _ => value,
    }
}

fn port_of(address: &str) -> &str {
    address.rsplit(':').next().unwrap()
}

/// An image reference carries an explicit version: a digest, or a tag that
/// starts with a version of at least major.minor (`15.14`, `v2.55.1`,
/// `12.12-slim`), not a moving name (`latest`, `bookworm-slim`, `1-slim`).
fn is_pinned(image: &str) -> bool {
    if image.contains("@sha256:") {
        return true;
    }
    let name = image.rsplit('/').next().unwrap();
    let Some((_, tag)) = name.split_once(':') else { return false };
    let tag = tag.strip_prefix('v').unwrap_or(tag);
    let version: String = tag.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    let parts: Vec<&str> = version.split('.').collect();
    parts.len() >= 2 && parts.iter().all(|part| !part.is_empty())
}

/// One Dockerfile stage: what it is built from, its ENV names, its health check.
#[derive(Debug, Default)]
struct Stage {
    from: String,
    env: BTreeSet<String>,
    healthcheck: Option<bool>,
}

fn dockerfile_stages(dockerfile: &str) -> BTreeMap<String, Stage> {
    let joined = dockerfile.replace("\\\n", " ");
    let mut stages: BTreeMap<String, Stage> = BTreeMap::new();
    let mut current = String::new();
    for line in joined.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (instruction, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        match instruction.to_ascii_uppercase().as_str() {
            "FROM" => {
                let words: Vec<&str> = rest.split_whitespace().filter(|w| !w.starts_with("--")).collect();
                current = match words.as_slice() {
                    [_, as_, name] if as_.eq_ignore_ascii_case("as") => name.to_string(),
                    _ => format!("stage{}", stages.len()),
                };
                let parent = stages.get(words[0]);
                let stage = Stage {
                    from: words[0].to_string(),
                    env: parent.map(|p| p.env.clone()).unwrap_or_default(),
                    healthcheck: parent.and_then(|p| p.healthcheck),
                };
                stages.insert(current.clone(), stage);
            }
            "ENV" => {
                let stage = stages.get_mut(&current).expect("ENV before FROM");
                stage.env.extend(rest.split_whitespace().filter_map(|w| Some(w.split_once('=')?.0.to_string())));
            }
            "HEALTHCHECK" => {
                stages.get_mut(&current).expect("HEALTHCHECK before FROM").healthcheck =
                    Some(rest.split_whitespace().any(|word| word.eq_ignore_ascii_case("CMD")));
            }
            _ => {}
        }
    }
    stages
}

/// Jobs of a Prometheus config: job name → (host or DNS name, port) per target.
fn scrape_targets(prometheus: &str) -> BTreeMap<String, Vec<(String, String)>> {
    let config: Value = serde_yaml::from_str(prometheus).expect("Prometheus config is YAML");
    let mut jobs = BTreeMap::new();
    for job in config["scrape_configs"].as_sequence().expect("scrape_configs") {
        let mut targets = Vec::new();
        for group in job["static_configs"].as_sequence().into_iter().flatten() {
            for target in group["targets"].as_sequence().into_iter().flatten() {
                let target = text(target);
                let (host, port) = target.rsplit_once(':').expect("target is host:port");
                targets.push((host.to_string(), port.to_string()));
            }
        }
        for discovery in job["dns_sd_configs"].as_sequence().into_iter().flatten() {
            for name in discovery["names"].as_sequence().into_iter().flatten() {
                targets.push((text(name), text(&discovery["port"])));
            }
        }
        jobs.insert(text(&job["job_name"]), targets);
    }
    jobs
}

/// The text after the first line starting with `key` and holding `separator`.
fn setting<'a>(text: &'a str, key: &str, separator: &str) -> Option<&'a str> {
    text.lines()
        .find(|line| line.starts_with(key) && line.contains(separator))
        .map(|line| line.split_once(separator).unwrap().1.trim())
}

/// Everything in `sources` that disagrees; empty when the deployment is consistent.
fn problems(sources: &Sources, helps: &BTreeMap<String, Help>) -> Vec<String> {
    let mut problems = Vec::new();
    let compose: Value = serde_yaml::from_str(&sources.compose).expect("compose file is YAML");
    let stages = dockerfile_stages(&sources.dockerfile);
    let version = sources
        .cargo_toml
        .split("[workspace.package]")
        .nth(1)
        .and_then(|package| setting(package.trim_start(), "version", "="))
        .map(|v| v.trim_matches('"').to_string())
        .expect("Cargo.toml has [workspace.package] version");
    let file_variables: BTreeSet<String> = sources
        .entrypoint
        .lines()
        .find_map(|line| line.trim().strip_prefix("for name in "))
        .map(|names| names.trim_end_matches("; do").split_whitespace().map(|n| format!("{n}_FILE")).collect())
        .unwrap_or_default();

    // Every variable compose and the image set on our services is one the
    // binary reads (a misspelt one would be silently ignored).
    let mut metrics_ports: BTreeMap<String, String> = BTreeMap::new();
    for (service, target) in our_services(&compose) {
        let definition = &compose["services"][service.as_str()];
        let help = &helps[&service];
        let reads = |name: &str| {
            help.env.contains(name)
                || (file_variables.contains(name) && help.env.contains(name.trim_end_matches("_FILE")))
        };
        let environment = environment(definition);
        for name in environment.keys().filter(|name| !reads(name)) {
            problems.push(format!("service {service}: orderstream-{target} does not read {name}"));
        }
        match stages.get(&target) {
            None => problems.push(format!("service {service}: the Dockerfile has no stage `{target}`")),
            Some(stage) => {
                let image_help = &helps[&image_key(&target)];
                for name in stage.env.iter().filter(|name| !image_help.env.contains(name.as_str())) {
                    problems.push(format!("Dockerfile stage {target}: orderstream-{target} does not read ENV {name}"));
                }
            }
        }
        let image = definition["image"].as_str().unwrap_or_default();
        if image != format!("orderstream/{target}:{version}") {
            problems.push(format!(
                "service {service}: image `{image}` should be orderstream/{target}:{version} (the workspace version)"
            ));
        }
        for (name, address) in environment.iter().filter(|(name, _)| name.ends_with("_METRICS_ADDR")) {
            if !address.starts_with("0.0.0.0:") {
                problems.push(format!(
                    "service {service}: {name}={address} must bind 0.0.0.0, or Prometheus cannot reach it"
                ));
            }
            metrics_ports.insert(service.clone(), port_of(address).to_string());
        }
    }

    // Topic names, the group and the partition count: one value across the
    // services, equal to the binaries' defaults and the Makefile's PARTITIONS.
    let mut defaults: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for help in helps.values() {
        for (name, value) in &help.defaults {
            defaults.entry(name.as_str()).or_default().insert(value.clone());
        }
    }
    let makefile_partitions = setting(&sources.makefile, "PARTITIONS", "?=").unwrap_or("?").to_string();
    for (service, definition) in services(&compose) {
        for (name, value) in environment(definition) {
            let value = interpolation_default(&value).to_string();
            if ["ORDERSTREAM_TOPIC", "ORDERSTREAM_DLQ_TOPIC", "ORDERSTREAM_GROUP", "ORDERSTREAM_PARTITIONS"]
                .contains(&name.as_str())
            {
                match defaults.get(name.as_str()) {
                    Some(expected) if expected.len() == 1 && expected.contains(&value) => {}
                    expected => problems
                        .push(format!("service {service}: {name}={value}, the binaries' default is {expected:?}")),
                }
            }
            if (name == "ORDERSTREAM_PARTITIONS" || name == "KAFKA_NUM_PARTITIONS") && value != makefile_partitions {
                problems.push(format!(
                    "service {service}: {name} defaults to {value}, the Makefile's PARTITIONS to {makefile_partitions}"
                ));
            }
        }
    }

    // Prometheus scrapes each process where compose tells it to listen, and
    // the native config (rewritten by `make run`) has the same jobs and ports.
    let compose_jobs = scrape_targets(&sources.prometheus_compose);
    let native_jobs = scrape_targets(&sources.prometheus_native);
    for (job, targets) in &compose_jobs {
        for (host, port) in targets {
            match metrics_ports.get(host) {
                Some(listening) if listening == port => {}
                listening => problems.push(format!(
                    "prometheus.compose.yml job {job} scrapes {host}:{port}, but {host} serves metrics on {listening:?}"
                )),
            }
        }
    }
    if compose_jobs != native_jobs {
        problems.push(format!(
            "prometheus.compose.yml and prometheus.yml disagree on jobs or targets: {compose_jobs:?} vs {native_jobs:?}"
        ));
    }
    let prometheus = &compose["services"]["prometheus"];
    let command = prometheus["command"].as_sequence().map(|args| args.iter().map(text).collect::<Vec<_>>());
    if !command.unwrap_or_default().iter().any(|arg| arg.ends_with("/prometheus.compose.yml")) {
        problems.push("service prometheus does not load prometheus.compose.yml".into());
    }

    // The lag exporter expects as many consumers as the stack runs: fewer
    // members alert (OrderstreamConsumersMissing), so a mismatch pages forever.
    let replicas = text(&compose["services"]["consumer"]["deploy"]["replicas"]);
    let expected = environment(&compose["services"]["lag-exporter"]).get("ORDERSTREAM_EXPECTED_CONSUMERS").cloned();
    if expected.as_deref() != Some(replicas.as_str()) {
        problems.push(format!(
            "service consumer runs {replicas} replicas, but lag-exporter expects ORDERSTREAM_EXPECTED_CONSUMERS={expected:?}"
        ));
    }

    // Images: pinned everywhere; Kafka the version the native stack runs.
    for (service, definition) in services(&compose) {
        match definition["image"].as_str() {
            Some(image) if is_pinned(image) => {}
            image => problems.push(format!("service {service}: image {image:?} is not pinned to a version")),
        }
    }
    for (name, stage) in &stages {
        if !stages.contains_key(&stage.from) && !is_pinned(&stage.from) {
            problems.push(format!("Dockerfile stage {name}: FROM {} is not pinned to a version", stage.from));
        }
    }
    // The property line, as scripts/kafka.sh reads it (the pom's comment names the tag too).
    let pom_kafka = sources
        .kafka_pom
        .lines()
        .find_map(|line| line.trim().strip_prefix("<kafka.version>")?.strip_suffix("</kafka.version>"))
        .unwrap_or("?")
        .to_string();
    for (service, definition) in services(&compose) {
        if let Some(tag) = definition["image"].as_str().and_then(|image| image.strip_prefix("apache/kafka:")) {
            if tag != pom_kafka {
                problems.push(format!(
                    "service {service}: apache/kafka:{tag}, but scripts/kafka/pom.xml runs Kafka {pom_kafka}"
                ));
            }
        }
    }

    // Health: every long-running service has a check (its own, or its
    // image's); start order is by condition, and each condition can be met.
    let one_shot = |definition: &Value| {
        definition["restart"].as_str().is_some_and(|restart| restart == "no" || restart.starts_with("on-failure"))
    };
    let has_healthcheck = |definition: &Value| {
        let own = definition["healthcheck"]["test"].is_sequence() && definition["healthcheck"]["disable"].is_null();
        let image = definition["build"]["target"].as_str().and_then(|t| stages.get(t)?.healthcheck) == Some(true);
        own || image
    };
    for (service, definition) in services(&compose) {
        if !one_shot(definition) && !has_healthcheck(definition) {
            problems.push(format!("service {service} runs without a health check"));
        }
        match &definition["depends_on"] {
            Value::Null => {}
            Value::Mapping(dependencies) => {
                for (dependency, how) in dependencies {
                    let dependency = text(dependency);
                    let target = &compose["services"][dependency.as_str()];
                    let fine = match how["condition"].as_str() {
                        Some("service_healthy") => has_healthcheck(target),
                        Some("service_completed_successfully") => one_shot(target),
                        Some("service_started") => !target.is_null(),
                        _ => false,
                    };
                    if !fine {
                        problems.push(format!("service {service}: depends_on {dependency} {how:?} cannot hold"));
                    }
                }
            }
            other => problems.push(format!("service {service}: depends_on without conditions: {other:?}")),
        }
    }

    // The images' health check asks /readyz (connected and working), not
    // /healthz (merely alive); a service of ours that brings its own check
    // still runs that script.
    let health_request = sources
        .healthcheck_script
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .find_map(|line| line.split("'GET ").nth(1)?.split_whitespace().next())
        .unwrap_or("nothing");
    if health_request != "/readyz" {
        problems.push(format!("docker/healthcheck.sh asks {health_request}, not /readyz"));
    }
    for (service, target) in our_services(&compose) {
        let healthcheck = &compose["services"][service.as_str()]["healthcheck"];
        let Some(test) = healthcheck["test"].as_sequence().filter(|_| healthcheck["disable"].is_null()) else {
            continue;
        };
        let test: Vec<String> = test.iter().map(text).collect();
        if !test.iter().any(|word| word == "orderstream-healthcheck") {
            problems
                .push(format!("service {service} (orderstream-{target}) checks its health with {test:?}, not /readyz"));
        }
    }

    // Operations: every service's logs are rotated and its CPU and memory
    // limited, so one service cannot fill the disk or starve the others.
    for (service, definition) in services(&compose) {
        let logging = &definition["logging"];
        let rotated = logging["driver"].as_str() == Some("json-file")
            && !logging["options"]["max-size"].is_null()
            && !logging["options"]["max-file"].is_null();
        if !rotated {
            problems.push(format!(
                "service {service}: logs are not rotated (logging: json-file with max-size and max-file)"
            ));
        }
        let limits = &definition["deploy"]["resources"]["limits"];
        if limits["memory"].is_null() && definition["mem_limit"].is_null() {
            problems.push(format!("service {service} has no memory limit"));
        }
        if limits["cpus"].is_null() && definition["cpus"].is_null() {
            problems.push(format!("service {service} has no CPU limit"));
        }
    }

    // Secrets: never a literal password, and every required variable is one
    // `make secrets` writes.
    let generated: BTreeSet<&str> =
        sources.secrets_script.lines().filter_map(|line| Some(line.split_once('=')?.0)).collect();
    for (service, definition) in services(&compose) {
        for (name, value) in environment(definition) {
            let secret = ["PASSWORD", "SECRET", "PASS"].iter().any(|word| name.contains(word));
            if secret && !value.contains(":?") {
                problems.push(format!("service {service}: {name} is not taken from compose/.env with ${{…:?}}"));
            }
        }
    }
    let uncommented: String =
        sources.compose.lines().filter(|line| !line.trim_start().starts_with('#')).collect::<Vec<_>>().join("\n");
    let interpolations = uncommented.split("${").skip(1).filter_map(|rest| rest.split('}').next());
    for required in interpolations.filter_map(|inner| Some(inner.split_once(":?")?.0)) {
        if !generated.contains(required) {
            problems.push(format!("compose requires {required}, which scripts/secrets.sh does not generate"));
        }
    }
    problems
}

#[test]
fn deployment_agrees_with_binaries_makefile_and_native_stack() {
    let sources = Sources::from_repository();
    let compose: Value = serde_yaml::from_str(&sources.compose).unwrap();
    let helps = binary_helps(&compose);
    // The help parser found variables in every help (else every check passes vacuously).
    assert!(helps.values().all(|help| !help.env.is_empty()), "no [env: …] found in some --help: {helps:#?}");
    let problems = problems(&sources, &helps);
    assert!(problems.is_empty(), "the deployment has drifted:\n  {}", problems.join("\n  "));
}

#[test]
fn each_kind_of_drift_is_caught() {
    let original = Sources::from_repository();
    let compose: Value = serde_yaml::from_str(&original.compose).unwrap();
    let helps = binary_helps(&compose);
    assert_eq!(problems(&original, &helps), Vec::<String>::new());

    /// Replaces `from` (which must occur) in the chosen file and returns the problems.
    fn drift(original: &Sources, helps: &BTreeMap<String, Help>, file: File, from: &str, to: &str) -> Vec<String> {
        let mut sources = original.clone();
        let text = file(&mut sources);
        assert!(text.contains(from), "the test's edit no longer applies: `{from}` is gone");
        *text = text.replacen(from, to, 1);
        problems(&sources, helps)
    }
    fn compose_text(s: &mut Sources) -> &mut String {
        &mut s.compose
    }
    fn makefile(s: &mut Sources) -> &mut String {
        &mut s.makefile
    }
    fn kafka_pom(s: &mut Sources) -> &mut String {
        &mut s.kafka_pom
    }
    fn dockerfile(s: &mut Sources) -> &mut String {
        &mut s.dockerfile
    }
    fn secrets_script(s: &mut Sources) -> &mut String {
        &mut s.secrets_script
    }
    fn prometheus_native(s: &mut Sources) -> &mut String {
        &mut s.prometheus_native
    }
    fn healthcheck_script(s: &mut Sources) -> &mut String {
        &mut s.healthcheck_script
    }
    /// Which file of [`Sources`] a case edits.
    type File = fn(&mut Sources) -> &mut String;
    // (what the problem says, file, text replaced, replacement)
    let cases: &[(&str, File, &str, &str)] = &[
        (
            "does not read ORDERSTREAM_CONSUMER_METRIC_ADDR",
            compose_text,
            "ORDERSTREAM_CONSUMER_METRICS_ADDR: 0.0.0.0:9102",
            "ORDERSTREAM_CONSUMER_METRIC_ADDR: 0.0.0.0:9102",
        ),
        (
            "scrapes lag-exporter:9103, but lag-exporter serves metrics on Some(\"9104\")",
            compose_text,
            "ORDERSTREAM_LAG_EXPORTER_METRICS_ADDR: 0.0.0.0:9103",
            "ORDERSTREAM_LAG_EXPORTER_METRICS_ADDR: 0.0.0.0:9104",
        ),
        (
            "must bind 0.0.0.0",
            compose_text,
            "ORDERSTREAM_PRODUCER_METRICS_ADDR: 0.0.0.0:9101",
            "ORDERSTREAM_PRODUCER_METRICS_ADDR: 127.0.0.1:9101",
        ),
        (
            "ORDERSTREAM_DLQ_TOPIC=orders.dead",
            compose_text,
            "ORDERSTREAM_DLQ_TOPIC: orders.dlq",
            "ORDERSTREAM_DLQ_TOPIC: orders.dead",
        ),
        ("the Makefile's PARTITIONS to 8", makefile, "PARTITIONS            ?= 6", "PARTITIONS            ?= 8"),
        ("scripts/kafka/pom.xml runs Kafka 4.1.2", kafka_pom, "<kafka.version>4.1.1<", "<kafka.version>4.1.2<"),
        (
            "image Some(\"prom/prometheus:latest\") is not pinned",
            compose_text,
            "prom/prometheus:v2.55.1",
            "prom/prometheus:latest",
        ),
        ("image Some(\"grafana/grafana\") is not pinned", compose_text, "grafana/grafana:11.6.0", "grafana/grafana"),
        ("FROM debian:bookworm-slim is not pinned", dockerfile, "FROM debian:12.12-slim", "FROM debian:bookworm-slim"),
        (
            "service lag-exporter runs without a health check",
            dockerfile,
            "CMD [\"orderstream-healthcheck\", \"ORDERSTREAM_LAG_EXPORTER_METRICS_ADDR\"]",
            "NONE",
        ),
        (
            "GF_SECURITY_ADMIN_PASSWORD is not taken from compose/.env",
            compose_text,
            "GF_SECURITY_ADMIN_PASSWORD: \"${GRAFANA_ADMIN_PASSWORD:?",
            "GF_SECURITY_ADMIN_PASSWORD: \"admin${GRAFANA_ADMIN_PASSWORD:-",
        ),
        (
            "requires GRAFANA_ADMIN_PASSWORD, which scripts/secrets.sh does not generate",
            secrets_script,
            "GRAFANA_ADMIN_PASSWORD=",
            "GRAFANA_PASSWORD=",
        ),
        ("prometheus.compose.yml and prometheus.yml disagree", prometheus_native, "consumer:9102", "consumer:9112"),
        (
            "does not read ENV ORDERSTREAM_INBOXES",
            dockerfile,
            "ORDERSTREAM_INBOX=/data/inbox",
            "ORDERSTREAM_INBOXES=/data/inbox",
        ),
        ("docker/healthcheck.sh asks /healthz, not /readyz", healthcheck_script, "'GET /readyz ", "'GET /healthz "),
        (
            "service producer (orderstream-producer) checks its health with",
            compose_text,
            "    stop_grace_period: 30s\n",
            "    stop_grace_period: 30s\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n",
        ),
        ("service kafka: logs are not rotated", compose_text, "    logging: *logging\n", ""),
        ("service kafka-init: logs are not rotated", compose_text, "max-file: \"3\"", "max-files: \"3\""),
        ("service lag-exporter has no memory limit", compose_text, "          memory: 128M\n", ""),
        ("service kafka has no CPU limit", compose_text, "          cpus: \"1.0\"\n", ""),
        ("consumer runs 3 replicas, but lag-exporter expects", compose_text, "replicas: 2", "replicas: 3"),
        (
            "should be orderstream/producer:0.1.0",
            compose_text,
            "orderstream/producer:0.1.0",
            "orderstream/producer:0.0.9",
        ),
    ];
    for (expected, file, from, to) in cases {
        let found = drift(&original, &helps, *file, from, to);
        assert!(
            found.iter().any(|problem| problem.contains(expected)),
            "changing `{from}` to `{to}` should report `{expected}`, reported: {found:#?}"
        );
    }
}

#[test]
fn help_parsing_reads_env_and_defaults_of_both_layouts() {
    let help = parse_help(
        "Options:\n      --topic <TOPIC>  Topic [env: ORDERSTREAM_TOPIC=] [default: orders]\n\
         \x20     --database-url <URL>\n          PostgreSQL URL [env: ORDERSTREAM_DATABASE_URL]\n\
         \x20         [default: postgres://x@h/db]\n\
         \x20     --name <NAME>  A name [env: NAME=] [default: \"Orders and baskets\"]\n  -h, --help  Print help\n",
    );
    assert_eq!(help.env.iter().collect::<Vec<_>>(), ["NAME", "ORDERSTREAM_DATABASE_URL", "ORDERSTREAM_TOPIC"]);
    assert_eq!(help.defaults["ORDERSTREAM_TOPIC"], "orders");
    assert_eq!(help.defaults["ORDERSTREAM_DATABASE_URL"], "postgres://x@h/db");
    assert_eq!(help.defaults["NAME"], "Orders and baskets");
}

/// The `--help` invocations whose flags `docs/configuration.md` documents:
/// each binary, and each subcommand with flags of its own.
const DOCUMENTED_HELPS: &[&[&str]] = &[
    &["producer"],
    &["producer", "replay"],
    &["consumer"],
    &["consumer", "run"],
    &["consumer", "migrate"],
    &["consumer", "redrive"],
    &["consumer", "dead-letters", "list"],
    &["consumer", "dead-letters", "resolve"],
    &["consumer", "dead-letters", "export"],
    &["consumer", "replay"],
    &["lag-exporter"],
    &["status"],
    &["verify"],
    &["analytics"],
    &["analytics", "report"],
    &["analytics", "provision-metabase"],
];

/// The raw `--help` text of each documented invocation, keyed by its command line.
fn documented_help_texts() -> BTreeMap<String, String> {
    DOCUMENTED_HELPS
        .iter()
        .map(|args| {
            let mut command = Command::new(binary(&format!("orderstream-{}", args[0])));
            command.args(&args[1..]).arg("--help");
            let output = command.output().unwrap();
            assert!(output.status.success(), "{command:?} failed: {}", String::from_utf8_lossy(&output.stderr));
            (format!("orderstream-{}", args.join(" ")), String::from_utf8(output.stdout).unwrap())
        })
        .collect()
}

/// Every `--long-flag` in `text` (`--help` and `--version` left out).
fn long_flags(text: &str) -> BTreeSet<String> {
    let mut flags = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("--") {
        let name: String = rest[start + 2..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
        let preceded_by_word = rest[..start].chars().last().is_some_and(|c| c.is_ascii_alphanumeric() || c == '-');
        if !preceded_by_word
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name != "help"
            && name != "version"
        {
            flags.insert(format!("--{name}"));
        }
        rest = &rest[start + 2 + name.len()..];
    }
    flags
}

/// The flags a `--help` declares: the first `--name` of each option line.
fn declared_flags(help: &str) -> BTreeSet<String> {
    help.lines()
        .map(str::trim_start)
        .filter(|line| line.starts_with('-'))
        .filter_map(|line| {
            let line = line.split_once(", ").filter(|(short, _)| short.len() == 2).map_or(line, |(_, long)| long);
            long_flags(line.split_whitespace().next()?).into_iter().next()
        })
        .collect()
}

/// What `docs/configuration.md` misses or keeps beyond the binaries' `--help`:
/// every flag and every `env:` variable a `--help` prints must appear in the
/// document, and every flag the document's tables name must be declared by
/// some `--help`.
fn configuration_doc_problems(doc: &str, helps: &BTreeMap<String, String>) -> Vec<String> {
    let mut problems = Vec::new();
    let doc_words: BTreeSet<String> = long_flags(doc);
    let mut declared = BTreeSet::new();
    for (command, help) in helps {
        for flag in declared_flags(help) {
            if !doc_words.contains(&flag) {
                problems.push(format!("{command}: {flag} is not in docs/configuration.md"));
            }
            declared.insert(flag);
        }
        for env in parse_help(help).env {
            if !doc.contains(&format!("`{env}`")) {
                problems.push(format!("{command}: variable {env} is not in docs/configuration.md"));
            }
        }
    }
    let table_rows: String = doc.lines().filter(|line| line.starts_with('|')).collect::<Vec<_>>().join("\n");
    for flag in long_flags(&table_rows) {
        if !declared.contains(&flag) {
            problems.push(format!("docs/configuration.md names {flag}, which no --help declares"));
        }
    }
    problems
}

fn configuration_doc() -> String {
    std::fs::read_to_string(repository().join("docs/configuration.md")).unwrap()
}

#[test]
fn configuration_reference_lists_exactly_what_every_help_prints() {
    let helps = documented_help_texts();
    assert!(helps.values().all(|help| !declared_flags(help).is_empty()), "no flag found in some --help: {helps:#?}");
    let problems = configuration_doc_problems(&configuration_doc(), &helps);
    assert!(problems.is_empty(), "docs/configuration.md drifted from --help:\n{}", problems.join("\n"));
}

#[test]
fn configuration_reference_drift_is_caught_both_ways() {
    let helps = documented_help_texts();
    let doc = configuration_doc();
    let row = doc.lines().find(|line| line.starts_with("| `--archive-after`")).expect("the --archive-after row");
    let without_row = doc.replace(&format!("{row}\n"), "");
    let problems = configuration_doc_problems(&without_row, &helps);
    assert!(problems.iter().any(|p| p.contains("--archive-after")), "a removed row went unnoticed: {problems:?}");
    assert!(problems.iter().any(|p| p.contains("ORDERSTREAM_ARCHIVE_AFTER")), "a removed variable went unnoticed");
    let stale = format!("{doc}\n| `--archive-sooner` | `ORDERSTREAM_ARCHIVE_SOONER` | `1m` |\n");
    let problems = configuration_doc_problems(&stale, &helps);
    assert!(problems.iter().any(|p| p.contains("--archive-sooner")), "a stale row went unnoticed: {problems:?}");
}
