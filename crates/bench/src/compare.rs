//! `make bench-compare REF=…`: this build against an older one (a release),
//! alternately on the same services and the same input, so that a
//! regression shows as a ratio measured in one run rather than as two
//! figures from two days.
//!
//! After the bench's warm-up, odd rounds run the baseline's binaries, then
//! this build's, and even rounds the other way round (A B B A …): the
//! end-to-end cold load (producer and consumer group), then the source
//! half (the producer alone fills a topic) and the sink half (the group
//! drains it). The report gives each side's median and new ÷ old for every
//! figure, and a machine-readable `compare:` line; with `--min-ratio` it
//! fails when the end-to-end or the sink rate fell below that fraction.

use std::fmt::Write as _;

use anyhow::{bail, Context};
use harness::PARTITIONS;

use crate::input::Input;
use crate::load_watch::LoadResult;
use crate::phases;
use crate::phases::e2e::E2eResult;
use crate::phases::sink::SinkResult;
use crate::say;
use crate::services::Services;
use crate::settings::Settings;
use crate::wire::{self, WireBytes};

/// One side's figures from one round.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    /// Orders per second, file in the inbox → last row committed.
    e2e_rows_per_s: f64,
    /// CPU µs per order over the cold load, by component.
    cpu_us: [f64; 4],
    /// Of the broker's, its JIT compiler threads' (a fresh JVM's one-off cost).
    kafka_jit_us: f64,
    /// Peak resident memory over the cold load, MiB: producer, largest consumer.
    peak_mib: (f64, f64),
    /// Peak resident memory of the largest consumer draining the full topic, MiB.
    backlog_peak_mib: f64,
    /// Orders per second of the producer alone, first → last.
    source_rows_per_s: f64,
    /// Orders per second of the group draining a full topic, first → last.
    sink_rows_per_s: f64,
    /// Bytes per order on the topic.
    wire: WireBytes,
}

/// The components whose CPU is counted, in [`Sample::cpu_us`]'s order.
const COMPONENTS: [&str; 4] = ["producer", "consumers", "kafka", "postgres"];

impl Sample {
    fn from_runs(orders: u64, e2e: &E2eResult, source: &LoadResult, sink: &SinkResult, wire: WireBytes) -> Sample {
        let per_order = |seconds: f64| seconds * 1e6 / orders as f64;
        let cpu = e2e.cold_cpu;
        Sample {
            e2e_rows_per_s: orders as f64 / e2e.cold_seconds,
            cpu_us: [cpu.producer, cpu.consumers, cpu.kafka, cpu.postgres].map(per_order),
            kafka_jit_us: per_order(cpu.kafka_jit),
            peak_mib: (e2e.cold_peak_kib.0 as f64 / 1024.0, e2e.cold_peak_kib.1 as f64 / 1024.0),
            source_rows_per_s: source.rows_per_s(orders),
            sink_rows_per_s: sink.load.rows_per_s(orders),
            backlog_peak_mib: sink.consumer_peak_kib as f64 / 1024.0,
            wire,
        }
    }

    fn cpu_total(&self) -> f64 {
        self.cpu_us.iter().sum()
    }
}

/// One compared figure: its name, how to read it off a sample, and whether
/// more is better (rates) or worse (CPU, memory).
struct Figure {
    key: &'static str,
    read: fn(&Sample) -> f64,
    higher_is_better: bool,
}

