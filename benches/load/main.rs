//! `cargo bench --bench load`: the release `nexkey serve` on a free loopback port, driven at a
//! fixed concurrency, printing one table per backend: calls/s and p50/p99/p999 for each hot path,
//! beside the two limits measured in the same run (see BENCHMARKS.md):
//! - the HTTP limit: `GET /health/live` on the same server (no database);
//! - the storage limit: the rows a `new` with one code writes (call claimed, customer upserted,
//!   license, its event, the answer), committed by a bare loop through the same store functions,
//!   pool and durability settings, with no HTTP, no reads before and no planning.
//!
//! Environment:
//! - `NEXKEY_LOAD_LICENSES`: licenses preloaded in bulk before the run (10000 by default);
//! - `NEXKEY_LOAD_SECS`: seconds per measured path (3 by default);
//! - `NEXKEY_LOAD_CONCURRENCY`: calls in flight (32 by default);
//! - `NEXKEY_LOAD_POSTGRES_URL` (else the PostgreSQL one of `NEXKEY_TEST_DATABASE_URL`): a
//!   PostgreSQL server's admin URL;
//!   a fresh database is made on it for the run and dropped afterwards. Without one, SQLite only;
//! - `NEXKEY_LOAD_BACKENDS`: `sqlite`, `postgres` or both (comma separated; both by default).

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use entity::vocabulary::{Cause, Operation, Status};
use entity::{customer, fulfillment, license, license_event};
use nexkey::fulfillment::{Buyer as CommandBuyer, Email};
use nexkey::store::{self, customers, fulfillments, licenses};
use sea_orm::ActiveValue::Set;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, Statement, TransactionTrait,
};

const USER: &str = "nexway";
const PASSWORD: &str = "load-test-password";
const ADMIN_KEY: &str = "load-support-key-0123456789";
const EMAIL: &str = "load@example.com";
const PRODUCT: &str = "ACME-PRO";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

struct Settings {
    licenses: usize,
    duration: Duration,
    concurrency: usize,
}

fn main() {
    // `cargo bench` passes `--bench` (and filters): nothing to choose here.
    let settings = Settings {
        licenses: env_or("NEXKEY_LOAD_LICENSES", 10_000),
        duration: Duration::from_secs_f64(env_or("NEXKEY_LOAD_SECS", 3.0)),
        concurrency: env_or("NEXKEY_LOAD_CONCURRENCY", 32),
    };
    let wanted = std::env::var("NEXKEY_LOAD_BACKENDS").unwrap_or("sqlite,postgres".into());
    // The test variable may list several servers: the PostgreSQL one among them.
    let postgres = std::env::var("NEXKEY_LOAD_POSTGRES_URL").ok().or_else(|| {
        std::env::var("NEXKEY_TEST_DATABASE_URL")
            .ok()?
            .split(',')
            .map(str::trim)
            .find(|url| url.starts_with("postgres"))
            .map(str::to_owned)
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "nexkey load: {} licenses preloaded, concurrency {}, {:?} per path",
        settings.licenses, settings.concurrency, settings.duration
    );
    let mut failed = 0;
    if wanted.contains("sqlite") {
        failed += runtime.block_on(run_backend(&settings, None));
    }
    if wanted.contains("postgres") {
        match &postgres {
            Some(admin) => failed += runtime.block_on(run_backend(&settings, Some(admin))),
            None => println!("postgres: skipped (set NEXKEY_LOAD_POSTGRES_URL)"),
        }
    }
    // A call that failed is a bug, not a figure: CI runs this briefly to notice.
    if failed > 0 {
        eprintln!("{failed} calls failed");
        std::process::exit(1);
    }
}

/// A database for the run: a SQLite file in a temporary directory, or a fresh PostgreSQL
/// database (dropped on drop).
struct Database {
    url: String,
    dir: tempfile::TempDir,
    postgres: Option<(String, String)>,
}

impl Database {
    async fn make(admin: Option<&str>) -> Database {
        let dir = tempfile::tempdir().unwrap();
        match admin {
            None => Database {
                url: format!("sqlite://{}/nexkey.db?mode=rwc", dir.path().display()),
                dir,
                postgres: None,
            },
            Some(admin) => {
                let name = format!("nexkey_load_{}", std::process::id());
                let db = sea_orm::Database::connect(admin).await.unwrap();
                db.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .unwrap();
                db.execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .unwrap();
                let (base, _) = admin.rsplit_once('/').unwrap();
                Database {
                    url: format!("{base}/{name}"),
                    dir,
                    postgres: Some((admin.to_owned(), name)),
                }
            }
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.postgres.take() {
            // Dropped from a plain thread: the runtime may be the caller's.
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    if let Ok(db) = sea_orm::Database::connect(&admin).await {
                        let _ = db
                            .execute_unprepared(&format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            ))
                            .await;
                    }
                });
            })
            .join()
            .unwrap();
        }
    }
}

