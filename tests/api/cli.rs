//! The operator's commands, run as the real binary: `lookup`, `check-config`.

use std::process::{Command, Output};

use crate::helpers::{backends, codes, json, legacy_new};

pub(crate) fn nexkey(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_nexkey"))
        .args(args)
        .current_dir(dir.path())
        .env_clear()
        .envs(envs.iter().copied())
        .output()
        .expect("run nexkey")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn lookup_prints_the_facts_of_a_key() {
    for app in backends().await {
        let backend = app.backend;
        let body = legacy_new("NXF-LOOKUP", "ACME-PRO", 1);
        let (status, answer) = json(app.call("new", &body).await).await;
        assert_eq!(status, 200, "{backend}: {answer}");
        let code = codes(&answer).remove(0);
        app.backdate(&code, "2020-01-01", "2021-01-01").await;

        // As people type it: lower case, without dashes.
        let typed = code.replace('-', "").to_lowercase();
        let output = nexkey(
            &["lookup", &typed],
            &[("NEXKEY_DATABASE_URL", &app.database_url)],
        );
        let printed = text(&output.stdout);
        assert!(
            output.status.success(),
            "{backend}: {}",
            text(&output.stderr)
        );
        let field = |name: &str| {
            printed
                .lines()
                .find_map(|line| Some(line.strip_prefix(name)?.trim().to_owned()))
                .unwrap_or_else(|| panic!("{backend}: no {name} in\n{printed}"))
        };
        assert_eq!(field("code "), code);
        assert_eq!(field("status "), "expired", "the end date is past");
        assert_eq!(field("product "), "ACME-PRO");
        assert_eq!(field("customer "), "buyer@example.com (Ada Lovelace)");
        assert_eq!(field("start date "), "2020-01-01");
        assert_eq!(field("end date "), "2021-01-01");
        assert_eq!(field("nexwayFulfillmentId "), "NXF-LOOKUP");
        assert_eq!(
            field("publisherFulfillmentId "),
            answer["publisherFulfillmentId"].as_str().unwrap()
        );
        assert_eq!(field("nexwayProductId "), "NX-1");
        assert_eq!(field("order "), "ORD-NXF-LOOKUP");
        assert_eq!(field("externalContext "), "campaign=winter");
        let events = printed.split_once("events\n").unwrap().1;
        assert!(
            events.contains(" new ") && events.contains("(new) -> active"),
            "{events}"
        );

        let missing = nexkey(
            &["lookup", "NOPE-NOPE"],
            &[("NEXKEY_DATABASE_URL", &app.database_url)],
        );
        assert!(!missing.status.success());
        assert!(text(&missing.stderr).contains("no license with the key"));
    }
}

#[test]
fn lookup_without_a_database_says_so_instead_of_creating_one() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let output = nexkey(&["lookup", "K7QX"], &[("NEXKEY_DATA_DIR", data_dir)]);
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("no database"));
    assert!(!dir.path().join("nexkey.db").exists());
}

#[test]
fn check_config_prints_the_effective_settings_with_secrets_masked() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nexkey.toml");
    std::fs::write(
        &file,
        "bind = \"0.0.0.0:9000\"\nmetrics_token = \"scrape-token-0123456789\"\n\
         [products.ACME-PRO]\nmax_quantity = 5\n",
    )
    .unwrap();
    let output = nexkey(
        &["check-config"],
        &[
            ("NEXKEY_CONFIG", file.to_str().unwrap()),
            (
                "NEXKEY_DATABASE_URL",
                "postgres://nexkey:db-password-42@db:5432/nexkey",
            ),
            ("NEXKEY_NEXWAY_USER", "nexway"),
            ("NEXKEY_NEXWAY_PASSWORD", "nexway-password-42"),
            ("NEXKEY_SHUTDOWN_TIMEOUT", "45"),
            (
                "NEXKEY_DMP_URL",
                "https://publisher:url-password-42@dmp.example/event",
            ),
            ("NEXKEY_DMP_USER", "publisher"),
            ("NEXKEY_DMP_PASSWORD", "dmp-password-42"),
        ],
    );
    let printed = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(printed.contains(&format!("configuration file: {}", file.display())));
    assert!(printed.contains("database: postgres://nexkey:***@db:5432/nexkey"));
    assert!(
        printed.contains("\"0.0.0.0:9000\""),
        "file values: {printed}"
    );
    assert!(printed.contains("shutdown_timeout_secs: 45"), "env values");
    assert!(
        printed.contains("max_quantity: Some(\n                5"),
        "{printed}"
    );
    assert!(printed.contains("user: \"nexway\""));
    assert!(
        printed.contains("https://publisher:***@dmp.example/event"),
        "{printed}"
    );
    for secret in [
        "db-password-42",
        "nexway-password-42",
        "scrape-token",
        "dmp-password-42",
        "url-password-42",
    ] {
        assert!(!printed.contains(secret), "{secret} printed:\n{printed}");
    }
    assert!(printed.contains("[REDACTED]"));
    assert!(printed.trim_end().ends_with("configuration is valid"));
}

