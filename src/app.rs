//! Builds the HTTP application (APIs, docs, middleware) and serves it.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use poem::endpoint::BoxEndpoint;
use poem::listener::{Listener, TcpListener};
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route, Server};
use poem_openapi::OpenApiService;
use sea_orm::DatabaseConnection;
use secrecy::ExposeSecret;

use crate::activation::Activations;
use crate::api::activation::ActivationApi;
use crate::api::admin::AdminApi;
use crate::api::admin::page::{LkeyPage, wants_html};
use crate::api::ops::OpsApi;
use crate::api::webhook::WebhookApi;
use crate::api::{AdminGate, HttpError, error_response, framework_error};
use crate::config::{ConfigError, Settings};
use crate::deadline::RequestDeadline;
use crate::error::Error;
use crate::fulfillment::Service;
use crate::keygen::GeneratorRegistry;
use crate::nexway::{NexwayCredentials, NexwayGate};

/// What the application needs to answer calls.
pub struct App {
    /// The bearer token `GET /metrics` requires, if any.
    pub metrics_token: crate::api::ops::MetricsToken,
    pub service: Arc<Service>,
    pub gate: NexwayGate,
    pub admin_gate: Arc<AdminGate>,
    pub purchase_url: Option<String>,
    pub body_limit: usize,
    pub request_timeout: std::time::Duration,
    /// Whose `X-Forwarded-For` names the client (`crate::api::client_address`).
    pub trusted_proxies: Arc<crate::api::TrustedProxies>,
    pub activations: Arc<Activations>,
    /// Activation calls one client address may make per minute.
    pub activation_rate_limit: u32,
}

impl App {
    /// The application `settings` describe, over `db`, with Nexway's `credentials` and the key
    /// generators `generators` knows (the built-in kinds, and the publisher's own).
    pub fn new(
        settings: &Settings,
        db: DatabaseConnection,
        credentials: NexwayCredentials,
        generators: &GeneratorRegistry,
    ) -> Result<Self, ConfigError> {
        crate::metrics::label_products(settings.products.keys().map(String::as_str));
        let wait = crate::store::Waits::within(settings.request_timeout()).lock;
        let service = Arc::new(Service::new(db, settings.catalog(generators)?, wait));
        // Events are recorded only while reporting is configured.
        let dmp = settings.dmp.enabled().then(|| crate::dmp::Meta {
            salesunit_id: settings.dmp.salesunit_id.clone(),
            platform_id: settings.dmp.platform_id.clone(),
        });
        Ok(App {
            metrics_token: crate::api::ops::MetricsToken(settings.metrics_token.clone()),
            activations: Arc::new(Activations::new(service.clone(), dmp)),
            activation_rate_limit: settings.activation.rate_limit_per_minute,
            service,
            gate: settings.nexway.gate(credentials)?,
            admin_gate: Arc::new(settings.admin.gate()),
            purchase_url: settings.admin.purchase_url.clone(),
            body_limit: settings.body_limit,
            request_timeout: settings.request_timeout(),
            trusted_proxies: Arc::new(settings.server.trusted_proxies()),
        })
    }
}

/// The OpenAPI service: every documented operation.
pub fn api_service(app: &App) -> OpenApiService<(WebhookApi, AdminApi, OpsApi, ActivationApi), ()> {
    let admin = AdminApi::new(
        app.service.clone(),
        app.admin_gate.clone(),
        app.purchase_url.clone(),
    );
    let ops = OpsApi::new(app.service.writer().clone());
    let activation = ActivationApi::new(app.activations.clone(), app.activation_rate_limit);
    OpenApiService::new(
        (WebhookApi::new(app.service.clone()), admin, ops, activation),
        "nexkey",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "License fulfillment server for software publishers selling through Nexway: \
         Nexway calls it on each order event and receives activation codes.\n\n\
         **Finding the licenses** of renew, upgrade, suspend, reactivate and cancel, in this \
         order of trust: the codes the call names (`product.licenses[].activationCode`, \
         `additionalData.ActivationCode`); the `publisherFulfillmentId` / `PublisherLicenseID` \
         nexkey answered earlier; `initialNexwayFulfillmentId`; the call's own fulfillment id \
         (the current body's `fulfillmentId` names the whole license life); \
         `checkout.subscriptionId`. The first reference that finds licenses is the call's scope, \
         and named codes outside it are refused; nothing found is `404 UNKNOWN_FULFILLMENT`. \
         A code replaced by reissue stands for its replacement.",
    )
}