/// One row of the table.
struct Figure {
    path: &'static str,
    calls: usize,
    failed: usize,
    elapsed: Duration,
    latencies: Vec<u32>,
}

impl Figure {
    fn rate(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let index =
            ((self.latencies.len() as f64 * p).ceil() as usize).clamp(1, self.latencies.len());
        self.latencies[index - 1] as f64 / 1000.0
    }
}

/// Runs every path on one backend and prints its table; returns the calls that failed.
async fn run_backend(settings: &Settings, admin: Option<&str>) -> usize {
    let backend = if admin.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let database = Database::make(admin).await;
    let db = store::connect(&database.url).await.unwrap();
    store::migrate(&db).await.unwrap();
    let started = Instant::now();
    let preloaded = preload(&db, settings.licenses).await;
    println!(
        "{backend}: {} licenses preloaded in {:.1} s",
        settings.licenses,
        started.elapsed().as_secs_f64()
    );
    // The storage limit: one writer and `concurrency` writers, the better of the two.
    let single = storage_limit(&db, 1, settings.duration).await;
    let many = storage_limit(&db, settings.concurrency, settings.duration).await;
    let storage_rate = single.rate().max(many.rate());
    db.close().await.unwrap();

    let server = Server::start(&database);
    let client = Arc::new(
        reqwest::Client::builder()
            .pool_max_idle_per_host(settings.concurrency)
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
    );
    // Leaked: the workers' closures are 'static, and the run ends with the process.
    let base: &'static str = Box::leak(format!("http://{}", server.address).into_boxed_str());
    let run = std::process::id();

    let http = drive(settings, "GET /health/live", &client, move |_, _| {
        Call::get(format!("{base}/health/live"))
    })
    .await;
    let new_one = drive(settings, "new (1 code)", &client, move |worker, n| {
        Call::new(base, &new_body(&format!("N1-{run}-{worker}-{n}"), 1))
    })
    .await;
    let new_ten = drive(settings, "new (10 codes)", &client, move |worker, n| {
        Call::new(base, &new_body(&format!("N10-{run}-{worker}-{n}"), 10))
    })
    .await;
    // Replays of the calls answered above, cycling over every one of them.
    let answered = new_one.calls.max(1);
    let per_worker = answered / settings.concurrency + 1;
    let replay = drive(settings, "replay of new", &client, move |worker, n| {
        let n = n % per_worker;
        Call::new(base, &new_body(&format!("N1-{run}-{worker}-{n}"), 1))
    })
    .await;
    let codes: &'static [String] = preloaded.codes.leak();
    let lookup = drive(settings, "lkey lookup", &client, move |worker, n| {
        let code = &codes[(worker * 7919 + n * 104_729) % codes.len()];
        Call::get(format!("{base}/nexus/lkey/{code}")).admin()
    })
    .await;
    // Suspend, reactivate, suspend… of preloaded lives, each worker its own life, each call a
    // new one (its own fulfillment id).
    let lives: &'static [String] = preloaded.lives.leak();
    let lifecycle = drive(settings, "suspend/reactivate", &client, move |worker, n| {
        let life = &lives[(worker * (lives.len() / 64).max(1)) % lives.len()];
        let operation = if n % 2 == 0 { "suspend" } else { "reactivate" };
        let body = serde_json::json!({
            "product": {
                "nexwayFulfillmentId": format!("{operation}-{run}-{worker}-{n}"),
                "initialNexwayFulfillmentId": life,
                "nexwayProductId": "NX-1",
                "publisherProductId": PRODUCT,
                "quantity": 1
            },
            "user": {"email": EMAIL}
        });
        Call::post(format!("{base}/licenses/{operation}"), body.to_string())
    })
    .await;
    drop(server);

    println!();
    println!(
        "{backend}, {} licenses preloaded, concurrency {}:",
        settings.licenses, settings.concurrency
    );
    println!(
        "| path | calls/s | p50 ms | p99 ms | p999 ms | failed | limit | ratio |\n|---|---|---|---|---|---|---|---|"
    );
    let row = |figure: &Figure, limit: Option<(&str, f64)>| {
        let (name, ratio) = match limit {
            Some((name, rate)) => (name, format!("{:.0}%", 100.0 * figure.rate() / rate)),
            None => ("", String::new()),
        };
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {name} | {ratio} |",
            figure.path,
            figure.rate(),
            figure.percentile(0.50),
            figure.percentile(0.99),
            figure.percentile(0.999),
            figure.failed,
        );
    };
    let http_limit = Some(("HTTP", http.rate()));
    let storage_limit = Some(("storage", storage_rate));
    row(&http, None);
    row(&single, None);
    row(&many, None);
    row(&new_one, storage_limit);
    row(&new_ten, storage_limit);
    row(&replay, http_limit);
    row(&lookup, http_limit);
    row(&lifecycle, storage_limit);
    println!(
        "(limits: HTTP = GET /health/live; storage = the rows of a 1-code new committed by a bare loop, \
         transactions/s, the better of 1 and {} writers; every call one transaction)",
        settings.concurrency
    );
    println!();
    [
        &single, &many, &new_one, &new_ten, &replay, &lookup, &lifecycle,
    ]
    .iter()
    .map(|figure| figure.failed)
    .sum()
}