#[test]
fn check_config_fails_with_the_error_on_an_invalid_configuration() {
    let output = nexkey(&["check-config"], &[("NEXKEY_BODY_LIMIT", "12")]);
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("body_limit must be at least 1024 bytes"));
    assert!(output.stdout.is_empty());

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.toml");
    std::fs::write(&file, "bind = \"x\"\nno_such_setting = 1\n").unwrap();
    let output = nexkey(
        &["check-config"],
        &[("NEXKEY_CONFIG", file.to_str().unwrap())],
    );
    assert!(!output.status.success());
    let error = text(&output.stderr);
    assert!(
        error.contains("broken.toml") && error.contains("no_such_setting"),
        "{error}"
    );
}

// Multi-threaded: the server in this process must answer while the test waits for the child.
#[tokio::test(flavor = "multi_thread")]
async fn health_exits_zero_only_when_the_server_is_ready() {
    for app in backends().await {
        let address = app.address.to_string();
        let ready = nexkey(&["health", "--address", &address], &[]);
        assert!(ready.status.success(), "{}", text(&ready.stderr));
        assert_eq!(text(&ready.stdout).trim(), "ready");

        // Not ready: the database pool is closed.
        app.db.clone().close().await.unwrap();
        let down = nexkey(&["health", "--address", &address], &[]);
        assert!(!down.status.success());
        assert!(text(&down.stderr).contains("503"), "{}", text(&down.stderr));
    }
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = free.local_addr().unwrap().to_string();
    drop(free);
    let nobody = nexkey(&["health", "--address", &address], &[]);
    assert!(!nobody.status.success());
}

#[test]
fn check_config_refuses_what_serve_would_fail_on_and_warns_on_weak_signatures() {
    for (name, value, error) in [
        ("NEXKEY_BIND", "127.0.0.1:99999", "bind"),
        ("NEXKEY_BIND", "127.0.0.1", "bind"),
        (
            "NEXKEY_DATABASE_URL",
            "mssql://sa@db/nexkey",
            "\"mssql\" is not supported",
        ),
        ("NEXKEY_DATABASE_URL", "nexkey.db", "is not supported"),
        (
            "NEXKEY_TRUSTED_PROXIES",
            "10.0.0.0/8,proxy.local",
            "trusted_proxies",
        ),
    ] {
        let output = nexkey(&["check-config"], &[(name, value)]);
        assert!(!output.status.success(), "{name}={value} accepted");
        let stderr = text(&output.stderr);
        assert!(stderr.contains(error), "{name}={value}: {stderr}");
    }

    let weak = nexkey(
        &["check-config"],
        &[
            ("NEXKEY_NEXWAY_SIGNATURE", "required"),
            ("NEXKEY_NEXWAY_SIGNING_SECRETS", "signing-secret-1"),
            (
                "NEXKEY_NEXWAY_SIGNED_FIELDS",
                "$.product.publisherProductId",
            ),
            ("NEXKEY_NEXWAY_BASIC", "false"),
        ],
    );
    assert!(weak.status.success(), "{}", text(&weak.stderr));
    let printed = text(&weak.stdout);
    for warning in [
        "sign no fulfillment id",
        "$.product.quantity",
        "replayed at any time",
        "leave the order, the buyer, whether it is a trial, the end date",
    ] {
        assert!(printed.contains(warning), "{warning}: {printed}");
    }
    let strong = nexkey(
        &["check-config"],
        &[
            ("NEXKEY_NEXWAY_SIGNATURE", "required"),
            ("NEXKEY_NEXWAY_SIGNING_SECRETS", "signing-secret-1"),
            (
                "NEXKEY_NEXWAY_SIGNED_FIELDS",
                "$.fulfillmentId,$.product.quantity,$.additionalData.RequestTimestamp,\
                 $.checkout.orderId,$.product.publisherProductId,$.user.email,\
                 $.checkout.trialContext,$.product.expirationTimestamp",
            ),
            (
                "NEXKEY_NEXWAY_TIMESTAMP_FIELD",
                "$.additionalData.RequestTimestamp",
            ),
            ("NEXKEY_NEXWAY_BASIC", "false"),
        ],
    );
    assert!(strong.status.success(), "{}", text(&strong.stderr));
    assert!(
        !text(&strong.stdout).contains("warning:"),
        "{}",
        text(&strong.stdout)
    );
}
