//! What a database failure means for the caller, decided from the driver's error codes (not its
//! message text): a fault worth a retry (Nexway gets 503 and retries), or a bug to look at.
//!
//! Faults of the storage itself (disk full, read-only file, I/O error, lost connection) also start
//! a new connection epoch: every pooled connection opened before the fault is thrown away instead
//! of being handed out again (see [`super::db`]), so a connection that SQLite left in a strange
//! state, or that was opened read-only, never serves another call.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use sea_orm::{ConnAcquireErr, DbErr, RuntimeErr, sqlx};

/// The kind of a database failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The storage medium or the connection failed (disk full, read-only, I/O, connection lost,
    /// server shutting down): retry later; connections opened before it are recycled.
    Storage,
    /// A bounded wait ran out or no connection could be had (busy file, lock or statement
    /// timeout, pool exhausted or closed, deadlock, serialization failure): retry later.
    Contention,
    /// Anything else: a bug or a schema this binary does not expect.
    Other,
}

impl Fault {
    /// Whether a retry of the same call may succeed.
    pub fn is_transient(self) -> bool {
        self != Fault::Other
    }

    /// The label of the `nexkey_database_errors_total` metric.
    pub fn label(self) -> &'static str {
        match self {
            Fault::Storage => "storage",
            Fault::Contention => "contention",
            Fault::Other => "other",
        }
    }
}

/// Classifies a failure, and starts a new connection epoch when the storage itself failed.
pub fn classify(err: &DbErr) -> Fault {
    let fault = kind_of(err);
    if fault == Fault::Storage {
        start_new_epoch();
    }
    fault
}

fn kind_of(err: &DbErr) -> Fault {
    match err {
        // No connection to be had (none free, or the pool closed at shutdown): nothing about the
        // storage itself, so no connection is retired.
        DbErr::ConnectionAcquire(ConnAcquireErr::Timeout | ConnAcquireErr::ConnectionClosed) => {
            Fault::Contention
        }
        DbErr::Conn(_) => Fault::Storage,
        DbErr::Exec(RuntimeErr::SqlxError(error)) | DbErr::Query(RuntimeErr::SqlxError(error)) => {
            of_sqlx(error)
        }
        _ => Fault::Other,
    }
}

fn of_sqlx(error: &sqlx::Error) -> Fault {
    match error {
        sqlx::Error::Database(database) => {
            let code = database.code().unwrap_or_default();
            if let Some(mysql) = database.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
                of_mysql(mysql.number())
            } else if database
                .try_downcast_ref::<sqlx::sqlite::SqliteError>()
                .is_some()
            {
                of_sqlite(code.parse().unwrap_or(0))
            } else {
                of_sqlstate(&code)
            }
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => Fault::Contention,
        // The connection itself broke: a reset, an EOF mid-message ("expected to read 5 bytes,
        // got 0 bytes at EOF"), TLS, a closed pool, a crashed SQLite worker thread.
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => Fault::Storage,
        _ => Fault::Other,
    }
}

/// SQLite result codes (the primary code is the low byte of the extended one).
fn of_sqlite(extended: i32) -> Fault {
    const BUSY: i32 = 5;
    const LOCKED: i32 = 6;
    const NOMEM: i32 = 7;
    const READONLY: i32 = 8;
    const IOERR: i32 = 10;
    const FULL: i32 = 13;
    const CANTOPEN: i32 = 14;
    const PROTOCOL: i32 = 15;
    match extended & 0xff {
        BUSY | LOCKED | PROTOCOL => Fault::Contention,
        NOMEM | READONLY | IOERR | FULL | CANTOPEN => Fault::Storage,
        _ => Fault::Other,
    }
}

/// MariaDB/MySQL error numbers (their SQLSTATEs are too coarse: `HY000` is most of them).
fn of_mysql(number: u16) -> Fault {
    match number {
        // Lock wait timeout, deadlock, statement time limit (MariaDB 1969, MySQL 3024), table
        // definition lock (lock_wait_timeout, also 1205), too many connections.
        // A statement an operator interrupted (`KILL QUERY`, 1317) is one to retry too.
        1205 | 1213 | 1969 | 3024 | 1040 | 1317 => Fault::Contention,
        // Disk full (1021), table full (1114), out of memory (1037, 1038), read-only server
        // (1290, 1792), server shutting down (1053), lost or refused connections (2002, 2003,
        // 2006, 2013, 1927 connection killed), I/O errors (1030 storage engine, 1026, 3, 9, 28).
        1021 | 1114 | 1037 | 1038 | 1290 | 1792 | 1053 | 2002 | 2003 | 2006 | 2013 | 1927
        | 1030 | 1026 => Fault::Storage,
        _ => Fault::Other,
    }
}

/// MySQL's duplicate key (`ER_DUP_ENTRY`): a conflict the caller reads, never a fault.
const MYSQL_DUPLICATE_KEY: u16 = 1062;

/// Whether `err` is MariaDB/MySQL refusing a row that a unique index already holds.
pub fn is_duplicate_key(err: &DbErr) -> bool {
    let (DbErr::Exec(RuntimeErr::SqlxError(error)) | DbErr::Query(RuntimeErr::SqlxError(error))) =
        err
    else {
        return false;
    };
    match error.as_ref() {
        sqlx::Error::Database(database) => database
            .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
            .is_some_and(|mysql| mysql.number() == MYSQL_DUPLICATE_KEY),
        _ => false,
    }
}

