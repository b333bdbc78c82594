//! PostgreSQL connections: the database URL with libpq's `sslmode`, a rustls
//! connector, and a password that never shows.
//!
//! tokio-postgres itself knows `sslmode=disable|prefer|require` and no
//! certificate checks; libpq's `verify-ca` and `verify-full` (and
//! `sslrootcert`) are taken out of the URL here and implemented with rustls:
//!
//! | `sslmode`            | encrypted              | server certificate checked                        |
//! |----------------------|------------------------|---------------------------------------------------|
//! | `disable`            | no                     | no                                                |
//! | `allow`, `prefer` (default) | if the server offers TLS | no                                      |
//! | `require`            | yes, or no connection  | no (as libpq: against the CA file's roots if one is given) |
//! | `verify-ca`          | yes                    | signed by a trusted CA                            |
//! | `verify-full`        | yes                    | signed by a trusted CA and issued for the host    |
//!
//! The trusted CAs are the PEM file of `sslrootcert` in the URL, else
//! `--database-ca-file` / `ORDERSTREAM_DATABASE_SSL_ROOT_CERT`, else Mozilla's roots (compiled in,
//! so a minimal container image needs no certificate store).

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use thiserror::Error;
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The database of a local run (`make run`): no password, so nothing to hide.
pub(crate) const DEFAULT_DATABASE_URL: &str = "postgres://orderstream@127.0.0.1:5433/orderstream";

/// How long a connection attempt may take unless the URL says otherwise: a
/// stopped or unreachable server must fail the attempt, not hang it.
const DEFAULT_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The database flags of every binary that reads or writes PostgreSQL.
#[derive(Clone, clap::Args)]
pub struct DatabaseArgs {
    /// PostgreSQL URL, e.g.
    /// `postgres://orderstream_writer:PASSWORD@db:5432/orderstream?sslmode=verify-full`
    /// (`sslmode`: disable, prefer, require, verify-ca, verify-full). The
    /// password is never logged.
    #[arg(help_heading = "PostgreSQL", long, global = true, env = "ORDERSTREAM_DATABASE_URL", default_value = DEFAULT_DATABASE_URL, hide_env_values = true)]
    pub database_url: String,

    /// PEM file of the certificate authorities trusted to sign the server's
    /// certificate (`sslmode=verify-ca|verify-full`); Mozilla's roots if
    /// absent. `sslrootcert` in the URL takes precedence, as in libpq.
    #[arg(help_heading = "PostgreSQL", long, global = true, env = "ORDERSTREAM_DATABASE_SSL_ROOT_CERT")]
    pub database_ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for DatabaseArgs {
    /// The URL with its password replaced by `***`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseArgs")
            .field("database_url", &redact(&self.database_url))
            .field("database_ca_file", &self.database_ca_file)
            .finish()
    }
}

impl DatabaseArgs {
    /// The flags for a URL, trusting Mozilla's roots (tests, tools).
    pub fn from_url(url: &str) -> Self {
        DatabaseArgs { database_url: url.to_string(), database_ca_file: None }
    }

    /// Checks the URL without any I/O, so a mistake is reported before
    /// anything connects. The error never holds the password.
    pub fn validate(&self) -> Result<(), DatabaseConfigError> {
        parse(&self.database_url).map(|_| ())
    }

    /// The URL for showing: its password replaced by `***`.
    pub fn redacted_url(&self) -> String {
        redact(&self.database_url)
    }
}

/// `sslmode`, as libpq names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Never TLS.
    Disable,
    /// TLS if the server offers it, without checking its certificate
    /// (libpq's `allow` and `prefer`; the default).
    Prefer,
    /// TLS or no connection; the certificate is not checked unless a CA file
    /// is given.
    Require,
    /// TLS, with a certificate signed by a trusted CA.
    VerifyCa,
    /// TLS, with a certificate signed by a trusted CA for the host connected to.
    VerifyFull,
}

impl TlsMode {
    fn parse(value: &str) -> Result<Self, DatabaseConfigError> {
        Ok(match value {
            "disable" => TlsMode::Disable,
            "allow" | "prefer" => TlsMode::Prefer,
            "require" => TlsMode::Require,
            "verify-ca" => TlsMode::VerifyCa,
            "verify-full" => TlsMode::VerifyFull,
            other => return Err(DatabaseConfigError::SslMode(other.to_string())),
        })
    }
}

