//! The operator's commands: `nexkey lookup`, `nexkey check-config`, `nexkey health`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::admin::{self, Event, LicenseFacts};
use crate::config::Settings;

/// Prints the facts of one license, or fails when there is no such license.
pub async fn lookup(settings: Settings, key: &str) -> anyhow::Result<()> {
    if settings.database_url.is_none() && !settings.data_dir.join("nexkey.db").exists() {
        bail!(
            "no database at {}: set NEXKEY_DATA_DIR or NEXKEY_DATABASE_URL",
            settings.data_dir.join("nexkey.db").display()
        );
    }
    let db = crate::app::open_database(&settings).await?;
    let found = admin::facts(&db, key)
        .await
        .context("cannot read the license")?;
    db.close().await.ok();
    match found {
        Some(facts) => {
            print!("{}", describe(&facts));
            Ok(())
        }
        None => bail!("no license with the key {key:?}"),
    }
}

/// The facts as aligned lines for a terminal.
pub fn describe(facts: &LicenseFacts) -> String {
    let purchase = &facts.purchase;
    let license = &purchase.license;
    let none = || "-".to_owned();
    let mut out = String::new();
    let mut line = |label: &str, value: String| {
        let _ = writeln!(out, "{label:<30} {value}");
    };
    line("code", license.activation_code.clone());
    let status = if license.trial {
        format!("{} (trial)", purchase.status)
    } else {
        purchase.status.to_string()
    };
    line("status", status);
    let product = match &license.product_name {
        Some(name) => format!("{} ({name})", license.publisher_product_id),
        None => license.publisher_product_id.clone(),
    };
    line("product", product);
    let customer = &purchase.customer;
    let mut buyer = customer.email.clone();
    let name = purchase.buyer_name();
    if !name.is_empty() {
        buyer += &format!(" ({name})");
    }
    if let Some(company) = &customer.company_name {
        buyer += &format!(", {company}");
    }
    line("customer", buyer);
    line(
        "start date",
        license.start_date.map_or_else(none, |d| d.to_string()),
    );
    line(
        "end date",
        license
            .end_date
            .map_or_else(|| "none (perpetual)".into(), |d| d.to_string()),
    );
    line(
        "issued",
        format!(
            "{} by generator {}",
            license.created_at.to_rfc3339(),
            license.generator
        ),
    );
    line("updated", license.updated_at.to_rfc3339());
    for previous in purchase.ancestors() {
        line(
            "replaces",
            format!("{} ({})", previous.license.activation_code, previous.status),
        );
    }
    for (name, value) in purchase.references() {
        line(name, value.map_or_else(none, str::to_owned));
    }
    let _ = writeln!(out, "events");
    for Event { event, .. } in &facts.history {
        let from = event.from_status.map_or("(new)", |status| status.as_str());
        let reason = event
            .reason
            .as_deref()
            .map(|reason| format!(" ({reason})"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {}  {:<10} {from} -> {}{reason}",
            event.created_at.to_rfc3339(),
            event.operation,
            event.to_status
        );
    }
    let _ = writeln!(out, "activations ({})", facts.activations.len());
    for machine in &facts.activations {
        let _ = writeln!(
            out,
            "  #{}  {}  {}  {}",
            machine.id,
            machine.created_at.to_rfc3339(),
            machine.fingerprint,
            machine.name.as_deref().unwrap_or("-")
        );
    }
    out
}

/// Validates the settings and prints them, secrets masked; fails with the error otherwise.
pub fn check_config() -> anyhow::Result<()> {
    let file = match std::env::var_os("NEXKEY_CONFIG") {
        Some(path) => Some(std::path::PathBuf::from(path)),
        None => Some("nexkey.toml".into()).filter(|path: &std::path::PathBuf| path.exists()),
    };
    let mut settings = Settings::load().context("invalid configuration")?;
    match &file {
        Some(path) => println!("configuration file: {}", path.display()),
        None => println!("configuration file: none (built-in defaults and NEXKEY_* variables)"),
    }
    println!("database: {}", mask_url_password(&settings.database_url()));
    // Passwords, tokens and keys are SecretStrings, printed as [REDACTED]; the database URL is a
    // plain string and may carry a password.
    settings.database_url = settings.database_url.as_deref().map(mask_url_password);
    settings.dmp.url = settings.dmp.url.as_deref().map(mask_url_password);
    println!("{settings:#?}");
    for warning in settings.warnings() {
        println!("warning: {warning}");
    }
    println!("configuration is valid");
    Ok(())
}

/// `scheme://user:password@host…?password=…` with the passwords replaced by `***`.
pub fn mask_url_password(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut masked = mask_userinfo_password(base);
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if name.eq_ignore_ascii_case("password") => format!("{name}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        masked = format!("{masked}?{}", pairs.join("&"));
    }
    masked
}

fn mask_userinfo_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}{path}"),
        None => url.to_owned(),
    }
}

/// Where a local probe reaches a server bound to `bind`: a wildcard address means loopback.
pub fn probe_address(bind: &str) -> String {
    match bind.parse::<SocketAddr>() {
        Ok(address) if address.ip().is_unspecified() => {
            let loopback: std::net::IpAddr = if address.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            };
            SocketAddr::new(loopback, address.port()).to_string()
        }
        _ => bind.to_owned(),
    }
}

/// GETs `/health/ready` on `address`; Ok when the answer is 200.
pub async fn health(address: &str) -> anyhow::Result<()> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        let request =
            format!("GET /health/ready HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .with_context(|| format!("{address} did not answer within 5 s"))?
        .with_context(|| format!("cannot reach {address}"))?;
    let answer = String::from_utf8_lossy(&answer);
    let status_line = answer.lines().next().unwrap_or_default();
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    if status_line.split_whitespace().nth(1) == Some("200") {
        println!("ready");
        Ok(())
    } else {
        bail!("not ready: {status_line} {}", body.trim())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_passwords_are_masked() {
        assert_eq!(
            mask_url_password("postgres://nexkey:s3cret@db:5432/nexkey?sslmode=require"),
            "postgres://nexkey:***@db:5432/nexkey?sslmode=require"
        );
        assert_eq!(
            mask_url_password("postgres://nexkey@db/nexkey"),
            "postgres://nexkey@db/nexkey"
        );
        assert_eq!(
            mask_url_password("sqlite:///var/lib/nexkey/nexkey.db?mode=rwc"),
            "sqlite:///var/lib/nexkey/nexkey.db?mode=rwc"
        );
        assert_eq!(
            mask_url_password("postgres://u:p@ss:w@rd@db/x"),
            "postgres://u:***@db/x"
        );
        assert_eq!(
            mask_url_password("postgres://db/x?user=u&password=s3cret&sslmode=require"),
            "postgres://db/x?user=u&password=***&sslmode=require"
        );
    }

    #[test]
    fn wildcard_binds_are_probed_on_loopback() {
        assert_eq!(probe_address("0.0.0.0:8080"), "127.0.0.1:8080");
        assert_eq!(probe_address("[::]:8080"), "[::1]:8080");
        assert_eq!(probe_address("127.0.0.1:9000"), "127.0.0.1:9000");
        assert_eq!(probe_address("localhost:9000"), "localhost:9000");
    }
}
