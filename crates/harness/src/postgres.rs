//! A private, throw-away PostgreSQL cluster for tests that stop or kill the
//! database: the shared test cluster must never go down under other tests.
//!
//! Started with `scripts/postgres.sh` in a temporary folder on a free port,
//! stopped when dropped.

use std::path::{Path, PathBuf};

use crate::service_scripts::{Output, PostgresService, ScriptError};

/// A running private cluster.
pub struct PrivatePostgres {
    /// Holds the cluster's data; deleted on drop.
    dir: tempfile::TempDir,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().unwrap().port()
}

impl PrivatePostgres {
    /// Creates and starts a new cluster (initdb takes a few seconds).
    pub fn start() -> PrivatePostgres {
        let dir = tempfile::Builder::new().prefix("orderstream-pg-").tempdir().unwrap();
        // As root the server runs as `postgres`, which must traverse the folder.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let cluster = PrivatePostgres { dir, port: free_port() };
        cluster.start_again();
        cluster
    }

    fn cluster_dir(&self) -> PathBuf {
        self.dir.path().join("pg")
    }

    fn script(&self, command: &str) -> Result<std::process::Output, ScriptError> {
        PostgresService { dir: self.cluster_dir(), port: self.port }.call(command).run(Output::Capture)
    }

    /// Starts the (stopped) cluster again and waits until it accepts connections.
    pub fn start_again(&self) {
        if let Err(error) = self.script("start") {
            panic!("private PostgreSQL did not start: {error}");
        }
    }

    /// Stops the cluster (fast shutdown: open connections are cut).
    pub fn stop(&self) {
        if let Err(error) = self.script("stop") {
            panic!("private PostgreSQL did not stop: {error}");
        }
    }

    /// Turns TLS on (`ssl = on` with this certificate and key, PEM), then
    /// restarts the cluster. Plain connections are still accepted: the
    /// client's `sslmode` decides.
    pub fn enable_tls(&self, certificate: &Path, key: &Path) {
        let data = self.cluster_dir().join("data");
        for (from, name) in [(certificate, "server.crt"), (key, "server.key")] {
            let to = data.join(name);
            std::fs::copy(from, &to).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::{MetadataExt, PermissionsExt};
                std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).unwrap();
                // The server refuses a key that its own user does not own.
                let owner = std::fs::metadata(data.join("PG_VERSION")).unwrap();
                std::os::unix::fs::chown(&to, Some(owner.uid()), Some(owner.gid())).unwrap();
            }
        }
        std::fs::write(data.join("tls.conf"), "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n")
            .unwrap();
        let conf = data.join("postgresql.conf");
        let mut settings = std::fs::read_to_string(&conf).unwrap();
        if !settings.contains("'tls.conf'") {
            settings.push_str("include_if_exists = 'tls.conf'\n");
            std::fs::write(&conf, settings).unwrap();
        }
        self.stop();
        self.start_again();
    }

    /// A URL of a role allowed to create databases, for [`crate::Scenario::new_on`].
    pub fn admin_url(&self) -> String {
        format!("postgres://orderstream@127.0.0.1:{}/orderstream", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.script("stop");
    }
}
