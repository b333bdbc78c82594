//! Scenarios on services the caller names (not the shared test services of
//! `ORDERSTREAM_TEST_*`): the bench runs the pipeline on its own PostgreSQL
//! and Kafka, started and wiped for each run.

use tokio_postgres::NoTls;

use crate::Scenario;

impl Scenario {
    /// Creates the database and topics of a new scenario on the PostgreSQL
    /// cluster of `admin_url` (a role allowed to create databases) and the
    /// Kafka of `brokers`.
    pub async fn on_services(name: &str, admin_url: &str, brokers: &str) -> Scenario {
        Scenario::create(name, admin_url, brokers).await
    }

    /// Like [`Scenario::on_services`], with topics replicated `replication`
    /// times (`min.insync.replicas` 2 from 2 on): the bench's run on a Kafka
    /// cluster.
    pub async fn on_replicated_services(name: &str, admin_url: &str, brokers: &str, replication: i32) -> Scenario {
        Scenario::create_replicated(name, admin_url, brokers, replication).await
    }

    /// Drops this scenario's database (through `admin_url`), once its
    /// processes are stopped: a large run's rows need not stay on disk.
    pub async fn drop_database(&self, admin_url: &str) -> Result<(), tokio_postgres::Error> {
        let (admin, connection) = tokio_postgres::connect(admin_url, NoTls).await?;
        tokio::spawn(connection);
        let database = self.database_url.rsplit_once('/').map_or("", |(_, name)| name);
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)")).await
    }
}
