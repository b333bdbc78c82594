//! One start-up for every binary: the environment aliases, logging, the
//! deprecation warnings, clap's parse and the validation, in that order.
//!
//! The order matters: the aliases are copied before clap reads the
//! environment (and before any thread starts, since they change it);
//! logging is up before the deprecation warnings are logged; the
//! configuration is validated (no I/O) before anything connects. Every
//! binary written by hand got one of these wrong at some point, so they are
//! written once here.
//!
//! [`ObservabilityArgs`] are the flags every long-running service declares
//! the same way (`--metrics-addr`, `--ready-file`), flattened into each
//! one's configuration with its own variable names and default port.

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::env;

/// What a binary's configuration gives [`startup`]: clap's parsing, and a
/// validation of what clap cannot check, without I/O.
pub trait Configuration: clap::Parser {
    /// Why a parsed configuration is unusable.
    type Invalid: std::error::Error + Send + Sync + 'static;

    /// Checks what clap cannot, before anything connects.
    fn validate(&self) -> Result<(), Self::Invalid>;
}

/// Whether [`startup`] sets up logging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logging {
    /// Key/value logs on standard error ([`crate::init_logging`]): every
    /// service.
    On,
    /// No logging set up: a one-shot command whose standard error holds only
    /// its own messages (`orderstream-status`, `orderstream-verify` unless
    /// `--every`). Its deprecation warnings are not shown.
    Off,
}

/// Starts a binary: copies the environment aliases to their `ORDERSTREAM_`
/// names, sets up logging, warns once per deprecated name used, parses the
/// command line (clap exits on a parse error or `--help`, as always) and
/// validates the result.
///
/// Call it first thing in `main`, before the Tokio runtime starts: the
/// aliases change the process's environment, which is only sound while it
/// has one thread.
pub fn startup<C: Configuration>(logging: Logging) -> Result<C, C::Invalid> {
    startup_from(logging, std::env::args_os())
}

/// [`startup`] with the command line given, for tests.
pub fn startup_from<C, I, T>(logging: Logging, args: I) -> Result<C, C::Invalid>
where
    C: Configuration,
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let deprecated = env::apply_aliases();
    if logging == Logging::On {
        crate::init_logging();
    }
    env::warn_deprecated(&deprecated);
    let config = C::parse_from(args);
    config.validate()?;
    Ok(config)
}

/// The variable names and default address of one service's
/// [`ObservabilityArgs`]: each service has its own, so that two on one host
/// are configured apart.
pub trait ServiceEndpoints {
    /// The variable of `--metrics-addr`, e.g. `ORDERSTREAM_PRODUCER_METRICS_ADDR`.
    const METRICS_ADDR_ENV: &'static str;
    /// The default of `--metrics-addr`: loopback, on the service's own port.
    const DEFAULT_METRICS_ADDR: &'static str;
    /// The variable of `--ready-file`, e.g. `ORDERSTREAM_PRODUCER_READY_FILE`.
    const READY_FILE_ENV: &'static str;
}

