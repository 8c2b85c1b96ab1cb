//! Each key generator through `POST /licenses/new`, the pool under concurrency and across
//! processes, and the `nexkey keys` commands.

use std::collections::HashSet;
use std::sync::Arc;

use entity::prelude::*;
use nexkey::config::{ProductOverride, Settings};
use nexkey::keygen::{
    GeneratorRegistry, GeneratorSettings, HmacGenerator, HmacSettings, Key, KeyGenError,
    KeyGenerator, KeyPair, KeyRequest, PoolSettings, RandomSettings, SignedSettings, Verdict,
    verify_signed,
};
use nexkey::store::pool;
use sea_orm::{EntityTrait, PaginatorTrait};
use secrecy::ExposeSecret;

use crate::helpers::{TestApp, backends_with, codes, current_new, json, legacy_new};

const SECRET: &str = "hmac-secret-for-the-tests";

/// A publisher's own generator, by the name it was registered under.
fn custom(name: &str) -> GeneratorSettings {
    toml::from_str::<toml::Table>(&format!("kind = \"custom\"\nname = \"{name}\""))
        .unwrap()
        .try_into()
        .unwrap()
}

fn with_generator(product: &str, generator: GeneratorSettings) -> impl Fn(&mut Settings) {
    let product = product.to_owned();
    move |settings: &mut Settings| {
        settings.products.insert(
            product.clone(),
            ProductOverride {
                generator: Some(generator.clone()),
                ..Default::default()
            },
        );
    }
}

fn hmac_settings() -> HmacSettings {
    HmacSettings {
        secret: SECRET.to_string().into(),
        prefix: "ACME".into(),
    }
}

#[tokio::test]
async fn random_codes_carry_a_valid_check_character() {
    let settings = RandomSettings {
        groups: 3,
        group_length: 4,
        prefix: "RND".into(),
        check: true,
        ..Default::default()
    };
    let generator = GeneratorRegistry::new()
        .build(&GeneratorSettings::Random(settings.clone()))
        .unwrap();
    for app in backends_with(with_generator(
        "RND-PRO",
        GeneratorSettings::Random(settings.clone()),
    ))
    .await
    {
        let (status, answer) =
            json(app.call("new", &legacy_new("NXF-R1", "RND-PRO", 3)).await).await;
        assert_eq!(status, 200, "{}: {answer}", app.backend);
        for code in codes(&answer) {
            assert_eq!(code.len(), "RND-XXXX-XXXX-XXXXC".len(), "{code}");
            assert!(
                matches!(generator.verify("RND-PRO", &code), Verdict::Genuine(_)),
                "{code}"
            );
        }
        let rows = License::find().all(&app.db).await.unwrap();
        assert!(
            rows.iter()
                .all(|row| row.generator == "random" && row.file.is_none())
        );
        // No file: the answer has no `file` member at all.
        assert!(answer["licenses"][0].get("file").is_none(), "{answer}");
    }
}

#[tokio::test]
async fn hmac_codes_are_derived_from_the_call_and_verify_with_the_secret() {
    let generator = HmacGenerator::new(hmac_settings());
    for app in backends_with(with_generator(
        "HM-PRO",
        GeneratorSettings::Hmac(hmac_settings()),
    ))
    .await
    {
        let (status, answer) =
            json(app.call("new", &legacy_new("NXF-H1", "HM-PRO", 2)).await).await;
        assert_eq!(status, 200, "{}: {answer}", app.backend);
        let issued = codes(&answer);
        for (index, code) in issued.iter().enumerate() {
            let request = KeyRequest {
                product: "HM-PRO",
                customer: "buyer@example.com",
                fulfillment: "NXF-H1",
                // operation, each id with its length, the repeat.
                call: "new:6:NXF-H1:10:ORD-NXF-H1:0",
                index: index as u32,
                attempt: 0,
                end_date: None,
            };
            // The code is what the secret derives for this position, before any database.
            assert_eq!(code, &generator.generate(&request).unwrap().code);
            assert!(matches!(
                generator.verify("HM-PRO", code),
                Verdict::Genuine(_)
            ));
        }
        let rows = License::find().all(&app.db).await.unwrap();
        assert!(rows.iter().all(|row| row.generator == "hmac"));
    }
}