/// Why the database settings are unusable. No variant holds the password.
#[derive(Debug, Error)]
pub enum DatabaseConfigError {
    /// tokio-postgres refused the URL.
    #[error("--database-url is not a PostgreSQL URL: {0}")]
    Url(String),
    /// `sslmode` has a value libpq does not know either.
    #[error("--database-url: sslmode `{0}` is not one of disable, allow, prefer, require, verify-ca, verify-full")]
    SslMode(String),
    /// The CA file cannot be read.
    #[error("cannot read the database CA file {path}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The CA file holds no usable certificate.
    #[error("the database CA file {0} holds no PEM certificate")]
    NoCertificate(PathBuf),
    /// rustls refused the settings.
    #[error("cannot set up TLS for PostgreSQL: {0}")]
    Tls(String),
}

/// What the URL says once libpq's TLS settings are taken out of it.
struct ParsedUrl {
    config: tokio_postgres::Config,
    mode: TlsMode,
    root_cert: Option<PathBuf>,
}

fn parse(url: &str) -> Result<ParsedUrl, DatabaseConfigError> {
    let (rest, sslmode, root_cert) = take_tls_params(url);
    let mode = match sslmode {
        Some(value) => TlsMode::parse(&value)?,
        None => TlsMode::Prefer,
    };
    let mut config: tokio_postgres::Config =
        rest.parse().map_err(|error: tokio_postgres::Error| DatabaseConfigError::Url(scrub(&describe(&error), url)))?;
    config.ssl_mode(match mode {
        TlsMode::Disable => SslMode::Disable,
        TlsMode::Prefer => SslMode::Prefer,
        TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => SslMode::Require,
    });
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
    }
    Ok(ParsedUrl { config, mode, root_cert: root_cert.map(PathBuf::from) })
}

/// A database to connect to: the parsed settings and the TLS connector they
/// call for. Cheap to clone.
#[derive(Clone)]
pub struct Database {
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    mode: TlsMode,
    redacted: String,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").field("url", &self.redacted).field("tls", &self.mode).finish()
    }
}

impl Database {
    /// The database of the flags; reads the CA file.
    pub fn from_args(args: &DatabaseArgs) -> Result<Self, DatabaseConfigError> {
        Database::new(&args.database_url, args.database_ca_file.as_deref())
    }

    /// The database of a URL, trusting the CAs of `ca_file` (unless the URL
    /// names its own `sslrootcert`); reads that file.
    pub fn new(url: &str, ca_file: Option<&Path>) -> Result<Self, DatabaseConfigError> {
        let parsed = parse(url)?;
        let ca_file = parsed.root_cert.as_deref().or(ca_file);
        let tls = MakeRustlsConnect::new(tls_config(parsed.mode, ca_file)?);
        Ok(Database { config: parsed.config, tls, mode: parsed.mode, redacted: redact(url) })
    }

    /// The connection settings (for a connection pool).
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// The TLS connector (for a connection pool).
    pub fn tls(&self) -> MakeRustlsConnect {
        self.tls.clone()
    }

    /// The `sslmode` in force.
    pub fn tls_mode(&self) -> TlsMode {
        self.mode
    }

    /// The URL for showing, password replaced by `***`.
    pub fn redacted_url(&self) -> &str {
        &self.redacted
    }

    /// Opens one connection; its I/O runs in a background task.
    pub async fn connect(&self) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let (client, connection) = self.config.connect(self.tls.clone()).await?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(message = "PostgreSQL connection closed with an error.", %error);
            }
        });
        Ok(client)
    }
}

fn tls_config(mode: TlsMode, ca_file: Option<&Path>) -> Result<rustls::ClientConfig, DatabaseConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| DatabaseConfigError::Tls(error.to_string()))?;
    let roots = || -> Result<Arc<RootCertStore>, DatabaseConfigError> {
        match ca_file {
            Some(path) => load_roots(path).map(Arc::new),
            None => Ok(Arc::new(RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() })),
        }
    };
    let verifier = |roots| {
        WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|error| DatabaseConfigError::Tls(error.to_string()))
    };
    let verifier: Arc<dyn ServerCertVerifier> = match (mode, ca_file) {
        (TlsMode::VerifyFull, _) => verifier(roots()?)?,
        (TlsMode::VerifyCa, _) | (TlsMode::Require, Some(_)) => Arc::new(ChainOnly(verifier(roots()?)?)),
        (TlsMode::Disable | TlsMode::Prefer | TlsMode::Require, _) => Arc::new(EncryptOnly(provider.clone())),
    };
    Ok(builder.dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth())
}