/// PostgreSQL's SQLSTATE.
fn of_sqlstate(code: &str) -> Fault {
    match code {
        // serialization failure, deadlock, lock not available (lock_timeout), query canceled
        // (statement_timeout).
        "40001" | "40P01" | "55P03" | "57014" => Fault::Contention,
        // Read-only transaction (a standby), admin/crash shutdown, cannot connect now.
        "25006" | "57P01" | "57P02" | "57P03" => Fault::Storage,
        // Connection exceptions, insufficient resources (disk full, out of memory, too many
        // connections), system errors (I/O).
        _ if code.starts_with("08") || code.starts_with("53") || code.starts_with("58") => {
            Fault::Storage
        }
        _ => Fault::Other,
    }
}

/// When the storage last failed; connections opened before that are not trusted again.
static LAST_STORAGE_FAULT: Mutex<Option<Instant>> = Mutex::new(None);
/// When a call's write transaction last committed.
static LAST_COMMIT: Mutex<Option<Instant>> = Mutex::new(None);

fn start_new_epoch() {
    if let Ok(mut last) = LAST_STORAGE_FAULT.lock() {
        *last = Some(Instant::now());
    }
}

/// A call's transaction committed: the storage takes writes again.
pub fn note_commit() {
    if let Ok(mut last) = LAST_COMMIT.lock() {
        *last = Some(Instant::now());
    }
}

/// Whether the storage failed within `window` and no call has committed since. Readiness asks
/// this besides its own write: on a full disk SQLite can still rewrite a row in room it already
/// has while every call that needs a new page fails.
pub fn failing_within(window: Duration) -> bool {
    let fault = LAST_STORAGE_FAULT.lock().ok().and_then(|last| *last);
    let commit = LAST_COMMIT.lock().ok().and_then(|last| *last);
    match fault {
        Some(fault) => fault.elapsed() < window && commit.is_none_or(|commit| commit < fault),
        None => false,
    }
}

/// Whether a connection of this age was opened after the last storage fault.
pub fn opened_since_last_fault(age: Duration) -> bool {
    let last = LAST_STORAGE_FAULT.lock().ok().and_then(|last| *last);
    last.is_none_or(|at| age < at.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_codes() {
        assert_eq!(of_sqlite(13), Fault::Storage, "SQLITE_FULL");
        assert_eq!(
            of_sqlite(8 | (1 << 8)),
            Fault::Storage,
            "SQLITE_READONLY_RECOVERY"
        );
        assert_eq!(
            of_sqlite(10 | (12 << 8)),
            Fault::Storage,
            "SQLITE_IOERR_FSYNC"
        );
        assert_eq!(
            of_sqlite(5 | (2 << 8)),
            Fault::Contention,
            "SQLITE_BUSY_SNAPSHOT"
        );
        assert_eq!(
            of_sqlite(19 | (8 << 8)),
            Fault::Other,
            "a UNIQUE constraint is a bug here"
        );
        assert_eq!(of_sqlite(1), Fault::Other, "SQLITE_ERROR");
    }

    #[test]
    fn sqlstates() {
        assert_eq!(of_sqlstate("55P03"), Fault::Contention);
        assert_eq!(of_sqlstate("57014"), Fault::Contention);
        assert_eq!(of_sqlstate("40P01"), Fault::Contention);
        assert_eq!(of_sqlstate("08006"), Fault::Storage);
        assert_eq!(of_sqlstate("53100"), Fault::Storage);
        assert_eq!(of_sqlstate("57P01"), Fault::Storage);
        assert_eq!(of_sqlstate("23505"), Fault::Other);
        assert_eq!(of_sqlstate("42P01"), Fault::Other);
    }

    #[test]
    fn mysql_numbers() {
        assert_eq!(of_mysql(1205), Fault::Contention, "lock wait timeout");
        assert_eq!(of_mysql(1213), Fault::Contention, "deadlock");
        assert_eq!(
            of_mysql(1969),
            Fault::Contention,
            "MariaDB statement timeout"
        );
        assert_eq!(of_mysql(3024), Fault::Contention, "MySQL statement timeout");
        assert_eq!(of_mysql(1040), Fault::Contention, "too many connections");
        assert_eq!(of_mysql(1317), Fault::Contention, "query interrupted");
        assert_eq!(of_mysql(1021), Fault::Storage, "disk full");
        assert_eq!(of_mysql(1114), Fault::Storage, "table full");
        assert_eq!(of_mysql(2013), Fault::Storage, "lost connection");
        assert_eq!(of_mysql(2006), Fault::Storage, "server gone away");
        assert_eq!(
            of_mysql(1062),
            Fault::Other,
            "a duplicate is read, not retried"
        );
        assert_eq!(of_mysql(1146), Fault::Other, "no such table");
    }

    #[test]
    fn connection_level_errors_are_storage_faults() {
        let eof = sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "expected to read 5 bytes, got 0 bytes at EOF",
        ));
        assert_eq!(of_sqlx(&eof), Fault::Storage);
        assert_eq!(of_sqlx(&sqlx::Error::PoolTimedOut), Fault::Contention);
        assert_eq!(of_sqlx(&sqlx::Error::RowNotFound), Fault::Other);
    }

    #[test]
    fn a_storage_fault_retires_older_connections() {
        let old = Duration::from_secs(3600);
        start_new_epoch();
        assert!(!opened_since_last_fault(old));
        std::thread::sleep(Duration::from_millis(5));
        assert!(opened_since_last_fault(Duration::from_millis(1)));
    }
}
