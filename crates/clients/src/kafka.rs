//! How to reach Kafka: the brokers, TLS and SASL settings as first-class
//! flags, plus any librdkafka setting passed through, turned into one
//! [`ClientConfig`] for every client of every binary.

use std::path::PathBuf;

use rdkafka::ClientConfig;
use thiserror::Error;

use crate::secret::Secret;

/// librdkafka's `security.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SecurityProtocol {
    /// No TLS, no authentication (the local stack).
    #[value(name = "plaintext")]
    Plaintext,
    /// TLS, no SASL.
    #[value(name = "ssl")]
    Ssl,
    /// SASL without TLS: the password travels hashed (SCRAM) or clear (PLAIN).
    #[value(name = "sasl_plaintext")]
    SaslPlaintext,
    /// SASL over TLS: what a secured cluster should use.
    #[value(name = "sasl_ssl")]
    SaslSsl,
}

impl SecurityProtocol {
    /// The librdkafka value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "plaintext",
            SecurityProtocol::Ssl => "ssl",
            SecurityProtocol::SaslPlaintext => "sasl_plaintext",
            SecurityProtocol::SaslSsl => "sasl_ssl",
        }
    }

    fn uses_sasl(self) -> bool {
        matches!(self, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl)
    }
}

/// librdkafka's `sasl.mechanism` (those built without extra libraries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SaslMechanism {
    /// Username and password in clear (only over TLS).
    #[value(name = "PLAIN")]
    Plain,
    /// Salted challenge-response, SHA-256.
    #[value(name = "SCRAM-SHA-256")]
    ScramSha256,
    /// Salted challenge-response, SHA-512.
    #[value(name = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    /// The librdkafka value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// The Kafka connection flags of every binary.
#[derive(Clone, clap::Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers, comma-separated.
    #[arg(
        help_heading = "Kafka",
        global = true,
        long = "brokers",
        env = "ORDERSTREAM_KAFKA_BROKERS",
        default_value = "127.0.0.1:9092"
    )]
    pub brokers: String,

    /// `security.protocol`: plaintext, ssl, sasl_plaintext or sasl_ssl.
    #[arg(
        help_heading = "Security",
        global = true,
        long = "kafka-security-protocol",
        env = "ORDERSTREAM_KAFKA_SECURITY_PROTOCOL",
        ignore_case = true
    )]
    pub security_protocol: Option<SecurityProtocol>,

    /// `sasl.mechanism`: SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN.
    #[arg(
        help_heading = "Security",
        global = true,
        long = "kafka-sasl-mechanism",
        env = "ORDERSTREAM_KAFKA_SASL_MECHANISM",
        ignore_case = true
    )]
    pub sasl_mechanism: Option<SaslMechanism>,

    /// `sasl.username`.
    #[arg(
        help_heading = "Security",
        global = true,
        long = "kafka-sasl-username",
        env = "ORDERSTREAM_KAFKA_SASL_USERNAME"
    )]
    pub sasl_username: Option<String>,

    /// `sasl.password`. Prefer `--kafka-sasl-password-file`: a flag shows in
    /// the process list. Never logged.
    #[arg(
        help_heading = "Security",
        global = true,
        long = "kafka-sasl-password",
        env = "ORDERSTREAM_KAFKA_SASL_PASSWORD",
        hide_env_values = true
    )]
    pub sasl_password: Option<Secret>,

    /// A file holding `sasl.password` (a Docker or Kubernetes secret), used
    /// when `--kafka-sasl-password` is not given.
    #[arg(
        help_heading = "Security",
        global = true,
        long = "kafka-sasl-password-file",
        env = "ORDERSTREAM_KAFKA_SASL_PASSWORD_FILE"
    )]
    pub sasl_password_file: Option<PathBuf>,

    /// `ssl.ca.location`: PEM file of the CAs trusted to sign the brokers'
    /// certificates (the system's store if absent).
    #[arg(
        help_heading = "Security",
        global = true,
        long = "kafka-ssl-ca-location",
        env = "ORDERSTREAM_KAFKA_SSL_CA_LOCATION"
    )]
    pub ssl_ca_location: Option<PathBuf>,

    /// Any other librdkafka setting as `key=value` (repeatable; in the
    /// environment, comma-separated). Applied last, so it wins.
    #[arg(help_heading = "Kafka", 
        global = true,
        long = "kafka-option",
        env = "ORDERSTREAM_KAFKA_OPTIONS",
        value_delimiter = ',',
        value_parser = parse_option,
        hide_env_values = true
    )]
    pub options: Vec<(String, String)>,
}

