//! The support side: `GET /nexus/lkey/{key}` in the purchase shape, the lkey page, and the admin
//! API, in the conventions of that API family (API key as the Basic user name or `?key=`, errors
//! as `{"errorCode","errorMessage"}`). Each handler admits the caller, calls `crate::admin`, and
//! formats what it returns.

mod dto;
mod failure;
mod gate;
pub mod page;
mod purchase;

use std::sync::Arc;

use poem::Request;
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::ToJSON;

use super::ApiTags;
use super::activation::ActivationDto;
use super::params::{EventStateFilter, KeyParam, StatusFilter};
use crate::admin::{self, Filter};
use crate::fulfillment::{ManualAction, Service, Status};
use crate::keygen::GeneratorKind;
use crate::store::pool;

pub use dto::*;
use failure::Answer;
pub use failure::{AdminAuth, AdminErrorBody, AdminFailure, AdminResponse};
pub use gate::{AdminGate, Denied};
pub use purchase::PurchaseDto;

pub struct AdminApi {
    service: Arc<Service>,
    gate: Arc<AdminGate>,
    purchase_url: Option<String>,
}

impl AdminApi {
    pub fn new(service: Arc<Service>, gate: Arc<AdminGate>, purchase_url: Option<String>) -> Self {
        AdminApi {
            service,
            gate,
            purchase_url,
        }
    }

    fn respond<T: ToJSON + Send + Sync>(&self, answer: Answer<T>) -> AdminResponse<T> {
        match answer {
            Ok(value) => AdminResponse::Ok(Json(value)),
            // Retry when the cooling-off period is over.
            Err(AdminFailure::TooManyBadKeys) => AdminResponse::TooManyRequests(
                Json(AdminFailure::TooManyBadKeys.body()),
                self.gate.cooldown_secs(),
            ),
            Err(failure) => failure.into(),
        }
    }

    fn admit(&self, request: &Request, auth: &AdminAuth) -> Answer<()> {
        let address = super::client_address(request);
        Ok(self.gate.check(address, auth.key().as_ref())?)
    }

    fn dto(&self, purchase: &admin::Purchase) -> PurchaseDto {
        PurchaseDto::new(
            purchase,
            self.service.catalog(),
            self.purchase_url.as_deref(),
        )
    }

    async fn detail(&self, key: &str) -> Answer<LicenseDetail> {
        let facts = admin::facts(self.service.db(), key)
            .await?
            .ok_or(AdminFailure::InvalidKey)?;
        let code = &facts.purchase.license.activation_code;
        Ok(LicenseDetail {
            purchase: self.dto(&facts.purchase),
            events: facts.history.into_iter().map(EventDto::from).collect(),
            activations: facts
                .activations
                .into_iter()
                .map(|activation| ActivationDto::new(activation, code))
                .collect(),
            dmp_events: facts
                .dmp_events
                .into_iter()
                .map(DmpEventDto::from)
                .collect(),
        })
    }

    async fn act(&self, key: &str, action: ManualAction, reason: &str) -> Answer<LicenseDetail> {
        admin::act(self.service.writer(), key, action, reason).await?;
        tracing::info!(action = action.as_str(), "license changed by support");
        self.detail(key).await
    }
}

#[OpenApi(tag = "ApiTags::Support")]
impl AdminApi {
    /// Look a license key up
    ///
    /// The purchase the key belongs to, in the purchase shape: whose it is, what it unlocks,
    /// whether it is active, when it expires, and the purchase it renewed or replaced (`parent`).
    /// Case and separators do not matter (`k7qxm 2hj9p…` finds `K7QXM-2HJ9P-…`). Opened in a
    /// browser (`Accept: text/html`), the same URL shows a readable page.
    #[oai(path = "/nexus/lkey/:key", method = "get", operation_id = "lkey")]
    async fn lkey(
        &self,
        request: &Request,
        auth: AdminAuth,
        /// The license key (case and separators do not matter).
        #[oai(validator(custom = "super::params::KeyCheck"))]
        key: Path<KeyParam>,
    ) -> AdminResponse<PurchaseDto> {
        self.respond(
            async {
                self.admit(request, &auth)?;
                let purchase = admin::purchase(self.service.db(), &key).await?;
                Ok(self.dto(&purchase.ok_or(AdminFailure::InvalidKey)?))
            }
            .await,
        )
    }

