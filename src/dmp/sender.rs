//! The background sender: claims due events from the outbox, POSTs each with HTTP Basic, and
//! settles it by the answer. 204 (and 429, "already processed") is delivered; 400, 401, 501 and
//! any other refusal retrying cannot fix is failed, parked with the reason; 5xx, 408, timeouts
//! and refused connections are retried later, the delay doubling from `retry_secs` up to
//! `max_retry_secs`, with jitter. The state lives in the database, so retries survive restarts
//! and several processes can share the work (see `store::outbox`).

use std::time::Duration;

use chrono::Utc;
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::Error;
use crate::store::outbox::{self, Settlement};
use crate::store::writer::Writer;

/// How often the sender looks for due events when there were none.
const POLL: Duration = Duration::from_secs(1);
/// Events claimed at once.
const BATCH: u64 = 16;

/// What an answer (or its absence) means for the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Delivered { note: Option<String> },
    Failed { reason: String },
    Retry { reason: String },
}

/// The meaning of the DMP's HTTP status, as its documentation gives it.
pub fn classify(status: u16) -> Delivery {
    match status {
        200..=299 => Delivery::Delivered { note: None },
        429 => Delivery::Delivered {
            note: Some("429: already processed by the DMP".into()),
        },
        400 => Delivery::Failed {
            reason: "400: the DMP refused the data".into(),
        },
        401 => Delivery::Failed {
            reason: "401: the DMP refused the credentials (NEXKEY_DMP_USER/PASSWORD)".into(),
        },
        501 => Delivery::Failed {
            reason: "501: the DMP does not implement this action".into(),
        },
        408 | 500..=599 => Delivery::Retry {
            reason: format!("{status}: the DMP is unavailable"),
        },
        other => Delivery::Failed {
            reason: format!("{other}: unexpected answer from the DMP"),
        },
    }
}

/// The delay before the next attempt after `attempts` failed ones: `base` doubled per attempt,
/// at most `cap`, then spread by ±20% (`jitter` in [0, 1)) so that events that failed together
/// do not come back together; never above `cap`.
pub fn retry_delay(attempts: i32, base: Duration, cap: Duration, jitter: f64) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let plain = base.saturating_mul(1 << doublings).min(cap);
    plain.mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0)).min(cap)
}

/// The DMP's event endpoint and how deliveries to it are paced.
pub struct Endpoint {
    /// e.g. `https://api.nexway.store/event`.
    pub url: String,
    /// HTTP Basic credentials Nexway gave the publisher.
    pub user: String,
    pub password: SecretString,
    /// Delay before the first retry of an undelivered event; each retry waits twice as long,
    /// up to `max_retry`, with jitter.
    pub retry: Duration,
    pub max_retry: Duration,
    /// How long one delivery attempt may take (connect, send, answer).
    pub timeout: Duration,
}

struct Sender {
    /// Claims and settlements take their turn with the calls' writes.
    writer: Writer,
    client: reqwest::Client,
    url: String,
    user: String,
    password: SecretString,
    base: Duration,
    cap: Duration,
    /// How long a claim holds a row: an attempt's timeout and a margin.
    lease: Duration,
}