fn figures() -> Vec<Figure> {
    let mut figures = vec![
        Figure { key: "e2e_rows_per_s", read: |s| s.e2e_rows_per_s, higher_is_better: true },
        Figure { key: "sink_rows_per_s", read: |s| s.sink_rows_per_s, higher_is_better: true },
        Figure { key: "source_rows_per_s", read: |s| s.source_rows_per_s, higher_is_better: true },
        Figure { key: "cpu_us_per_record", read: Sample::cpu_total, higher_is_better: false },
    ];
    let per_component: [fn(&Sample) -> f64; 4] = [|s| s.cpu_us[0], |s| s.cpu_us[1], |s| s.cpu_us[2], |s| s.cpu_us[3]];
    for (key, read) in
        ["cpu_us_producer", "cpu_us_consumers", "cpu_us_kafka", "cpu_us_postgres"].into_iter().zip(per_component)
    {
        figures.push(Figure { key, read, higher_is_better: false });
    }
    figures.push(Figure { key: "cpu_us_kafka_jit", read: |s| s.kafka_jit_us, higher_is_better: false });
    figures.push(Figure { key: "producer_hwm_mib", read: |s| s.peak_mib.0, higher_is_better: false });
    figures.push(Figure { key: "consumer_hwm_mib", read: |s| s.peak_mib.1, higher_is_better: false });
    figures.push(Figure { key: "consumer_backlog_hwm_mib", read: |s| s.backlog_peak_mib, higher_is_better: false });
    figures.push(Figure { key: "stored_bytes_per_record", read: |s| s.wire.stored, higher_is_better: false });
    figures.push(Figure {
        key: "decompressed_bytes_per_record",
        read: |s| s.wire.decompressed,
        higher_is_better: false,
    });
    figures
}

/// The median of a few values (the mean of the middle two for an even count).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 0 {
        (values[middle - 1] + values[middle]) / 2.0
    } else {
        values[middle]
    }
}

/// The machine's 1-minute load average, from `/proc/loadavg`.
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().and_then(|first| first.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// Runs one side's loads: the e2e cold load, then source and sink.
async fn run_side(settings: &Settings, services: &Services, input: &Input) -> anyhow::Result<Sample> {
    let e2e = phases::e2e::run_cold(settings, services, input).await.context("phase e2e")?;
    let (source, filled) = phases::source::run(settings, services, input).await.context("phase source")?;
    let orders = i64::try_from(settings.orders)?;
    let wire = wire::measure(&services.brokers, &services.kafka_log_dir(), &filled.topic, PARTITIONS, orders)
        .context("bytes per record")?;
    let sink = phases::sink::run(settings, services, filled).await.context("phase sink")?;
    Ok(Sample::from_runs(settings.orders, &e2e, &source, &sink, wire))
}

/// Which build a run is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Baseline,
    Candidate,
}

impl Side {
    /// The order the builds run in in `round` (from 1): A B, B A, A B, …
    fn order_of(round: u32) -> [Side; 2] {
        if round % 2 == 1 {
            [Side::Baseline, Side::Candidate]
        } else {
            [Side::Candidate, Side::Baseline]
        }
    }
}

/// What the comparison found: the samples of each side, and the load.
struct Comparison {
    baseline: Vec<Sample>,
    candidate: Vec<Sample>,
    load: Vec<f64>,
}

/// Runs the comparison against the binaries in `baseline_bin`; returns the
/// report, or an error naming the regression when `--min-ratio` is missed.
pub async fn run(settings: &Settings, services: &Services, input: &Input) -> anyhow::Result<String> {
    let Some(baseline_bin) = &settings.compare_with else { bail!("no --compare-with folder") };
    let baseline_settings = Settings { bin: Some(baseline_bin.clone()), ..settings.clone() };
    let mut comparison = Comparison { baseline: Vec::new(), candidate: Vec::new(), load: vec![load_average()] };
    // A B, then B A, …: the broker's JIT keeps compiling through the first
    // rounds (its compilers took 9.7, 5.8, 6.1, 3.0, 1.3 µs per record in six
    // alternate runs after the warm-up), so whichever side always ran first
    // would pay more of it.
    for round in 1..=settings.rounds {
        for side in Side::order_of(round) {
            let (label, side_settings, samples) = match side {
                Side::Baseline => (settings.compare_label.as_str(), &baseline_settings, &mut comparison.baseline),
                Side::Candidate => ("this build", settings, &mut comparison.candidate),
            };
            say(format!("round {round}/{}: {label}", settings.rounds));
            samples.push(run_side(side_settings, services, input).await?);
            comparison.load.push(load_average());
        }
    }
    let report = render(settings, &comparison);
    if let Some(floor) = settings.min_ratio {
        let ratio = |figure: &Figure| comparison.ratio(figure);
        let failing: Vec<String> = figures()
            .iter()
            .filter(|figure| matches!(figure.key, "e2e_rows_per_s" | "sink_rows_per_s"))
            .filter(|figure| ratio(figure) < floor)
            .map(|figure| format!("{} {:.3}x", figure.key, ratio(figure)))
            .collect();
        if !failing.is_empty() {
            print!("{report}");
            bail!(
                "regression against {}: {} (below {floor}x; medians of {} rounds)",
                settings.compare_label,
                failing.join(", "),
                settings.rounds
            );
        }
    }
    Ok(report)
}