impl std::fmt::Debug for KafkaArgs {
    /// Passwords (and any pass-through setting that looks secret) redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let options: Vec<(&str, &str)> = self
            .options
            .iter()
            .map(|(key, value)| (key.as_str(), if is_sensitive(key) { "<redacted>" } else { value.as_str() }))
            .collect();
        f.debug_struct("KafkaArgs")
            .field("brokers", &self.brokers)
            .field("security_protocol", &self.security_protocol)
            .field("sasl_mechanism", &self.sasl_mechanism)
            .field("sasl_username", &self.sasl_username)
            .field("sasl_password", &self.sasl_password)
            .field("sasl_password_file", &self.sasl_password_file)
            .field("ssl_ca_location", &self.ssl_ca_location)
            .field("options", &options)
            .finish()
    }
}

/// Why the Kafka settings are unusable. No variant holds a password.
#[derive(Debug, Error)]
pub enum KafkaConfigError {
    /// Settings that contradict each other or miss a part.
    #[error("{0}")]
    Inconsistent(String),
    /// The password file cannot be read.
    #[error("cannot read --kafka-sasl-password-file {path}")]
    PasswordFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Whether a librdkafka setting holds a secret, by its name.
pub(crate) fn is_sensitive(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "secret", "ssl.key.pem", "sasl.jaas", "oauthbearer.config", "token"]
        .iter()
        .any(|part| key.contains(part))
}

/// Parses a `--kafka-option`, for clap's `value_parser`. It never fails:
/// clap would repeat a refused value in its message, and a malformed option
/// may be a misplaced password. A value that is not `key=value` becomes an
/// empty key, which [`KafkaArgs::validate`] refuses without showing it.
pub(crate) fn parse_option(raw: &str) -> Result<(String, String), String> {
    Ok(raw
        .split_once('=')
        .map(|(key, value)| (key.trim().to_string(), value.trim().to_string()))
        .filter(|(key, _)| !key.is_empty())
        .unwrap_or_default())
}

impl KafkaArgs {
    /// Checks the settings fit together, without I/O.
    pub fn validate(&self) -> Result<(), KafkaConfigError> {
        if self.options.iter().any(|(key, _)| key.is_empty()) {
            return Err(KafkaConfigError::Inconsistent(
                "a --kafka-option (ORDERSTREAM_KAFKA_OPTIONS) is not key=value".into(),
            ));
        }
        let passed_through = |key: &str| self.options.iter().any(|(k, _)| k == key);
        let sasl_flags = self.sasl_mechanism.is_some()
            || self.sasl_username.is_some()
            || self.sasl_password.is_some()
            || self.sasl_password_file.is_some();
        if sasl_flags && !passed_through("security.protocol") && !self.security_protocol.is_some_and(|p| p.uses_sasl())
        {
            return Err(KafkaConfigError::Inconsistent(
                "the --kafka-sasl-* settings need --kafka-security-protocol sasl_ssl (or sasl_plaintext)".into(),
            ));
        }
        if self.security_protocol.is_some_and(|p| p.uses_sasl()) {
            if self.sasl_mechanism.is_none() && !passed_through("sasl.mechanism") {
                return Err(KafkaConfigError::Inconsistent(
                    "--kafka-security-protocol sasl_* needs --kafka-sasl-mechanism (SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN)"
                        .into(),
                ));
            }
            let has_password = self.sasl_password.as_ref().is_some_and(|p| !p.is_empty())
                || self.sasl_password_file.is_some()
                || passed_through("sasl.password");
            if (self.sasl_username.is_none() && !passed_through("sasl.username")) || !has_password {
                return Err(KafkaConfigError::Inconsistent(
                    "SASL needs --kafka-sasl-username and --kafka-sasl-password (or --kafka-sasl-password-file)".into(),
                ));
            }
        }
        Ok(())
    }

    /// Reads `--kafka-sasl-password-file` into the password, once, before
    /// any client is built (when no password was given directly).
    pub fn load_password_file(&mut self) -> Result<(), KafkaConfigError> {
        if self.sasl_password.is_none() {
            if let Some(path) = &self.sasl_password_file {
                let secret = Secret::from_file(path)
                    .map_err(|source| KafkaConfigError::PasswordFile { path: path.clone(), source })?;
                self.sasl_password = Some(secret);
            }
        }
        Ok(())
    }