/// The flags every long-running service takes for being watched: where its
/// endpoints are served and where it says they are.
#[derive(Debug, Clone, clap::Args)]
pub struct ObservabilityArgs<E: ServiceEndpoints + Clone + Send + Sync + 'static> {
    /// Where `/metrics`, `/healthz` and `/readyz` are served (loopback unless
    /// configured otherwise; port 0 picks a free port).
    #[arg(help_heading = "Observability", long, env = E::METRICS_ADDR_ENV, default_value = E::DEFAULT_METRICS_ADDR)]
    pub metrics_addr: SocketAddr,

    /// Where to write `{"addr": ..., "pid": ...}` once the endpoints are
    /// bound (the actual port with `--metrics-addr` port 0): for harnesses
    /// and scripts, instead of reading the address from the log. A service
    /// that reports final totals writes them beside it, to `PATH.final.json`,
    /// at a clean shutdown.
    #[arg(help_heading = "Observability", long, env = E::READY_FILE_ENV)]
    pub ready_file: Option<PathBuf>,

    /// Which service's names these are.
    #[arg(skip)]
    pub service: PhantomData<E>,
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A configuration reading one kept and one deprecated alias.
    #[derive(Debug, clap::Parser)]
    struct Probe {
        #[arg(long, env = "ORDERSTREAM_KAFKA_BROKERS", default_value = "default:9092")]
        brokers: String,
        #[arg(long, env = "ORDERSTREAM_KAFKA_SASL_USERNAME")]
        username: Option<String>,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("the username `refused` is refused")]
    struct Refused;

    impl Configuration for Probe {
        type Invalid = Refused;
        fn validate(&self) -> Result<(), Refused> {
            if self.username.as_deref() == Some("refused") {
                return Err(Refused);
            }
            Ok(())
        }
    }

    #[derive(Debug, Clone)]
    struct Sample;

    impl ServiceEndpoints for Sample {
        const METRICS_ADDR_ENV: &'static str = "ORDERSTREAM_SAMPLE_METRICS_ADDR";
        const DEFAULT_METRICS_ADDR: &'static str = "127.0.0.1:9199";
        const READY_FILE_ENV: &'static str = "ORDERSTREAM_SAMPLE_READY_FILE";
    }

    #[derive(Debug, clap::Parser)]
    struct Service {
        #[command(flatten)]
        observability: ObservabilityArgs<Sample>,
    }

    /// The log lines written while `work` runs, as text.
    fn logged<T>(work: impl FnOnce() -> T) -> (T, String) {
        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
        let result = tracing::subscriber::with_default(subscriber, work);
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        (result, text)
    }

    /// One test for everything that changes the process's environment, so
    /// that no two of them run at once.
    #[test]
    fn startup_copies_aliases_warns_of_deprecated_ones_then_parses_and_validates() {
        for name in
            ["KAFKA_BROKERS", "ORDERSTREAM_KAFKA_BROKERS", "KAFKA_SASL_USERNAME", "ORDERSTREAM_KAFKA_SASL_USERNAME"]
        {
            std::env::remove_var(name);
        }

        // A kept alias fills its ORDERSTREAM_ name, without a warning.
        std::env::set_var("KAFKA_BROKERS", "kept:9092");
        let (probe, log) = logged(|| startup_from::<Probe, _, _>(Logging::Off, ["probe"]).unwrap());
        assert_eq!(probe.brokers, "kept:9092");
        assert!(!log.contains(crate::env::DEPRECATED_VARIABLE), "{log}");

        // A deprecated one too, with one warning naming both names.
        std::env::set_var("KAFKA_SASL_USERNAME", "old-user");
        std::env::remove_var("ORDERSTREAM_KAFKA_SASL_USERNAME");
        let (probe, log) = logged(|| startup_from::<Probe, _, _>(Logging::Off, ["probe"]).unwrap());
        assert_eq!(probe.username.as_deref(), Some("old-user"));
        assert_eq!(log.matches(crate::env::DEPRECATED_VARIABLE).count(), 1, "{log}");
        assert!(log.contains("variable=\"KAFKA_SASL_USERNAME\""), "{log}");
        assert!(log.contains("rename_to=\"ORDERSTREAM_KAFKA_SASL_USERNAME\""), "{log}");

        // The ORDERSTREAM_ name wins, and then nothing is deprecated.
        std::env::set_var("ORDERSTREAM_KAFKA_SASL_USERNAME", "new-user");
        let (probe, log) = logged(|| startup_from::<Probe, _, _>(Logging::Off, ["probe"]).unwrap());
        assert_eq!(probe.username.as_deref(), Some("new-user"));
        assert!(!log.contains(crate::env::DEPRECATED_VARIABLE), "{log}");

        // The command line wins over both; validation runs on the result.
        let error = startup_from::<Probe, _, _>(Logging::Off, ["probe", "--username", "refused"]).unwrap_err();
        assert_eq!(error.to_string(), "the username `refused` is refused");

        for name in
            ["KAFKA_BROKERS", "ORDERSTREAM_KAFKA_BROKERS", "KAFKA_SASL_USERNAME", "ORDERSTREAM_KAFKA_SASL_USERNAME"]
        {
            std::env::remove_var(name);
        }
    }

    #[test]
    fn each_service_names_its_own_observability_flags() {
        use clap::{CommandFactory, Parser};
        let service = Service::try_parse_from(["service"]).unwrap();
        assert_eq!(service.observability.metrics_addr, "127.0.0.1:9199".parse().unwrap());
        assert_eq!(service.observability.ready_file, None);
        let command = Service::command();
        let env_of = |id: &str| {
            command
                .get_arguments()
                .find(|arg| arg.get_id() == id)
                .and_then(|arg| arg.get_env())
                .map(|env| env.to_owned())
        };
        assert_eq!(env_of("metrics_addr").as_deref(), Some(std::ffi::OsStr::new("ORDERSTREAM_SAMPLE_METRICS_ADDR")));
        assert_eq!(env_of("ready_file").as_deref(), Some(std::ffi::OsStr::new("ORDERSTREAM_SAMPLE_READY_FILE")));
        let service =
            Service::try_parse_from(["service", "--metrics-addr", "0.0.0.0:1", "--ready-file", "r.json"]).unwrap();
        assert_eq!(service.observability.metrics_addr.port(), 1);
        assert_eq!(service.observability.ready_file, Some(PathBuf::from("r.json")));
    }
}
