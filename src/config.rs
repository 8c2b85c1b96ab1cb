//! Settings: built-in defaults < TOML file (`NEXKEY_CONFIG`, else `nexkey.toml` when present)
//! < `NEXKEY_*` environment variables. Secrets are `SecretString`s: their Debug output is redacted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;

use crate::api::AdminGate;
use crate::fulfillment::{Catalog, CodeMode, Policy, RenewMode, Term};
pub use crate::fulfillment::{Money, TaxClass, UnknownProducts};
use crate::keygen::{GeneratorRegistry, GeneratorSettings};
pub use crate::nexway::BasicCredential;
use crate::nexway::signature::{JsonPath, ReplayWindow, SignatureVerifier};
use crate::nexway::{NexwayCredentials, NexwayGate};

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address the HTTP server listens on.
    pub bind: String,
    /// SeaORM connection URL; a SQLite file `nexkey.db` in the data directory when unset.
    pub database_url: Option<String>,
    /// Where nexkey keeps its files (the default SQLite database, generated credentials).
    pub data_dir: PathBuf,
    /// Run pending migrations when `serve` starts.
    pub auto_migrate: bool,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Seconds a connection may stay silent, and a request body may take to arrive, before the
    /// call is cut off (slow or stalled clients).
    pub request_timeout_secs: u64,
    pub nexway: NexwaySettings,
    pub admin: AdminSettings,
    /// Whether a product not listed under `products` is served with `defaults` or refused (422).
    pub unknown_products: UnknownProducts,
    /// Policy of every product not listed under `products`.
    pub defaults: ProductSettings,
    /// Per-product policy, keyed by `publisherProductId`; unset fields take `defaults`.
    pub products: BTreeMap<String, ProductOverride>,
    /// Log lines as `json` (production) or `pretty` text; `auto`: JSON unless stderr is a terminal.
    pub log_format: crate::logging::LogFormat,
    /// Seconds `serve` lets calls in flight finish after SIGTERM/SIGINT before it stops anyway.
    pub shutdown_timeout_secs: u64,
    /// Bearer token `GET /metrics` requires; the metrics are open when unset.
    pub metrics_token: Option<SecretString>,
    /// Connections and the proxies in front (`[server]`).
    pub server: ServerSettings,
    pub activation: ActivationSettings,
    pub dmp: DmpSettings,
}

/// The listening side: how many connections at once, and whom to believe about client addresses.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Addresses or CIDR ranges of the proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<String>,
    /// Connections served at once; further ones wait in the kernel's backlog.
    pub max_connections: usize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            trusted_proxies: Vec::new(),
            max_connections: 512,
        }
    }
}

impl ServerSettings {
    /// The trusted proxies, parsed (the configuration was validated at load).
    pub fn trusted_proxies(&self) -> crate::api::TrustedProxies {
        crate::api::TrustedProxies::new(
            self.trusted_proxies
                .iter()
                .filter_map(|range| crate::api::parse_range(range).ok())
                .collect(),
        )
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            bind: "127.0.0.1:8080".into(),
            database_url: None,
            data_dir: PathBuf::from("."),
            auto_migrate: true,
            body_limit: 64 * 1024,
            request_timeout_secs: 30,
            nexway: NexwaySettings::default(),
            admin: AdminSettings::default(),
            unknown_products: UnknownProducts::Accept,
            defaults: ProductSettings::default(),
            products: BTreeMap::new(),
            log_format: crate::logging::LogFormat::Auto,
            shutdown_timeout_secs: 30,
            metrics_token: None,
            server: ServerSettings::default(),
            activation: ActivationSettings::default(),
            dmp: DmpSettings::default(),
        }
    }
}

/// The activation API the publisher's software calls (`/activation/…`).
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ActivationSettings {
    /// Calls one client address may make per minute before it is answered 429: the license key
    /// is the only credential, so guessing must be slow.
    pub rate_limit_per_minute: u32,
}

impl Default for ActivationSettings {
    fn default() -> Self {
        ActivationSettings {
            rate_limit_per_minute: 60,
        }
    }
}

/// Reporting to Nexway's DMP (`POST …/event`); off while `url` is unset.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DmpSettings {
    /// The event endpoint, e.g. `https://api.nexway.store/event`.
    pub url: Option<String>,
    /// HTTP Basic credentials Nexway gave the publisher.
    pub user: Option<String>,
    pub password: Option<SecretString>,
    /// `_meta.nexwaySalesunitID` of every event, when Nexway gave one.
    pub salesunit_id: Option<String>,
    /// `_meta.platformID` of every event, when Nexway gave one.
    pub platform_id: Option<String>,
    /// Seconds before the first retry of an event that could not be delivered; each retry
    /// waits twice as long, up to `max_retry_secs`, with jitter.
    pub retry_secs: u64,
    pub max_retry_secs: u64,
    /// Seconds one delivery attempt may take (connect, send, answer).
    pub timeout_secs: u64,
}

impl Default for DmpSettings {
    fn default() -> Self {
        DmpSettings {
            url: None,
            user: None,
            password: None,
            salesunit_id: None,
            platform_id: None,
            retry_secs: 30,
            max_retry_secs: 3600,
            timeout_secs: 10,
        }
    }
}

impl DmpSettings {
    /// Whether events are recorded and sent.
    pub fn enabled(&self) -> bool {
        self.url.is_some()
    }

