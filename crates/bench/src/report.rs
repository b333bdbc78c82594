//! The report: one table of rates against the baselines of the same run,
//! latency, memory and where the CPU went, the targets met or missed, and
//! a machine-readable last line (`bench: key=value …`).

use std::fmt::Write;
use std::time::Duration;

use crate::input::Input;
use crate::load_watch::LoadResult;
use crate::phases::copy::CopyResult;
use crate::phases::e2e::E2eResult;
use crate::phases::kafka::KafkaResult;
use crate::phases::latency::LatencyResult;
use crate::phases::naive::NaiveResult;
use crate::phases::replicated::ReplicatedResult;
use crate::procfs::cores;
use crate::settings::Settings;

/// Everything the phases measured.
#[derive(Debug, Clone)]
pub struct Results {
    /// The generated file.
    pub input: Input,
    /// PostgreSQL's limit.
    pub copy: CopyResult,
    /// Kafka's limit.
    pub kafka: KafkaResult,
    /// The pipeline end to end.
    pub e2e: E2eResult,
    /// The same on a three-node cluster, replication 3 (`--cluster`).
    pub replicated: Option<ReplicatedResult>,
    /// The naive baseline.
    pub naive: NaiveResult,
    /// Latency under a steady append.
    pub latency: LatencyResult,
    /// orderstream's producer alone, file → Kafka.
    pub source: LoadResult,
    /// orderstream's consumer group alone, Kafka → PostgreSQL.
    pub sink: LoadResult,
    /// Peak memory of the largest consumer draining that full topic, KiB.
    pub sink_peak_kib: u64,
    /// The peers' halves, unless `BENCH_PEERS=0`.
    pub peers: Option<Peers>,
}

/// What a user would pick instead, each half measured as orderstream's.
#[derive(Debug, Clone, Copy)]
pub struct Peers {
    /// Kafka Connect's FileStreamSource, file → Kafka.
    pub source: LoadResult,
    /// Kafka Connect with the Debezium JDBC sink, Kafka → PostgreSQL.
    pub sink: LoadResult,
}

/// The side-by-side figures the report prints and the last line carries.
#[derive(Debug, Clone, Copy)]
struct SideBySide {
    /// orderstream's rows/s first → last: source, sink.
    ours: (f64, f64),
    /// The peers': source, sink.
    peers: Option<(f64, f64)>,
    /// CPU seconds of producer, consumers, broker and PostgreSQL over the
    /// cold e2e run, per order, in µs.
    cpu_us_per_record: f64,
    /// That over COPY's µs per row of the same run (machine speed cancels).
    cpu_vs_copy: f64,
}

impl SideBySide {
    fn of(settings: &Settings, results: &Results) -> SideBySide {
        let orders = settings.orders;
        let cpu = results.e2e.cold_cpu;
        let cpu_us_per_record = (cpu.producer + cpu.consumers + cpu.kafka + cpu.postgres) / orders as f64 * 1e6;
        let copy_us_per_row = results.copy.seconds / orders as f64 * 1e6;
        SideBySide {
            ours: (results.source.rows_per_s(orders), results.sink.rows_per_s(orders)),
            peers: results.peers.map(|peers| (peers.source.rows_per_s(orders), peers.sink.rows_per_s(orders))),
            cpu_us_per_record: rounded(cpu_us_per_record, 2),
            cpu_vs_copy: rounded(cpu_us_per_record / copy_us_per_row, 2),
        }
    }

    /// orderstream ÷ peer, rows/s first → last: source, sink.
    fn ratios(&self) -> Option<(f64, f64)> {
        let (source, sink) = self.peers?;
        Some((rounded(self.ours.0 / source, 2), rounded(self.ours.1 / sink, 2)))
    }
}

/// Whether the pipeline meets a target.
fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "MISSED"
    }
}

/// KiB as MiB, one decimal.
fn mib(kib: u64) -> f64 {
    (kib as f64 / 1024.0 * 10.0).round() / 10.0
}

