//! What the operations side uses: liveness and readiness probes, Prometheus metrics.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use poem::Request;
use poem_openapi::payload::{Json, PlainText};
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::{ErrorCode, HttpError, REALM_METRICS, RETRY_STORAGE};
use super::{ErrorBody, ErrorDetail};
use crate::error::Error;
use crate::store::writer::Writer;

#[derive(Tags)]
enum OpsTags {
    /// Probes and metrics for orchestrators and monitoring; not for Nexway.
    Operations,
}

/// The token `GET /metrics` requires, if any (request data, set by the app).
#[derive(Clone, Default)]
pub struct MetricsToken(pub Option<SecretString>);

impl MetricsToken {
    /// Whether the `Authorization` header carries the token; compared in constant time over
    /// digests, so neither the content nor the length of the token leaks.
    fn admits(&self, authorization: Option<&str>) -> bool {
        let Some(token) = &self.0 else {
            return true;
        };
        let Some(given) = authorization.and_then(|value| value.strip_prefix("Bearer ")) else {
            return false;
        };
        let expected = Sha256::digest(token.expose_secret().as_bytes());
        let given = Sha256::digest(given.trim().as_bytes());
        expected.ct_eq(&given).into()
    }
}

#[derive(Debug, Object)]
pub struct HealthStatus {
    /// Always `ok` in a 200 answer.
    pub status: String,
}

#[derive(ApiResponse)]
pub enum LiveResponse {
    /// The process is up and answering.
    #[oai(status = 200)]
    Ok(Json<HealthStatus>),
}

#[derive(ApiResponse)]
pub enum ReadyResponse {
    /// The database answers and its schema is current: send traffic.
    #[oai(status = 200)]
    Ok(Json<HealthStatus>),
    /// STORAGE_UNAVAILABLE: the database does not answer, or migrations are pending.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>, #[oai(header = "Retry-After")] u32),
}

#[derive(ApiResponse)]
pub enum MetricsResponse {
    /// The metrics in the Prometheus text exposition format.
    #[oai(status = 200)]
    Ok(PlainText<String>),
    /// UNAUTHORIZED: a metrics token is configured and the bearer token is missing or wrong.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>, #[oai(header = "WWW-Authenticate")] String),
}

/// How long a storage fault with no commit since keeps readiness red.
const STORAGE_FAULT_WINDOW: Duration = Duration::from_secs(10);

/// How long readiness waits for the database before calling it unavailable.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub struct OpsApi {
    /// The readiness probe's write takes its turn with the calls' writes.
    writer: Writer,
}

/// Why readiness could not be checked.
enum Unchecked {
    Schema(sea_orm::DbErr),
    Write,
}

impl OpsApi {
    pub fn new(writer: Writer) -> Self {
        OpsApi { writer }
    }

    /// None when ready, else why not. Ready means the schema is current and the database
    /// accepts and commits a write (a full disk or a read-only file is not ready).
    async fn not_ready(&self) -> Option<String> {
        if crate::store::fault::failing_within(STORAGE_FAULT_WINDOW) {
            return Some(
                "the database failed moments ago (disk full, read-only, connection lost: see the \
                 log) and no call has committed since"
                    .into(),
            );
        }
        let check = async {
            let pending = Migrator::get_pending_migrations_read_only(self.writer.db())
                .await
                .map_err(Unchecked::Schema)?;
            if pending.is_empty() {
                // Error's conversion logs and counts the fault.
                self.writer
                    .run(|txn| {
                        Box::pin(async move {
                            Ok::<_, Error>(crate::store::db::accepts_writes(txn).await?)
                        })
                    })
                    .await
                    .map_err(|_| Unchecked::Write)?;
            }
            Ok(pending)
        };
        match tokio::time::timeout(READY_TIMEOUT, check).await {
            Ok(Ok(pending)) if pending.is_empty() => None,
            Ok(Ok(pending)) => Some(format!(
                "{} database migration(s) pending: run `nexkey migrate up`",
                pending.len()
            )),
            // sea-orm-migration's word for applied migrations this binary does not know.
            Ok(Err(Unchecked::Schema(sea_orm::DbErr::Custom(error)))) => {
                tracing::warn!(%error, "readiness: unknown migrations applied");
                Some(
                    "the database schema is newer than this nexkey (unknown migrations applied)"
                        .into(),
                )
            }
            Ok(Err(Unchecked::Write)) => Some("the database does not accept writes".into()),
            Ok(Err(Unchecked::Schema(error))) => {
                let fault = crate::store::fault::classify(&error);
                tracing::warn!(%error, fault = fault.label(), "readiness: the database refused a write");
                crate::metrics::database_error(fault.label());
                Some("the database does not accept writes".into())
            }
            Err(_) => {
                tracing::warn!("readiness: the database did not answer in time");
                crate::metrics::database_error(crate::store::fault::Fault::Contention.label());
                Some("the database did not answer in time".into())
            }
        }
    }
}

fn unavailable(message: String) -> ReadyResponse {
    ReadyResponse::Unavailable(
        Json(ErrorBody {
            error: ErrorDetail {
                code: ErrorCode::StorageUnavailable,
                message,
            },
        }),
        RETRY_STORAGE,
    )
}

#[OpenApi(tag = "OpsTags::Operations")]
impl OpsApi {
    /// Liveness probe
    ///
    /// 200 while the process answers HTTP at all; touches nothing. Unauthenticated, not logged.
    #[oai(path = "/health/live", method = "get", operation_id = "healthLive")]
    async fn live(&self) -> LiveResponse {
        LiveResponse::Ok(Json(HealthStatus {
            status: "ok".into(),
        }))
    }

    /// Readiness probe
    ///
    /// 200 when no migration is pending and the database accepts and commits a write (within
    /// 2 s); else 503
    /// `STORAGE_UNAVAILABLE` with `Retry-After`. Unauthenticated, not logged.
    #[oai(path = "/health/ready", method = "get", operation_id = "healthReady")]
    async fn ready(&self) -> ReadyResponse {
        match self.not_ready().await {
            None => ReadyResponse::Ok(Json(HealthStatus {
                status: "ok".into(),
            })),
            Some(reason) => unavailable(reason),
        }
    }

    /// Prometheus metrics
    ///
    /// Requests by operation and status, latency histograms, codes issued by product and
    /// generator, idempotent replays, refused calls by error code, database errors, pool stock.
    /// When `NEXKEY_METRICS_TOKEN` is set, send it as `Authorization: Bearer <token>`.
    #[oai(path = "/metrics", method = "get", operation_id = "metrics")]
    async fn metrics(&self, request: &Request) -> MetricsResponse {
        let token = request.data::<MetricsToken>().cloned().unwrap_or_default();
        let authorization = request
            .headers()
            .get(poem::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok());
        if !token.admits(authorization) {
            return MetricsResponse::Unauthorized(
                Json(ErrorBody::from(&HttpError::Unauthorized)),
                REALM_METRICS.into(),
            );
        }
        MetricsResponse::Ok(PlainText(crate::metrics::metrics().render()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metrics_token_is_required_only_when_configured() {
        let open = MetricsToken(None);
        assert!(open.admits(None));
        let closed = MetricsToken(Some("scrape-token-0123456789".to_string().into()));
        assert!(closed.admits(Some("Bearer scrape-token-0123456789")));
        assert!(!closed.admits(None));
        assert!(!closed.admits(Some("Bearer scrape-token-012345678")));
        assert!(!closed.admits(Some("Basic scrape-token-0123456789")));
    }
}