    /// Where and how events are delivered, when reporting is fully configured.
    pub fn endpoint(&self) -> Option<crate::dmp::Endpoint> {
        let (Some(url), Some(user), Some(password)) = (&self.url, &self.user, &self.password)
        else {
            return None;
        };
        Some(crate::dmp::Endpoint {
            url: url.clone(),
            user: user.clone(),
            password: password.clone(),
            retry: std::time::Duration::from_secs(self.retry_secs),
            max_retry: std::time::Duration::from_secs(self.max_retry_secs),
            timeout: std::time::Duration::from_secs(self.timeout_secs),
        })
    }
}

/// How Nexway authenticates to nexkey.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NexwaySettings {
    /// Whether HTTP Basic is checked; turning it off is allowed only while the signature is required.
    pub basic: bool,
    /// HTTP Basic credentials Nexway may use; several at once during a rotation.
    pub credentials: Vec<BasicCredential>,
    /// Whether Nexway's request signature is checked.
    pub signature: SignatureMode,
    /// The signing secrets accepted; several at once during a rotation.
    pub signing_secrets: Vec<SecretString>,
    /// The JSONPath expressions Nexway signs (`signedFields` at onboarding).
    pub signed_fields: Vec<String>,
    /// The header carrying the signature.
    pub signature_header: String,
    /// A signed field holding the call's time (epoch milliseconds), checked against the window.
    pub timestamp_field: Option<String>,
    /// Largest distance, in seconds, between the signed timestamp and now.
    pub replay_window_secs: u64,
}

impl Default for NexwaySettings {
    fn default() -> Self {
        NexwaySettings {
            basic: true,
            credentials: Vec::new(),
            signature: SignatureMode::Off,
            signing_secrets: Vec::new(),
            signed_fields: Vec::new(),
            signature_header: "X-Nexway-Signature".into(),
            timestamp_field: None,
            replay_window_secs: 300,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureMode {
    Off,
    Required,
}

impl NexwaySettings {
    /// The gate these settings describe, checking Basic against `credentials` when it is on.
    pub fn gate(&self, credentials: NexwayCredentials) -> Result<NexwayGate, ConfigError> {
        let parse = |field: &str| {
            JsonPath::parse(field)
                .map_err(|reason| ConfigError::Invalid(format!("nexway signed field: {reason}")))
        };
        let signature = match self.signature {
            SignatureMode::Off => None,
            SignatureMode::Required => {
                let replay = match &self.timestamp_field {
                    Some(field) => Some(ReplayWindow {
                        field: parse(field)?,
                        window_millis: (self.replay_window_secs as i64).saturating_mul(1000),
                    }),
                    None => None,
                };
                Some(SignatureVerifier::new(
                    self.signature_header.clone(),
                    self.signed_fields
                        .iter()
                        .map(|field| parse(field))
                        .collect::<Result<_, _>>()?,
                    self.signing_secrets.clone(),
                    replay,
                ))
            }
        };
        Ok(NexwayGate::new(
            self.basic.then_some(credentials),
            signature,
        ))
    }
}

impl std::str::FromStr for SignatureMode {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim() {
            "off" => Ok(SignatureMode::Off),
            "required" => Ok(SignatureMode::Required),
            other => Err(format!("expected `off` or `required`, not {other:?}")),
        }
    }
}

/// The support side (`/nexus/lkey/{key}`, `/admin/…`).
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminSettings {
    /// API keys support may use; several at once for rotation. None: the admin side is closed.
    pub keys: Vec<SecretString>,
    /// The customer's link to a purchase, `{key}` replaced by the license key (the lkey `url`).
    pub purchase_url: Option<String>,
    /// Bad keys one address may send within `cooldown_secs` before it is refused (429) for
    /// `cooldown_secs`.
    pub bad_key_limit: u32,
    pub cooldown_secs: u64,
}

impl AdminSettings {
    /// The support side's door these settings describe.
    pub fn gate(&self) -> AdminGate {
        AdminGate::new(
            &self.keys,
            self.bad_key_limit,
            std::time::Duration::from_secs(self.cooldown_secs),
        )
    }
}

impl Default for AdminSettings {
    fn default() -> Self {
        AdminSettings {
            keys: Vec::new(),
            purchase_url: None,
            bad_key_limit: 10,
            cooldown_secs: 300,
        }
    }
}

/// A product policy. The embedded default: perpetual unless the call gives an end date, renew
/// extends, upgrade and reactivate keep the codes.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProductSettings {
    /// Most codes one call may ask for.
    pub max_quantity: u32,
    /// How long a license runs when the call gives no end date.
    pub term: Term,
    /// How long a free trial runs when its call (`trialContext` CREATION) gives no end date.
    pub trial_term: Term,
    pub renew: RenewMode,
    pub upgrade: CodeMode,
    pub reactivate: CodeMode,
    pub generator: GeneratorSettings,
    /// Machines one license may be activated on; unlimited when unset.
    pub max_activations: Option<u32>,
}

impl Default for ProductSettings {
    fn default() -> Self {
        ProductSettings {
            max_quantity: crate::fulfillment::DEFAULT_MAX_QUANTITY,
            term: Term::Perpetual,
            trial_term: Term::Days(14),
            renew: RenewMode::Extend,
            upgrade: CodeMode::Keep,
            reactivate: CodeMode::Keep,
            generator: GeneratorSettings::default(),
            max_activations: None,
        }
    }
}

/// A product's entry in the file: what it does not set comes from `defaults`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProductOverride {
    pub name: Option<String>,
    /// The product's number in the publisher's catalogue (the lkey `itemId`).
    pub item_id: Option<i64>,
    /// URL of the product's image (the lkey `image`).
    pub image: Option<String>,
    /// What a renewal costs (the lkey `renewalTerm.price`).
    pub renewal_price: Option<Money>,
    /// The tax class of the renewal price (the lkey `renewalTerm.taxClass`).
    pub tax_class: Option<TaxClass>,
    pub max_quantity: Option<u32>,
    pub term: Option<Term>,
    pub trial_term: Option<Term>,
    pub renew: Option<RenewMode>,
    pub upgrade: Option<CodeMode>,
    pub reactivate: Option<CodeMode>,
    pub generator: Option<GeneratorSettings>,
    pub max_activations: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("invalid value of {name}: {reason}")]
    Env { name: &'static str, reason: String },
    #[error("{0}")]
    Invalid(String),
}