/// What the bulk load leaves for the run: codes to look up and lives to suspend.
struct Preloaded {
    codes: Vec<String>,
    lives: Vec<String>,
}

/// `count` purchases of one code each by one customer, written in bulk through the entities
/// (multi-row inserts, one transaction per chunk): fulfillment, license and its `new` event.
async fn preload(db: &DatabaseConnection, count: usize) -> Preloaded {
    let now = Utc::now();
    let today = now.date_naive();
    let customer_id = customer::Entity::insert(customer::ActiveModel {
        email: Set(EMAIL.into()),
        created_at: Set(now),
        ..Default::default()
    })
    .exec(db)
    .await
    .unwrap()
    .last_insert_id;
    const CHUNK: usize = 1000;
    let mut codes = Vec::new();
    let mut lives = Vec::new();
    for start in (0..count).step_by(CHUNK) {
        let end = (start + CHUNK).min(count);
        // Ids given explicitly so the three tables can refer to each other without reading back;
        // PostgreSQL's sequences are moved past them afterwards.
        let id = |i: usize| (i + 1) as i64;
        let life = |i: usize| format!("PRE-{i}");
        let code = |i: usize| format!("PRE{i:07}-LOAD-CODE");
        let txn = db.begin().await.unwrap();
        fulfillment::Entity::insert_many((start..end).map(|i| fulfillment::ActiveModel {
            id: Set(id(i)),
            publisher_fulfillment_id: Set(format!("pre-{i}")),
            operation: Set(Operation::New),
            nexway_fulfillment_id: Set(life(i)),
            order_id: Set(String::new()),
            repeat: Set(0),
            pending_life: Set(None),
            pending_buyer: Set(None),
            request_digest: Set("preloaded".into()),
            answer: Set("{}".into()),
            created_at: Set(now),
        }))
        .exec(&txn)
        .await
        .unwrap();
        license::Entity::insert_many((start..end).map(|i| license::ActiveModel {
            id: Set(id(i)),
            activation_code: Set(code(i)),
            lookup_key: Set(licenses::lookup_key(&code(i))),
            publisher_product_id: Set(PRODUCT.into()),
            nexway_product_id: Set(Some("NX-1".into())),
            product_name: Set(None),
            customer_id: Set(customer_id),
            buyer_first_name: Set(None),
            buyer_last_name: Set(None),
            buyer_company_name: Set(None),
            status: Set(Status::Active),
            trial: Set(false),
            start_date: Set(Some(today)),
            end_date: Set(None),
            fulfillment_id: Set(id(i)),
            parent_id: Set(None),
            nexway_fulfillment_id: Set(life(i)),
            initial_nexway_fulfillment_id: Set(None),
            publisher_fulfillment_id: Set(format!("pre-{i}")),
            subscription_id: Set(None),
            order_id: Set(None),
            external_context: Set(None),
            generator: Set("random".into()),
            file: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        }))
        .exec(&txn)
        .await
        .unwrap();
        license_event::Entity::insert_many((start..end).map(|i| license_event::ActiveModel {
            id: Set(id(i)),
            license_id: Set(id(i)),
            from_status: Set(None),
            to_status: Set(Status::Active),
            operation: Set(Cause::New),
            fulfillment_id: Set(Some(id(i))),
            reason: Set(None),
            created_at: Set(now),
        }))
        .exec(&txn)
        .await
        .unwrap();
        txn.commit().await.unwrap();
        // Every 97th: a spread over the whole table, not only its first pages.
        for i in (start..end).filter(|i| i % 97 == 0) {
            codes.push(code(i));
            lives.push(life(i));
        }
    }
    if db.get_database_backend() == DbBackend::Postgres {
        for table in ["fulfillment", "license", "license_event", "customer"] {
            db.execute_raw(Statement::from_string(
                DbBackend::Postgres,
                format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                     (SELECT COALESCE(MAX(id), 1) FROM {table}))"
                ),
            ))
            .await
            .unwrap();
        }
        db.execute_unprepared("ANALYZE").await.unwrap();
    }
    Preloaded { codes, lives }
}

