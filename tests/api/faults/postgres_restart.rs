//! (d) PostgreSQL stopped (immediate: a crash) and started again under load, on a throwaway
//! cluster this test runs itself (never the shared server): calls get 503 with `Retry-After`
//! well inside the request deadline, readiness is red, nexkey recovers without a restart, and
//! nothing is half written.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{Call, answered, assert_200_or_retry_later, assert_replayed, assert_stored};
use crate::binary::{Answer, Launch, Nexkey, free_address};
use crate::helpers::legacy_new;

/// The request deadline nexkey runs with; a 503 must come in half of it.
const DEADLINE_SECS: u64 = 16;

/// A PostgreSQL cluster in a temporary directory, run as the `postgres` OS user when root,
/// stopped on drop.
pub struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Initialises and starts a cluster, or says why it cannot.
    pub fn start() -> Result<Cluster, String> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .map_err(|_| "no PostgreSQL binaries in /usr/lib/postgresql".to_owned())?
            .filter_map(|entry| entry.ok().map(|entry| entry.path().join("bin")))
            .filter(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
            .max()
            .ok_or("no initdb/pg_ctl in /usr/lib/postgresql/*/bin")?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let data = dir.path().join("data");
        let root = Command::new("id")
            .arg("-u")
            .output()
            .map_err(|e| e.to_string())?;
        if String::from_utf8_lossy(&root.stdout).trim() == "0" {
            // initdb refuses root: the cluster belongs to the postgres user.
            Command::new("chmod")
                .arg("755")
                .arg(dir.path())
                .status()
                .ok();
            let owned = Command::new("chown")
                .args(["postgres:", &dir.path().display().to_string()])
                .status()
                .map_err(|e| e.to_string())?;
            if !owned.success() {
                return Err("no postgres OS user to own the cluster".into());
            }
        }
        let port: u16 = free_address().rsplit_once(':').unwrap().1.parse().unwrap();
        let cluster = Cluster {
            bin,
            data,
            port,
            _dir: dir,
        };
        cluster
            .pg(
                "initdb",
                &[
                    "-D",
                    &cluster.data.display().to_string(),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "--no-sync",
                ],
            )
            .map_err(|e| format!("initdb failed: {e}"))?;
        cluster
            .up()
            .map_err(|e| format!("pg_ctl start failed: {e}"))?;
        Ok(cluster)
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs a PostgreSQL tool, as the postgres user when root.
    fn pg(&self, tool: &str, args: &[&str]) -> Result<(), String> {
        let program = self.bin.join(tool);
        let root = Command::new("id").arg("-u").output().unwrap();
        let mut command = if String::from_utf8_lossy(&root.stdout).trim() == "0" {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        let output = command
            .args(args)
            .current_dir(self._dir.path())
            .output()
            .map_err(|e| e.to_string())?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }

    fn dir(&self) -> &Path {
        self._dir.path()
    }

    /// Starts the server (on the same port every time) and waits for it.
    pub fn up(&self) -> Result<(), String> {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={} -c fsync=off",
            self.port,
            self.dir().display()
        );
        let log = self.dir().join("postgres.log").display().to_string();
        let data = self.data.display().to_string();
        self.pg(
            "pg_ctl",
            &["-D", &data, "-o", &options, "-l", &log, "-w", "start"],
        )
    }

    /// Stops the server at once, as a crash would (recovery on the next start).
    pub fn crash(&self) {
        let data = self.data.display().to_string();
        self.pg("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"])
            .expect("pg_ctl stop");
    }
}

/// A throwaway database server the test may crash and start again.
pub trait Throwaway {
    /// The backend's name, in messages.
    const NAME: &'static str;
    fn url(&self) -> String;
    /// Stops the server at once, as a crash would.
    fn crash(&self);
    /// Starts it again on the same port and waits for it.
    fn up(&self) -> Result<(), String>;
}

impl Throwaway for Cluster {
    const NAME: &'static str = "postgresql";
    fn url(&self) -> String {
        Cluster::url(self)
    }
    fn crash(&self) {
        Cluster::crash(self)
    }
    fn up(&self) -> Result<(), String> {
        Cluster::up(self)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data.display().to_string();
        self.pg("pg_ctl", &["-D", &data, "-m", "immediate", "stop"])
            .ok();
    }
}

fn call(n: usize) -> Call {
    Call::new("new", &legacy_new(&format!("NXF-PG-{n}"), "ACME-PRO", 2))
}

