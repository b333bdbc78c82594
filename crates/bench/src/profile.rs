//! `BENCH_PERF` and `BENCH_PROFILE`: `perf` sampling during the cold run,
//! reduced to text summaries (and flamegraphs with `inferno`). Software
//! clock: there is no PMU in the VMs this runs on.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;

use crate::say;
use crate::settings::Settings;

/// A running `perf record`, or none.
pub enum Profiler {
    /// Neither option set.
    Off,
    /// `BENCH_PERF`: producer and consumers only.
    Pipeline { perf: Child, data: PathBuf },
    /// `BENCH_PROFILE`: the whole machine, with call graphs.
    Machine { perf: Child, data: PathBuf },
}

fn perf_record(args: &[String], log: &Path) -> anyhow::Result<Child> {
    let log = std::fs::File::create(log)?;
    Command::new("perf")
        .arg("record")
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("start perf record")
}

impl Profiler {
    /// Starts sampling if the settings ask for it (`pids`: producer and
    /// consumers).
    pub async fn start(settings: &Settings, pids: &[u32]) -> anyhow::Result<Profiler> {
        let work = settings.work_dir();
        let profiler = if settings.profile {
            // Every process on the machine (the broker and PostgreSQL too),
            // DWARF call graphs (release builds keep line tables, Debian's
            // PostgreSQL has no frame pointers).
            let dir = settings.local.join("profile");
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir)?;
            let data = work.join("profile.data");
            let args = ["-a", "-e", "cpu-clock", "-F", "199", "--call-graph", "dwarf,16384", "-o"].map(String::from);
            let mut args = args.to_vec();
            args.push(data.display().to_string());
            Profiler::Machine { perf: perf_record(&args, &work.join("perf.log"))?, data }
        } else if settings.perf {
            let data = work.join("perf.data");
            let pid_list = pids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
            let mut args = ["-e", "cpu-clock", "-F", "499", "-g", "-p"].map(String::from).to_vec();
            args.extend([pid_list, "-o".to_string(), data.display().to_string()]);
            Profiler::Pipeline { perf: perf_record(&args, &work.join("perf.log"))?, data }
        } else {
            return Ok(Profiler::Off);
        };
        // perf has no ready signal: give it a moment to attach before the clock starts.
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok(profiler)
    }

    /// Stops sampling and writes the summaries.
    pub async fn finish(self, settings: &Settings, consumer_pid: u32, producer_pid: u32) {
        match self {
            Profiler::Off => {}
            Profiler::Pipeline { perf, data } => {
                stop(perf);
                let mut summary = String::from("== samples by thread (producer + consumer, cold run) ==\n");
                summary += &report(&data, &["--sort", "pid,comm"], 20);
                summary += "== top symbols ==\n";
                summary += &report(&data, &["--sort", "comm,dso,symbol"], 40);
                let path = settings.local.join("perf-top.txt");
                let _ = std::fs::write(&path, summary);
                say(format!("perf profile of the cold run: {}", path.display()));
            }
            Profiler::Machine { perf, data } => {
                stop(perf);
                let dir = settings.local.join("profile");
                machine_report(&data, &dir, consumer_pid, producer_pid);
                say(format!("profile of the cold run: {}/ (summary.txt, *.svg)", dir.display()));
            }
        }
    }
}

/// SIGINT, as perf expects, then waits for it to write its data.
fn stop(mut perf: Child) {
    let _ = Command::new("kill").arg("-INT").arg(perf.id().to_string()).status();
    let _ = perf.wait();
}

/// The first `lines` sample lines (those with a percentage) of `perf report`.
fn report(data: &Path, args: &[&str], lines: usize) -> String {
    let output = Command::new("perf")
        .args(["report", "-i"])
        .arg(data)
        .args(["--no-children", "-g", "none", "--stdio"])
        .args(args)
        .stderr(Stdio::null())
        .output();
    let text = output.map(|output| String::from_utf8_lossy(&output.stdout).into_owned()).unwrap_or_default();
    text.lines().filter(|line| line.contains('%')).take(lines).map(|line| format!("{line}\n")).collect()
}

/// CPU share by process and by thread, the top symbols, and a flamegraph
/// each of consumer, producer and PostgreSQL.
fn machine_report(data: &Path, dir: &Path, consumer_pid: u32, producer_pid: u32) {
    let (consumer, producer) = (consumer_pid.to_string(), producer_pid.to_string());
    let mut summary = String::from("== samples by process (whole machine, cold run; cpu-clock at 199 Hz per CPU) ==\n");
    summary += &report(data, &["--sort", "comm"], 25);
    summary += "== consumer: by thread ==\n";
    summary += &report(data, &["--pid", &consumer, "--sort", "comm"], 15);
    summary += "== consumer: top symbols ==\n";
    summary += &report(data, &["--pid", &consumer, "--sort", "dso,symbol"], 40);
    summary += "== PostgreSQL: top symbols ==\n";
    summary += &report(data, &["--comms", "postgres", "--sort", "dso,symbol"], 40);
    let _ = std::fs::write(dir.join("summary.txt"), summary);
    if Command::new("inferno-flamegraph").arg("--help").output().is_err() {
        say("inferno-flamegraph not found (cargo install inferno): no SVGs");
        return;
    }
    for (name, filter, title) in [
        ("consumer", ["--pid", consumer.as_str()], "orderstream-consumer, cold run"),
        ("producer", ["--pid", producer.as_str()], "orderstream-producer, cold run"),
        ("postgres", ["--comms", "postgres"], "PostgreSQL backends, cold run"),
    ] {
        let _ = flamegraph(data, &filter, title, &dir.join(format!("{name}.folded")), &dir.join(format!("{name}.svg")));
    }
}

/// `perf script | inferno-collapse-perf > folded; inferno-flamegraph < folded > svg`.
fn flamegraph(data: &Path, filter: &[&str], title: &str, folded: &Path, svg: &Path) -> std::io::Result<()> {
    let mut script = Command::new("perf")
        .args(["script", "-i"])
        .arg(data)
        .args(filter)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let samples = script.stdout.take().expect("piped");
    let collapsed = Command::new("inferno-collapse-perf")
        .stdin(samples)
        .stdout(std::fs::File::create(folded)?)
        .stderr(Stdio::null())
        .status();
    script.wait()?;
    collapsed?;
    Command::new("inferno-flamegraph")
        .args(["--title", title])
        .stdin(std::fs::File::open(folded)?)
        .stdout(std::fs::File::create(svg)?)
        .stderr(Stdio::null())
        .status()?;
    Ok(())
}
