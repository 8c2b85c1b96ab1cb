//! The one way a write transaction runs: [`Writer::run`], whose result leaves only after the
//! commit that stored it.
//!
//! PostgreSQL and MariaDB/MySQL run each write as its own transaction on the pool: their servers
//! already share one WAL flush between concurrent commits, and one life's calls take its lock.
//!
//! SQLite has one writer at a time and an fsync per commit (`synchronous = FULL`), so a
//! transaction per call caps the calls at the commits the disk makes (about 1 000 a second here)
//! and queues every other writer on SQLite's busy handler, which sleeps. Instead, writes go to
//! one writer task that owns the write lock (`BEGIN IMMEDIATE`) for a batch: it applies the
//! writes waiting in turn, each inside its own savepoint (a write that fails is rolled back to
//! it, alone), and commits them together: group commit. Every write of the batch is answered
//! after that commit, or with its own failure. When the commit fails, or the transaction is lost
//! under the batch (SQLite rolls it back by itself after some storage faults), nothing of the
//! batch is stored and each write of it gets the failure (503 for a storage fault: retry).
//! Applied in turn on one connection, each write sees the writes before it, committed or not,
//! so it ends as it would have committed alone after them.

use std::any::Any;
use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use futures::future::BoxFuture;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use tokio::sync::{mpsc, oneshot};

use super::fault;
use crate::error::Error;

/// Writes applied under one commit at most. Bounds how long the write lock is held (other
/// processes' writers wait that long) and how many calls a failed commit turns into 503s; 16
/// and 64 gave the same throughput here (BENCHMARKS.md).
const BATCH: usize = 16;

/// Writes waiting for the writer at most; past that a write is answered "unavailable, retry".
const QUEUE: usize = 4096;

/// Runs write transactions: see the module's documentation. Clones share one writer task,
/// which ends with the last clone.
#[derive(Clone)]
pub struct Writer {
    db: DatabaseConnection,
    /// How long a write may wait for its turn before it is answered "retry later".
    wait: Duration,
    /// SQLite's writer task, started by the first write (and again should it ever stop).
    queue: Arc<Mutex<Option<mpsc::Sender<Job>>>>,
}

/// A write handed to the writer task.
struct Job {
    queued: Instant,
    work: Work,
    reply: oneshot::Sender<Result<Done, Error>>,
}

/// A write's work, its result typed away.
type Work = Box<dyn for<'t> FnOnce(&'t DatabaseTransaction) -> BoxFuture<'t, Done> + Send>;

/// What a write returned (its caller's `Result<T, E>`), and whether its changes stay.
struct Done {
    kept: bool,
    result: Box<dyn Any + Send>,
}

impl Writer {
    /// Writes to `db`; each waits for its turn at most `wait`.
    pub fn new(db: DatabaseConnection, wait: Duration) -> Self {
        Writer {
            db,
            wait,
            queue: Arc::default(),
        }
    }

    /// The database written to, for reads outside a write.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Runs `work` in a write transaction and returns its result once its changes are committed.
    /// When `work` fails its changes are rolled back and its error returned; when the commit
    /// fails, the commit's error is. On SQLite the work runs to its end even if the caller stops
    /// waiting (its retry then finds it done).
    pub async fn run<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: for<'t> FnOnce(&'t DatabaseTransaction) -> BoxFuture<'t, Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<Error> + Send + 'static,
    {
        if self.db.get_database_backend() != DbBackend::Sqlite {
            return self.run_alone(work).await;
        }
        let (reply, answer) = oneshot::channel();
        let job = Job {
            queued: Instant::now(),
            work: Box::new(move |txn| {
                Box::pin(async move {
                    let result = work(txn).await;
                    Done {
                        kept: result.is_ok(),
                        result: Box::new(result),
                    }
                })
            }),
            reply,
        };
        match self.queue().try_send(job) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!("the database writer's queue is full, answering 503");
                return Err(Error::StorageUnavailable.into());
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::error!("the database writer stopped; it restarts with the next write");
                return Err(Error::StorageUnavailable.into());
            }
        }
        let done = answer.await.map_err(|_| Error::Internal)??;
        *done
            .result
            .downcast::<Result<T, E>>()
            .expect("the writer hands back what the work returned")
    }

    /// One transaction of its own, on the pool.
    async fn run_alone<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: for<'t> FnOnce(&'t DatabaseTransaction) -> BoxFuture<'t, Result<T, E>>,
        E: From<Error>,
    {
        let txn = self.db.begin().await.map_err(Error::from)?;
        match work(&txn).await {
            Ok(value) => {
                txn.commit().await.map_err(Error::from)?;
                Ok(value)
            }
            Err(error) => {
                // Ended here, so the connection goes back to the pool clean (a rollback that
                // fails leaves it to be closed, see `db::hygiene`).
                let _ = txn.rollback().await;
                Err(error)
            }
        }
    }

    /// The writer task's queue, starting the task when there is none (or it stopped).
    fn queue(&self) -> mpsc::Sender<Job> {
        let mut queue = self
            .queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match queue.as_ref() {
            Some(sender) if !sender.is_closed() => sender.clone(),
            _ => {
                let (sender, jobs) = mpsc::channel(QUEUE);
                tokio::spawn(write_batches(self.db.clone(), jobs, self.wait));
                *queue = Some(sender.clone());
                sender
            }
        }
    }
}