#[tokio::test]
async fn hmac_collision_derives_another_verifiable_code() {
    // The code of this position is already taken (planted through a pool): attempt 1 derives
    // another code, still genuine for the secret.
    let generator = HmacGenerator::new(hmac_settings());
    let first = generator
        .generate(&KeyRequest {
            product: "HM-PRO",
            customer: "buyer@example.com",
            fulfillment: "NXF-H2",
            call: "new:NXF-H2:ORD-NXF-H2",
            index: 0,
            attempt: 0,
            end_date: None,
        })
        .unwrap()
        .code;
    for app in backends_with(with_generator(
        "HM-PRO",
        GeneratorSettings::Hmac(hmac_settings()),
    ))
    .await
    {
        plant(&app, &first).await;
        let (status, answer) =
            json(app.call("new", &legacy_new("NXF-H2", "HM-PRO", 1)).await).await;
        assert_eq!(status, 200, "{}: {answer}", app.backend);
        let code = &codes(&answer)[0];
        assert_ne!(code, &first);
        assert!(matches!(
            generator.verify("HM-PRO", code),
            Verdict::Genuine(_)
        ));
    }
}

/// Puts a license with `code` in the app's database, as a pool import could have.
async fn plant(app: &TestApp, code: &str) {
    pool::import(&app.db, "PLANT", &[code.to_owned()])
        .await
        .unwrap();
    let twin = app
        .twin_with(with_generator(
            "PLANT",
            GeneratorSettings::Pool(PoolSettings::default()),
        ))
        .await;
    let (status, answer) = json(twin.call("new", &legacy_new("NXF-PLANT", "PLANT", 1)).await).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(codes(&answer), [code]);
}

#[tokio::test]
async fn signed_codes_verify_offline_and_ship_a_license_file() {
    let pair = KeyPair::generate();
    let public_key = pair.public_key.clone();
    let settings = SignedSettings {
        private_key: pair.private_key,
        encoding: Default::default(),
        prefix: String::new(),
        file_name: Some("acme.lic".into()),
    };
    for app in backends_with(with_generator(
        "SG-PRO",
        GeneratorSettings::Signed(settings.clone()),
    ))
    .await
    {
        let mut body = legacy_new("NXF-S1", "SG-PRO", 1);
        body["product"]["endDate"] = "2027-11-22".into();
        let response = app.call("new", &body).await;
        let bytes = response.text().await.unwrap();
        let answer: serde_json::Value = serde_json::from_str(&bytes).unwrap();
        let code = &codes(&answer)[0];
        let claims = verify_signed(&public_key, code).unwrap_or_else(|e| panic!("{e}: {answer}"));
        assert_eq!(claims.product, "SG-PRO");
        assert_eq!(claims.expires.unwrap().to_string(), "2027-11-22");
        assert_eq!(
            answer["licenses"][0]["file"],
            serde_json::json!({"data": format!("{code}\n"), "encoding": "text",
                               "charset": "utf-8", "fileName": "acme.lic"})
        );
        // The file is stored with the license, and a repeat answers the same bytes.
        let row = License::find().one(&app.db).await.unwrap().unwrap();
        assert!(row.file.unwrap().contains("acme.lic"));
        assert_eq!(app.call("new", &body).await.text().await.unwrap(), bytes);
    }
}