impl Settings {
    /// The product policies these settings describe, built once at start-up with the generators
    /// `generators` knows (the built-in kinds, and the publisher's own registered there).
    pub fn catalog(&self, generators: &GeneratorRegistry) -> Result<Catalog, ConfigError> {
        let settings = self;
        let build = |product: &str, generator| {
            generators
                .build(generator)
                .map_err(|reason| ConfigError::Invalid(format!("generator of {product}: {reason}")))
        };
        let ProductSettings {
            max_quantity,
            term,
            trial_term,
            renew,
            upgrade,
            reactivate,
            ref generator,
            max_activations,
        } = settings.defaults;
        let defaults = Policy {
            name: None,
            max_quantity,
            term,
            trial_term,
            renew,
            upgrade,
            reactivate,
            generator: build("defaults", generator)?,
            max_activations,
            item_id: None,
            image: None,
            renewal_price: None,
            tax_class: None,
        };
        let products = settings
            .products
            .iter()
            .map(|(id, product)| {
                let policy = Policy {
                    name: product.name.clone(),
                    max_quantity: product.max_quantity.unwrap_or(max_quantity),
                    term: product.term.unwrap_or(term),
                    trial_term: product.trial_term.unwrap_or(trial_term),
                    renew: product.renew.unwrap_or(renew),
                    upgrade: product.upgrade.unwrap_or(upgrade),
                    reactivate: product.reactivate.unwrap_or(reactivate),
                    generator: match &product.generator {
                        Some(generator) => build(id, generator)?,
                        None => defaults.generator.clone(),
                    },
                    max_activations: product.max_activations.or(max_activations),
                    item_id: product.item_id,
                    image: product.image.clone(),
                    renewal_price: product.renewal_price.clone(),
                    tax_class: product.tax_class.clone(),
                };
                Ok((id.clone(), policy))
            })
            .collect::<Result<_, ConfigError>>()?;
        Ok(Catalog::new(settings.unknown_products, defaults, products))
    }

    /// Loads the layered settings from the process environment.
    pub fn load() -> Result<Self, ConfigError> {
        Self::load_from(|name| std::env::var(name).ok())
    }

    /// Loads the layered settings with `env` standing for the environment (tests pass a map).
    pub fn load_from(env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let file = match env("NEXKEY_CONFIG") {
            Some(path) => Some(PathBuf::from(path)),
            None => Some(PathBuf::from("nexkey.toml")).filter(|p| p.exists()),
        };
        let mut settings = match file {
            Some(path) => Self::from_file(&path)?,
            None => Settings::default(),
        };
        settings.apply_env(env)?;
        settings.validate()?;
        Ok(settings)
    }

    fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.into(),
            source: Box::new(source),
        })
    }

    /// The environment variables nexkey reads, each documented in the README.
    fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(value) = env("NEXKEY_BIND") {
            self.bind = value;
        }
        if let Some(value) = env("NEXKEY_DATABASE_URL") {
            self.database_url = Some(value);
        }
        if let Some(value) = env("NEXKEY_DATA_DIR") {
            self.data_dir = value.into();
        }
        if let Some(value) = env("NEXKEY_AUTO_MIGRATE") {
            self.auto_migrate = parse_env("NEXKEY_AUTO_MIGRATE", &value)?;
        }
        if let Some(value) = env("NEXKEY_BODY_LIMIT") {
            self.body_limit = parse_env("NEXKEY_BODY_LIMIT", &value)?;
        }
        if let Some(value) = env("NEXKEY_ADMIN_KEYS") {
            self.admin.keys = value
                .split(',')
                .map(str::trim)
                .filter(|key| !key.is_empty())
                .map(|key| SecretString::from(key.to_owned()))
                .collect();
        }
        if let Some(value) = env("NEXKEY_PURCHASE_URL") {
            self.admin.purchase_url = Some(value);
        }
        if let Some(value) = env("NEXKEY_UNKNOWN_PRODUCTS") {
            self.unknown_products = parse_env("NEXKEY_UNKNOWN_PRODUCTS", &value)?;
        }
        if let Some(value) = env("NEXKEY_MAX_QUANTITY") {
            self.defaults.max_quantity = parse_env("NEXKEY_MAX_QUANTITY", &value)?;
        }
        if let Some(value) = env("NEXKEY_REQUEST_TIMEOUT") {
            self.request_timeout_secs = parse_env("NEXKEY_REQUEST_TIMEOUT", &value)?;
        }
        self.apply_signature_env(&env)?;
        match (env("NEXKEY_NEXWAY_USER"), env("NEXKEY_NEXWAY_PASSWORD")) {
            (Some(user), Some(password)) => self.nexway.credentials.push(BasicCredential {
                user,
                password: password.into(),
            }),
            (None, None) => {}
            _ => {
                return Err(ConfigError::Invalid(
                    "NEXKEY_NEXWAY_USER and NEXKEY_NEXWAY_PASSWORD go together".into(),
                ));
            }
        }
        if let Some(value) = env("NEXKEY_LOG_FORMAT") {
            self.log_format = parse_env("NEXKEY_LOG_FORMAT", &value)?;
        }
        if let Some(value) = env("NEXKEY_SHUTDOWN_TIMEOUT") {
            self.shutdown_timeout_secs = parse_env("NEXKEY_SHUTDOWN_TIMEOUT", &value)?;
        }
        if let Some(value) = env("NEXKEY_TRUSTED_PROXIES") {
            self.server.trusted_proxies = value
                .split(',')
                .map(str::trim)
                .filter(|range| !range.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Some(value) = env("NEXKEY_MAX_CONNECTIONS") {
            self.server.max_connections = parse_env("NEXKEY_MAX_CONNECTIONS", &value)?;
        }
        self.apply_dmp_env(&env)?;
        if let Some(value) = env("NEXKEY_ACTIVATION_RATE_LIMIT") {
            self.activation.rate_limit_per_minute =
                parse_env("NEXKEY_ACTIVATION_RATE_LIMIT", &value)?;
        }
        // Empty means unset, so a compose file can pass `${NEXKEY_METRICS_TOKEN:-}` through.
        if let Some(value) = env("NEXKEY_METRICS_TOKEN").filter(|value| !value.is_empty()) {
            self.metrics_token = Some(value.into());
        }
        Ok(())
    }

    /// `NEXKEY_DMP_*`: reporting to Nexway's DMP. Empty values mean unset.
    fn apply_dmp_env(&mut self, env: &impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let text = |name: &str| env(name).filter(|value| !value.trim().is_empty());
        let dmp = &mut self.dmp;
        if let Some(value) = text("NEXKEY_DMP_URL") {
            dmp.url = Some(value.trim().to_owned());
        }
        if let Some(value) = text("NEXKEY_DMP_USER") {
            dmp.user = Some(value);
        }
        if let Some(value) = text("NEXKEY_DMP_PASSWORD") {
            dmp.password = Some(value.into());
        }
        if let Some(value) = text("NEXKEY_DMP_SALESUNIT_ID") {
            dmp.salesunit_id = Some(value.trim().to_owned());
        }
        if let Some(value) = text("NEXKEY_DMP_PLATFORM_ID") {
            dmp.platform_id = Some(value.trim().to_owned());
        }
        if let Some(value) = text("NEXKEY_DMP_RETRY_SECS") {
            dmp.retry_secs = parse_env("NEXKEY_DMP_RETRY_SECS", &value)?;
        }
        if let Some(value) = text("NEXKEY_DMP_MAX_RETRY_SECS") {
            dmp.max_retry_secs = parse_env("NEXKEY_DMP_MAX_RETRY_SECS", &value)?;
        }
        if let Some(value) = text("NEXKEY_DMP_TIMEOUT_SECS") {
            dmp.timeout_secs = parse_env("NEXKEY_DMP_TIMEOUT_SECS", &value)?;
        }
        Ok(())
    }

    /// Reporting is either off or complete: a URL nexkey can call, with its credentials.
    fn validate_dmp(&self) -> Result<(), ConfigError> {
        let dmp = &self.dmp;
        let invalid = |reason: &str| Err(ConfigError::Invalid(reason.into()));
        let Some(url) = &dmp.url else {
            return Ok(());
        };
        if !(url.starts_with("https://") || url.starts_with("http://"))
            || reqwest::Url::parse(url).is_err()
        {
            return invalid("dmp.url must be an http(s) URL");
        }
        if dmp.user.as_deref().is_none_or(str::is_empty) || dmp.password.is_none() {
            return invalid(
                "dmp.url needs dmp.user and dmp.password (NEXKEY_DMP_USER, NEXKEY_DMP_PASSWORD)",
            );
        }
        if dmp.retry_secs == 0 || dmp.max_retry_secs < dmp.retry_secs {
            return invalid("dmp.retry_secs must be at least 1 and at most dmp.max_retry_secs");
        }
        if dmp.timeout_secs == 0 {
            return invalid("dmp.timeout_secs must be at least 1");
        }
        Ok(())
    }

    /// `NEXKEY_NEXWAY_*` settings of the request signature; lists are comma-separated.
    fn apply_signature_env(
        &mut self,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        let list = |value: String| -> Vec<String> {
            value
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(String::from)
                .collect()
        };
        let nexway = &mut self.nexway;
        if let Some(value) = env("NEXKEY_NEXWAY_BASIC") {
            nexway.basic = parse_env("NEXKEY_NEXWAY_BASIC", &value)?;
        }
        if let Some(value) = env("NEXKEY_NEXWAY_SIGNATURE") {
            nexway.signature = parse_env("NEXKEY_NEXWAY_SIGNATURE", &value)?;
        }
        if let Some(value) = env("NEXKEY_NEXWAY_SIGNING_SECRETS") {
            nexway.signing_secrets = list(value).into_iter().map(SecretString::from).collect();
        }
        if let Some(value) = env("NEXKEY_NEXWAY_SIGNED_FIELDS") {
            nexway.signed_fields = list(value);
        }
        if let Some(value) = env("NEXKEY_NEXWAY_SIGNATURE_HEADER") {
            nexway.signature_header = value.trim().to_owned();
        }
        if let Some(value) = env("NEXKEY_NEXWAY_TIMESTAMP_FIELD") {
            nexway.timestamp_field = Some(value.trim().to_owned()).filter(|v| !v.is_empty());
        }
        if let Some(value) = env("NEXKEY_NEXWAY_REPLAY_WINDOW") {
            nexway.replay_window_secs = parse_env("NEXKEY_NEXWAY_REPLAY_WINDOW", &value)?;
        }
        Ok(())
    }

    /// The signature settings make sense together: never a door with no lock.
    fn validate_signature(&self) -> Result<(), ConfigError> {
        use secrecy::ExposeSecret;
        let nexway = &self.nexway;
        let invalid = |reason: &str| Err(ConfigError::Invalid(reason.into()));
        if !nexway.basic && nexway.signature != SignatureMode::Required {
            return invalid(
                "nexway.basic may be turned off only while nexway.signature is required",
            );
        }
        if poem::http::HeaderName::from_bytes(nexway.signature_header.as_bytes()).is_err() {
            return invalid("nexway.signature_header is not a valid header name");
        }
        for field in nexway.signed_fields.iter().chain(&nexway.timestamp_field) {
            crate::nexway::signature::JsonPath::parse(field)
                .map_err(|reason| ConfigError::Invalid(format!("nexway signed field {reason}")))?;
        }
        if nexway.signature == SignatureMode::Required {
            if nexway.signing_secrets.is_empty() {
                return invalid("a required signature needs at least one signing secret");
            }
            if nexway
                .signing_secrets
                .iter()
                .any(|s| s.expose_secret().len() < 8)
            {
                return invalid("a signing secret needs 8 characters or more");
            }
            if nexway.signed_fields.is_empty() {
                return invalid("a required signature needs at least one signed field");
            }
        }
        if let Some(field) = &nexway.timestamp_field {
            // An unsigned timestamp proves nothing: anyone replaying a call could change it.
            if !nexway.signed_fields.contains(field) {
                return invalid("nexway.timestamp_field must be one of the signed fields");
            }
            if nexway.replay_window_secs == 0 {
                return invalid("nexway.replay_window_secs must be at least 1");
            }
        }
        if self.request_timeout_secs == 0 {
            return invalid("request_timeout_secs must be at least 1");
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.validate_signature()?;
        self.validate_addresses()?;
        self.validate_dmp()?;
        if self.activation.rate_limit_per_minute == 0 {
            return Err(ConfigError::Invalid(
                "activation.rate_limit_per_minute must be at least 1".into(),
            ));
        }
        if self.body_limit < 1024 {
            return Err(ConfigError::Invalid(
                "body_limit must be at least 1024 bytes".into(),
            ));
        }
        for credential in &self.nexway.credentials {
            use secrecy::ExposeSecret;
            if credential.user.is_empty() || credential.password.expose_secret().len() < 8 {
                return Err(ConfigError::Invalid(
                    "a Nexway credential needs a user name and a password of 8 characters or more"
                        .into(),
                ));
            }
        }
        for key in &self.admin.keys {
            use secrecy::ExposeSecret;
            if key.expose_secret().len() < 16 {
                return Err(ConfigError::Invalid(
                    "an admin API key needs 16 characters or more".into(),
                ));
            }
        }
        let generators = std::iter::once(("defaults", &self.defaults.generator)).chain(
            self.products
                .iter()
                .filter_map(|(name, product)| Some((name.as_str(), product.generator.as_ref()?))),
        );
        for (product, generator) in generators {
            generator.validate().map_err(|reason| {
                ConfigError::Invalid(format!("generator of {product}: {reason}"))
            })?;
        }
        for range in &self.server.trusted_proxies {
            crate::api::parse_range(range).map_err(|reason| {
                ConfigError::Invalid(format!("server.trusted_proxies: {reason}"))
            })?;
        }
        if self.server.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "server.max_connections must be at least 1".into(),
            ));
        }
        if let Some(token) = &self.metrics_token {
            use secrecy::ExposeSecret;
            if token.expose_secret().len() < 16 {
                return Err(ConfigError::Invalid(
                    "metrics_token needs 16 characters or more".into(),
                ));
            }
        }
        Ok(())
    }

    /// What `serve` would fail on later: a bind address without a valid port, a database URL of a
    /// backend this build does not have.
    fn validate_addresses(&self) -> Result<(), ConfigError> {
        let port = self
            .bind
            .rsplit_once(':')
            .filter(|(host, _)| !host.is_empty())
            .map(|(_, port)| port.parse::<u16>());
        if !matches!(port, Some(Ok(_))) {
            return Err(ConfigError::Invalid(format!(
                "bind {:?} is not host:port with a port from 0 to 65535",
                self.bind
            )));
        }
        if let Some(url) = &self.database_url
            && !SUPPORTED_DATABASE_URLS
                .iter()
                .any(|scheme| url.starts_with(scheme))
        {
            let scheme = url.split(':').next().unwrap_or_default();
            return Err(ConfigError::Invalid(format!(
                "database_url: the scheme {scheme:?} is not supported (use {})",
                SUPPORTED_DATABASE_URLS.join(", ")
            )));
        }
        Ok(())
    }

    /// Settings that work but that a security review would question; `check-config` prints
    /// them and `serve` logs them at start.
    pub fn warnings(&self) -> Vec<String> {
        let nexway = &self.nexway;
        let mut warnings = Vec::new();
        // A signed code carries its end date: extending it in the database leaves the code's
        // own date behind, and the software checking it offline locks the buyer out.
        // Likewise its product: an upgrade that keeps the code leaves it signed for the old one.
        let defaults = &self.defaults;
        let products = std::iter::once((
            "defaults",
            &defaults.generator,
            defaults.renew,
            defaults.upgrade,
        ))
        .chain(self.products.iter().map(|(id, product)| {
            (
                id.as_str(),
                product.generator.as_ref().unwrap_or(&defaults.generator),
                product.renew.unwrap_or(defaults.renew),
                product.upgrade.unwrap_or(defaults.upgrade),
            )
        }));
        for (product, generator, renew, upgrade) in products {
            if !matches!(generator, GeneratorSettings::Signed(_)) {
                continue;
            }
            if renew == RenewMode::Extend {
                warnings.push(format!(
                    "{product}: signed codes carry their end date, but renew = \"extend\" keeps \
                     the code: set renew = \"reissue\" so a renewal gives a code with the new date"
                ));
            }
            if upgrade == CodeMode::Keep {
                warnings.push(format!(
                    "{product}: signed codes carry their product, but upgrade = \"keep\" keeps \
                     the code: set upgrade = \"reissue\" so an upgrade gives a code for the new product"
                ));
            }
        }
        if nexway.signature != SignatureMode::Required {
            return warnings;
        }
        let signs = |paths: &[&str]| {
            paths
                .iter()
                .any(|p| nexway.signed_fields.iter().any(|f| f == p))
        };
        if !signs(&["$.fulfillmentId", "$.product.nexwayFulfillmentId"]) {
            warnings.push(
                "nexway.signed_fields sign no fulfillment id ($.fulfillmentId, \
                 $.product.nexwayFulfillmentId): a signature can be moved to another call"
                    .into(),
            );
        }
        if !signs(&["$.product.quantity"]) {
            warnings.push(
                "nexway.signed_fields do not sign $.product.quantity: the quantity of a signed \
                 call can be changed"
                    .into(),
            );
        }
        let unsigned: Vec<&str> = [
            ("$.checkout.orderId", "the order"),
            ("$.product.publisherProductId", "the product"),
            ("$.user.email", "the buyer"),
            ("$.checkout.trialContext", "whether it is a trial"),
            ("$.product.expirationTimestamp", "the end date"),
        ]
        .into_iter()
        .filter(|(path, _)| !signs(&[path]))
        .map(|(_, what)| what)
        .collect();
        if !unsigned.is_empty() {
            warnings.push(format!(
                "nexway.signed_fields leave {} of a signed current-body call open to change \
                 (and the path is never signed: pair the signature with HTTP Basic)",
                unsigned.join(", ")
            ));
        }
        if !nexway.basic && nexway.timestamp_field.is_none() {
            warnings.push(
                "nexway.basic is off and no timestamp_field is signed: a captured call can be \
                 replayed at any time"
                    .into(),
            );
        }
        warnings
    }

    pub fn request_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.request_timeout_secs)
    }

    /// The database URL in effect: the configured one, else a SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("nexkey.db").display()
            ),
        }
    }
}

