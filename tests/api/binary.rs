//! The real `nexkey serve` as a child process: spawned on a free loopback port with Nexway's
//! test credentials, waited for, called over HTTP, killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{PASSWORD, USER};

/// A free loopback address (the port is released for nexkey to bind).
pub fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// How to start one `nexkey serve`: a data directory, a database (SQLite in the data
/// directory unless a URL is given), extra environment, where its log (stderr) goes.
pub struct Launch {
    pub dir: PathBuf,
    pub database_url: Option<String>,
    pub envs: Vec<(String, String)>,
    pub stderr: Stdio,
    /// The executable: the debug binary of this build unless told otherwise (the soak uses a
    /// release build).
    pub binary: PathBuf,
    /// Run as this (uid, gid) instead of the test's user (root only).
    pub user: Option<(u32, u32)>,
}

impl Launch {
    pub fn new(dir: &Path) -> Launch {
        Launch {
            dir: dir.to_owned(),
            database_url: None,
            envs: Vec::new(),
            stderr: Stdio::null(),
            binary: env!("CARGO_BIN_EXE_nexkey").into(),
            user: None,
        }
    }

    pub fn database(mut self, url: &str) -> Launch {
        self.database_url = Some(url.to_owned());
        self
    }

    pub fn run_as(mut self, uid: u32, gid: u32) -> Launch {
        self.user = Some((uid, gid));
        self
    }

    pub fn env(mut self, name: &str, value: &str) -> Launch {
        self.envs.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn stderr(mut self, stderr: impl Into<Stdio>) -> Launch {
        self.stderr = stderr.into();
        self
    }

    /// JSON log lines appended to `path`.
    pub fn log_to(self, path: &Path) -> Launch {
        let file = std::fs::File::options()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        self.env("NEXKEY_LOG_FORMAT", "json").stderr(file)
    }

    /// Spawns the process; it may not be listening yet (see [`Nexkey::wait_ready`]).
    pub fn spawn(self) -> Nexkey {
        let address = free_address();
        let mut command = Command::new(&self.binary);
        command
            .arg("serve")
            .current_dir(&self.dir)
            .env_clear()
            .env("NEXKEY_BIND", &address)
            .env("NEXKEY_DATA_DIR", &self.dir)
            .env("NEXKEY_NEXWAY_USER", USER)
            .env("NEXKEY_NEXWAY_PASSWORD", PASSWORD)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(self.stderr);
        if let Some(url) = &self.database_url {
            command.env("NEXKEY_DATABASE_URL", url);
        }
        if let Some((uid, gid)) = self.user {
            use std::os::unix::process::CommandExt;
            command.uid(uid).gid(gid);
        }
        let child = command.spawn().expect("spawn nexkey");
        Nexkey {
            child,
            address,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
        }
    }

    /// Spawns the process and waits until `/health/ready` answers 200.
    pub async fn start(self) -> Nexkey {
        let mut nexkey = self.spawn();
        if let Err(why) = nexkey.wait_ready(Duration::from_secs(30)).await {
            panic!("nexkey did not become ready on {}: {why}", nexkey.address);
        }
        nexkey
    }
}

/// One answer as Nexway sees it.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
    pub replayed: Option<String>,
    pub body: String,
    pub took: Duration,
}

impl Answer {
    /// The status is 503 with a `Retry-After` header and the documented error body.
    pub fn is_retry_later(&self) -> bool {
        self.status == 503
            && self.retry_after.is_some()
            && self.body.contains("STORAGE_UNAVAILABLE")
    }
}

pub struct Nexkey {
    pub child: Child,
    pub address: String,
    pub http: reqwest::Client,
}

impl Drop for Nexkey {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl Nexkey {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Waits until `/health/ready` answers 200; an error if the process exits or `limit` passes.
    pub async fn wait_ready(&mut self, limit: Duration) -> Result<(), String> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Err(format!("nexkey exited: {status}"));
            }
            if self.ready().await == Some(200) {
                return Ok(());
            }
            if started.elapsed() > limit {
                return Err(format!("not ready after {limit:?}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The status of `/health/ready`, `None` when nothing answers.
    pub async fn ready(&self) -> Option<u16> {
        self.http
            .get(self.url("/health/ready"))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .ok()
            .map(|response| response.status().as_u16())
    }

    /// POSTs `body` to `/licenses/{operation}` with Nexway's credentials; `Err` when no complete
    /// answer came back (connection refused, reset, or a client timeout of 40 s).
    pub async fn call(&self, operation: &str, body: &str) -> Result<Answer, String> {
        let started = Instant::now();
        let response = self
            .http
            .post(self.url(&format!("/licenses/{operation}")))
            .basic_auth(USER, Some(PASSWORD))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .timeout(Duration::from_secs(40))
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|value| value.to_str().unwrap_or("?").to_owned())
        };
        let retry_after = header("retry-after");
        let replayed = header("idempotent-replayed");
        let body = response.text().await.map_err(|e| format!("{e:?}"))?;
        Ok(Answer {
            status,
            retry_after,
            replayed,
            body,
            took: started.elapsed(),
        })
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// SIGKILL: no shutdown, no flush, what a power cut or the OOM killer does.
    pub fn sigkill(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }

    /// SIGTERM and wait for the exit (SIGKILL after `limit`).
    pub async fn stop(&mut self, limit: Duration) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().ok();
        let started = Instant::now();
        while self.alive() {
            if started.elapsed() > limit {
                self.sigkill();
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Resident memory (kB) and open file descriptors of the process, from /proc.
    pub fn resources(&self) -> (u64, usize) {
        let pid = self.child.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let rss = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse().ok())
            .unwrap_or(0);
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|dir| dir.count())
            .unwrap_or(0);
        (rss, fds)
    }
}
