//! (d) on MariaDB: the server killed (SIGKILL: a crash) and started again under load, on a
//! throwaway server this test runs itself in a temporary directory (never the shared server),
//! with the same promises as on PostgreSQL (see [`super::postgres_restart`]).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::postgres_restart::{Throwaway, crash_and_restart_under_load};
use crate::binary::free_address;

/// A MariaDB server over a data directory of its own, killed on drop.
struct Server {
    dir: tempfile::TempDir,
    port: u16,
    process: Mutex<Option<Child>>,
}

impl Server {
    /// Initialises the data directory and starts the server, or says why it cannot.
    fn start() -> Result<Server, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let data = dir.path().join("data");
        let installed = Command::new("mariadb-install-db")
            .args([
                "--no-defaults",
                &format!("--datadir={}", data.display()),
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--user=root",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| format!("no mariadb-install-db: {e}"))?;
        if !installed.success() {
            return Err("mariadb-install-db failed".into());
        }
        let port: u16 = free_address().rsplit_once(':').unwrap().1.parse().unwrap();
        let server = Server {
            dir,
            port,
            process: Mutex::new(None),
        };
        server.up()?;
        let created = Command::new("mariadb")
            .args(["-h", "127.0.0.1", "-P", &port.to_string(), "-u", "root"])
            .args([
                "-e",
                "CREATE DATABASE nexkey CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
            ])
            .status()
            .map_err(|e| format!("no mariadb client: {e}"))?;
        if !created.success() {
            return Err("CREATE DATABASE failed".into());
        }
        Ok(server)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Throwaway for Server {
    const NAME: &'static str = "mariadb";

    fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}/nexkey", self.port)
    }

    fn crash(&self) {
        if let Some(mut child) = self.process.lock().unwrap().take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    fn up(&self) -> Result<(), String> {
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(self.path("server.log"))
            .map_err(|e| e.to_string())?;
        let child = Command::new("mariadbd")
            .args([
                "--no-defaults".to_owned(),
                format!("--datadir={}", self.path("data").display()),
                format!("--socket={}", self.path("mariadb.sock").display()),
                format!("--port={}", self.port),
                "--bind-address=127.0.0.1".to_owned(),
                "--user=root".to_owned(),
                "--skip-log-bin".to_owned(),
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("no mariadbd: {e}"))?;
        *self.process.lock().unwrap() = Some(child);
        // Ready once it accepts connections (InnoDB recovery included).
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if started.elapsed() > Duration::from_secs(60) {
                return Err("mariadbd did not listen within 60 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.crash();
    }
}

#[tokio::test]
async fn mariadb_crash_and_restart_under_load() {
    let server = match Server::start() {
        Ok(server) => server,
        Err(reason) => {
            eprintln!("SKIPPED mariadb_crash_and_restart: {reason}");
            return;
        }
    };
    crash_and_restart_under_load(&server).await;
}
