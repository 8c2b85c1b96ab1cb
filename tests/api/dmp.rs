//! Reporting to Nexway's DMP: a real HTTP server on loopback plays the DMP and the sender
//! delivers the outbox to it: retries on 503, refused connections and timeouts; 429 counts as
//! delivered; 401 parks the event as failed until support retries it; several senders share
//! one outbox without sending an event twice; and a real nexkey process restarted with events
//! pending delivers them.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use entity::prelude::OutboxEvent;
use nexkey::config::{DmpSettings, Settings};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::Data;
use poem::{EndpointExt, Route, handler, post};
use sea_orm::{DatabaseConnection, EntityTrait};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::helpers::{
    ADMIN_KEY, PASSWORD, TestApp, USER, backends_with, codes, json, legacy_new, with_admin_key,
};

const DMP_USER: &str = "publisher";
const DMP_PASSWORD: &str = "dmp-password-1234";

/// What the fake DMP saw of one call.
#[derive(Debug, Clone)]
struct Received {
    authorization: Option<String>,
    body: Value,
}

struct Script {
    /// The answers to give, in order; then `then` for ever.
    answers: VecDeque<u16>,
    then: u16,
    /// How long each answer takes.
    delay: Duration,
    received: Vec<Received>,
}

struct FakeDmp {
    address: SocketAddr,
    script: Arc<Mutex<Script>>,
}

#[handler]
async fn dmp_endpoint(
    request: &poem::Request,
    body: String,
    script: Data<&Arc<Mutex<Script>>>,
) -> poem::http::StatusCode {
    let delay = script.lock().unwrap().delay;
    tokio::time::sleep(delay).await;
    let mut script = script.lock().unwrap();
    script.received.push(Received {
        authorization: request
            .headers()
            .get("authorization")
            .map(|value| value.to_str().unwrap().to_owned()),
        body: serde_json::from_str(&body).unwrap_or(Value::Null),
    });
    let status = script.answers.pop_front().unwrap_or(script.then);
    poem::http::StatusCode::from_u16(status).unwrap()
}

impl FakeDmp {
    async fn start(answers: &[u16], then: u16) -> FakeDmp {
        let script = Arc::new(Mutex::new(Script {
            answers: answers.iter().copied().collect(),
            then,
            delay: Duration::ZERO,
            received: Vec::new(),
        }));
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .unwrap();
        let address = *acceptor.local_addr()[0].as_socket_addr().unwrap();
        let app = Route::new()
            .at("/event", post(dmp_endpoint))
            .data(script.clone());
        tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
        FakeDmp { address, script }
    }

    fn url(&self) -> String {
        format!("http://{}/event", self.address)
    }

    fn received(&self) -> Vec<Received> {
        self.script.lock().unwrap().received.clone()
    }

    fn answer(&self, answers: &[u16], then: u16) {
        let mut script = self.script.lock().unwrap();
        script.answers = answers.iter().copied().collect();
        script.then = then;
    }

    fn delay(&self, delay: Duration) {
        self.script.lock().unwrap().delay = delay;
    }
}

fn dmp_settings(url: &str) -> DmpSettings {
    DmpSettings {
        url: Some(url.to_owned()),
        user: Some(DMP_USER.into()),
        password: Some(DMP_PASSWORD.to_string().into()),
        retry_secs: 1,
        max_retry_secs: 2,
        timeout_secs: 1,
        ..DmpSettings::default()
    }
}

fn reporting_to(url: String) -> impl Fn(&mut Settings) {
    move |settings: &mut Settings| {
        settings.dmp = dmp_settings(&url);
        with_admin_key(settings);
    }
}

/// A running sender and the switch that stops it.
struct Running {
    stop: watch::Sender<bool>,
    handle: tokio::task::JoinHandle<()>,
}

fn start_sender(url: &str, db: &DatabaseConnection) -> Running {
    let (stop, stopped) = watch::channel(false);
    let writer = nexkey::store::writer::Writer::new(db.clone(), Duration::from_secs(5));
    let handle = nexkey::dmp::spawn(dmp_settings(url).endpoint(), writer, stopped)
        .unwrap()
        .expect("reporting is configured");
    Running { stop, handle }
}

impl Running {
    /// Stops the sender and proves it stopped.
    async fn stop(self) {
        self.stop.send_replace(true);
        tokio::time::timeout(Duration::from_secs(10), self.handle)
            .await
            .expect("the sender stops when told")
            .unwrap();
    }
}

