//! The outbox of events for Nexway's DMP: written in the transaction of the fact they report,
//! claimed and settled by the sender (`crate::dmp`), listed and retried by support.
//!
//! A claim moves `next_attempt_at` to the end of a lease and stamps the row with the claimant's
//! token: other senders (other processes sharing a PostgreSQL) skip it until the lease ends, and
//! only the claimant's token settles it. A sender that dies mid-attempt leaves the row to be
//! claimed again when its lease runs out.

use chrono::{DateTime, Utc};
use entity::outbox_event::{self, Column, Entity};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Statement,
};

/// Where an event stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waiting for (another) attempt.
    Pending,
    /// Accepted by the DMP (204), or already known to it (429).
    Delivered,
    /// Refused for good (400, 401, 501…): parked with the reason until support retries it.
    Failed,
}

impl State {
    pub const ALL: [State; 3] = [State::Pending, State::Delivered, State::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Delivered => "delivered",
            State::Failed => "failed",
        }
    }
}

/// Adds an event, due at once.
pub async fn insert(
    db: &impl ConnectionTrait,
    action: &str,
    license_id: Option<i64>,
    payload: &str,
    at: DateTime<Utc>,
) -> Result<i64, DbErr> {
    let row = outbox_event::ActiveModel {
        action: Set(action.to_owned()),
        license_id: Set(license_id),
        payload: Set(payload.to_owned()),
        state: Set(State::Pending.as_str().to_owned()),
        attempts: Set(0),
        next_attempt_at: Set(at),
        claim: Set(None),
        last_error: Set(None),
        created_at: Set(at),
        updated_at: Set(at),
        ..Default::default()
    };
    Ok(Entity::insert(row).exec(db).await?.last_insert_id)
}

/// An event claimed for one delivery attempt.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub payload: String,
    /// Attempts so far, this one included.
    pub attempts: i32,
}

/// Claims up to `limit` due pending events for the sender holding `token`, until `lease_end`,
/// counting the attempt. One statement: on PostgreSQL `FOR UPDATE SKIP LOCKED` lets concurrent
/// senders take different rows without waiting; SQLite has one writer at a time, so the select
/// and the update cannot interleave with another claim.
pub async fn claim_due(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    lease_end: DateTime<Utc>,
    token: &str,
    limit: u64,
) -> Result<Vec<Claimed>, DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::MySql => return claim_due_one_by_one(db, now, lease_end, token, limit).await,
        DbBackend::Postgres => {
            "UPDATE outbox_event SET claim = $1, next_attempt_at = $2, attempts = attempts + 1, \
             updated_at = $3 WHERE id IN (SELECT id FROM outbox_event WHERE state = 'pending' \
             AND next_attempt_at <= $4 ORDER BY next_attempt_at, id LIMIT $5 \
             FOR UPDATE SKIP LOCKED) RETURNING id, payload, attempts"
        }
        _ => {
            "UPDATE outbox_event SET claim = ?, next_attempt_at = ?, attempts = attempts + 1, \
             updated_at = ? WHERE id IN (SELECT id FROM outbox_event WHERE state = 'pending' \
             AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?) \
             RETURNING id, payload, attempts"
        }
    };
    let statement = Statement::from_sql_and_values(
        backend,
        sql,
        [
            token.into(),
            lease_end.into(),
            now.into(),
            now.into(),
            (limit as i64).into(),
        ],
    );
    let mut claimed = Vec::new();
    for row in db.query_all_raw(statement).await? {
        claimed.push(Claimed {
            id: row.try_get("", "id")?,
            payload: row.try_get("", "payload")?,
            attempts: row.try_get("", "attempts")?,
        });
    }
    claimed.sort_by_key(|event| event.id);
    Ok(claimed)
}

/// [`claim_due`] on MariaDB/MySQL (no `UPDATE … RETURNING`): each due row is claimed by an
/// update that still requires it due, so of two senders racing for a row one matches it and the
/// other finds it leased; then the claimed rows are read.
async fn claim_due_one_by_one(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    lease_end: DateTime<Utc>,
    token: &str,
    limit: u64,
) -> Result<Vec<Claimed>, DbErr> {
    let due = Statement::from_sql_and_values(
        DbBackend::MySql,
        "SELECT id FROM outbox_event WHERE state = 'pending' AND next_attempt_at <= ? \
         ORDER BY next_attempt_at, id LIMIT ?",
        [now.into(), (limit as i64).into()],
    );
    let mut claimed = Vec::new();
    for row in db.query_all_raw(due).await? {
        let id: i64 = row.try_get("", "id")?;
        let update = Statement::from_sql_and_values(
            DbBackend::MySql,
            "UPDATE outbox_event SET claim = ?, next_attempt_at = ?, attempts = attempts + 1, \
             updated_at = ? WHERE id = ? AND state = 'pending' AND next_attempt_at <= ?",
            [
                token.into(),
                lease_end.into(),
                now.into(),
                id.into(),
                now.into(),
            ],
        );
        if db.execute_raw(update).await?.rows_affected() != 1 {
            continue;
        }
        let read = Statement::from_sql_and_values(
            DbBackend::MySql,
            "SELECT id, payload, attempts FROM outbox_event WHERE id = ?",
            [id.into()],
        );
        if let Some(row) = db.query_one_raw(read).await? {
            claimed.push(Claimed {
                id: row.try_get("", "id")?,
                payload: row.try_get("", "payload")?,
                attempts: row.try_get("", "attempts")?,
            });
        }
    }
    Ok(claimed)
}

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    Delivered { note: Option<String> },
    Failed { reason: String },
    RetryAt { at: DateTime<Utc>, reason: String },
}

