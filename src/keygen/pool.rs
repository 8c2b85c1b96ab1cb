//! Codes pre-loaded from another system (`nexkey keys import`), each handed out at most once.
//! Allocation happens in the call's transaction: a refused call gives its codes back.

use serde::Deserialize;

use super::{Key, KeyFuture, KeyGenError, KeyGenerator, KeyRequest};
use crate::store::pool;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoolSettings {
    /// Below this many available codes, each allocation logs a warning.
    pub low_stock: u64,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings { low_stock: 10 }
    }
}

pub struct PoolGenerator {
    settings: PoolSettings,
}

impl PoolGenerator {
    pub fn new(settings: PoolSettings) -> Self {
        PoolGenerator { settings }
    }
}

impl KeyGenerator for PoolGenerator {
    fn name(&self) -> &str {
        "pool"
    }

    fn kind(&self) -> super::GeneratorKind {
        super::GeneratorKind::Pool
    }

    fn generate(&self, _request: &KeyRequest<'_>) -> Result<Key, KeyGenError> {
        Err(KeyGenError::Failed(
            "the pool generator draws codes from the database (generate_in)".into(),
        ))
    }

    fn generate_in<'a>(
        &'a self,
        txn: &'a sea_orm::DatabaseTransaction,
        request: &'a KeyRequest<'a>,
    ) -> KeyFuture<'a> {
        Box::pin(async move {
            let code = pool::allocate(txn, request.product, request.fulfillment)
                .await?
                .ok_or(KeyGenError::Exhausted)?;
            let available = pool::available(txn, request.product).await?;
            crate::metrics::pool_stock(request.product, available);
            if available < self.settings.low_stock {
                tracing::warn!(
                    product = %request.product,
                    available,
                    threshold = self.settings.low_stock,
                    "license pool running low: import more codes"
                );
            }
            Ok(Key::code(code))
        })
    }
}
