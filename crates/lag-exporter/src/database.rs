//! What the exporter reads from PostgreSQL: the data's freshness and the
//! dead letters still waiting for someone. One connection and two bounded
//! queries per measurement, both through views the read-only analyst role
//! may read.

use clients::Database;

/// Dead letters of one stage and reason that are neither redriven nor
/// resolved: they need a person, however long ago they came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingDeadLetters {
    /// Who dead-lettered them: `producer` (bad CSV lines) or `consumer`.
    pub stage: String,
    /// Why, from the known set of reasons (so the label stays bounded).
    pub reason: String,
    /// How many.
    pub count: i64,
}

/// One reading of PostgreSQL.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DatabaseReading {
    /// Seconds since the newest committed order was read; `None` while the
    /// table is empty or not created yet.
    pub freshness_seconds: Option<f64>,
    /// Pending dead letters by stage and reason; `None` before the migration
    /// that gave dead letters a stage and a resolution (nothing to say yet).
    pub pending_dead_letters: Option<Vec<PendingDeadLetters>>,
}

/// Reads freshness and pending dead letters over one connection.
pub async fn read(database: &Database) -> Result<DatabaseReading, tokio_postgres::Error> {
    let client = database.connect().await?;
    Ok(DatabaseReading {
        freshness_seconds: freshness(&client).await?,
        pending_dead_letters: pending_dead_letters(&client).await?,
    })
}

/// Reads the `pipeline_freshness` view (which the read-only analyst role
/// may), or `orders` before that view existed.
async fn freshness(client: &tokio_postgres::Client) -> Result<Option<f64>, tokio_postgres::Error> {
    let source: Option<String> = client
        .query_one(
            "SELECT CASE WHEN to_regclass('pipeline_freshness') IS NOT NULL THEN 'view'
                         WHEN to_regclass('orders') IS NOT NULL THEN 'table' END",
            &[],
        )
        .await?
        .get(0);
    let sql = match source.as_deref() {
        Some("view") => "SELECT EXTRACT(EPOCH FROM clock_timestamp() - newest_read_at)::float8 FROM pipeline_freshness",
        Some(_) => "SELECT EXTRACT(EPOCH FROM clock_timestamp() - max(read_at))::float8 FROM orders",
        None => return Ok(None),
    };
    Ok(client.query_one(sql, &[]).await?.get(0))
}

/// "Pending" as `make status` and `dead-letters list` mean it: neither
/// redriven nor resolved. Grouped by stage and reason, so the answer has at
/// most a row per known reason, however many dead letters there are; the
/// view is the one the analyst role may read.
async fn pending_dead_letters(
    client: &tokio_postgres::Client,
) -> Result<Option<Vec<PendingDeadLetters>>, tokio_postgres::Error> {
    let resolvable: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM information_schema.columns
                            WHERE table_schema = current_schema() AND table_name = 'analysis_dead_letters'
                              AND column_name = 'resolved_at')",
            &[],
        )
        .await?
        .get(0);
    if !resolvable {
        return Ok(None);
    }
    let rows = client
        .query(
            "SELECT stage, reason, count(*) FROM analysis_dead_letters
             WHERE redriven_at IS NULL AND resolved_at IS NULL GROUP BY stage, reason",
            &[],
        )
        .await?;
    let pending = rows
        .iter()
        .map(|row| PendingDeadLetters { stage: row.get(0), reason: row.get(1), count: row.get(2) })
        .collect();
    Ok(Some(pending))
}