#[tokio::test]
async fn pool_codes_are_handed_out_once_and_an_empty_pool_is_503_leaving_nothing() {
    let configure = with_generator(
        "PL-PRO",
        GeneratorSettings::Pool(PoolSettings { low_stock: 2 }),
    );
    for app in backends_with(configure).await {
        let imported: Vec<String> = (1..=3).map(|i| format!("PL-{i:04}")).collect();
        let report = pool::import(&app.db, "PL-PRO", &imported).await.unwrap();
        assert_eq!((report.imported, report.skipped), (3, 0));
        // A second import of the same codes adds nothing.
        assert_eq!(
            pool::import(&app.db, "PL-PRO", &imported)
                .await
                .unwrap()
                .imported,
            0
        );

        let (status, answer) =
            json(app.call("new", &legacy_new("NXF-P1", "PL-PRO", 2)).await).await;
        assert_eq!(status, 200, "{}: {answer}", app.backend);
        assert_eq!(codes(&answer), ["PL-0001", "PL-0002"]);
        let stock = pool::stock(&app.db, "PL-PRO").await.unwrap();
        assert_eq!((stock.available, stock.allocated, stock.revoked), (1, 2, 0));

        // Two more than the one left: refused whole, nothing allocated, nothing stored.
        let rows = app.row_counts().await;
        let response = app.call("new", &legacy_new("NXF-P2", "PL-PRO", 2)).await;
        assert!(response.headers().contains_key("retry-after"));
        let (status, error) = json(response).await;
        assert_eq!(status, 503, "{}: {error}", app.backend);
        assert_eq!(error["error"]["code"], "LICENSE_POOL_EXHAUSTED");
        assert_eq!(app.row_counts().await, rows);
        assert_eq!(pool::stock(&app.db, "PL-PRO").await.unwrap().available, 1);

        // A revoked code is never handed out; the last one is.
        pool::import(&app.db, "PL-PRO", &["PL-LEAKED".to_string()])
            .await
            .unwrap();
        assert!(pool::revoke(&app.db, "PL-PRO", "PL-LEAKED").await.unwrap());
        let (status, answer) =
            json(app.call("new", &legacy_new("NXF-P3", "PL-PRO", 1)).await).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(codes(&answer), ["PL-0003"]);
        let (status, _) = json(app.call("new", &legacy_new("NXF-P4", "PL-PRO", 1)).await).await;
        assert_eq!(status, 503);
        let stock = pool::stock(&app.db, "PL-PRO").await.unwrap();
        assert_eq!((stock.available, stock.allocated, stock.revoked), (0, 3, 1));
    }
}

#[tokio::test]
async fn concurrent_calls_on_two_processes_drain_a_pool_exactly() {
    const IMPORTED: usize = 12;
    const CALLS: usize = 30;
    let configure = with_generator("DR-PRO", GeneratorSettings::Pool(PoolSettings::default()));
    for app in backends_with(&configure).await {
        let twin = app.twin_with(&configure).await;
        let imported: Vec<String> = (0..IMPORTED).map(|i| format!("DR-{i:04}")).collect();
        pool::import(&app.db, "DR-PRO", &imported).await.unwrap();

        let calls = (0..CALLS).map(|i| {
            let server = if i % 2 == 0 { &app } else { &twin };
            let body = legacy_new(&format!("NXF-D{i}"), "DR-PRO", 1);
            async move { json(server.call("new", &body).await).await }
        });
        let answers = futures::future::join_all(calls).await;
        let mut issued = Vec::new();
        for (status, answer) in &answers {
            match status {
                200 => issued.extend(codes(answer)),
                503 => assert_eq!(answer["error"]["code"], "LICENSE_POOL_EXHAUSTED"),
                other => panic!("{}: unexpected {other}: {answer}", app.backend),
            }
        }
        let unique: HashSet<&String> = issued.iter().collect();
        assert_eq!(
            unique.len(),
            issued.len(),
            "{}: a code was handed out twice",
            app.backend
        );
        assert!(issued.iter().all(|code| imported.contains(code)));
        let stock = pool::stock(&app.db, "DR-PRO").await.unwrap();
        assert_eq!(
            issued.len() as u64 + stock.available,
            IMPORTED as u64,
            "{}",
            app.backend
        );
        assert_eq!(stock.allocated as usize, issued.len());
        assert_eq!(
            issued.len(),
            IMPORTED,
            "{}: every code is issued",
            app.backend
        );
        assert_eq!(License::find().all(&app.db).await.unwrap().len(), IMPORTED);
    }
}

/// What the test servers know besides the built-in generators: a publisher's own, registered
/// by name as `serial`.
pub fn test_generators() -> GeneratorRegistry {
    let mut registry = GeneratorRegistry::new();
    registry.register("serial", |_| Ok(Arc::new(Serial)));
    registry.register("buggy", |_| Ok(Arc::new(Buggy)));
    registry
}

