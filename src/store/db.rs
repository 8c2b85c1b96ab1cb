//! Connecting and migrating, the same way on SQLite, PostgreSQL and MariaDB/MySQL.
//!
//! Connection hygiene is what keeps "an answer leaves only after a real commit" true when the
//! storage fails: a connection whose transaction did not end cleanly (SQLite rolls back on its own
//! after SQLITE_FULL, and the driver's own bookkeeping then still believes a transaction is open,
//! so the next `BEGIN` would become a savepoint and its "commit" would commit nothing) is closed
//! instead of going back to the pool; a connection opened before a storage fault is not handed out
//! again (see [`super::fault`]); and every wait on the database is bounded below the request
//! deadline, so each call gets an answer.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::{self, Connection as _};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr,
    TransactionTrait,
};

use super::fault;

/// How long one database wait may last: a lock, a busy SQLite file, a free pooled connection.
/// Statements get twice this. Chosen below the request deadline so a call stuck behind a held
/// lock is answered 503 (retry) instead of being cut off.
#[derive(Debug, Clone, Copy)]
pub struct Waits {
    pub lock: Duration,
}

impl Waits {
    /// Waits for a server whose request deadline is `deadline`: a quarter of it, at most 5 s.
    pub fn within(deadline: Duration) -> Self {
        Waits {
            lock: (deadline / 4).clamp(Duration::from_millis(250), Duration::from_secs(5)),
        }
    }

    fn statement(self) -> Duration {
        self.lock * 2
    }
}

impl Default for Waits {
    fn default() -> Self {
        Waits::within(Duration::from_secs(30))
    }
}

/// Opens the pool with the default waits.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    connect_with(url, Waits::default()).await
}

/// Opens the pool. SQLite runs in WAL mode so readers never wait for the writer, with
/// `synchronous = FULL` so a commit survives a power cut; every transaction of ours writes first,
/// so concurrent writers queue (up to the busy timeout) instead of failing.
pub async fn connect_with(url: &str, waits: Waits) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url);
    options
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(waits.lock)
        .sqlx_logging(false);
    if url.starts_with("sqlite:") {
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        options
            .max_connections(4)
            .min_connections(1)
            .map_sqlx_sqlite_opts(move |sqlite| {
                sqlite
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Full)
                    .foreign_keys(true)
                    .busy_timeout(waits.lock)
            })
            // An in-memory database lives in its connections: never recycle those.
            .map_sqlx_sqlite_pool_opts(move |pool| hygiene(pool, !in_memory));
    } else if url.starts_with("mysql:") {
        options
            .max_connections(16)
            .map_sqlx_mysql_opts(|mysql| {
                // Connection collation binary, like the columns: a literal compares as stored.
                mysql
                    .charset("utf8mb4")
                    .collation("utf8mb4_bin")
                    .timezone(Some("+00:00".to_owned()))
            })
            .map_sqlx_mysql_pool_opts(move |pool| {
                hygiene(pool, true).after_connect(move |connection, _| {
                    Box::pin(async move { mysql_session(connection, waits).await })
                })
            });
    } else {
        options
            .max_connections(16)
            .map_sqlx_postgres_opts(move |postgres| {
                postgres.options([
                    ("lock_timeout", millis(waits.lock)),
                    ("statement_timeout", millis(waits.statement())),
                    // A session left idle inside a transaction would hold its locks forever.
                    (
                        "idle_in_transaction_session_timeout",
                        millis(waits.statement() * 3),
                    ),
                ])
            })
            .map_sqlx_postgres_pool_opts(|pool| hygiene(pool, true));
    }
    // Not a reason to stay down: a file nexkey may not chmod (another owner, a read-only mount)
    // is served as it is, and a read-only one is answered 503 until writes work again.
    if let Err(error) = owner_only_sqlite_files(url) {
        tracing::warn!(%error, "cannot make the database files owner-only");
    }
    Database::connect(options).await
}