/// 8 concurrent calls: 6 fresh, a duplicate of one of them, a repeat of an older one.
async fn batch(
    nexkey: &Nexkey,
    next: &mut usize,
    results: &mut Vec<(Call, Result<Answer, String>)>,
) -> Vec<(Call, Result<Answer, String>)> {
    let first = *next;
    *next += 6;
    let mut calls: Vec<Call> = (first..first + 6).map(call).collect();
    calls.push(call(first));
    calls.push(call(first / 2));
    let answers =
        futures::future::join_all(calls.iter().map(|c| nexkey.call(c.operation, &c.body))).await;
    let batch: Vec<_> = calls.into_iter().zip(answers).collect();
    results.extend(batch.iter().cloned());
    batch
}

#[tokio::test]
async fn postgresql_crash_and_restart_under_load() {
    let cluster = match Cluster::start() {
        Ok(cluster) => cluster,
        Err(reason) => {
            eprintln!("SKIPPED postgresql_crash_and_restart: {reason}");
            return;
        }
    };
    crash_and_restart_under_load(&cluster).await;
}

/// Calls before, during and after a crash of `server`: 503s quickly while it is down, recovery
/// without restarting nexkey once it is up, every answered call stored and replayed.
pub async fn crash_and_restart_under_load<S: Throwaway>(cluster: &S) {
    let name = S::NAME;
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let database_url = cluster.url();
    let launch = || {
        Launch::new(dir.path())
            .database(&database_url)
            .env("NEXKEY_REQUEST_TIMEOUT", &DEADLINE_SECS.to_string())
    };
    let nexkey = launch().start().await;
    let mut results = Vec::new();
    let mut next = 0;
    for _ in 0..4 {
        let batch = batch(&nexkey, &mut next, &mut results).await;
        assert_eq!(assert_200_or_retry_later(&batch).0, batch.len());
    }

    // The crash lands while a batch is in flight.
    let mut in_flight = Vec::new();
    let crashed = async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        cluster.crash();
    };
    let (batch_answers, ()) = tokio::join!(batch(&nexkey, &mut next, &mut in_flight), crashed);
    assert_200_or_retry_later(&batch_answers);
    results.extend(in_flight);

    // Down: 503 with Retry-After, quickly; readiness red. The one 200 allowed is a repeat of a
    // call answered before the crash, replayed from the in-process cache with its committed
    // bytes: nothing is answered anew without the database.
    let quickly = Duration::from_secs(DEADLINE_SECS / 2);
    for _ in 0..3 {
        let batch = batch(&nexkey, &mut next, &mut results).await;
        // Only a replay of an answer committed before may be 200: the same bytes again.
        assert_200_or_retry_later(&batch);
        for (call, answer) in &batch {
            let answer = answer.as_ref().unwrap();
            assert!(
                answer.took < quickly,
                "{name}: an answer took {:?}",
                answer.took
            );
            if answer.status != 200 {
                continue;
            }
            assert_eq!(
                answer.replayed.as_deref(),
                Some("true"),
                "{name}: a fresh 200 with the database down"
            );
            let first = results.iter().find_map(|(earlier, first)| match first {
                Ok(first)
                    if earlier.body == call.body
                        && first.status == 200
                        && first.replayed.as_deref() == Some("false") =>
                {
                    Some(first)
                }
                _ => None,
            });
            assert_eq!(
                Some(&answer.body),
                first.map(|first| &first.body),
                "{name}: a replay with the database down is the first answer's bytes"
            );
        }
    }
    assert_eq!(
        nexkey.ready().await,
        Some(503),
        "{name}: /health/ready with the database down"
    );

    // Up again on the same port: recovery without restarting nexkey.
    cluster
        .up()
        .unwrap_or_else(|e| panic!("{name}: restart: {e}"));
    let restarted = Instant::now();
    loop {
        let batch = batch(&nexkey, &mut next, &mut results).await;
        if assert_200_or_retry_later(&batch).0 == batch.len() {
            break;
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(30),
            "{name}: no recovery 30 s after the server came back"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let recovery = restarted.elapsed();
    for _ in 0..3 {
        let batch = batch(&nexkey, &mut next, &mut results).await;
        assert_eq!(
            assert_200_or_retry_later(&batch).0,
            batch.len(),
            "{name}: after recovery"
        );
    }
    assert_eq!(nexkey.ready().await, Some(200));

    drop(nexkey);
    let answered = answered(&results);
    assert_stored(&database_url, &answered).await;
    let nexkey = launch().start().await;
    assert_replayed(&nexkey, &answered).await;
    eprintln!(
        "{name}_crash_and_restart: {} calls, recovered in {:?}, {:?} in all",
        results.len(),
        recovery,
        started.elapsed()
    );
}
