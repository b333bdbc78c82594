//! The systemd units of a native install (`deploy/systemd/`, installed by
//! docs/operator.md) agree with the binaries and keep their hardening: each
//! unit starts a binary that exists, reads an environment file whose example
//! sets only variables that binary reads (from its `--help`), restarts on
//! failure, runs as its own user, and is sandboxed. Where `systemd-analyze`
//! is installed, each unit also passes `systemd-analyze verify`, pointed at
//! the built binary. Nothing is installed or started.

// End-to-end: built only with the feature `make test` turns on (docs/testing.md).
#![cfg(feature = "integration-tests")]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What every unit must say, as `key=value` lines.
const REQUIRED: [&str; 6] = [
    "User=orderstream",
    "Restart=on-failure",
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "PrivateTmp=yes",
];

/// Each unit, the binary it runs and its environment file's example.
const UNITS: [(&str, &str, &str); 3] = [
    ("orderstream-producer.service", "orderstream-producer", "producer.env.example"),
    ("orderstream-consumer.service", "orderstream-consumer", "consumer.env.example"),
    ("orderstream-lag-exporter.service", "orderstream-lag-exporter", "lag-exporter.env.example"),
];

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Where the workspace's binaries were built (as the harness finds them).
fn binary(name: &str) -> PathBuf {
    let dir =
        std::env::var_os("ORDERSTREAM_BIN_DIR").map(PathBuf::from).unwrap_or_else(|| repository().join("target/debug"));
    let path = dir.join(name);
    assert!(path.exists(), "{} is missing: build it first (`cargo build --workspace --bins`)", path.display());
    path
}

/// Every variable a binary's `--help` names (`[env: NAME=…]`).
fn variables_read_by(binary_name: &str) -> BTreeSet<String> {
    let output = Command::new(binary(binary_name)).arg("--help").output().unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    help.split("[env: ").skip(1).filter_map(|rest| rest.split(['=', ']']).next()).map(str::to_string).collect()
}

/// The variables an environment file sets (commented lines are examples).
fn variables_set_in(env_file: &str) -> Vec<String> {
    env_file
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once('=').map(|(name, _)| name.to_string()))
        .collect()
}

/// The value of the first `key=` line of a unit.
fn setting<'a>(unit: &'a str, key: &str) -> Option<&'a str> {
    unit.lines().find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
}

#[test]
fn units_run_the_binaries_with_their_variables_hardened() {
    let dir = repository().join("deploy/systemd");
    let mut problems = Vec::new();
    for (unit_name, binary_name, example) in UNITS {
        let unit = read(&dir.join(unit_name));
        match setting(&unit, "ExecStart") {
            Some(command) if command.split_whitespace().next() == Some(&format!("/usr/local/bin/{binary_name}")) => {}
            other => problems.push(format!("{unit_name}: ExecStart is {other:?}, not /usr/local/bin/{binary_name}")),
        }
        let lines: Vec<&str> = unit.lines().map(str::trim).collect();
        for required in REQUIRED.iter().filter(|required| !lines.contains(required)) {
            problems.push(format!("{unit_name}: no `{required}`"));
        }
        if setting(&unit, "EnvironmentFile").is_none() {
            problems.push(format!("{unit_name}: no EnvironmentFile="));
        }
        let known = variables_read_by(binary_name);
        let mut set = variables_set_in(&read(&dir.join(example)));
        set.extend(
            unit.lines()
                .filter_map(|line| line.strip_prefix("Environment="))
                .filter_map(|assignment| assignment.split_once('=').map(|(name, _)| name.to_string())),
        );
        for unknown in set.iter().filter(|name| !known.contains(*name)) {
            problems
                .push(format!("{unit_name}: {example} or the unit sets {unknown}, which {binary_name} does not read"));
        }
    }
    assert!(problems.is_empty(), "the systemd units:\n  {}", problems.join("\n  "));
}

#[test]
fn units_pass_systemd_analyze_verify() {
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        eprintln!("systemd-analyze is not installed: skipped");
        return;
    }
    let copies = tempfile::tempdir().unwrap();
    for (unit_name, binary_name, _) in UNITS {
        let unit = read(&repository().join("deploy/systemd").join(unit_name));
        let installed = format!("/usr/local/bin/{binary_name}");
        let built = binary(binary_name).canonicalize().unwrap();
        let copy = copies.path().join(unit_name);
        std::fs::write(&copy, unit.replace(&installed, &built.display().to_string())).unwrap();
        let output = Command::new("systemd-analyze").arg("verify").arg(&copy).output().unwrap();
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success() && said.trim().is_empty(), "systemd-analyze verify {unit_name}: {said}");
    }
}