/// The session every MariaDB/MySQL connection starts with: READ COMMITTED (what PostgreSQL
/// does, and no gap locks, which make InnoDB's deadlocks between unrelated inserts), strict
/// modes (a value that does not fit is an error, never a silent truncation or a zero date),
/// UTC, and every wait bounded like PostgreSQL's `lock_timeout` and `statement_timeout`.
async fn mysql_session(
    connection: &mut sqlx::MySqlConnection,
    waits: Waits,
) -> Result<(), sqlx::Error> {
    use sqlx::Executor as _;
    // InnoDB's lock waits are whole seconds.
    let lock = waits.lock.as_secs_f64().ceil().max(1.0) as u64;
    connection
        .execute(sqlx::AssertSqlSafe(format!(
            "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED; \
             SET SESSION sql_mode = '{MYSQL_SQL_MODE}', time_zone = '+00:00', \
             innodb_lock_wait_timeout = {lock}, lock_wait_timeout = {lock}"
        )))
        .await?;
    let version: String = sqlx::query_scalar("SELECT VERSION()")
        .fetch_one(&mut *connection)
        .await?;
    let statement = if version.contains("MariaDB") {
        format!(
            "SET SESSION max_statement_time = {}",
            waits.statement().as_secs_f64()
        )
    } else {
        // MySQL bounds only reads (in milliseconds); lock waits are bounded above.
        format!(
            "SET SESSION max_execution_time = {}",
            waits.statement().as_millis()
        )
    };
    connection.execute(sqlx::AssertSqlSafe(statement)).await?;
    Ok(())
}

const MYSQL_SQL_MODE: &str = "STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,\
ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION,PIPES_AS_CONCAT";

fn millis(duration: Duration) -> String {
    duration.as_millis().to_string()
}

/// A connection goes back to the pool only when its transaction ended cleanly, and is handed out
/// only when it was opened after the last storage fault.
fn hygiene<DB: sqlx::Database>(
    pool: sqlx::pool::PoolOptions<DB>,
    recycle_after_faults: bool,
) -> sqlx::pool::PoolOptions<DB> {
    pool.after_release(|connection, _| {
        // A rollback that failed, or one still queued after an error (a refused call drops its
        // transaction), leaves the driver's transaction depth above zero: close the connection,
        // which ends the transaction, rather than trust it.
        let clean = !connection.is_in_transaction();
        if !clean {
            tracing::debug!("closing a database connection left inside a transaction");
        }
        Box::pin(async move { Ok(clean) })
    })
    .before_acquire(move |_, meta| {
        let fresh = !recycle_after_faults || fault::opened_since_last_fault(meta.age);
        if !fresh {
            tracing::debug!("retiring a database connection opened before a storage fault");
        }
        Box::pin(async move { Ok(fresh) })
    })
}

/// Applies pending migrations (calling the Migrator directly: its CLI would install its own
/// tracing subscriber), under a lock so that processes starting together on one database apply
/// them once: on PostgreSQL a transaction-scoped advisory lock around one transaction holding
/// every migration; on MariaDB/MySQL a named lock (`GET_LOCK`) held by the migrating session;
/// on SQLite an exclusive lock on the database's directory.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            tracing::info!("taking the migration lock (another process may be migrating)");
            let txn = db.begin().await?;
            // Long migrations may run as long as they need; a lock someone else holds is waited
            // for a minute at most, then `serve` stops with the reason instead of hanging.
            txn.execute_unprepared(
                "SET LOCAL lock_timeout = '60s'; SET LOCAL statement_timeout = 0; \
                 SELECT pg_advisory_xact_lock(7394620471)",
            )
            .await?;
            Migrator::up(&txn, None).await?;
            txn.commit().await
        }
        DbBackend::Sqlite => {
            let _lock = lock_directory_of(db).await?;
            Migrator::up(db, None).await
        }
        DbBackend::MySql => {
            tracing::info!("taking the migration lock (another process may be migrating)");
            // GET_LOCK belongs to a session: one transaction keeps one connection (MySQL commits
            // each DDL statement on its own, the session and its lock stay).
            let txn = db.begin().await?;
            let version: String = txn
                .query_one_raw(sea_orm::Statement::from_string(
                    DbBackend::MySql,
                    "SELECT VERSION() AS version",
                ))
                .await?
                .ok_or_else(|| DbErr::Migration("no server version".into()))?
                .try_get("", "version")?;
            // Long migrations may run as long as they need (MariaDB's `max_statement_time`,
            // MySQL's `max_execution_time` are lifted); a lock someone else holds, the named one
            // or a table's, is waited for a minute at most. The session's bounds come back after.
            let time_limit = if version.contains("MariaDB") {
                "max_statement_time"
            } else {
                "max_execution_time"
            };
            txn.execute_unprepared(&format!(
                "SET @nexkey_time_limit = @@SESSION.{time_limit}, \
                 @nexkey_lock_wait = @@SESSION.lock_wait_timeout, \
                 SESSION {time_limit} = 0, SESSION lock_wait_timeout = 60"
            ))
            .await?;
            let restore = format!(
                "SET SESSION {time_limit} = @nexkey_time_limit, \
                 SESSION lock_wait_timeout = @nexkey_lock_wait"
            );
            let locked: Option<i64> = txn
                .query_one_raw(sea_orm::Statement::from_string(
                    DbBackend::MySql,
                    format!("SELECT GET_LOCK({MIGRATION_LOCK}, 60) AS locked"),
                ))
                .await?
                .ok_or_else(|| DbErr::Migration("GET_LOCK answered nothing".into()))?
                .try_get("", "locked")?;
            if locked != Some(1) {
                txn.execute_unprepared(&restore).await?;
                return Err(DbErr::Migration(
                    "another process held the migration lock for 60 s".into(),
                ));
            }
            let migrated = Migrator::up(&txn, None).await;
            let released = txn
                .execute_unprepared(&format!("DO RELEASE_LOCK({MIGRATION_LOCK}); {restore}"))
                .await;
            migrated?;
            released?;
            txn.commit().await
        }
        _ => Migrator::up(db, None).await,
    }
}