fn load_roots(path: &Path) -> Result<RootCertStore, DatabaseConfigError> {
    let pem = std::fs::read(path).map_err(|source| DatabaseConfigError::CaFile { path: path.to_path_buf(), source })?;
    let mut roots = RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(&pem).flatten() {
        roots.add(certificate).map_err(|error| DatabaseConfigError::Tls(format!("{}: {error}", path.display())))?;
    }
    if roots.is_empty() {
        return Err(DatabaseConfigError::NoCertificate(path.to_path_buf()));
    }
    Ok(roots)
}

/// `verify-ca`: the chain must lead to a trusted CA; the name is not checked.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The chain is checked before the name, so a name error means the chain is good.
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer` and `require` without a CA: encrypted, not authenticated (as in
/// libpq). The handshake signatures are still checked.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn is_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Takes `sslmode` and `sslrootcert` out of a URL or key=value string:
/// (the rest, sslmode, sslrootcert).
fn take_tls_params(url: &str) -> (String, Option<String>, Option<String>) {
    let (mut sslmode, mut root_cert) = (None, None);
    if is_url(url) {
        let Some((base, query)) = url.split_once('?') else {
            return (url.to_string(), None, None);
        };
        let mut kept = Vec::new();
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("sslmode", value)) => sslmode = Some(percent_decode(value)),
                Some(("sslrootcert", value)) => root_cert = Some(percent_decode(value)),
                _ => kept.push(pair),
            }
        }
        let rest = if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) };
        return (rest, sslmode, root_cert);
    }
    let mut rest = url.to_string();
    for (range, key, value) in key_value_tokens(url).into_iter().rev() {
        match key {
            "sslmode" => sslmode = Some(unquote(value)),
            "sslrootcert" => root_cert = Some(unquote(value)),
            _ => continue,
        }
        rest.replace_range(range, "");
    }
    (rest, sslmode, root_cert)
}

/// The `key=value` tokens of a libpq keyword string: (byte range, key, raw value).
fn key_value_tokens(text: &str) -> Vec<(Range<usize>, &str, &str)> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let start = i;
        while i < bytes.len() && bytes[i] != b'=' && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let key_end = i;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] != b'=' {
            continue;
        }
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let value_start = i;
        if i < bytes.len() && bytes[i] == b'\'' {
            i += 1;
            while i < bytes.len() && bytes[i] != b'\'' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(bytes.len());
        } else {
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                i += 1;
            }
        }
        tokens.push((start..i, &text[start..key_end], &text[value_start..i]));
    }
    tokens
}

fn unquote(value: &str) -> String {
    let inner = value.strip_prefix('\'').map(|v| v.strip_suffix('\'').unwrap_or(v)).unwrap_or(value);
    inner.replace("\\'", "'").replace("\\\\", "\\")
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((high * 16 + low) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where the passwords are in a URL or keyword string (userinfo, a
/// `password` query parameter or keyword).
fn password_spans(url: &str) -> Vec<Range<usize>> {
    let mut spans = Vec::new();
    if let Some(scheme_end) = url.find("://").filter(|_| is_url(url)) {
        let authority_start = scheme_end + 3;
        let authority_end = url[authority_start..].find(['/', '?', '#']).map_or(url.len(), |end| authority_start + end);
        if let Some(at) = url[authority_start..authority_end].rfind('@') {
            let userinfo = authority_start..authority_start + at;
            if let Some(colon) = url[userinfo.clone()].find(':') {
                spans.push(userinfo.start + colon + 1..userinfo.end);
            }
        }
        if let Some(query_start) = url.find('?') {
            let mut offset = query_start + 1;
            for pair in url[query_start + 1..].split('&') {
                if let Some(value) = pair.strip_prefix("password=") {
                    let start = offset + "password=".len();
                    spans.push(start..start + value.len());
                }
                offset += pair.len() + 1;
            }
        }
    } else {
        for (range, key, value) in key_value_tokens(url) {
            if key == "password" {
                spans.push(range.end - value.len()..range.end);
            }
        }
    }
    spans.retain(|span| !span.is_empty());
    spans
}

/// An error with its causes, `a: b: c`: tokio-postgres says only "error
/// performing TLS handshake" and keeps the reason (an unknown issuer, a name
/// mismatch, no TLS on the server) in its source.
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

/// The URL with every password replaced by `***`, for showing.
pub fn redact(url: &str) -> String {
    let mut shown = url.to_string();
    for span in password_spans(url).into_iter().rev() {
        shown.replace_range(span, "***");
    }
    shown
}

/// `text` with every password of `url` (as written and decoded) replaced by
/// `***`: for messages that may quote parts of the URL.
pub(crate) fn scrub(text: &str, url: &str) -> String {
    let mut scrubbed = text.to_string();
    for span in password_spans(url) {
        let raw = &url[span];
        for secret in [raw.to_string(), percent_decode(raw), unquote(raw)] {
            if !secret.is_empty() {
                scrubbed = scrubbed.replace(&secret, "***");
            }
        }
    }
    scrubbed
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        database: DatabaseArgs,
    }

    #[test]
    fn redaction_hides_the_password_of_every_form() {
        assert_eq!(redact("postgres://writer:s3cret@db:5432/orders"), "postgres://writer:***@db:5432/orders");
        assert_eq!(redact("postgresql://w:p%40ss@db/o?sslmode=require"), "postgresql://w:***@db/o?sslmode=require");
        assert_eq!(
            redact("postgres://w@db/o?password=s3cret&sslmode=require"),
            "postgres://w@db/o?password=***&sslmode=require"
        );
        assert_eq!(redact("host=db user=w password='s3 cret' dbname=o"), "host=db user=w password=*** dbname=o");
        assert_eq!(redact("postgres://orderstream@127.0.0.1:5433/orderstream"), DEFAULT_DATABASE_URL);
    }

    #[test]
    fn debug_of_the_flags_shows_the_url_without_its_password() {
        let cli = Cli::try_parse_from(["x", "--database-url", "postgres://writer:s3cret@db/orders"]).unwrap();
        let shown = format!("{cli:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("writer:***@db"), "{shown}");
        let database = Database::from_args(&cli.database).unwrap();
        assert!(!format!("{database:?}").contains("s3cret"));
    }

    #[test]
    fn scrub_removes_the_password_from_any_message() {
        let url = "postgres://w:p%40ss@db/o";
        assert_eq!(scrub("bad p%40ss and p@ss", url), "bad *** and ***");
    }

    #[test]
    fn sslmode_and_root_cert_are_taken_out_of_the_url() {
        let (rest, mode, root) =
            take_tls_params("postgres://w@db/o?sslmode=verify-full&sslrootcert=%2Fca.pem&application_name=x");
        assert_eq!(rest, "postgres://w@db/o?application_name=x");
        assert_eq!(mode.as_deref(), Some("verify-full"));
        assert_eq!(root.as_deref(), Some("/ca.pem"));
        let (rest, mode, root) = take_tls_params("host=db sslmode=verify-ca user=w sslrootcert='/c a.pem'");
        assert_eq!(rest.split_whitespace().collect::<Vec<_>>(), ["host=db", "user=w"]);
        assert_eq!(mode.as_deref(), Some("verify-ca"));
        assert_eq!(root.as_deref(), Some("/c a.pem"));
    }

    #[test]
    fn every_libpq_sslmode_is_understood() {
        for (value, mode) in [
            ("disable", TlsMode::Disable),
            ("allow", TlsMode::Prefer),
            ("prefer", TlsMode::Prefer),
            ("require", TlsMode::Require),
            ("verify-ca", TlsMode::VerifyCa),
            ("verify-full", TlsMode::VerifyFull),
        ] {
            let database = Database::new(&format!("postgres://w@db/o?sslmode={value}"), None).unwrap();
            assert_eq!(database.tls_mode(), mode, "{value}");
        }
        assert_eq!(Database::new("postgres://w@db/o", None).unwrap().tls_mode(), TlsMode::Prefer);
        let error = Database::new("postgres://w:s3cret@db/o?sslmode=always", None).unwrap_err().to_string();
        assert!(error.contains("sslmode `always`"), "{error}");
        assert!(!error.contains("s3cret"));
    }

    #[test]
    fn a_malformed_url_is_refused_without_its_password() {
        let args = DatabaseArgs { database_url: "postgres://w:s3cret@db:notaport/o".into(), database_ca_file: None };
        let error = args.validate().unwrap_err().to_string();
        assert!(error.contains("--database-url"), "{error}");
        assert!(!error.contains("s3cret"), "{error}");
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_refused() {
        let error =
            Database::new("postgres://w@db/o?sslmode=verify-full", Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
        assert!(matches!(error, DatabaseConfigError::CaFile { .. }), "{error}");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("ca.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let error = Database::new("postgres://w@db/o?sslmode=verify-full", Some(&empty)).unwrap_err();
        assert!(matches!(error, DatabaseConfigError::NoCertificate(_)), "{error}");
    }
}