/// The database URLs this build connects to.
pub const SUPPORTED_DATABASE_URLS: [&str; 4] =
    ["sqlite:", "postgres://", "postgresql://", "mysql://"];

fn parse_env<T: std::str::FromStr>(name: &'static str, value: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    value.trim().parse().map_err(|e: T::Err| ConfigError::Env {
        name,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::load_from(|name| vars.get(name).cloned())
    }

    #[test]
    fn a_signed_product_whose_renewals_or_upgrades_keep_the_code_is_warned_about() {
        let pair = crate::keygen::KeyPair::generate();
        let warnings = |renew: &str, upgrade: &str| {
            let text = format!(
                "[products.SG]\nrenew = \"{renew}\"\nupgrade = \"{upgrade}\"\n\
                 generator = {{ kind = \"signed\", private_key = \"{}\" }}",
                secrecy::ExposeSecret::expose_secret(&pair.private_key)
            );
            let settings: Settings = toml::from_str(&text).unwrap();
            settings
                .warnings()
                .into_iter()
                .filter(|w| w.starts_with("SG: signed codes"))
                .count()
        };
        assert_eq!(warnings("extend", "keep"), 2);
        assert_eq!(warnings("extend", "reissue"), 1);
        assert_eq!(warnings("reissue", "keep"), 1);
        assert_eq!(warnings("reissue", "reissue"), 0);
    }

    #[test]
    fn the_catalog_builds_custom_generators_only_from_registered_factories() {
        let settings: Settings = toml::from_str(
            "[products.ACME-TEAM]\ngenerator = { kind = \"custom\", name = \"acme-seats\" }",
        )
        .unwrap();
        let refused = settings.catalog(&GeneratorRegistry::new()).err().unwrap();
        assert!(
            refused.to_string().contains("ACME-TEAM") && refused.to_string().contains("acme-seats"),
            "{refused}"
        );
        let mut registry = GeneratorRegistry::new();
        registry.register("acme-seats", |_| {
            Ok(std::sync::Arc::new(crate::keygen::RandomGenerator::new(
                Default::default(),
            )))
        });
        let catalog = settings.catalog(&registry).unwrap();
        assert_eq!(
            catalog.policy("ACME-TEAM").unwrap().generator.name(),
            "random"
        );
    }

    #[test]
    fn environment_overrides_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("nexkey.toml");
        std::fs::write(&file, "bind = \"0.0.0.0:9000\"\nbody_limit = 2048\n").unwrap();
        let path = file.to_str().unwrap();

        let settings = load(&[("NEXKEY_CONFIG", path), ("NEXKEY_BIND", "127.0.0.1:1")]).unwrap();
        assert_eq!(settings.bind, "127.0.0.1:1");
        assert_eq!(settings.body_limit, 2048);
        assert_eq!(settings.defaults.max_quantity, 100);
        assert!(settings.auto_migrate);
    }

    #[test]
    fn passwords_are_taken_verbatim_and_never_debug_printed() {
        let settings = load(&[
            ("NEXKEY_CONFIG", "/dev/null"),
            ("NEXKEY_NEXWAY_USER", "nexway"),
            ("NEXKEY_NEXWAY_PASSWORD", "[true]\"1234\""),
        ])
        .unwrap();
        use secrecy::ExposeSecret;
        assert_eq!(
            settings.nexway.credentials[0].password.expose_secret(),
            "[true]\"1234\""
        );
        assert!(!format!("{settings:?}").contains("1234"));
    }

    #[test]
    fn admin_keys_come_from_the_environment_and_stay_secret() {
        let settings = load(&[
            ("NEXKEY_CONFIG", "/dev/null"),
            (
                "NEXKEY_ADMIN_KEYS",
                "support-key-0123456789, ,second-key-0123456789",
            ),
        ])
        .unwrap();
        assert_eq!(settings.admin.keys.len(), 2);
        let debug = format!("{settings:?}");
        assert!(!debug.contains("support-key") && !debug.contains("second-key"));
        let short = load(&[
            ("NEXKEY_CONFIG", "/dev/null"),
            ("NEXKEY_ADMIN_KEYS", "short"),
        ]);
        assert!(short.is_err());
    }

    #[test]
    fn bad_values_are_refused_with_the_variable_named() {
        let err = load(&[
            ("NEXKEY_CONFIG", "/dev/null"),
            ("NEXKEY_AUTO_MIGRATE", "maybe"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("NEXKEY_AUTO_MIGRATE"), "{err}");
        let err = load(&[("NEXKEY_CONFIG", "/dev/null"), ("NEXKEY_NEXWAY_USER", "x")]).unwrap_err();
        assert!(err.to_string().contains("go together"), "{err}");
    }

    const SIGNED: [(&str, &str); 5] = [
        ("NEXKEY_CONFIG", "/dev/null"),
        ("NEXKEY_NEXWAY_SIGNATURE", "required"),
        (
            "NEXKEY_NEXWAY_SIGNING_SECRETS",
            "old-secret-1, new-secret-2",
        ),
        (
            "NEXKEY_NEXWAY_SIGNED_FIELDS",
            "$.checkout.orderId,$.additionalData.RequestTimestamp",
        ),
        ("NEXKEY_NEXWAY_SIGNATURE_HEADER", "X-Signature"),
    ];

    #[test]
    fn signature_settings_come_from_the_environment_and_stay_secret() {
        let mut vars = SIGNED.to_vec();
        vars.extend([
            ("NEXKEY_NEXWAY_BASIC", "false"),
            (
                "NEXKEY_NEXWAY_TIMESTAMP_FIELD",
                "$.additionalData.RequestTimestamp",
            ),
            ("NEXKEY_NEXWAY_REPLAY_WINDOW", "120"),
            ("NEXKEY_REQUEST_TIMEOUT", "7"),
        ]);
        let settings = load(&vars).unwrap();
        let nexway = &settings.nexway;
        assert!(!nexway.basic);
        assert_eq!(nexway.signature, SignatureMode::Required);
        use secrecy::ExposeSecret;
        let secrets: Vec<_> = nexway
            .signing_secrets
            .iter()
            .map(|s| s.expose_secret().to_owned())
            .collect();
        assert_eq!(secrets, ["old-secret-1", "new-secret-2"]);
        assert_eq!(nexway.signed_fields.len(), 2);
        assert_eq!(nexway.signature_header, "X-Signature");
        assert_eq!(nexway.replay_window_secs, 120);
        assert_eq!(settings.request_timeout_secs, 7);
        let debug = format!("{settings:?}");
        assert!(!debug.contains("old-secret-1") && !debug.contains("new-secret-2"));

        let defaults = load(&[("NEXKEY_CONFIG", "/dev/null")]).unwrap();
        assert!(defaults.nexway.basic);
        assert_eq!(defaults.nexway.signature, SignatureMode::Off);
        assert_eq!(defaults.nexway.signature_header, "X-Nexway-Signature");
    }

    #[test]
    fn the_file_configures_the_signature_too() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("nexkey.toml");
        std::fs::write(
            &file,
            "[nexway]\nsignature = \"required\"\nsigning_secrets = [\"file-secret-1\"]\n\
             signed_fields = [\"$.fulfillmentId\"]\n",
        )
        .unwrap();
        let settings = load(&[("NEXKEY_CONFIG", file.to_str().unwrap())]).unwrap();
        assert_eq!(settings.nexway.signature, SignatureMode::Required);
        assert!(settings.nexway.basic);
        assert!(!format!("{settings:?}").contains("file-secret-1"));
    }

    #[test]
    fn no_door_is_left_without_a_lock() {
        let refused = |extra: &[(&'static str, &'static str)], expected: &str| {
            let mut vars = SIGNED.to_vec();
            vars.extend_from_slice(extra);
            let err = load(&vars).unwrap_err().to_string();
            assert!(err.contains(expected), "{extra:?}: {err}");
        };
        refused(
            &[
                ("NEXKEY_NEXWAY_BASIC", "false"),
                ("NEXKEY_NEXWAY_SIGNATURE", "off"),
            ],
            "only while",
        );
        refused(
            &[("NEXKEY_NEXWAY_SIGNING_SECRETS", " , ")],
            "signing secret",
        );
        refused(
            &[("NEXKEY_NEXWAY_SIGNING_SECRETS", "short")],
            "8 characters",
        );
        refused(&[("NEXKEY_NEXWAY_SIGNED_FIELDS", "")], "signed field");
        refused(
            &[("NEXKEY_NEXWAY_SIGNED_FIELDS", "checkout.orderId")],
            "`$`",
        );
        refused(
            &[("NEXKEY_NEXWAY_SIGNATURE", "maybe")],
            "NEXKEY_NEXWAY_SIGNATURE",
        );
        refused(
            &[("NEXKEY_NEXWAY_SIGNATURE_HEADER", "X Sig")],
            "header name",
        );
        refused(
            &[("NEXKEY_NEXWAY_TIMESTAMP_FIELD", "$.unsigned.time")],
            "one of the signed fields",
        );
        refused(&[("NEXKEY_REQUEST_TIMEOUT", "0")], "request_timeout_secs");
        let err = load(&[
            ("NEXKEY_CONFIG", "/dev/null"),
            ("NEXKEY_NEXWAY_BASIC", "false"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("only while"), "{err}");
    }

    #[test]
    fn operations_settings_come_from_file_and_environment() {
        use crate::logging::LogFormat;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("nexkey.toml");
        std::fs::write(
            &file,
            "log_format = \"json\"\nshutdown_timeout_secs = 5\nmetrics_token = \"scrape-token-0123456789\"\n",
        )
        .unwrap();
        let path = file.to_str().unwrap();
        let settings = load(&[("NEXKEY_CONFIG", path)]).unwrap();
        assert_eq!(settings.log_format, LogFormat::Json);
        assert_eq!(settings.shutdown_timeout_secs, 5);
        assert!(!format!("{settings:?}").contains("scrape-token"));

        let settings = load(&[
            ("NEXKEY_CONFIG", path),
            ("NEXKEY_LOG_FORMAT", "pretty"),
            ("NEXKEY_SHUTDOWN_TIMEOUT", "90"),
        ])
        .unwrap();
        assert_eq!(settings.log_format, LogFormat::Pretty);
        assert_eq!(settings.shutdown_timeout_secs, 90);

        let defaults = load(&[("NEXKEY_CONFIG", "/dev/null")]).unwrap();
        assert_eq!(defaults.log_format, LogFormat::Auto);
        assert_eq!(defaults.shutdown_timeout_secs, 30);
        assert!(defaults.metrics_token.is_none());
        let empty = load(&[("NEXKEY_CONFIG", "/dev/null"), ("NEXKEY_METRICS_TOKEN", "")]);
        assert!(empty.unwrap().metrics_token.is_none());

        let err = load(&[("NEXKEY_CONFIG", "/dev/null"), ("NEXKEY_LOG_FORMAT", "xml")]);
        assert!(err.unwrap_err().to_string().contains("NEXKEY_LOG_FORMAT"));
        let err = load(&[
            ("NEXKEY_CONFIG", "/dev/null"),
            ("NEXKEY_METRICS_TOKEN", "short"),
        ]);
        assert!(err.unwrap_err().to_string().contains("metrics_token"));
    }

    #[test]
    fn dmp_reporting_is_off_by_default_and_complete_when_on() {
        let defaults = load(&[("NEXKEY_CONFIG", "/dev/null")]).unwrap();
        assert!(!defaults.dmp.enabled());
        assert_eq!(defaults.dmp.retry_secs, 30);
        let on = load(&[
            ("NEXKEY_CONFIG", "/dev/null"),
            ("NEXKEY_DMP_URL", "https://api.nexway.store/event"),
            ("NEXKEY_DMP_USER", "publisher"),
            ("NEXKEY_DMP_PASSWORD", "dmp-secret-42"),
            ("NEXKEY_DMP_SALESUNIT_ID", "123"),
            ("NEXKEY_DMP_RETRY_SECS", "5"),
        ])
        .unwrap();
        assert!(on.dmp.enabled());
        assert_eq!(on.dmp.salesunit_id.as_deref(), Some("123"));
        assert_eq!(on.dmp.retry_secs, 5);
        assert!(!format!("{on:?}").contains("dmp-secret-42"));
        let refused = |vars: &[(&str, &str)], expected: &str| {
            let mut all = vec![("NEXKEY_CONFIG", "/dev/null")];
            all.extend_from_slice(vars);
            let err = load(&all).unwrap_err().to_string();
            assert!(err.contains(expected), "{vars:?}: {err}");
        };
        refused(&[("NEXKEY_DMP_URL", "https://dmp/event")], "dmp.user");
        refused(&[("NEXKEY_DMP_URL", "ftp://dmp/event")], "http(s)");
        refused(
            &[
                ("NEXKEY_DMP_URL", "https://dmp/event"),
                ("NEXKEY_DMP_USER", "u"),
                ("NEXKEY_DMP_PASSWORD", "p"),
                ("NEXKEY_DMP_RETRY_SECS", "0"),
            ],
            "retry_secs",
        );
        refused(&[("NEXKEY_ACTIVATION_RATE_LIMIT", "0")], "rate_limit");
    }

    #[test]
    fn default_database_is_a_sqlite_file_in_the_data_directory() {
        let settings = load(&[
            ("NEXKEY_CONFIG", "/dev/null"),
            ("NEXKEY_DATA_DIR", "/var/lib/nk"),
        ])
        .unwrap();
        assert_eq!(
            settings.database_url(),
            "sqlite:///var/lib/nk/nexkey.db?mode=rwc"
        );
    }
}