/// Rounded to `decimals`, as the report prints it (targets are judged on
/// what is printed).
fn rounded(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

fn row(out: &mut String, cells: [&str; 6]) {
    let [name, rows, seconds, rate, mbps, ratio] = cells;
    let _ = writeln!(out, "{name:<44} {rows:>10} {seconds:>9} {rate:>11} {mbps:>8} {ratio:>10}");
}

/// Renders the report; its last line is the machine-readable one.
pub fn render(settings: &Settings, results: &Results, took: Duration) -> String {
    let Results { input, copy, kafka, e2e, naive, latency, .. } = results;
    let orders = settings.orders as f64;
    let (e2e_rps, again_rps, copy_rps) =
        (orders / e2e.cold_seconds, orders / e2e.reingest_seconds, orders / copy.seconds);
    let ratio = |baseline: f64| rounded(e2e_rps / baseline, 3);
    let (copy_ratio, kafka_ratio, naive_ratio) = (ratio(copy_rps), ratio(kafka.rows_per_s), ratio(naive.rows_per_s));
    let mb = |bytes: f64, seconds: f64| format!("{:.2}", bytes / seconds / 1e6);
    let file_bytes = input.file_bytes as f64;
    let record_size = input.record_size();
    let (p50, p99, max) = latency.written_to_committed_ms;
    let (read50, read99) = latency.written_to_read_ms;
    let producer_hwm = mib(e2e.cold_peak_kib.0.max(latency.peak_kib.0));
    let consumer_hwm = mib(e2e.cold_peak_kib.1.max(latency.peak_kib.1));
    let consumers = settings.consumers;
    let batches = e2e.batches.max(1.0);
    let (verify_rps, verify_vs_copy) = (orders / e2e.verify_seconds, rounded(e2e.verify_seconds / copy.seconds, 2));

    let mut out = String::from("\n");
    let _ = writeln!(
        out,
        "orderstream bench, {}, {} orders ({} bytes CSV, mean Kafka value {:.1} B), {} cores",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        settings.orders,
        input.file_bytes,
        input.mean_value_bytes,
        cores()
    );
    row(&mut out, ["measurement", "rows", "seconds", "rows/s", "MB/s", "e2e ÷ this"]);
    let all = settings.orders.to_string();
    row(
        &mut out,
        [
            "PostgreSQL \\copy (same table shape, PK)",
            &all,
            &format!("{:.2}", copy.seconds),
            &format!("{copy_rps:.0}"),
            &mb(file_bytes, copy.seconds),
            &format!("{copy_ratio:.3}"),
        ],
    );
    row(
        &mut out,
        [
            &format!("Kafka ProducerPerformance ({record_size} B)"),
            &all,
            &format!("{:.2}", kafka.seconds),
            &format!("{:.0}", kafka.rows_per_s),
            &mb(orders * record_size as f64, kafka.seconds),
            &format!("{kafka_ratio:.3}"),
        ],
    );
    row(
        &mut out,
        [
            &format!("orderstream e2e, cold ({consumers} consumer(s))"),
            &all,
            &format!("{:.2}", e2e.cold_seconds),
            &format!("{e2e_rps:.0}"),
            &mb(file_bytes, e2e.cold_seconds),
            "1.000",
        ],
    );
    row(
        &mut out,
        [
            "orderstream e2e, re-ingest (all unchanged)",
            &all,
            &format!("{:.2}", e2e.reingest_seconds),
            &format!("{again_rps:.0}"),
            &mb(file_bytes, e2e.reingest_seconds),
            &format!("{:.3}", ratio(again_rps)),
        ],
    );
    if let Some(replicated) = &results.replicated {
        let replicated_rps = orders / replicated.cold_seconds;
        row(
            &mut out,
            [
                "orderstream e2e, cold, 3 brokers (RF 3)",
                &all,
                &format!("{:.2}", replicated.cold_seconds),
                &format!("{replicated_rps:.0}"),
                &mb(file_bytes, replicated.cold_seconds),
                &format!("{:.3}", ratio(replicated_rps)),
            ],
        );
    }
    row(
        &mut out,
        [
            "naive upsert+commit per row (sample)",
            &settings.naive_rows.to_string(),
            &format!("{:.2}", naive.seconds),
            &format!("{:.0}", naive.rows_per_s),
            &format!("{:.2}", naive.mb_per_s),
            &format!("{naive_ratio:.3}"),
        ],
    );
    let sides = SideBySide::of(settings, results);
    side_by_side_rows(&mut out, settings, results, e2e_rps);
    let _ = writeln!(
        out,
        "  naive: {} rows timed; at that rate {} rows would take {:.0} s",
        settings.naive_rows,
        settings.orders,
        orders / naive.rows_per_s
    );
    let _ = writeln!(
        out,
        "latency at {} lines/s for {} s ({} lines), line written -> row committed: p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms",
        settings.latency_rate, settings.latency_seconds, latency.sent
    );
    let _ = writeln!(
        out,
        "  of which line written -> read by the producer (read_at): p50 {read50:.1} ms, p99 {read99:.1} ms"
    );
    let _ = writeln!(
        out,
        "peak RSS (VmHWM): producer {:.1} MiB after cold, {:.1} MiB after latency; largest of {consumers} consumer(s) {:.1} MiB after cold, {:.1} MiB after latency",
        mib(e2e.cold_peak_kib.0),
        mib(latency.peak_kib.0),
        mib(e2e.cold_peak_kib.1),
        mib(latency.peak_kib.1)
    );
    let backlog_hwm = mib(results.sink_peak_kib);
    let _ = writeln!(
        out,
        "  largest consumer draining the full topic (sink phase, a backlog of {orders} orders): {backlog_hwm:.1} MiB"
    );
    let _ = writeln!(
        out,
        "cold run profile: producer published all records after {:.2} s (CPU {:.2} s), last row committed after {:.2} s;",
        e2e.publish_seconds, e2e.producer_cpu_to_publish, e2e.cold_seconds
    );
    let cpu = e2e.cold_cpu;
    let _ = writeln!(
        out,
        "  CPU seconds over the cold run: producer {:.2}, consumers {:.2}, Kafka broker {:.2} (its JIT compilers {:.2}), PostgreSQL {:.2} (of {:.2} core-seconds available)",
        cpu.producer,
        cpu.consumers,
        cpu.kafka,
        cpu.kafka_jit,
        cpu.postgres,
        cores() as f64 * e2e.cold_seconds
    );
    let _ = writeln!(
        out,
        "  consumers: {:.0} batches, mean {:.0} records, mean transaction {:.1} ms, transactions {:.2} s of the {:.2} s run",
        e2e.batches,
        e2e.batch_records / batches,
        1000.0 * e2e.transaction_seconds / batches,
        e2e.transaction_seconds,
        e2e.cold_seconds
    );
    let _ = writeln!(
        out,
        "  idle (5 s after the re-ingest, nothing to do): producer {:.2} cores, consumers {:.2} cores",
        e2e.idle_cores.0, e2e.idle_cores.1
    );
    let _ = writeln!(
        out,
        "  verify (every line of the cold file accounted for): {:.2} s, {verify_rps:.0} rows/s, {verify_vs_copy:.2} x COPY's time",
        e2e.verify_seconds
    );
    let _ = writeln!(
        out,
        "targets (BENCHMARKS.md): e2e/COPY >= 0.25: {} ({copy_ratio:.3}); p99 <= 50 ms at {} lines/s: {} ({p99:.1} ms);",
        verdict(copy_ratio >= 0.25),
        settings.latency_rate,
        verdict(p99 <= 50.0)
    );
    let _ = writeln!(out, "  verify <= 3x COPY: {} ({verify_vs_copy:.2})", verdict(verify_vs_copy <= 3.0));
    let _ = writeln!(
        out,
        "  producer < 64 MiB: {} ({producer_hwm:.1}); largest consumer < 96 MiB: {} ({consumer_hwm:.1}), on a backlog: {} ({backlog_hwm:.1})",
        verdict(producer_hwm < 64.0),
        verdict(consumer_hwm < 96.0),
        verdict(backlog_hwm < 96.0)
    );
    let _ = writeln!(
        out,
        "  CPU per record <= 20 µs: {} ({:.2} µs over the cold run, producer + consumers + broker + PostgreSQL); CPU/COPY <= 7: {} ({:.2} × COPY's µs per row)",
        verdict(sides.cpu_us_per_record <= 20.0),
        sides.cpu_us_per_record,
        verdict(sides.cpu_vs_copy <= 7.0),
        sides.cpu_vs_copy
    );
    if let Some((source_vs_peer, sink_vs_peer)) = sides.ratios() {
        let sink_cpu = results.peers.as_ref().map_or(f64::NAN, |peers| sink_cpu_vs_peer(&results.sink, &peers.sink));
        let _ = writeln!(
            out,
            "  sink/peer >= 3 (first -> last): {} ({sink_vs_peer:.2}), its CPU >= 3x less: {} ({sink_cpu:.2}); source/peer >= 1: {} ({source_vs_peer:.2})",
            verdict(sink_vs_peer >= 3.0),
            verdict(sink_cpu >= 3.0),
            verdict(source_vs_peer >= 1.0)
        );
    }
    if let Some(replicated) = &results.replicated {
        let _ = writeln!(out, "{}", replication_line(orders, e2e, replicated));
    }
    let _ = writeln!(out, "bench duration: {} s", took.as_secs());
    let _ = writeln!(
        out,
        "bench: orders={} consumers={consumers} e2e_rows_per_s={e2e_rps:.0} reingest_rows_per_s={again_rps:.0} \
         copy_rows_per_s={copy_rps:.0} kafka_rows_per_s={:.0} naive_rows_per_s={:.0} copy_ratio={copy_ratio:.3} \
         kafka_ratio={kafka_ratio:.3} naive_ratio={naive_ratio:.1} p50_ms={p50:.1} p99_ms={p99:.1} max_ms={max:.1} \
         producer_hwm_mib={producer_hwm:.1} consumer_hwm_mib={consumer_hwm:.1} consumer_backlog_hwm_mib={backlog_hwm:.1} \
         verify_rows_per_s={verify_rps:.0} verify_vs_copy={verify_vs_copy:.2}{}",
        settings.orders,
        kafka.rows_per_s,
        naive.rows_per_s,
        side_by_side_keys(results, &sides)
    );
    if let Some(replicated) = &results.replicated {
        // Appended to the machine-readable last line.
        out.pop();
        let replicated_rps = orders / replicated.cold_seconds;
        let _ = writeln!(
            out,
            " cluster_e2e_rows_per_s={replicated_rps:.0} replication_cost={:.3} cluster_cpu_us_per_record={:.2}",
            rounded(replicated_rps / e2e_rps, 3),
            cpu_us_per_record(&replicated.cold_cpu, orders)
        );
    }
    out
}

/// The cost of replication 3 in one line: the cluster's e2e rate over the
/// one broker's, and where the extra CPU went.
fn replication_line(orders: f64, single: &E2eResult, replicated: &ReplicatedResult) -> String {
    let (one, three) = (single.cold_cpu, replicated.cold_cpu);
    format!(
        "  replication 3: {:.0} rows/s = {:.3} × the one-broker rate; CPU µs per record, one broker -> three: \
         producer {:.2} -> {:.2}, consumers {:.2} -> {:.2}, Kafka {:.2} -> {:.2}, PostgreSQL {:.2} -> {:.2}, \
         all {:.2} -> {:.2}",
        orders / replicated.cold_seconds,
        single.cold_seconds / replicated.cold_seconds,
        1e6 * one.producer / orders,
        1e6 * three.producer / orders,
        1e6 * one.consumers / orders,
        1e6 * three.consumers / orders,
        1e6 * one.kafka / orders,
        1e6 * three.kafka / orders,
        1e6 * one.postgres / orders,
        1e6 * three.postgres / orders,
        cpu_us_per_record(&one, orders),
        cpu_us_per_record(&three, orders)
    )
}

/// CPU µs per record of every component together.
fn cpu_us_per_record(cpu: &crate::phases::e2e::CpuSeconds, orders: f64) -> f64 {
    1e6 * (cpu.producer + cpu.consumers + cpu.kafka + cpu.postgres) / orders
}

/// Renders the scaling run (`BENCH_SCALING=1`: COPY and the end-to-end
/// phase only) as one line, the machine-readable `scaling:` line, the
/// per-record CPU split by component so a growing share shows where cost
/// grows.
pub fn render_scaling(settings: &Settings, copy: &CopyResult, e2e: &E2eResult, took: Duration) -> String {
    let orders = settings.orders as f64;
    let (e2e_rps, copy_rps) = (orders / e2e.cold_seconds, orders / copy.seconds);
    let cpu = e2e.cold_cpu;
    let per_record = |seconds: f64| seconds / orders * 1e6;
    let total = per_record(cpu.producer + cpu.consumers + cpu.kafka + cpu.postgres);
    let copy_us_per_row = per_record(copy.seconds);
    format!(
        "scaling: orders={} consumers={} e2e_rows_per_s={e2e_rps:.0} reingest_rows_per_s={:.0} copy_rows_per_s={copy_rps:.0} \
         copy_ratio={:.3} cpu_us_per_record={total:.2} cpu_vs_copy={:.2} producer_us={:.2} consumers_us={:.2} \
         broker_us={:.2} broker_jit_us={:.2} postgres_us={:.2} producer_hwm_mib={:.1} consumer_hwm_mib={:.1} duration_s={}\n",
        settings.orders,
        settings.consumers,
        orders / e2e.reingest_seconds,
        e2e_rps / copy_rps,
        total / copy_us_per_row,
        per_record(cpu.producer),
        per_record(cpu.consumers),
        per_record(cpu.kafka),
        per_record(cpu.kafka_jit),
        per_record(cpu.postgres),
        mib(e2e.cold_peak_kib.0),
        mib(e2e.cold_peak_kib.1),
        took.as_secs()
    )
}

/// The side-by-side rows of the table (first → last), and a line per half
/// with the from-start figures and the CPU of each side.
fn side_by_side_rows(out: &mut String, settings: &Settings, results: &Results, e2e_rps: f64) {
    let orders = settings.orders;
    let all = orders.to_string();
    let mut half = |name: &str, load: &LoadResult| {
        row(
            out,
            [
                name,
                &all,
                &format!("{:.2}", load.first_to_last_seconds),
                &format!("{:.0}", load.rows_per_s(orders)),
                &format!("{:.2}", results.input.file_bytes as f64 / load.first_to_last_seconds / 1e6),
                &format!("{:.3}", rounded(e2e_rps / load.rows_per_s(orders), 3)),
            ],
        );
    };
    half("source: orderstream producer alone", &results.source);
    if let Some(peers) = &results.peers {
        half("source: Kafka Connect FileStreamSource", &peers.source);
    }
    half(&format!("sink: orderstream consumers ({})", settings.consumers), &results.sink);
    if let Some(peers) = &results.peers {
        half("sink: Kafka Connect + Debezium JDBC (upsert)", &peers.sink);
    }
    let detail = |out: &mut String, name: &str, load: &LoadResult, loader: &str, service: &str| {
        let _ = writeln!(
            out,
            "  {name}: first -> last {:.2} s, from start {:.2} s ({:.0} rows/s); CPU s over the load: {loader} {:.2} + {service} {:.2} = {:.2}",
            load.first_to_last_seconds,
            load.from_start_seconds,
            load.rows_per_s_from_start(orders),
            load.loader_cpu_seconds,
            load.service_cpu_seconds,
            load.cpu_seconds()
        );
    };
    detail(out, "source, orderstream", &results.source, "producer", "broker");
    if let Some(peers) = &results.peers {
        detail(out, "source, peer", &peers.source, "Connect", "broker");
    }
    detail(out, "sink, orderstream", &results.sink, "consumers", "PostgreSQL");
    if let Some(peers) = &results.peers {
        detail(out, "sink, peer", &peers.sink, "Connect", "PostgreSQL");
        let _ = writeln!(
            out,
            "  peers' settings: BENCHMARKS.md, \"Peers\"; sink CPU, peer ÷ orderstream: {:.2}",
            sink_cpu_vs_peer(&results.sink, &peers.sink)
        );
    }
}

/// The peer sink's CPU seconds (worker + PostgreSQL) over orderstream's
/// (consumers + PostgreSQL).
fn sink_cpu_vs_peer(ours: &LoadResult, peer: &LoadResult) -> f64 {
    rounded(peer.cpu_seconds() / ours.cpu_seconds(), 2)
}

/// The side-by-side keys of the last line (the peers' only when they ran).
fn side_by_side_keys(results: &Results, sides: &SideBySide) -> String {
    let mut keys = format!(" sink_rows_per_s={:.0} source_rows_per_s={:.0}", sides.ours.1, sides.ours.0);
    if let (Some(peers), Some((peer_source, peer_sink)), Some((source_vs_peer, sink_vs_peer))) =
        (&results.peers, sides.peers, sides.ratios())
    {
        let _ = write!(
            keys,
            " peer_sink_rows_per_s={peer_sink:.0} sink_vs_peer={sink_vs_peer:.2} sink_cpu_vs_peer={:.2} \
             peer_source_rows_per_s={peer_source:.0} source_vs_peer={source_vs_peer:.2}",
            sink_cpu_vs_peer(&results.sink, &peers.sink)
        );
    }
    let _ = write!(keys, " cpu_us_per_record={:.2} cpu_vs_copy={:.2}", sides.cpu_us_per_record, sides.cpu_vs_copy);
    keys
}