/// A publisher's generator with a bug: it panics for one fulfillment id.
struct Buggy;

impl KeyGenerator for Buggy {
    fn name(&self) -> &str {
        "buggy"
    }
    fn generate(&self, request: &KeyRequest<'_>) -> Result<Key, KeyGenError> {
        assert!(
            !request.fulfillment.starts_with("BUG-"),
            "a publisher's bug"
        );
        Ok(Key::code(format!(
            "{}-{}",
            request.fulfillment, request.index
        )))
    }
}

#[tokio::test]
async fn a_generator_that_panics_fails_only_its_own_call() {
    let configure = with_generator("BG-PRO", custom("buggy"));
    for app in backends_with(configure).await {
        // Calls committed together on SQLite: the panicking ones among them.
        let bodies: Vec<_> = (0..24)
            .map(|i| {
                let id = if i % 4 == 0 { "BUG" } else { "OK" };
                let mut body = legacy_new(&format!("{id}-{i}"), "BG-PRO", 1);
                // Buyers of their own: on MariaDB one buyer's first purchases queue on the
                // customer row, which is not what this test is about.
                body["user"]["email"] = format!("buyer-{i}@example.com").into();
                body
            })
            .collect();
        let answers = futures::future::join_all(
            bodies
                .iter()
                .map(|body| async { json(app.call("new", body).await).await }),
        )
        .await;
        for (i, (status, answer)) in answers.iter().enumerate() {
            if i % 4 == 0 {
                assert_eq!(*status, 500, "{}: {answer}", app.backend);
                assert_eq!(answer["error"]["code"], "INTERNAL", "{answer}");
            } else {
                assert_eq!(*status, 200, "{}: {answer}", app.backend);
                assert_eq!(codes(answer), [format!("OK-{i}-0")]);
            }
        }
        // The 18 sales stored, nothing of the 6 that panicked; the server still answers.
        assert_eq!(License::find().count(&app.db).await.unwrap(), 18);
        let (status, _) = json(app.call("new", &legacy_new("OK-AFTER", "BG-PRO", 1)).await).await;
        assert_eq!(status, 200, "{}", app.backend);
    }
}

/// A publisher's generator: `product-fulfillment-index`.
struct Serial;

impl KeyGenerator for Serial {
    fn name(&self) -> &str {
        "serial"
    }
    fn generate(&self, request: &KeyRequest<'_>) -> Result<Key, KeyGenError> {
        Ok(Key::code(format!(
            "{}-{}-{}",
            request.product, request.fulfillment, request.index
        )))
    }
}

#[tokio::test]
async fn a_registered_custom_generator_is_chosen_by_the_configuration() {
    let configure = with_generator("CU-PRO", custom("serial"));
    for app in backends_with(configure).await {
        let (status, answer) =
            json(app.call("new", &legacy_new("NXF-C1", "CU-PRO", 2)).await).await;
        assert_eq!(status, 200, "{}: {answer}", app.backend);
        assert_eq!(codes(&answer), ["CU-PRO-NXF-C1-0", "CU-PRO-NXF-C1-1"]);
        let row = License::find().one(&app.db).await.unwrap().unwrap();
        assert_eq!(row.generator, "serial");
    }
}