    /// The librdkafka settings shared by every client: brokers, security,
    /// then the pass-through options.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        if let Some(protocol) = self.security_protocol {
            config.set("security.protocol", protocol.as_str());
        }
        if let Some(mechanism) = self.sasl_mechanism {
            config.set("sasl.mechanism", mechanism.as_str());
        }
        if let Some(username) = &self.sasl_username {
            config.set("sasl.username", username);
        }
        if let Some(password) = &self.sasl_password {
            config.set("sasl.password", password.expose());
        }
        if let Some(ca) = &self.ssl_ca_location {
            config.set("ssl.ca.location", ca.to_string_lossy());
        }
        for (key, value) in self.options.iter().filter(|(key, _)| !key.is_empty()) {
            config.set(key, value);
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        kafka: KafkaArgs,
    }

    fn parse(args: &[&str]) -> KafkaArgs {
        Cli::try_parse_from(std::iter::once("x").chain(args.iter().copied())).unwrap().kafka
    }

    #[test]
    fn security_flags_become_librdkafka_settings() {
        let kafka = parse(&[
            "--brokers",
            "k1:9093,k2:9093",
            "--kafka-security-protocol",
            "SASL_SSL",
            "--kafka-sasl-mechanism",
            "SCRAM-SHA-512",
            "--kafka-sasl-username",
            "orderstream-consumer",
            "--kafka-sasl-password",
            "s3cret",
            "--kafka-ssl-ca-location",
            "/etc/kafka/ca.pem",
        ]);
        kafka.validate().unwrap();
        let config = kafka.client_config();
        assert_eq!(config.get("bootstrap.servers"), Some("k1:9093,k2:9093"));
        assert_eq!(config.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(config.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(config.get("sasl.username"), Some("orderstream-consumer"));
        assert_eq!(config.get("sasl.password"), Some("s3cret"));
        assert_eq!(config.get("ssl.ca.location"), Some("/etc/kafka/ca.pem"));
    }

    #[test]
    fn the_password_can_come_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kafka-password");
        std::fs::write(&file, "from-file\n").unwrap();
        let mut kafka = parse(&[
            "--kafka-security-protocol",
            "sasl_plaintext",
            "--kafka-sasl-mechanism",
            "SCRAM-SHA-256",
            "--kafka-sasl-username",
            "u",
            "--kafka-sasl-password-file",
            file.to_str().unwrap(),
        ]);
        kafka.validate().unwrap();
        kafka.load_password_file().unwrap();
        assert_eq!(kafka.client_config().get("sasl.password"), Some("from-file"));
    }

    #[test]
    fn pass_through_options_come_last_and_win() {
        let kafka = parse(&["--kafka-option", "security.protocol=ssl", "--kafka-option", "bootstrap.servers=other:1"]);
        let config = kafka.client_config();
        assert_eq!(config.get("security.protocol"), Some("ssl"));
        assert_eq!(config.get("bootstrap.servers"), Some("other:1"));
    }

    #[test]
    fn incomplete_sasl_settings_are_refused_before_connecting() {
        let error = parse(&["--kafka-sasl-username", "u"]).validate().unwrap_err().to_string();
        assert!(error.contains("--kafka-security-protocol"), "{error}");
        let error = parse(&["--kafka-security-protocol", "sasl_ssl", "--kafka-sasl-mechanism", "PLAIN"])
            .validate()
            .unwrap_err()
            .to_string();
        assert!(error.contains("--kafka-sasl-username"), "{error}");
        assert!(parse(&["--kafka-security-protocol", "ssl"]).validate().is_ok());
    }

    #[test]
    fn debug_never_shows_a_password() {
        let kafka = parse(&[
            "--kafka-sasl-password",
            "s3cret-flag",
            "--kafka-option",
            "sasl.password=s3cret-option",
            "--kafka-option",
            "ssl.key.password=s3cret-key",
            "--kafka-option",
            "linger.ms=5",
        ]);
        let shown = format!("{kafka:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("linger.ms"), "{shown}");
    }

    #[test]
    fn a_malformed_option_is_refused_without_repeating_it() {
        let kafka = parse(&["--kafka-option", "sasl.password:hunter2"]);
        let error = kafka.validate().unwrap_err().to_string();
        assert!(error.contains("key=value"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
        assert!(!format!("{kafka:?}").contains("hunter2"));
    }
}