/// The rows a `new` with one code commits, through the store's own functions, `writers` at once.
async fn storage_limit(db: &DatabaseConnection, writers: usize, duration: Duration) -> Figure {
    let until = Instant::now() + duration;
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|writer| {
            let db = db.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut failed = 0;
                let mut n = 0;
                while Instant::now() < until {
                    let call = Instant::now();
                    let id = format!("BARE-{writers}-{writer}-{n}");
                    let email = Email::parse(&buyer_of(&id)).unwrap();
                    let buyer = CommandBuyer {
                        email: Some(email.clone()),
                        ..Default::default()
                    };
                    n += 1;
                    match bare_new(&db, &id, &email, &buyer).await {
                        Ok(()) => latencies.push(call.elapsed().as_micros() as u32),
                        Err(_) => failed += 1,
                    }
                }
                (latencies, failed)
            })
        })
        .collect();
    collect(
        &format!(
            "storage limit ({writers} writer{})",
            if writers == 1 { "" } else { "s" }
        ),
        tasks,
        started,
    )
    .await
}

async fn bare_new(
    db: &DatabaseConnection,
    id: &str,
    email: &Email,
    buyer: &CommandBuyer,
) -> Result<(), sea_orm::DbErr> {
    let txn = db.begin().await?;
    let key = fulfillments::CallKey {
        operation: Operation::New,
        nexway_fulfillment_id: id,
        order_id: "",
    };
    let publisher = format!("bare-{id}");
    let fulfillment_id = fulfillments::claim(&txn, key, 0, &publisher, "digest")
        .await?
        .expect("a fresh call");
    let customer_id = customers::upsert(&txn, email, buyer).await?;
    let code = format!("BARE-{id}");
    let new = licenses::NewLicense {
        activation_code: &code,
        publisher_product_id: PRODUCT,
        nexway_product_id: Some("NX-1"),
        product_name: None,
        customer_id,
        buyer: licenses::Buyer::default(),
        status: Status::Active,
        trial: false,
        start_date: Some(Utc::now().date_naive()),
        end_date: None,
        fulfillment_id,
        parent_id: None,
        nexway_fulfillment_id: id,
        initial_nexway_fulfillment_id: None,
        publisher_fulfillment_id: &publisher,
        subscription_id: None,
        order_id: None,
        external_context: None,
        generator: "random",
        file: None,
    };
    let license = licenses::insert_if_new(&txn, &new)
        .await?
        .expect("a fresh code");
    let event = licenses::NewEvent {
        from: None,
        to: Status::Active,
        cause: Cause::New,
        fulfillment_id: Some(fulfillment_id),
        reason: None,
    };
    licenses::record_event(&txn, license.id, &event).await?;
    fulfillments::record_answer(&txn, fulfillment_id, "{\"licenses\":[]}").await?;
    txn.commit().await
}

