//! One way to declare a process's metrics: a [`Registrar`] creates each
//! metric and registers it in the process's registry in one call, so the
//! producer, the consumer and the lag exporter declare theirs alike.
//!
//! Names and help texts are constants of the program, so a metric that
//! cannot be created or registered (an invalid or duplicate name) is a
//! programming error: it panics at start, where every crate's unit tests
//! build its metrics once, never in operation.

use prometheus::core::Collector;
use prometheus::{
    Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// Creates metrics and registers them in one registry.
#[derive(Clone, Default)]
pub struct Registrar {
    registry: Registry,
}

impl Registrar {
    /// A registrar with a new registry that already holds what every
    /// process exports: `process_*` (CPU seconds, resident memory, open file
    /// descriptors, start time of this process, read from `/proc`) and
    /// `orderstream_build_info{version, revision}`, so a dashboard can tell
    /// which build is running and what it costs without another exporter.
    pub fn new() -> Self {
        let registrar = Registrar::default();
        registrar
            .registry
            .register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))
            .expect("the process collector registered once");
        let build_info = registrar.gauge_vec(
            "orderstream_build_info",
            "Always 1; its labels say which build runs: the version and the git revision it was built from.",
            &["version", "revision"],
        );
        build_info.with_label_values(&[env!("CARGO_PKG_VERSION"), env!("ORDERSTREAM_REVISION")]).set(1);
        registrar
    }

    /// The registry, for the `/metrics` endpoint.
    pub fn registry(&self) -> Registry {
        self.registry.clone()
    }

    /// A counter (`name` ends in `_total`).
    pub fn counter(&self, name: &str, help: &str) -> IntCounter {
        self.register(IntCounter::new(name, help))
    }

    /// A counter per value of `label`, with each of `values` present from the
    /// start, so that rates are defined (and dashboards show zeros) before
    /// the first event.
    pub fn counter_vec(&self, name: &str, help: &str, label: &str, values: &[&str]) -> IntCounterVec {
        let counters = self.counters(name, help, &[label]);
        for value in values {
            counters.with_label_values(&[value]);
        }
        counters
    }

    /// A counter per combination of `labels`, none present until used.
    pub fn counters(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        self.register(IntCounterVec::new(Opts::new(name, help), labels))
    }

    /// An integer gauge.
    pub fn gauge(&self, name: &str, help: &str) -> IntGauge {
        self.register(IntGauge::new(name, help))
    }

    /// An integer gauge per combination of `labels`.
    pub fn gauge_vec(&self, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
        self.register(IntGaugeVec::new(Opts::new(name, help), labels))
    }

    /// A floating-point gauge (seconds, ratios).
    pub fn float_gauge(&self, name: &str, help: &str) -> Gauge {
        self.register(Gauge::new(name, help))
    }

    /// A floating-point gauge per combination of `labels` (seconds per
    /// partition).
    pub fn float_gauge_vec(&self, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
        self.register(GaugeVec::new(Opts::new(name, help), labels))
    }

    /// A histogram with the given bucket bounds, or Prometheus's default
    /// buckets when `buckets` is empty.
    pub fn histogram(&self, name: &str, help: &str, buckets: &[f64]) -> Histogram {
        let mut opts = HistogramOpts::new(name, help);
        if !buckets.is_empty() {
            opts = opts.buckets(buckets.to_vec());
        }
        self.register(Histogram::with_opts(opts))
    }

    fn register<M: Collector + Clone + 'static>(&self, created: prometheus::Result<M>) -> M {
        let metric = created.expect("a valid metric name and help text");
        self.registry.register(Box::new(metric.clone())).expect("each metric registered once");
        metric
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_metrics_are_gathered_with_their_preset_labels() {
        let registrar = Registrar::new();
        let counter = registrar.counter("orderstream_test_things_total", "Things.");
        registrar.counter_vec("orderstream_test_kinds_total", "Kinds.", "kind", &["a", "b"]);
        registrar.histogram("orderstream_test_seconds", "Seconds.", &[]);
        counter.inc();
        let families = registrar.registry().gather();
        let ours: Vec<_> = families.iter().filter(|family| family.name().starts_with("orderstream_test_")).collect();
        let names: Vec<&str> = ours.iter().map(|family| family.name()).collect();
        assert_eq!(
            names,
            ["orderstream_test_kinds_total", "orderstream_test_seconds", "orderstream_test_things_total"]
        );
        assert_eq!(ours[0].get_metric().len(), 2, "both label values present before any event");
    }

    #[test]
    fn every_registry_exports_the_process_and_the_build() {
        let families = Registrar::new().registry().gather();
        let names: Vec<&str> = families.iter().map(|family| family.name()).collect();
        for expected in ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds"] {
            assert!(names.contains(&expected), "{expected} missing from {names:?}");
        }
        let build = families.iter().find(|family| family.name() == "orderstream_build_info").expect("build info");
        let labels: Vec<(&str, &str)> =
            build.get_metric()[0].get_label().iter().map(|label| (label.name(), label.value())).collect();
        assert_eq!(labels[1], ("version", env!("CARGO_PKG_VERSION")));
        assert_eq!(labels[0].0, "revision");
        assert!(!labels[0].1.is_empty());
        assert_eq!(build.get_metric()[0].get_gauge().get_value(), 1.0);
    }

    #[test]
    #[should_panic(expected = "each metric registered once")]
    fn a_name_registered_twice_is_a_programming_error() {
        let registrar = Registrar::new();
        registrar.counter("orderstream_test_twice_total", "Once.");
        registrar.counter("orderstream_test_twice_total", "Twice.");
    }
}