    /// Search licenses
    ///
    /// Every given criterion must match; newest first. `status` is read today: `expired` finds
    /// live licenses past their end date.
    #[allow(clippy::too_many_arguments)]
    #[oai(
        path = "/admin/licenses",
        method = "get",
        operation_id = "searchLicenses"
    )]
    async fn search(
        &self,
        request: &Request,
        auth: AdminAuth,
        #[oai(validator(
            min_length = 1,
            max_length = 256,
            pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
        ))]
        email: Query<Option<String>>,
        #[oai(
            name = "nexwayFulfillmentId",
            validator(
                min_length = 1,
                max_length = 256,
                pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
            )
        )]
        nexway_fulfillment_id: Query<Option<String>>,
        #[oai(
            name = "publisherFulfillmentId",
            validator(
                min_length = 1,
                max_length = 256,
                pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
            )
        )]
        publisher_fulfillment_id: Query<Option<String>>,
        #[oai(
            name = "orderId",
            validator(
                min_length = 1,
                max_length = 256,
                pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
            )
        )]
        order_id: Query<Option<String>>,
        /// `expired` finds active licenses past their end date.
        status: Query<Option<StatusFilter>>,
        /// `publisherProductId`
        #[oai(validator(
            min_length = 1,
            max_length = 256,
            pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
        ))]
        product: Query<Option<String>>,
        /// From 1 to 100000.
        #[oai(
            default = "first_page",
            validator(minimum(value = "1"), maximum(value = "100000"))
        )]
        page: Query<u64>,
        #[oai(
            name = "perPage",
            default = "default_per_page",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        per_page: Query<u64>,
    ) -> AdminResponse<PurchaseList> {
        self.respond(
            async {
                self.admit(request, &auth)?;
                let status = status.0.map(Status::from);
                let filter = Filter {
                    email: email.0,
                    nexway_fulfillment_id: nexway_fulfillment_id.0,
                    publisher_fulfillment_id: publisher_fulfillment_id.0,
                    order_id: order_id.0,
                    status,
                    product: product.0,
                };
                let (found, total) =
                    admin::search(self.service.db(), &filter, page.0, per_page.0).await?;
                Ok(PurchaseList {
                    page: page.0,
                    per_page: per_page.0,
                    total_results: total,
                    total_pages: total.div_ceil(per_page.0),
                    results: found.iter().map(|p| self.dto(p)).collect(),
                })
            }
            .await,
        )
    }

    /// One license with its full event history
    #[oai(
        path = "/admin/licenses/:key",
        method = "get",
        operation_id = "getLicense"
    )]
    async fn license(
        &self,
        request: &Request,
        auth: AdminAuth,
        /// The license key (case and separators do not matter).
        #[oai(validator(custom = "super::params::KeyCheck"))]
        key: Path<KeyParam>,
    ) -> AdminResponse<LicenseDetail> {
        self.respond(
            async {
                self.admit(request, &auth)?;
                self.detail(&key).await
            }
            .await,
        )
    }

    /// Revoke a license by hand
    ///
    /// The license becomes `canceled`; the reason is written to its events. Revoking a revoked
    /// license changes nothing.
    #[oai(
        path = "/admin/licenses/:key/revoke",
        method = "post",
        operation_id = "revokeLicense"
    )]
    async fn revoke(
        &self,
        request: &Request,
        auth: AdminAuth,
        /// The license key (case and separators do not matter).
        #[oai(validator(custom = "super::params::KeyCheck"))]
        key: Path<KeyParam>,
        body: Json<ActionRequest>,
    ) -> AdminResponse<LicenseDetail> {
        self.respond(
            async {
                self.admit(request, &auth)?;
                self.act(&key, ManualAction::Revoke, &body.reason).await
            }
            .await,
        )
    }

    /// Reinstate a revoked or suspended license by hand
    ///
    /// The license becomes `active` (a superseded code cannot: its replacement is the live one);
    /// the reason is written to its events.
    #[oai(
        path = "/admin/licenses/:key/reinstate",
        method = "post",
        operation_id = "reinstateLicense"
    )]
    async fn reinstate(
        &self,
        request: &Request,
        auth: AdminAuth,
        /// The license key (case and separators do not matter).
        #[oai(validator(custom = "super::params::KeyCheck"))]
        key: Path<KeyParam>,
        body: Json<ActionRequest>,
    ) -> AdminResponse<LicenseDetail> {
        self.respond(
            async {
                self.admit(request, &auth)?;
                self.act(&key, ManualAction::Reinstate, &body.reason).await
            }
            .await,
        )
    }

    /// Remove an activation by hand
    ///
    /// Frees the seat of a machine the buyer no longer has (the activation `id` is listed by
    /// `GET /admin/licenses/{key}`); answers the license as it stands. No such activation on this
    /// license: 404 `NOT_FOUND`.
    #[oai(
        path = "/admin/licenses/:key/activations/:id",
        method = "delete",
        operation_id = "removeActivation"
    )]
    async fn remove_activation(
        &self,
        request: &Request,
        auth: AdminAuth,
        key: Path<String>,
        id: Path<i64>,
    ) -> AdminResponse<LicenseDetail> {
        self.respond(
            async {
                self.admit(request, &auth)?;
                if !admin::remove_activation(self.service.writer(), &key, id.0).await? {
                    return Err(AdminFailure::NotFound);
                }
                tracing::info!(activation = id.0, "activation removed by support");
                self.detail(&key).await
            }
            .await,
        )
    }

    /// Events for Nexway's DMP
    ///
    /// The outbox, newest first: what was reported (`register licences` on a first activation),
    /// what is waiting for a retry and what the DMP refused (`failed`, with the reason).
    #[oai(path = "/admin/events", method = "get", operation_id = "listDmpEvents")]
    async fn dmp_events(
        &self,
        request: &Request,
        auth: AdminAuth,
        /// pending | delivered | failed
        state: Query<Option<EventStateFilter>>,
        /// From 1.
        #[oai(
            default = "first_page",
            validator(minimum(value = "1"), maximum(value = "100000"))
        )]
        page: Query<u64>,
        #[oai(
            name = "perPage",
            default = "default_per_page",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        per_page: Query<u64>,
    ) -> AdminResponse<DmpEventList> {
        self.respond(
            async {
                self.admit(request, &auth)?;
                let state = state.0.map(Into::into);
                let (found, total) =
                    admin::events(self.service.db(), state, page.0, per_page.0).await?;
                Ok(DmpEventList {
                    page: page.0,
                    per_page: per_page.0,
                    total_results: total,
                    total_pages: total.div_ceil(per_page.0),
                    results: found.into_iter().map(DmpEventDto::from).collect(),
                })
            }
            .await,
        )
    }

    /// Retry a failed DMP event
    ///
    /// Puts a `failed` event back in line, due now, its attempts counted afresh (after fixing
    /// what the DMP refused, e.g. the credentials). A pending or delivered event: 409.
    #[oai(
        path = "/admin/events/:id/retry",
        method = "post",
        operation_id = "retryDmpEvent"
    )]
    async fn retry_dmp_event(
        &self,
        request: &Request,
        auth: AdminAuth,
        id: Path<i64>,
    ) -> AdminResponse<DmpEventDto> {
        self.respond(
            async {
                self.admit(request, &auth)?;
                let event = id.0;
                let retried = self
                    .service
                    .writer()
                    .run(move |txn| Box::pin(admin::retry_event(txn, event)))
                    .await?;
                match retried {
                    admin::Retried::Queued(event) => {
                        tracing::info!(event = id.0, "DMP event retried by support");
                        Ok(event.into())
                    }
                    admin::Retried::NotFailed => Err(AdminFailure::InvalidTransition),
                    admin::Retried::NoSuchEvent => Err(AdminFailure::NotFound),
                }
            }
            .await,
        )
    }

    /// The configured products, their policies and, for pool products, their stock
    #[oai(
        path = "/admin/products",
        method = "get",
        operation_id = "listProducts"
    )]
    async fn products(&self, request: &Request, auth: AdminAuth) -> AdminResponse<Vec<ProductDto>> {
        self.respond(
            async {
                self.admit(request, &auth)?;
                let mut products = Vec::new();
                for (id, policy) in self.service.catalog().products() {
                    let stock = match policy.generator.kind() {
                        GeneratorKind::Pool => Some(
                            pool::stock(self.service.db(), id)
                                .await
                                .map_err(crate::error::Error::from)?
                                .into(),
                        ),
                        GeneratorKind::Random
                        | GeneratorKind::Hmac
                        | GeneratorKind::Signed
                        | GeneratorKind::Custom => None,
                    };
                    products.push(ProductDto {
                        publisher_product_id: id.to_owned(),
                        name: policy.name.clone(),
                        max_quantity: policy.max_quantity,
                        term: policy.term.to_string(),
                        renew: policy.renew.as_str().into(),
                        upgrade: policy.upgrade.as_str().into(),
                        reactivate: policy.reactivate.as_str().into(),
                        generator: policy.generator.name().into(),
                        max_activations: policy.max_activations,
                        stock,
                    });
                }
                Ok(products)
            }
            .await,
        )
    }

    /// Load codes into a product's pool
    ///
    /// The body is a CSV file: the first column of each line is a code (a header line `code` is
    /// skipped). Codes already known are skipped, never duplicated; each is handed out at most
    /// once. Same as `nexkey keys import --product P file.csv`.
    #[oai(
        path = "/admin/products/:product/pool",
        method = "post",
        operation_id = "importPoolCodes"
    )]
    async fn import_pool(
        &self,
        request: &Request,
        auth: AdminAuth,
        /// A product configured with the `pool` generator (any other: 404 NOT_FOUND).
        #[oai(validator(
            min_length = 1,
            max_length = 256,
            pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
        ))]
        product: Path<String>,
        body: CsvBody,
    ) -> AdminResponse<ImportResult> {
        self.respond(
            async {
                self.admit(request, &auth)?;
                let is_pool = self.service.catalog().products().any(|(id, policy)| {
                    id == product.0.as_str() && policy.generator.kind() == GeneratorKind::Pool
                });
                if !is_pool {
                    // This product has no pool to load: the resource does not exist.
                    return Err(AdminFailure::NotFound);
                }
                let imported =
                    admin::import_pool(self.service.writer(), &product, body.text()).await?;
                tracing::info!(product = %product.0, imported = imported.report.imported, "pool codes imported by support");
                Ok(ImportResult {
                    imported: imported.report.imported,
                    skipped: imported.report.skipped,
                    stock: imported.stock.into(),
                })
            }
            .await,
        )
    }
}

fn first_page() -> u64 {
    1
}

fn default_per_page() -> u64 {
    25
}
