//! The lkey URL in a browser: a readable page of the key's facts, checked over HTTP and rendered
//! in headless Chromium (Debian's `chromium`; `.ci/run` installs it and requires this test).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::helpers::{ADMIN_KEY, TestApp, backends_with, codes, json, legacy_new, with_admin_key};

async fn page(app: &TestApp, path: &str, key: Option<&str>) -> reqwest::Response {
    let request = app
        .http
        .get(app.url(path))
        .header("accept", "text/html,application/xhtml+xml");
    match key {
        Some(key) => request.basic_auth(key, None::<&str>),
        None => request,
    }
    .send()
    .await
    .unwrap()
}

async fn issued_code(app: &TestApp) -> String {
    let mut body = legacy_new("NXF-HTML", "ACME-PRO", 1);
    body["user"]["firstName"] = "Ada <script>alert(1)</script>".into();
    let (status, answer) = json(app.call("new", &body).await).await;
    assert_eq!(status, 200);
    codes(&answer).remove(0)
}

#[tokio::test]
async fn a_browser_gets_a_page_of_the_keys_facts() {
    let app = backends_with(with_admin_key).await.remove(0);
    let code = issued_code(&app).await;

    let response = page(&app, &format!("/nexus/lkey/{code}"), Some(ADMIN_KEY)).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = response.text().await.unwrap();
    for fact in [
        code.as_str(),
        "buyer@example.com",
        "active",
        "ACME-PRO",
        "NXF-HTML",
        "History",
    ] {
        assert!(html.contains(fact), "page lacks {fact}");
    }
    assert!(!html.contains("<script>"), "buyer data is escaped");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external assets"
    );

    let response = page(&app, &format!("/nexus/lkey/{code}"), None).await;
    assert_eq!(response.status(), 401);
    assert!(
        response.headers().contains_key("www-authenticate"),
        "the browser asks for the key"
    );
    let response = page(&app, "/nexus/lkey/NOPE", Some(ADMIN_KEY)).await;
    assert_eq!(response.status(), 404);
    assert!(response.text().await.unwrap().contains("INVALID_KEY"));
}

fn chromium() -> Option<PathBuf> {
    let candidates = [
        std::env::var("NEXKEY_CHROMIUM").ok(),
        Some("/usr/bin/chromium".into()),
    ];
    candidates
        .into_iter()
        .flatten()
        .map(PathBuf::from)
        .find(|path| path.exists())
}

fn headless(chromium: &Path, args: &[&str]) -> std::process::Output {
    Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .arg("--window-size=1000,700")
        .arg(format!(
            "--user-data-dir={}",
            std::env::temp_dir()
                .join(format!("nexkey-chromium-{}", std::process::id()))
                .display()
        ))
        .args(args)
        .output()
        .expect("run chromium")
}

#[tokio::test]
async fn headless_chromium_renders_the_page() {
    let Some(chromium) = chromium() else {
        assert!(
            std::env::var("NEXKEY_REQUIRE_CHROMIUM").is_err(),
            "NEXKEY_REQUIRE_CHROMIUM is set but chromium is not installed"
        );
        eprintln!("skipped: chromium not installed (apt-get install chromium)");
        return;
    };
    let app = backends_with(with_admin_key).await.remove(0);
    let code = issued_code(&app).await;
    let url = app.url(&format!("/nexus/lkey/{code}?key={ADMIN_KEY}"));

    // What the browser built from the page: the facts are in the rendered document.
    let dom = tokio::task::spawn_blocking({
        let (chromium, url) = (chromium.clone(), url.clone());
        move || headless(&chromium, &["--dump-dom", &url])
    })
    .await
    .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    for fact in [code.as_str(), "buyer@example.com", "active", "NXF-HTML"] {
        assert!(dom.contains(fact), "rendered page lacks {fact}: {dom}");
    }

    // And it draws them: the screenshot of the page carries far more than a blank page's.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let shot = dir.join("lkey-page.png");
    let blank = dir.join("blank-page.png");
    tokio::task::spawn_blocking({
        let (chromium, shot, blank) = (chromium, shot.clone(), blank.clone());
        move || {
            headless(
                &chromium,
                &[&format!("--screenshot={}", shot.display()), &url],
            );
            headless(
                &chromium,
                &[
                    &format!("--screenshot={}", blank.display()),
                    "data:text/html,<html></html>",
                ],
            );
        }
    })
    .await
    .unwrap();
    let size = |path: &Path| std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    assert!(size(&blank) > 0, "chromium made no screenshot");
    assert!(
        size(&shot) > 3 * size(&blank),
        "the page screenshot ({} bytes, {}) looks blank next to an empty page's ({} bytes)",
        size(&shot),
        shot.display(),
        size(&blank)
    );
}
