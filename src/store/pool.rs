//! Pools of pre-loaded codes: import, allocation (each code at most once, across processes),
//! stock counts and revocation. Functions an admin endpoint can call as they are.

use chrono::Utc;
use entity::pool_key::{Column, Entity};
use sea_orm::sea_query::{OnConflict, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
    Statement,
};

pub const AVAILABLE: &str = "available";
pub const ALLOCATED: &str = "allocated";
pub const REVOKED: &str = "revoked";

/// What an import did: codes added, and codes skipped because they were already known
/// (in any product's pool) or repeated in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportReport {
    pub imported: u64,
    pub skipped: u64,
}

/// A product's pool by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stock {
    pub available: u64,
    pub allocated: u64,
    pub revoked: u64,
}

/// The codes of a CSV file: the first column of each non-empty line, a header line `code`
/// skipped, surrounding quotes and spaces removed. Refuses the file, naming the line, when a
/// code is unfit to be an activation code.
pub fn parse_csv(text: &str) -> Result<Vec<String>, String> {
    let mut codes = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let first = line.split(',').next().unwrap_or_default();
        let code = first.trim().trim_matches('"').trim();
        if code.is_empty() || (number == 0 && code.eq_ignore_ascii_case("code")) {
            continue;
        }
        if code.len() > 200 || code.chars().any(|c| !c.is_ascii_graphic()) {
            return Err(format!(
                "line {}: a code must be printable ASCII without spaces, at most 200 characters",
                number + 1
            ));
        }
        codes.push(code.to_owned());
    }
    Ok(codes)
}

/// Adds codes to a product's pool; codes already known are skipped, not duplicated.
pub async fn import(
    db: &impl ConnectionTrait,
    product: &str,
    codes: &[String],
) -> Result<ImportReport, DbErr> {
    let mut imported = 0;
    let now = Utc::now();
    // Where a duplicate is an error (MariaDB/MySQL), one code per statement: the error then
    // names the one code skipped.
    let plain = super::plain_inserts(db);
    for chunk in codes.chunks(if plain { 1 } else { 500 }) {
        let mut statement = Query::insert();
        statement.into_table(Entity).columns([
            Column::PublisherProductId,
            Column::Code,
            Column::Status,
            Column::ImportedAt,
        ]);
        if !plain {
            statement.on_conflict(OnConflict::column(Column::Code).do_nothing().to_owned());
        }
        for code in chunk {
            statement.values_panic([
                product.into(),
                code.as_str().into(),
                AVAILABLE.into(),
                now.into(),
            ]);
        }
        imported += super::unless_taken(db.execute(&statement).await)?
            .map_or(0, |done| done.rows_affected());
    }
    Ok(ImportReport {
        imported,
        skipped: codes.len() as u64 - imported,
    })
}

/// Takes the product's oldest available code for the fulfillment, in the caller's transaction;
/// None when the pool is empty. On PostgreSQL `FOR UPDATE SKIP LOCKED` lets concurrent calls
/// take different codes without waiting; SQLite has a single writer, which our transactions
/// hold from their first statement, so the read and the update cannot interleave.
pub async fn allocate(
    db: &impl ConnectionTrait,
    product: &str,
    fulfillment: &str,
) -> Result<Option<String>, DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::MySql => return allocate_by_id(db, product, fulfillment).await,
        DbBackend::Postgres => {
            "UPDATE pool_key SET status = 'allocated', allocated_at = $1, allocated_to = $2 \
             WHERE id = (SELECT id FROM pool_key WHERE publisher_product_id = $3 \
             AND status = 'available' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING code"
        }
        _ => {
            "UPDATE pool_key SET status = 'allocated', allocated_at = ?, allocated_to = ? \
             WHERE id = (SELECT id FROM pool_key WHERE publisher_product_id = ? \
             AND status = 'available' ORDER BY id LIMIT 1) \
             RETURNING code"
        }
    };
    let statement = Statement::from_sql_and_values(
        backend,
        sql,
        [Utc::now().into(), fulfillment.into(), product.into()],
    );
    match db.query_one_raw(statement).await? {
        Some(row) => Ok(Some(row.try_get("", "code")?)),
        None => Ok(None),
    }
}

/// [`allocate`] on MariaDB/MySQL, which cannot `UPDATE … RETURNING` nor update a table they
/// select from: the row is locked by the select (skipping rows other calls hold, MariaDB 10.6
/// and MySQL 8), then updated by id, both in the caller's transaction.
async fn allocate_by_id(
    db: &impl ConnectionTrait,
    product: &str,
    fulfillment: &str,
) -> Result<Option<String>, DbErr> {
    let select = Statement::from_sql_and_values(
        DbBackend::MySql,
        "SELECT id, code FROM pool_key WHERE publisher_product_id = ? AND status = 'available' \
         ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED",
        [product.into()],
    );
    let Some(row) = db.query_one_raw(select).await? else {
        return Ok(None);
    };
    let id: i64 = row.try_get("", "id")?;
    let code: String = row.try_get("", "code")?;
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::MySql,
        "UPDATE pool_key SET status = 'allocated', allocated_at = ?, allocated_to = ? \
         WHERE id = ?",
        [Utc::now().into(), fulfillment.into(), id.into()],
    ))
    .await?;
    Ok(Some(code))
}

/// How many codes of the product are still available.
pub async fn available(db: &impl ConnectionTrait, product: &str) -> Result<u64, DbErr> {
    Entity::find()
        .filter(Column::PublisherProductId.eq(product))
        .filter(Column::Status.eq(AVAILABLE))
        .count(db)
        .await
}

/// The product's codes by status.
pub async fn stock(db: &impl ConnectionTrait, product: &str) -> Result<Stock, DbErr> {
    let mut stock = Stock::default();
    for (status, count) in [
        (AVAILABLE, &mut stock.available),
        (ALLOCATED, &mut stock.allocated),
        (REVOKED, &mut stock.revoked),
    ] {
        *count = Entity::find()
            .filter(Column::PublisherProductId.eq(product))
            .filter(Column::Status.eq(status))
            .count(db)
            .await?;
    }
    Ok(stock)
}

/// Withdraws an available code from the pool (leaked, or sold elsewhere): it will never be
/// handed out. Returns false when the product has no such available code.
pub async fn revoke(db: &impl ConnectionTrait, product: &str, code: &str) -> Result<bool, DbErr> {
    let result = Entity::update_many()
        .col_expr(Column::Status, REVOKED.into())
        .filter(Column::PublisherProductId.eq(product))
        .filter(Column::Code.eq(code))
        .filter(Column::Status.eq(AVAILABLE))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_takes_the_first_column_and_skips_the_header_and_blank_lines() {
        let text = "code,batch\n\"AAAA-1111\",7\n\nBBBB-2222\n  CCCC-3333 , x\n";
        assert_eq!(
            parse_csv(text).unwrap(),
            ["AAAA-1111", "BBBB-2222", "CCCC-3333"]
        );
        let err = parse_csv("AAAA\nBB BB\n").unwrap_err();
        assert!(err.starts_with("line 2"), "{err}");
    }
}