/// SQLite's writer task: one batch at a time, until every sender is gone.
async fn write_batches(db: DatabaseConnection, mut jobs: mpsc::Receiver<Job>, wait: Duration) {
    let mut waiting = VecDeque::new();
    loop {
        if waiting.is_empty() {
            match jobs.recv().await {
                Some(job) => waiting.push_back(job),
                None => return,
            }
        }
        let (expired, fresh) = waiting
            .drain(..)
            .partition::<Vec<_>, _>(|job| job.queued.elapsed() > wait);
        expired.into_iter().for_each(expire);
        waiting.extend(fresh);
        if waiting.is_empty() {
            continue;
        }
        let txn = match begin(&db).await {
            Ok(txn) => txn,
            Err(error) => {
                // The write lock stayed out of reach for a whole lock wait: every write queued by
                // now is answered with it, rather than each after a lock wait of its own.
                let error = Error::from(error);
                while let Ok(job) = jobs.try_recv() {
                    waiting.push_back(job);
                }
                for job in waiting.drain(..) {
                    let _ = job.reply.send(Err(error.clone()));
                }
                continue;
            }
        };
        let mut applied = Vec::new();
        let mut aborted = false;
        while !aborted && applied.len() < BATCH {
            let Some(job) = waiting.pop_front().or_else(|| jobs.try_recv().ok()) else {
                break;
            };
            if job.queued.elapsed() > wait {
                expire(job);
                continue;
            }
            match apply(&txn, job.work).await {
                Ok(Some(done)) => applied.push((job.reply, done)),
                Ok(None) => {
                    let _ = job.reply.send(Err(Error::Internal));
                }
                Err(error) => {
                    let _ = job.reply.send(Err(error));
                    aborted = true;
                }
            }
        }
        let outcome = if aborted {
            // Nothing of the batch stays; the others' writes were sound, a retry will do.
            let _ = txn.rollback().await;
            Err(Error::StorageUnavailable)
        } else {
            txn.commit().await.map_err(Error::from)
        };
        for (reply, done) in applied {
            let _ = reply.send(outcome.clone().map(|()| done));
        }
    }
}

/// Takes the write lock (`BEGIN IMMEDIATE`, waiting up to SQLite's busy timeout) and sets the
/// first savepoint. The savepoint marks where the next write starts; COMMIT keeps what the last
/// one did.
async fn begin(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    let immediate = TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    };
    let txn = db.begin_with_options(immediate).await?;
    txn.execute_unprepared("SAVEPOINT write").await?;
    Ok(txn)
}

/// Applies one write after the savepoint, and moves the savepoint past it (or returns to it
/// when the write failed or panicked): one statement besides the write's own. None when the
/// write panicked (a bug: 500 for it alone). An error is the batch's: the savepoint is gone
/// because SQLite rolled the whole transaction back on its own after a storage fault (a full
/// disk, an I/O error), so the batch is answered 503.
async fn apply(txn: &DatabaseTransaction, work: Work) -> Result<Option<Done>, Error> {
    let done = AssertUnwindSafe(work(txn)).catch_unwind().await.ok();
    if done.is_none() {
        tracing::error!("a database write panicked; it is rolled back and answered 500");
    }
    let next = match &done {
        Some(done) if done.kept => "RELEASE write; SAVEPOINT write",
        _ => "ROLLBACK TO write",
    };
    if let Err(error) = txn.execute_unprepared(next).await {
        tracing::error!(%error, "the write transaction was lost; its batch is answered 503");
        return Err(Error::StorageUnavailable);
    }
    Ok(done)
}

/// Answers a write that waited too long for its turn: "retry later", without running it.
fn expire(job: Job) {
    tracing::warn!(waited = ?job.queued.elapsed(), "a write waited too long for the database writer, answering 503");
    crate::metrics::database_error(fault::Fault::Contention.label());
    let _ = job.reply.send(Err(Error::StorageUnavailable));
}