async fn collect(
    path: &str,
    tasks: Vec<tokio::task::JoinHandle<(Vec<u32>, usize)>>,
    started: Instant,
) -> Figure {
    let mut latencies = Vec::new();
    let mut failed = 0;
    for task in tasks {
        let (mine, lost) = task.await.unwrap();
        latencies.extend(mine);
        failed += lost;
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    Figure {
        path: Box::leak(path.to_owned().into_boxed_str()),
        calls: latencies.len(),
        failed,
        elapsed,
        latencies,
    }
}

/// One HTTP call of a path: method, URL, body, credentials.
struct Call {
    url: String,
    body: Option<String>,
    admin: bool,
}

impl Call {
    fn get(url: String) -> Call {
        Call {
            url,
            body: None,
            admin: false,
        }
    }

    fn post(url: String, body: String) -> Call {
        Call {
            url,
            body: Some(body),
            admin: false,
        }
    }

    fn new(base: &str, body: &str) -> Call {
        Call::post(format!("{base}/licenses/new"), body.to_owned())
    }

    fn admin(mut self) -> Call {
        self.admin = true;
        self
    }
}

/// A sale: each to a buyer of its own, as most sales are (a returning buyer's `new` reads the
/// customer row once more).
fn new_body(fulfillment: &str, quantity: u32) -> String {
    serde_json::json!({
        "product": {
            "nexwayFulfillmentId": fulfillment,
            "nexwayProductId": "NX-1",
            "publisherProductId": PRODUCT,
            "quantity": quantity
        },
        "user": {"email": buyer_of(fulfillment), "firstName": "Ada", "lastName": "Lovelace"}
    })
    .to_string()
}

/// The buyer of a sale in the run: one per fulfillment.
fn buyer_of(fulfillment: &str) -> String {
    format!("{}@example.com", fulfillment.to_lowercase())
}

/// `concurrency` workers calling `make(worker, n)` one after another for the run's duration;
/// a call counts when it is answered 200.
async fn drive(
    settings: &Settings,
    path: &'static str,
    client: &Arc<reqwest::Client>,
    make: impl Fn(usize, usize) -> Call + Send + Sync + 'static,
) -> Figure {
    let make = Arc::new(make);
    let until = Instant::now() + settings.duration;
    let started = Instant::now();
    let tasks: Vec<_> = (0..settings.concurrency)
        .map(|worker| {
            let client = client.clone();
            let make = make.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(1 << 16);
                let mut failed = 0;
                let mut n = 0;
                while Instant::now() < until {
                    let call = make(worker, n);
                    n += 1;
                    let request = match call.body {
                        Some(body) => client
                            .post(&call.url)
                            .basic_auth(USER, Some(PASSWORD))
                            .header("content-type", "application/json")
                            .body(body),
                        None if call.admin => client
                            .get(&call.url)
                            .basic_auth(ADMIN_KEY, None::<&str>)
                            .header("accept", "application/json"),
                        None => client.get(&call.url),
                    };
                    let sent = Instant::now();
                    match request.send().await {
                        Ok(answer) => {
                            let status = answer.status().as_u16();
                            let body = answer.bytes().await;
                            if status == 200 && body.is_ok() {
                                latencies.push(sent.elapsed().as_micros() as u32);
                            } else {
                                if failed == 0 && worker == 0 {
                                    eprintln!("{path}: {status} {:?}", body.unwrap_or_default());
                                }
                                failed += 1;
                            }
                        }
                        Err(error) => {
                            if failed == 0 {
                                eprintln!("{path}: {error}");
                            }
                            failed += 1;
                        }
                    }
                }
                (latencies, failed)
            })
        })
        .collect();
    collect(path, tasks, started).await
}

/// `nexkey serve` (the release binary cargo built for this bench) on a free loopback port.
struct Server {
    child: Child,
    address: String,
}

impl Server {
    fn start(database: &Database) -> Server {
        let address = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .to_string();
        let child = Command::new(env!("CARGO_BIN_EXE_nexkey"))
            .arg("serve")
            .current_dir(database.dir.path())
            .env_clear()
            .env("NEXKEY_BIND", &address)
            .env("NEXKEY_DATA_DIR", database.dir.path())
            .env("NEXKEY_DATABASE_URL", &database.url)
            .env("NEXKEY_NEXWAY_USER", USER)
            .env("NEXKEY_NEXWAY_PASSWORD", PASSWORD)
            .env("NEXKEY_ADMIN_KEYS", ADMIN_KEY)
            .env("NEXKEY_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn nexkey");
        let server = Server { child, address };
        let started = Instant::now();
        loop {
            let ready = std::net::TcpStream::connect(&server.address).is_ok();
            if ready {
                return server;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "nexkey did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