/// The spec as `nexkey openapi` exports it and `/openapi.json` serves it.
pub fn openapi_json() -> String {
    let settings = Settings::default();
    let credentials = NexwayCredentials::new(&settings.nexway.credentials);
    let app = App::new(
        &settings,
        DatabaseConnection::default(),
        credentials,
        &GeneratorRegistry::new(),
    )
    .expect("the default settings build an app");
    let generated = api_service(&app).spec();
    crate::api::spec::truthful(&generated)
}

/// The whole HTTP application.
pub fn route(app: App) -> BoxEndpoint<'static, Response> {
    let api = api_service(&app);
    let generated = api.spec();
    let document = crate::api::spec::truthful(&generated);
    let routes = Arc::new(crate::api::edge::Routes::from_spec(&document));
    // Swagger UI embeds the document: the truthful one.
    let docs_html = api.swagger_ui_html().replace(&generated, &document);
    let docs = poem::endpoint::make_sync(move |_| poem::web::Html(docs_html.clone()));
    let spec = poem::endpoint::make_sync(move |_| {
        Response::builder()
            .content_type("application/json; charset=utf-8")
            .body(document.clone())
    });
    let body_limit = app.body_limit;
    let timeout = app.request_timeout;
    let page = Arc::new(LkeyPage {
        service: app.service.clone(),
        gate: app.admin_gate.clone(),
        purchase_url: app.purchase_url.clone(),
    });
    Route::new()
        .nest(
            "/",
            api.around(move |endpoint, request| limit_body(endpoint, request, body_limit, timeout))
                .around(move |endpoint, request| {
                    pages_for_browsers(endpoint, request, page.clone())
                }),
        )
        .nest("/docs", docs)
        .at("/openapi.json", spec)
        .data(app.gate)
        .data(app.metrics_token)
        .catch_all_error(
            |error: poem::Error| async move { error_response(&framework_error(&error)) },
        )
        // A bug (in nexkey or in a publisher's own key generator) is a 500 in the documented
        // shape, logged, not a connection cut; on SQLite the writer rolls the call back alone.
        .with(poem::middleware::CatchPanic::new().with_handler(|_| {
            tracing::error!("a call's handler panicked, answering 500");
            error_response(&crate::error::Error::Internal.into())
        }))
        .around(move |endpoint, request| crate::api::edge::edge(endpoint, request, routes.clone()))
        .around(crate::observe::observe)
        .data(app.trusted_proxies)
        .boxed()
}

/// The lkey URL opened in a browser gets the page; every other request goes to the API.
async fn pages_for_browsers<E: Endpoint>(
    endpoint: Arc<E>,
    request: Request,
    page: Arc<LkeyPage>,
) -> poem::Result<Response> {
    if wants_html(&request) {
        return Ok(page.render(&request).await);
    }
    Ok(endpoint.call(request).await?.into_response())
}

/// Reads the body up to the limit (also when it is chunked, without a length) before anything
/// parses it; a larger body is refused with 413 and never buffered whole, a body that takes
/// longer than `timeout` to arrive with 408.
async fn limit_body<E: Endpoint>(
    endpoint: Arc<E>,
    mut request: Request,
    limit: usize,
    timeout: std::time::Duration,
) -> poem::Result<Response> {
    let started = std::time::Instant::now();
    let body = request.take_body();
    let Ok(read) = tokio::time::timeout(timeout, body.into_bytes_limit(limit)).await else {
        // The operation, not the path: support's paths carry license keys.
        let operation = crate::observe::operation_of(request.uri().path());
        tracing::info!(operation, "request body too slow, cut off");
        return Ok(error_response(&HttpError::RequestTimeout));
    };
    match read {
        Ok(bytes) => {
            request.set_body(bytes);
            let budget = handling_budget(timeout, started.elapsed());
            let operation = crate::observe::operation_of(request.uri().path());
            match tokio::time::timeout(budget, endpoint.call(request)).await {
                Ok(response) => Ok(response?.into_response()),
                Err(_) => {
                    // Nothing was committed, or the commit is stored and a retry replays it.
                    tracing::error!(
                        operation,
                        budget_ms = budget.as_millis() as u64,
                        "call not finished in time (database waits?), answering 503"
                    );
                    crate::metrics::database_error(crate::store::fault::Fault::Contention.label());
                    Ok(error_response(&Error::StorageUnavailable.into()))
                }
            }
        }
        Err(poem::error::ReadBodyError::PayloadTooLarge) => {
            Ok(error_response(&HttpError::PayloadTooLarge))
        }
        // The connection's request deadline (crate::deadline) ran out while the body arrived.
        Err(error) if timed_out(&error) => Ok(error_response(&HttpError::RequestTimeout)),
        Err(error) => Ok(error_response(
            &Error::InvalidRequest(format!("cannot read the body: {error}")).into(),
        )),
    }
}