/// Starts the sender when reporting is configured; it stops when `shutdown` turns true, after
/// settling the attempt in flight (bounded by the attempt's timeout).
pub fn spawn(
    endpoint: Option<Endpoint>,
    writer: Writer,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Option<JoinHandle<()>>> {
    let Some(Endpoint {
        url,
        user,
        password,
        retry,
        max_retry,
        timeout,
    }) = endpoint
    else {
        return Ok(None);
    };
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("nexkey/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let sender = Sender {
        writer,
        client,
        url,
        user,
        password,
        base: retry,
        cap: max_retry,
        lease: timeout * 2 + Duration::from_secs(30),
    };
    Ok(Some(tokio::spawn(sender.run(shutdown))))
}

impl Sender {
    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        tracing::info!("DMP sender started");
        crate::metrics::dmp_states_known();
        while !*shutdown.borrow() {
            let busy = match self.pass(&shutdown).await {
                Ok(sent) => sent > 0,
                Err(error) => {
                    tracing::warn!(%error, "DMP sender cannot read the outbox");
                    false
                }
            };
            if let Ok(counts) = outbox::count_by_state(self.writer.db()).await {
                crate::metrics::dmp_events(&counts);
            }
            if busy {
                continue;
            }
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                _ = shutdown.changed() => {}
            }
        }
        tracing::info!("DMP sender stopped");
    }

    /// Claims a batch of due events and attempts each; returns how many were attempted.
    async fn pass(&self, shutdown: &watch::Receiver<bool>) -> Result<usize, Error> {
        let token = uuid::Uuid::new_v4().to_string();
        let now = Utc::now();
        let lease_end = now + self.lease;
        let claim = token.clone();
        let claimed = self
            .writer
            .run(move |txn| {
                Box::pin(async move {
                    Ok::<_, Error>(outbox::claim_due(txn, now, lease_end, &claim, BATCH).await?)
                })
            })
            .await?;
        let count = claimed.len();
        for event in claimed {
            if *shutdown.borrow() {
                // Not attempted: back in line at once for the next start (or another process).
                let (id, token) = (event.id, token.clone());
                self.writer
                    .run(move |txn| {
                        Box::pin(async move {
                            Ok::<_, Error>(outbox::release(txn, id, &token, Utc::now()).await?)
                        })
                    })
                    .await?;
                continue;
            }
            let delivery = self.attempt(&event.payload).await;
            let settlement = match delivery {
                Delivery::Delivered { note } => {
                    tracing::info!(
                        event = event.id,
                        attempts = event.attempts,
                        "DMP event delivered"
                    );
                    crate::metrics::dmp_attempt("delivered");
                    Settlement::Delivered { note }
                }
                Delivery::Failed { reason } => {
                    tracing::warn!(event = event.id, %reason, "DMP event refused: parked as failed");
                    crate::metrics::dmp_attempt("failed");
                    Settlement::Failed { reason }
                }
                Delivery::Retry { reason } => {
                    let jitter = rand::rng().random::<f64>();
                    let delay = retry_delay(event.attempts, self.base, self.cap, jitter);
                    tracing::info!(event = event.id, %reason, retry_in_secs = delay.as_secs_f64(), "DMP event not delivered: will retry");
                    crate::metrics::dmp_attempt("retried");
                    let at = Utc::now()
                        + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
                    Settlement::RetryAt { at, reason }
                }
            };
            let (id, token) = (event.id, token.clone());
            let settled = self
                .writer
                .run(move |txn| {
                    Box::pin(async move {
                        let now = Utc::now();
                        Ok::<_, Error>(outbox::settle(txn, id, &token, &settlement, now).await?)
                    })
                })
                .await?;
            if !settled {
                tracing::warn!(
                    event = event.id,
                    "DMP event claim lost before it was settled"
                );
            }
        }
        Ok(count)
    }

    /// One POST of the stored payload.
    async fn attempt(&self, payload: &str) -> Delivery {
        let sent = self
            .client
            .post(&self.url)
            .basic_auth(&self.user, Some(self.password.expose_secret()))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(payload.to_owned())
            .send()
            .await;
        match sent {
            Ok(response) => classify(response.status().as_u16()),
            Err(error) => Delivery::Retry {
                reason: transport_reason(error),
            },
        }
    }
}

/// A short reason for a failed exchange, without the URL (it may carry credentials).
fn transport_reason(error: reqwest::Error) -> String {
    if error.is_timeout() {
        "timeout: no answer from the DMP in time".into()
    } else if error.is_connect() {
        "connection failed: the DMP could not be reached".into()
    } else {
        format!("transport error: {}", error.without_url())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_mean_what_the_dmp_documents() {
        assert_eq!(classify(204), Delivery::Delivered { note: None });
        assert!(matches!(
            classify(429),
            Delivery::Delivered { note: Some(_) }
        ));
        for refused in [400, 401, 501, 403, 404, 301] {
            assert!(
                matches!(classify(refused), Delivery::Failed { .. }),
                "{refused}"
            );
        }
        for later in [500, 502, 503, 504, 408] {
            assert!(matches!(classify(later), Delivery::Retry { .. }), "{later}");
        }
    }

    #[test]
    fn the_delay_doubles_within_the_jitter_up_to_the_cap() {
        let base = Duration::from_secs(30);
        let cap = Duration::from_secs(3600);
        let middle = |attempts| retry_delay(attempts, base, cap, 0.5);
        assert_eq!(middle(1), Duration::from_secs(30));
        assert_eq!(middle(2), Duration::from_secs(60));
        assert_eq!(middle(3), Duration::from_secs(120));
        assert_eq!(middle(20), cap);
        assert_eq!(middle(i32::MAX), cap);
        assert_eq!(retry_delay(1, base, cap, 0.0), Duration::from_secs(24));
        assert_eq!(retry_delay(1, base, cap, 0.999_999).as_secs(), 35);
        assert_eq!(retry_delay(30, base, cap, 0.999), cap);
    }
}
