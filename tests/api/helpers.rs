//! `spawn_app()`: a real nexkey server on a free loopback port over its own fresh database.

use std::net::SocketAddr;

use nexkey::app::{App, route};
use nexkey::config::{BasicCredential, Settings};
use nexkey::nexway::NexwayCredentials;
use poem::Server;
use poem::listener::{Acceptor, Listener, TcpListener};
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait};
use serde_json::Value;

pub const USER: &str = "nexway";
pub const PASSWORD: &str = "correct-horse-battery";

pub struct TestApp {
    /// "sqlite", "postgres" or "mysql", printed in assertion messages.
    pub backend: &'static str,
    pub address: SocketAddr,
    pub db: DatabaseConnection,
    pub database_url: String,
    pub http: reqwest::Client,
    _dir: std::sync::Arc<tempfile::TempDir>,
}

/// One app per available backend: SQLite always, then each server of [`test_servers`].
pub async fn backends() -> Vec<TestApp> {
    backends_with(|_| {}).await
}

/// As [`backends`], with settings adjusted by `configure` (policies, limits…).
pub async fn backends_with(configure: impl Fn(&mut Settings)) -> Vec<TestApp> {
    let mut apps = vec![spawn_app(Backend::Sqlite, &configure).await];
    for server in test_servers() {
        apps.push(spawn_app(Backend::Server(server), &configure).await);
    }
    apps
}

/// The database servers the suite also runs on: `NEXKEY_TEST_DATABASE_URL`, a comma-separated
/// list of PostgreSQL (`postgres://…`) and MariaDB/MySQL (`mysql://…`) server URLs.
pub fn test_servers() -> Vec<String> {
    std::env::var("NEXKEY_TEST_DATABASE_URL")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The backend name of a database URL, for assertion messages.
pub fn backend_name(url: &str) -> &'static str {
    if url.starts_with("mysql:") {
        "mysql"
    } else if url.starts_with("postgres") {
        "postgres"
    } else {
        "sqlite"
    }
}

pub enum Backend {
    Sqlite,
    /// A fresh database on this server.
    Server(String),
}

