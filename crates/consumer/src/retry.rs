//! Transient failures are retried, never skipped: the same batch again,
//! with capped exponential backoff and jitter, consumption paused meanwhile.

use std::future::Future;
use std::time::Duration;

use telemetry::Readiness;
use tokio_util::sync::CancellationToken;

use crate::apply::ApplyError;
use crate::error::ConsumerError;
use crate::events::{DatabaseUnavailable, DeadLetterProducerFailed, DeadLetterTopicUnwritable};
use crate::metrics::Metrics;
use crate::status::StatusBoard;

/// Longest pause between two tries of a transient failure.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Retries `attempt` while it fails transiently, with capped exponential
/// backoff and jitter; consumption pauses meanwhile (nothing is read). Never
/// skips: the same batch is tried again. `Ok(None)` if shutdown came first.
pub(crate) async fn retry_transient<T, F, Fut>(
    what: &str,
    stop: &CancellationToken,
    metrics: &Metrics,
    readiness: &Readiness,
    status: &StatusBoard,
    mut attempt: F,
) -> Result<Option<T>, ConsumerError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ApplyError>>,
{
    let mut backoff = Duration::from_millis(100);
    loop {
        match attempt().await {
            Ok(value) => {
                if backoff > Duration::from_millis(100) {
                    readiness.ready();
                }
                return Ok(Some(value));
            }
            Err(error) if error.is_transient() => {
                status.last_error.set(&format!("{what}: {}", clients::postgres::describe(&error)));
                readiness.not_ready(error.unavailable());
                let retry_in = backoff.mul_f64(0.5 + fastrand::f64());
                match &error {
                    ApplyError::DeadLetterTopic(_) => DeadLetterTopicUnwritable {
                        operation: what,
                        error: &clients::postgres::describe(&error),
                        retry_in,
                    }
                    .emit(metrics),
                    ApplyError::Database(_) => {
                        DatabaseUnavailable { operation: what, error: &clients::postgres::describe(&error), retry_in }
                            .emit(metrics)
                    }
                    ApplyError::DeadLetterProducerFatal { .. } => {}
                }
                tokio::select! {
                    () = stop.cancelled() => return Ok(None),
                    () = tokio::time::sleep(retry_in) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(error @ ApplyError::DeadLetterProducerFatal { .. }) => {
                readiness.not_ready(error.unavailable());
                status.last_error.set(&format!("{what}: {}", clients::postgres::describe(&error)));
                DeadLetterProducerFailed { operation: what, error: &clients::postgres::describe(&error) }.emit();
                return Err(ConsumerError::DeadLetterProducer(error));
            }
            Err(error) => {
                readiness.not_ready("batch refused; exiting");
                status.last_error.set(&format!("{what}: {}", clients::postgres::describe(&error)));
                return Err(ConsumerError::Write(error));
            }
        }
    }
}