/// How long a received call may take to be handled: what is left of the connection's request
/// deadline, less a margin to write the answer before the deadline cuts the connection.
fn handling_budget(
    deadline: std::time::Duration,
    spent: std::time::Duration,
) -> std::time::Duration {
    let margin = (deadline / 10).max(std::time::Duration::from_millis(200));
    deadline
        .saturating_sub(spent)
        .saturating_sub(margin)
        .max(std::time::Duration::from_millis(100))
}

fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        cause = error.source();
    }
    false
}

/// Connects, migrates when configured to, and serves until SIGTERM or SIGINT, making codes with
/// the generators `generators` knows (`GeneratorRegistry::new()`: the built-in kinds).
pub async fn serve(settings: Settings, generators: GeneratorRegistry) -> anyhow::Result<()> {
    let db = open_database(&settings).await?;
    if settings.auto_migrate {
        crate::store::migrate(&db)
            .await
            .context("cannot apply the migrations")?;
    }
    // With Basic turned off (signature required), no password is generated for nobody to use.
    let (credentials, generated) = if settings.nexway.basic {
        NexwayCredentials::load_or_generate(&settings.nexway.credentials, &settings.data_dir)
            .context("cannot read or create the Nexway credentials file")?
    } else {
        (NexwayCredentials::new(&[]), None)
    };
    if let Some(generated) = generated {
        // Printed once, on the terminal of whoever started nexkey the first time; never logged.
        // Not println!: a closed stdout must not stop the server (the file keeps the password).
        let _ = writeln!(
            std::io::stdout(),
            "No Nexway credentials were configured: generated user {:?} with password {:?}, kept in {} (owner-only).",
            generated.user,
            generated.password.expose_secret(),
            generated.path.display()
        );
    }
    let acceptor = TcpListener::bind(settings.bind.clone())
        .into_acceptor()
        .await
        .with_context(|| format!("cannot listen on {}", settings.bind))?;
    let app = App::new(&settings, db.clone(), credentials, &generators)?;
    if app.admin_gate.is_closed() {
        tracing::warn!(
            "no admin API keys configured (NEXKEY_ADMIN_KEYS): the support side answers 401 to every call"
        );
    }
    for warning in settings.warnings() {
        tracing::warn!("{warning}");
    }
    // One signal stops both the server and the DMP sender (on an error, the process ends).
    let (stopping, stop) = tokio::sync::watch::channel(false);
    let sender = crate::dmp::spawn(settings.dmp.endpoint(), app.service.writer().clone(), stop)
        .context("cannot start the DMP sender")?;
    if sender.is_none() {
        tracing::info!("reporting to Nexway's DMP is off (NEXKEY_DMP_URL unset)");
    }
    tracing::info!(bind = %settings.bind, "nexkey listening");
    Server::new_with_acceptor(guard_connections(acceptor, &settings))
        // A keep-alive connection silent for this long is closed.
        .idle_timeout(settings.request_timeout())
        .run_with_graceful_shutdown(
            route(app),
            async move {
                shutdown_signal().await;
                stopping.send_replace(true);
            },
            Some(std::time::Duration::from_secs(
                settings.shutdown_timeout_secs,
            )),
        )
        .await
        .context("server error")?;
    if let Some(sender) = sender {
        // It settles the attempt in flight, then stops; an attempt cut off here is claimed
        // again when its lease runs out.
        let grace = std::time::Duration::from_secs(settings.shutdown_timeout_secs);
        let abort = sender.abort_handle();
        if tokio::time::timeout(grace, sender).await.is_err() {
            abort.abort();
            tracing::warn!("the DMP sender did not stop in time: its attempt will be retried");
        }
    }
    db.close().await.context("cannot close the database")?;
    tracing::info!("nexkey stopped");
    Ok(())
}

/// The acceptor `serve` uses: the request deadline, the connection limit, HTTP/1.1 only.
pub fn guard_connections<A: poem::listener::Acceptor>(
    acceptor: A,
    settings: &Settings,
) -> RequestDeadline<A> {
    RequestDeadline::new(
        acceptor,
        settings.request_timeout(),
        settings.server.max_connections,
    )
}

/// Opens the configured database, creating the data directory of the default SQLite file.
pub async fn open_database(settings: &Settings) -> anyhow::Result<DatabaseConnection> {
    if settings.database_url.is_none() {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("cannot create {}", settings.data_dir.display()))?;
    }
    let waits = crate::store::Waits::within(settings.request_timeout());
    crate::store::connect_with(&settings.database_url(), waits)
        .await
        .context("cannot open the database")
}

/// Resolves on SIGINT (ctrl-c) or SIGTERM (what orchestrators send).
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received, finishing calls in flight");
}