pub async fn spawn_app(backend: Backend, configure: &impl Fn(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings {
        data_dir: dir.path().to_owned(),
        ..Settings::default()
    };
    settings.nexway.credentials = vec![BasicCredential {
        user: USER.into(),
        password: PASSWORD.to_string().into(),
    }];
    let (name, url) = match backend {
        Backend::Sqlite => ("sqlite", settings.database_url()),
        Backend::Server(server) => (backend_name(&server), fresh_database(&server).await),
    };
    settings.database_url = Some(url.clone());
    configure(&mut settings);
    let db = nexkey::store::connect(&url).await.expect("connect");
    nexkey::store::migrate(&db).await.expect("migrate");
    start_server(name, settings, db, std::sync::Arc::new(dir)).await
}

async fn start_server(
    backend: &'static str,
    settings: Settings,
    db: DatabaseConnection,
    dir: std::sync::Arc<tempfile::TempDir>,
) -> TestApp {
    let database_url = settings.database_url();
    let idle_timeout = settings.request_timeout();
    let credentials = NexwayCredentials::new(&settings.nexway.credentials);
    let app = App::new(
        &settings,
        db.clone(),
        credentials,
        &crate::keygen::test_generators(),
    )
    .expect("the test settings build an app");

    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .expect("bind");
    let address = acceptor.local_addr()[0]
        .as_socket_addr()
        .copied()
        .expect("tcp address");
    tokio::spawn(
        Server::new_with_acceptor(nexkey::app::guard_connections(acceptor, &settings))
            .idle_timeout(idle_timeout)
            .run(route(app)),
    );
    TestApp {
        backend,
        address,
        db,
        database_url,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

/// Creates an empty database for one test on the server of `admin_url` (PostgreSQL or
/// MariaDB/MySQL), and returns its URL.
pub async fn fresh_database(admin_url: &str) -> String {
    let admin = sea_orm::Database::connect(admin_url)
        .await
        .unwrap_or_else(|e| panic!("NEXKEY_TEST_DATABASE_URL names {admin_url}: {e}"));
    // `NEXKEY_TEST_RUN` tags the databases of one run, so a run drops its own and no other's.
    let run = std::env::var("NEXKEY_TEST_RUN").unwrap_or_else(|_| "local".into());
    let name = format!("nexkey_test_{run}_{}", uuid::Uuid::new_v4().simple());
    let create = match backend_name(admin_url) {
        "mysql" => format!("CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"),
        _ => format!("CREATE DATABASE {name}"),
    };
    admin
        .execute_unprepared(&create)
        .await
        .expect("create database");
    admin.close().await.ok();
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (admin_url, String::new()),
    };
    // The server part: everything before the database path, if the URL names one.
    let authority_start = base.find("://").map_or(0, |at| at + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    format!("{server}/{name}{query}")
}

impl TestApp {
    /// A second server, with its own connection pool, over the same database: what two nexkey
    /// processes sharing one database look like to that database.
    pub async fn twin(&self) -> TestApp {
        self.twin_with(|_| {}).await
    }

    /// As [`TestApp::twin`], with settings adjusted by `configure` (the same policies as the first).
    pub async fn twin_with(&self, configure: impl Fn(&mut Settings)) -> TestApp {
        let mut settings = Settings {
            data_dir: self._dir.path().to_owned(),
            ..Settings::default()
        };
        settings.nexway.credentials = vec![BasicCredential {
            user: USER.into(),
            password: PASSWORD.to_string().into(),
        }];
        settings.database_url = Some(self.database_url.clone());
        configure(&mut settings);
        let db = nexkey::store::connect(&self.database_url)
            .await
            .expect("connect");
        start_server(self.backend, settings, db, self._dir.clone()).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// POSTs a JSON body to `/licenses/{operation}` with Nexway's credentials.
    pub async fn call(&self, operation: &str, body: &Value) -> reqwest::Response {
        self.post(operation, body.to_string()).await
    }

    pub async fn post(&self, operation: &str, body: String) -> reqwest::Response {
        self.http
            .post(self.url(&format!("/licenses/{operation}")))
            .basic_auth(USER, Some(PASSWORD))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request")
    }

    /// Rows in each table, to check that a refused call left nothing behind.
    pub async fn row_counts(&self) -> [u64; 4] {
        use entity::prelude::*;
        [
            Customer::find().count(&self.db).await.unwrap(),
            Fulfillment::find().count(&self.db).await.unwrap(),
            License::find().count(&self.db).await.unwrap(),
            LicenseEvent::find().count(&self.db).await.unwrap(),
        ]
    }
}

/// The status and JSON body of an answer.
pub async fn json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, body)
}

/// A legacy `LicenseRequest` for `new`.
pub fn legacy_new(fulfillment: &str, product: &str, quantity: i64) -> Value {
    serde_json::json!({
        "metadata": {"order": format!("ORD-{fulfillment}"), "externalContext": "campaign=winter"},
        "product": {
            "nexwayFulfillmentId": fulfillment,
            "nexwayProductId": "NX-1",
            "publisherProductId": product,
            "quantity": quantity
        },
        "user": {"email": "buyer@example.com", "firstName": "Ada", "lastName": "Lovelace"}
    })
}

/// Nexway's current default body for `new`.
pub fn current_new(fulfillment: &str, order: &str, product: &str) -> Value {
    serde_json::json!({
        "fulfillmentId": fulfillment,
        "checkout": {"orderId": order, "subscriptionId": format!("SUB-{fulfillment}"),
                     "price": {"grossPrice": 29.99, "currency": "EUR"}},
        "user": {"id": "U-1", "email": "buyer@example.com", "country": "FR", "locale": "fr-FR"},
        "product": {"id": "2b7c5f0e-1111-4c1d-9f3e-000000000001", "name": "Acme Pro",
                    "publisherProductId": product}
    })
}

/// The activation codes of an answer, at Nexway's extractor path `$.licenses[*].activationCode`.
pub fn codes(answer: &Value) -> Vec<String> {
    answer["licenses"]
        .as_array()
        .expect("licenses array")
        .iter()
        .map(|license| license["activationCode"].as_str().expect("code").to_owned())
        .collect()
}

pub const ADMIN_KEY: &str = "support-key-0123456789abcdef";

/// Settings with one admin API key.
pub fn with_admin_key(settings: &mut Settings) {
    settings.admin.keys = vec![ADMIN_KEY.to_string().into()];
}

impl TestApp {
    /// GETs an admin path with the admin API key as the Basic user name.
    pub async fn admin_get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .basic_auth(ADMIN_KEY, None::<&str>)
            .send()
            .await
            .expect("request")
    }
}

/// Awaits concurrent calls and asserts each was answered 200 with the very same bytes.
pub async fn one_answer(
    backend: &str,
    calls: impl IntoIterator<Item = impl std::future::Future<Output = reqwest::Response>>,
) -> Vec<u8> {
    let mut answers = Vec::new();
    for response in futures::future::join_all(calls).await {
        assert_eq!(response.status(), 200, "{backend}");
        answers.push(response.bytes().await.expect("body").to_vec());
    }
    assert!(
        answers.iter().all(|answer| *answer == answers[0]),
        "{backend}: answers differ"
    );
    answers.swap_remove(0)
}

impl TestApp {
    /// Moves a license's dates into the past, as time would: nexkey never issues a license
    /// already expired, so a test of expiry issues one and lets it age.
    pub async fn backdate(&self, code: &str, start: &str, end: &str) {
        use sea_orm::{ColumnTrait, QueryFilter};
        let date = |text: &str| chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap();
        let updated = entity::license::Entity::update_many()
            .col_expr(entity::license::Column::StartDate, date(start).into())
            .col_expr(entity::license::Column::EndDate, date(end).into())
            .filter(entity::license::Column::ActivationCode.eq(code))
            .exec(&self.db)
            .await
            .unwrap();
        assert_eq!(updated.rows_affected, 1, "{code} not stored");
    }
}