/// Records the result of an attempt, if the row is still this claimant's (false otherwise: its
/// lease ran out and another sender took it over).
pub async fn settle(
    db: &impl ConnectionTrait,
    id: i64,
    token: &str,
    settlement: &Settlement,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let (state, error, next) = match settlement {
        Settlement::Delivered { note } => (State::Delivered, note.clone(), None),
        Settlement::Failed { reason } => (State::Failed, Some(reason.clone()), None),
        Settlement::RetryAt { at, reason } => (State::Pending, Some(reason.clone()), Some(*at)),
    };
    let mut update = Entity::update_many()
        .col_expr(Column::State, Expr::value(state.as_str()))
        .col_expr(Column::LastError, Expr::value(error))
        .col_expr(Column::Claim, Expr::value(Option::<String>::None))
        .col_expr(Column::UpdatedAt, Expr::value(now));
    if let Some(next) = next {
        update = update.col_expr(Column::NextAttemptAt, Expr::value(next));
    }
    let result = update
        .filter(Column::Id.eq(id))
        .filter(Column::Claim.eq(token))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Gives back a claimed event that was not attempted (the sender is stopping): due now, its
/// attempt uncounted, its last error kept.
pub async fn release(
    db: &impl ConnectionTrait,
    id: i64,
    token: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let result = Entity::update_many()
        .col_expr(Column::Claim, Expr::value(Option::<String>::None))
        .col_expr(Column::NextAttemptAt, Expr::value(now))
        .col_expr(
            Column::Attempts,
            sea_orm::sea_query::ExprTrait::sub(Expr::col(Column::Attempts), 1),
        )
        .filter(Column::Id.eq(id))
        .filter(Column::Claim.eq(token))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// One page of events, newest first, optionally in one state, and the number of all that match.
pub async fn list(
    db: &impl ConnectionTrait,
    state: Option<State>,
    page: u64,
    per_page: u64,
) -> Result<(Vec<outbox_event::Model>, u64), DbErr> {
    let mut query = Entity::find().order_by_desc(Column::Id);
    if let Some(state) = state {
        query = query.filter(Column::State.eq(state.as_str()));
    }
    let paginator = query.paginate(db, per_page.max(1));
    let total = paginator.num_items().await?;
    let found = paginator.fetch_page(page.saturating_sub(1)).await?;
    Ok((found, total))
}

pub async fn find(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<Option<outbox_event::Model>, DbErr> {
    Entity::find_by_id(id).one(db).await
}

/// The events of one license, oldest first.
pub async fn of_license(
    db: &impl ConnectionTrait,
    license_id: i64,
) -> Result<Vec<outbox_event::Model>, DbErr> {
    Entity::find()
        .filter(Column::LicenseId.eq(license_id))
        .order_by_asc(Column::Id)
        .all(db)
        .await
}

/// Puts a failed event back in line, due now, its attempts counted afresh (the backoff starts
/// over); the last error stays until the next attempt. False when the event is not failed.
pub async fn retry_failed(
    db: &impl ConnectionTrait,
    id: i64,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let result = Entity::update_many()
        .col_expr(Column::State, Expr::value(State::Pending.as_str()))
        .col_expr(Column::Attempts, Expr::value(0))
        .col_expr(Column::NextAttemptAt, Expr::value(now))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Id.eq(id))
        .filter(Column::State.eq(State::Failed.as_str()))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// How many events are in each state.
pub async fn count_by_state(db: &impl ConnectionTrait) -> Result<Vec<(State, u64)>, DbErr> {
    let rows: Vec<(String, i64)> = Entity::find()
        .select_only()
        .column(Column::State)
        .column_as(Column::Id.count(), "count")
        .group_by(Column::State)
        .into_tuple()
        .all(db)
        .await?;
    Ok(State::ALL
        .into_iter()
        .map(|state| {
            let count = rows
                .iter()
                .find(|(name, _)| name == state.as_str())
                .map_or(0, |(_, count)| u64::try_from(*count).unwrap_or(0));
            (state, count)
        })
        .collect())
}