/// The name of the MariaDB/MySQL migration lock: `GET_LOCK` names are server-wide, so it
/// carries the database's (hashed: names are 64 characters at most).
const MIGRATION_LOCK: &str = "CONCAT('nexkey-migrate-', SHA1(DATABASE()))";

/// Holds an exclusive `flock` on the directory of the SQLite database until dropped (a separate
/// file would do too; the directory leaves nothing behind). Not the database file itself: closing
/// any other descriptor of it would drop SQLite's own POSIX locks.
async fn lock_directory_of(db: &DatabaseConnection) -> Result<Option<std::fs::File>, DbErr> {
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            DbBackend::Sqlite,
            "SELECT file FROM pragma_database_list WHERE name = 'main'",
        ))
        .await?;
    let file: String = match row {
        Some(row) => row.try_get("", "file")?,
        None => String::new(),
    };
    // An in-memory database has no file and no other process.
    let Some(directory) = std::path::Path::new(&file)
        .parent()
        .filter(|_| !file.is_empty())
    else {
        return Ok(None);
    };
    let directory = directory.to_owned();
    tokio::task::spawn_blocking(move || {
        let handle = std::fs::File::open(&directory)?;
        handle.lock()?;
        Ok::<_, std::io::Error>(Some(handle))
    })
    .await
    .map_err(|error| DbErr::Custom(error.to_string()))?
    .map_err(|error| DbErr::Migration(format!("cannot lock the database directory: {error}")))
}

/// Rewrites the readiness row, in the caller's transaction: readiness commits it to prove that
/// the database accepts writes.
pub async fn accepts_writes(db: &impl ConnectionTrait) -> Result<(), DbErr> {
    use sea_orm::sea_query::{Alias, OnConflict, Query};
    let probe = Query::insert()
        .into_table(Alias::new("readiness_probe"))
        .columns([Alias::new("id"), Alias::new("checked_at")])
        .values_panic([1.into(), chrono::Utc::now().into()])
        .on_conflict(
            OnConflict::column(Alias::new("id"))
                .update_column(Alias::new("checked_at"))
                .to_owned(),
        )
        .to_owned();
    db.execute(&probe).await.map(|_| ())
}

/// A SQLite database holds every code and buyer: its files are the owner's only, like the
/// credentials file. The file is created 0600 before SQLite opens it (SQLite gives its `-wal` and
/// `-shm` files the mode of the database file), and files that exist are narrowed to 0600.
fn owner_only_sqlite_files(url: &str) -> std::io::Result<()> {
    let Some(rest) = url.strip_prefix("sqlite:") else {
        return Ok(());
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let path = path.strip_prefix("//").unwrap_or(path);
    if path.is_empty() || path == ":memory:" || query.contains("mode=memory") {
        return Ok(());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let path = std::path::Path::new(path);
        if query.split('&').any(|pair| pair == "mode=rwc") && !path.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)?;
        }
        for suffix in ["", "-wal", "-shm"] {
            let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
            if file.exists() {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
            }
        }
    }
    Ok(())
}