impl Comparison {
    fn medians(&self, figure: &Figure) -> (f64, f64) {
        let side = |samples: &[Sample]| median(&mut samples.iter().map(figure.read).collect::<Vec<_>>());
        (side(&self.baseline), side(&self.candidate))
    }

    /// new ÷ old of the medians.
    fn ratio(&self, figure: &Figure) -> f64 {
        let (old, new) = self.medians(figure);
        new / old
    }
}

fn render(settings: &Settings, comparison: &Comparison) -> String {
    let mut out = String::new();
    let load = |reduce: fn(f64, f64) -> f64| comparison.load.iter().copied().reduce(reduce).unwrap_or(f64::NAN);
    let _ = writeln!(
        out,
        "bench-compare: {} orders, {} consumers, {} rounds (A B, B A, …); load average {:.2}-{:.2}",
        settings.orders,
        settings.consumers,
        settings.rounds,
        load(f64::min),
        load(f64::max)
    );
    let _ = writeln!(
        out,
        "{:<30} {:>14} {:>14} {:>10}  samples (baseline | this build)",
        "figure", settings.compare_label, "this build", "new/old"
    );
    let mut line = format!(
        "compare: ref={} orders={} consumers={} rounds={} load_min={:.2} load_max={:.2}",
        settings.compare_label,
        settings.orders,
        settings.consumers,
        settings.rounds,
        load(f64::min),
        load(f64::max)
    );
    for figure in figures() {
        let (old, new) = comparison.medians(&figure);
        let samples = |samples: &[Sample]| {
            samples.iter().map(|sample| format!("{:.1}", (figure.read)(sample))).collect::<Vec<_>>().join(" ")
        };
        let verdict = match (new / old, figure.higher_is_better) {
            (ratio, true) if ratio < 0.95 => " (worse)",
            (ratio, false) if ratio > 1.05 => " (worse)",
            _ => "",
        };
        let _ = writeln!(
            out,
            "{:<30} {:>14.1} {:>14.1} {:>9.3}x  {} | {}{verdict}",
            figure.key,
            old,
            new,
            new / old,
            samples(&comparison.baseline),
            samples(&comparison.candidate)
        );
        let _ = write!(
            line,
            " {}_ratio={:.3} old_{}={old:.1} new_{}={new:.1}",
            figure.key,
            new / old,
            figure.key,
            figure.key
        );
    }
    let _ = writeln!(out, "(CPU per record by component: {})", COMPONENTS.join(", "));
    let _ = writeln!(out, "{line}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builds_take_turns_at_running_first() {
        let first: Vec<Side> = (1..=4).map(|round| Side::order_of(round)[0]).collect();
        assert_eq!(first, [Side::Baseline, Side::Candidate, Side::Baseline, Side::Candidate]);
        for round in 1..=4 {
            let [a, b] = Side::order_of(round);
            assert_ne!(a, b, "round {round} runs both builds");
        }
    }

    #[test]
    fn median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&mut [7.0]), 7.0);
    }

    #[test]
    fn ratios_are_new_over_old_of_the_medians() {
        let sample = |rate: f64| Sample { e2e_rows_per_s: rate, sink_rows_per_s: rate * 2.0, ..Sample::default() };
        let comparison = Comparison {
            baseline: vec![sample(100.0), sample(300.0)],
            candidate: vec![sample(150.0), sample(250.0)],
            load: vec![1.0],
        };
        let e2e = figures().into_iter().find(|figure| figure.key == "e2e_rows_per_s").unwrap();
        assert_eq!(comparison.medians(&e2e), (200.0, 200.0));
        assert_eq!(comparison.ratio(&e2e), 1.0);
    }
}