#[tokio::test]
async fn keys_commands_import_make_key_pairs_and_verify() {
    use std::process::Command;
    let dir = tempfile::tempdir().unwrap();
    let nexkey = |args: &[&str], envs: &[(&str, &str)]| {
        Command::new(env!("CARGO_BIN_EXE_nexkey"))
            .args(args)
            .current_dir(dir.path())
            .env_clear()
            .env("NEXKEY_DATA_DIR", dir.path())
            .envs(envs.iter().copied())
            .output()
            .unwrap()
    };
    let csv = dir.path().join("codes.csv");
    std::fs::write(&csv, "code\nK-1\nK-2\nK-2\n").unwrap();
    let out = nexkey(
        &["keys", "import", "--product", "P", csv.to_str().unwrap()],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("imported 2, skipped 1") && stdout.contains("2 available"),
        "{stdout}"
    );

    let out = nexkey(&["keys", "keypair"], &[]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let value = |name: &str| {
        let line = stdout.lines().find(|l| l.starts_with(name)).unwrap();
        line.split('"').nth(1).unwrap().to_owned()
    };
    let (private_key, public_key) = (value("private_key"), value("public_key"));
    assert_eq!(
        KeyPair::generate().private_key.expose_secret().len(),
        private_key.len()
    );
    let generator = GeneratorRegistry::new()
        .build(&GeneratorSettings::Signed(SignedSettings {
            private_key: private_key.clone().into(),
            encoding: Default::default(),
            prefix: String::new(),
            file_name: None,
        }))
        .unwrap();
    let request = KeyRequest {
        product: "P",
        customer: "a@b.c",
        fulfillment: "F",
        call: "new:F:",
        index: 0,
        attempt: 0,
        end_date: None,
    };
    let code = generator.generate(&request).unwrap().code;
    let out = nexkey(&["keys", "verify", "--public-key", &public_key, &code], &[]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("genuine: product P"));
    // One character changed mid-code: the last one may carry padding bits only, and a change
    // there can decode to the same bytes.
    let middle = (code.len() / 2..code.len())
        .find(|&i| code.as_bytes()[i].is_ascii_alphanumeric())
        .unwrap();
    let other = if &code[middle..=middle] == "A" {
        "B"
    } else {
        "A"
    };
    let forged = format!("{}{other}{}", &code[..middle], &code[middle + 1..]);
    let out = nexkey(
        &["keys", "verify", "--public-key", &public_key, &forged],
        &[],
    );
    assert!(!out.status.success());

    // With the configuration: the product's hmac secret judges the code.
    let config = dir.path().join("nexkey.toml");
    std::fs::write(
        &config,
        format!("[products.HM]\ngenerator = {{ kind = \"hmac\", secret = \"{SECRET}\", prefix = \"ACME\" }}\n"),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let code = HmacGenerator::new(hmac_settings())
        .generate(&KeyRequest {
            product: "HM",
            ..request
        })
        .unwrap()
        .code;
    let out = nexkey(
        &["keys", "verify", "--product", "HM", &code],
        &[("NEXKEY_CONFIG", config)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = nexkey(
        &[
            "keys",
            "verify",
            "--product",
            "HM",
            "ACME-AAAAAA-AAAAAA-AAAAAA-AAAAAA",
        ],
        &[("NEXKEY_CONFIG", config)],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("forged"));
}

#[tokio::test]
async fn hmac_reissues_across_a_long_license_life_never_run_out_of_codes() {
    // The current body keeps one fulfillmentId for the whole life: each monthly renewal by
    // reissue is its own call and derives its own codes, however many months pass.
    let reissuing = |settings: &mut Settings| {
        settings.products.insert(
            "HM-SUB".into(),
            ProductOverride {
                generator: Some(GeneratorSettings::Hmac(hmac_settings())),
                renew: Some(nexkey::fulfillment::RenewMode::Reissue),
                reactivate: Some(nexkey::fulfillment::CodeMode::Reissue),
                ..Default::default()
            },
        );
    };
    for app in backends_with(reissuing).await {
        let (status, _) = json(
            app.call("new", &current_new("hm-life", "ORD-0", "HM-SUB"))
                .await,
        )
        .await;
        assert_eq!(status, 200);
        for month in 1..=12 {
            let renewal = current_new("hm-life", &format!("ORD-{month}"), "HM-SUB");
            let (status, answer) = json(app.call("renew", &renewal).await).await;
            assert_eq!(status, 200, "{} month {month}: {answer}", app.backend);
        }
        // Suspend, reactivate, suspend… in one order share one identity: each reactivate by
        // reissue still derives codes of its own.
        let order = current_new("hm-life", "ORD-12", "HM-SUB");
        for round in 1..=10 {
            for operation in ["suspend", "reactivate"] {
                let (status, answer) = json(app.call(operation, &order).await).await;
                assert_eq!(status, 200, "{} {operation} {round}: {answer}", app.backend);
            }
        }
    }
}