/// Waits until `done` holds, for at most 60 seconds (the suite shares a small machine).
async fn wait_until<F: std::future::Future<Output = bool>>(what: &str, done: impl Fn() -> F) {
    let started = Instant::now();
    while !done().await {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn events(db: &DatabaseConnection) -> Vec<entity::outbox_event::Model> {
    use sea_orm::QueryOrder;
    OutboxEvent::find()
        .order_by_asc(entity::outbox_event::Column::Id)
        .all(db)
        .await
        .unwrap()
}

/// A new license activated on one machine: its key.
async fn activated(app: &TestApp, fulfillment: &str) -> String {
    let (status, answer) = json(
        app.call("new", &legacy_new(fulfillment, "ACME-PRO", 1))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let key = codes(&answer).remove(0);
    let response = app
        .http
        .post(app.url("/activation/activate"))
        .json(&json!({"licenseKey": key, "fingerprint": "machine-A"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    key
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[tokio::test]
async fn a_503_is_retried_and_the_event_delivered() {
    let dmp = FakeDmp::start(&[503], 204).await;
    for app in backends_with(reporting_to(dmp.url())).await {
        let backend = app.backend;
        dmp.answer(&[503], 204);
        let before = dmp.received().len();
        let key = activated(&app, &format!("NXF-DMP-1-{backend}")).await;
        let sender = start_sender(&dmp.url(), &app.db);
        wait_until("delivered", || async {
            events(&app.db).await[0].state == "delivered"
        })
        .await;
        sender.stop().await;
        let event = events(&app.db).await.remove(0);
        assert_eq!(event.attempts, 2, "{backend}");
        assert_eq!(event.last_error, None, "{backend}");
        let received = dmp.received()[before..].to_vec();
        assert_eq!(received.len(), 2, "{backend}: 503, then 204");
        let stored: Value = serde_json::from_str(&event.payload).unwrap();
        for call in &received {
            assert_eq!(call.body, stored, "{backend}: the stored bytes, each time");
            assert_eq!(
                call.authorization.as_deref(),
                Some(basic(DMP_USER, DMP_PASSWORD).as_str())
            );
        }
        assert_eq!(stored["action"], "register licences");
        assert_eq!(stored["registrations"][0]["licenceNumber"], key.as_str());
        let metrics = app
            .http
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("nexkey_dmp_events{state=\"delivered\"}"),
            "{metrics}"
        );
        assert!(metrics.contains("nexkey_dmp_attempts_total{result=\"retried\"}"));
    }
}

#[tokio::test]
async fn a_duplicate_is_delivered_and_a_refusal_parked_until_support_retries() {
    let dmp = FakeDmp::start(&[], 204).await;
    for app in backends_with(reporting_to(dmp.url())).await {
        let backend = app.backend;
        dmp.answer(&[429, 401], 204);
        activated(&app, &format!("NXF-DMP-2a-{backend}")).await;
        activated(&app, &format!("NXF-DMP-2b-{backend}")).await;
        let sender = start_sender(&dmp.url(), &app.db);
        wait_until("both settled", || async {
            events(&app.db).await.iter().all(|e| e.state != "pending")
        })
        .await;
        let settled = events(&app.db).await;
        assert_eq!(
            settled[0].state, "delivered",
            "{backend}: 429 is a duplicate"
        );
        assert!(settled[0].last_error.as_deref().unwrap().contains("429"));
        assert_eq!(settled[1].state, "failed", "{backend}: 401 is parked");
        assert!(settled[1].last_error.as_deref().unwrap().contains("401"));
        assert_eq!(settled[1].attempts, 1, "{backend}: no retry of a refusal");

        let (status, list) = json(app.admin_get("/admin/events?state=failed").await).await;
        assert_eq!(status, 200, "{backend}: {list}");
        assert_eq!(list["totalResults"], 1);
        let failed = &list["results"][0];
        assert_eq!(failed["id"], settled[1].id);
        assert_eq!(failed["state"], "failed");
        assert_eq!(failed["payload"]["action"], "register licences");
        // Support also sees it on the license.
        let key = failed["payload"]["registrations"][0]["licenceNumber"]
            .as_str()
            .unwrap();
        let (_, detail) = json(app.admin_get(&format!("/admin/licenses/{key}")).await).await;
        assert_eq!(
            detail["dmpEvents"][0]["id"], settled[1].id,
            "{backend}: {detail}"
        );
        assert_eq!(detail["dmpEvents"][0]["state"], "failed");
        let (_, all) = json(app.admin_get("/admin/events").await).await;
        assert_eq!(all["totalResults"], 2);
        let (status, _) = json(app.admin_get("/admin/events?state=lost").await).await;
        assert_eq!(status, 400);
        // Found by attack: a huge page panicked inside the paginator (an empty reply).
        let (status, body) = json(
            app.admin_get("/admin/events?page=9223372036854775807")
                .await,
        )
        .await;
        assert_eq!(status, 400, "{body}");

        let retry = |id: i64| {
            app.http
                .post(app.url(&format!("/admin/events/{id}/retry")))
                .basic_auth(ADMIN_KEY, None::<&str>)
                .send()
        };
        let (status, body) = json(retry(settled[0].id).await.unwrap()).await;
        assert_eq!(
            status, 409,
            "{backend}: a delivered event stays delivered: {body}"
        );
        let (status, _) = json(retry(999_999).await.unwrap()).await;
        assert_eq!(status, 404);
        let (status, body) = json(retry(settled[1].id).await.unwrap()).await;
        assert_eq!(status, 200, "{backend}: {body}");
        assert_eq!(body["state"], "pending");
        assert_eq!(body["attempts"], 0);
        wait_until("delivered after the retry", || async {
            events(&app.db).await[1].state == "delivered"
        })
        .await;
        sender.stop().await;
    }
}

#[tokio::test]
async fn refused_connections_and_timeouts_are_retried() {
    // A port nobody listens on.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/event", listener.local_addr().unwrap())
    };
    let slow = FakeDmp::start(&[], 204).await;
    slow.delay(Duration::from_secs(3));
    for (url, expected) in [(closed, "connection failed"), (slow.url(), "timeout")] {
        let app = backends_with(reporting_to(url.clone())).await.remove(0);
        activated(&app, "NXF-DMP-3").await;
        let sender = start_sender(&url, &app.db);
        wait_until("two attempts", || async {
            events(&app.db).await[0].attempts >= 2
        })
        .await;
        sender.stop().await;
        let event = events(&app.db).await.remove(0);
        assert_eq!(event.state, "pending", "{url}");
        assert!(
            event
                .last_error
                .as_deref()
                .unwrap_or_default()
                .contains(expected),
            "{url}: {:?}",
            event.last_error
        );
    }
}

#[tokio::test]
async fn senders_sharing_an_outbox_send_each_event_once() {
    let dmp = FakeDmp::start(&[], 204).await;
    dmp.delay(Duration::from_millis(30));
    for app in backends_with(reporting_to(dmp.url())).await {
        let backend = app.backend;
        let before = dmp.received().len();
        let mut keys = Vec::new();
        for i in 0..12 {
            keys.push(activated(&app, &format!("NXF-DMP-4-{backend}-{i}")).await);
        }
        // Three senders, each with its own connection pool: three processes, one database.
        let mut senders = Vec::new();
        for _ in 0..3 {
            let db = nexkey::store::connect(&app.database_url).await.unwrap();
            senders.push(start_sender(&dmp.url(), &db));
        }
        wait_until("all delivered", || async {
            events(&app.db).await.iter().all(|e| e.state == "delivered")
        })
        .await;
        for sender in senders {
            sender.stop().await;
        }
        let mut sent: Vec<String> = dmp.received()[before..]
            .iter()
            .map(|call| {
                call.body["registrations"][0]["licenceNumber"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        sent.sort();
        keys.sort();
        assert_eq!(sent, keys, "{backend}: each event exactly once");
    }
}

// Multi-threaded: the fake DMP in this process must answer while the test waits on the child.
#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_nexkey_delivers_the_events_left_pending() {
    let dmp = FakeDmp::start(&[], 503).await;
    let dir = tempfile::tempdir().unwrap();
    let url = dmp.url();
    let envs = [
        ("NEXKEY_NEXWAY_USER", USER),
        ("NEXKEY_NEXWAY_PASSWORD", PASSWORD),
        ("NEXKEY_DMP_URL", url.as_str()),
        ("NEXKEY_DMP_USER", DMP_USER),
        ("NEXKEY_DMP_PASSWORD", DMP_PASSWORD),
        ("NEXKEY_DMP_RETRY_SECS", "1"),
        ("NEXKEY_DMP_MAX_RETRY_SECS", "1"),
    ];
    let http = reqwest::Client::new();
    let mut server = crate::process::start(dir.path(), &envs).await;
    let base = format!("http://{}", server.address);
    let (status, answer) = json(
        http.post(format!("{base}/licenses/new"))
            .basic_auth(USER, Some(PASSWORD))
            .json(&legacy_new("NXF-DMP-5", "ACME-PRO", 1))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let key = codes(&answer).remove(0);
    let activation = http
        .post(format!("{base}/activation/activate"))
        .json(&json!({"licenseKey": key, "fingerprint": "machine-A"}))
        .send()
        .await
        .unwrap();
    assert_eq!(activation.status(), 201);
    wait_until("two refused attempts", || async {
        dmp.received().len() >= 2
    })
    .await;

    crate::shutdown::sigterm(&server.child);
    let status = crate::shutdown::wait_exit(&mut server.child, Duration::from_secs(20)).await;
    assert!(status.success(), "a clean stop: {status:?}");
    let database = format!(
        "sqlite://{}?mode=rw",
        dir.path().join("nexkey.db").display()
    );
    let db = nexkey::store::connect(&database).await.unwrap();
    let pending = events(&db).await.remove(0);
    assert_eq!(pending.state, "pending");
    assert!(pending.attempts >= 2);
    assert!(
        pending.last_error.as_deref().unwrap().contains("503"),
        "{pending:?}"
    );
    db.close().await.unwrap();

    // The DMP is back; so is nexkey, which finds the event where it was left.
    dmp.answer(&[], 204);
    let attempts_before = dmp.received().len();
    let _server = crate::process::start(dir.path(), &envs).await;
    let db = nexkey::store::connect(&database).await.unwrap();
    wait_until("delivered after the restart", || async {
        events(&db).await[0].state == "delivered"
    })
    .await;
    let received = dmp.received();
    assert!(received.len() > attempts_before);
    assert!(received.iter().all(|call| call.body == received[0].body));
    assert_eq!(
        received[0].body["registrations"][0]["licenceNumber"],
        key.as_str()
    );
}

#[tokio::test]
async fn a_claim_holds_the_event_until_settled_released_or_its_lease_ends() {
    use nexkey::store::outbox;
    let dmp = FakeDmp::start(&[], 204).await;
    for app in backends_with(reporting_to(dmp.url())).await {
        let backend = app.backend;
        activated(&app, "NXF-DMP-6").await;
        let now = chrono::Utc::now();
        let hour = now + chrono::Duration::hours(1);
        let first = outbox::claim_due(&app.db, now, hour, "first", 10)
            .await
            .unwrap();
        assert_eq!(first.len(), 1, "{backend}");
        assert_eq!(first[0].attempts, 1);
        let id = first[0].id;
        // Held: nobody else gets it, nobody else settles it.
        assert!(
            outbox::claim_due(&app.db, now, hour, "second", 10)
                .await
                .unwrap()
                .is_empty()
        );
        let delivered = outbox::Settlement::Delivered { note: None };
        assert!(
            !outbox::settle(&app.db, id, "second", &delivered, now)
                .await
                .unwrap()
        );
        assert!(!outbox::release(&app.db, id, "second", now).await.unwrap());
        // Given back unattempted: due at once, the attempt uncounted.
        assert!(outbox::release(&app.db, id, "first", now).await.unwrap());
        let again = outbox::claim_due(&app.db, now, now, "second", 10)
            .await
            .unwrap();
        assert_eq!((again.len(), again[0].attempts), (1, 1), "{backend}");
        // A lease that ended (a sender that died): another sender takes the event over.
        let later = now + chrono::Duration::seconds(1);
        let taken = outbox::claim_due(&app.db, later, hour, "third", 10)
            .await
            .unwrap();
        assert_eq!(taken.len(), 1, "{backend}");
        assert!(
            !outbox::settle(&app.db, id, "second", &delivered, now)
                .await
                .unwrap()
        );
        assert!(
            outbox::settle(&app.db, id, "third", &delivered, now)
                .await
                .unwrap()
        );
        assert_eq!(events(&app.db).await[0].state, "delivered");
    }
}
