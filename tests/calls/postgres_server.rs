//! A real PostgreSQL server for the tests, from Debian's `postgresql`
//! package: a fresh cluster in a temporary folder (`initdb`), its
//! `postgres` in the foreground on a loopback port, as an unprivileged
//! user when the tests run as root (PostgreSQL refuses to run as root).
//! Without the package the test fails and says so: `scripts/test`
//! installs it.
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::service::free_port;

/// `nobody`: the user the server runs as when the tests are root.
const UNPRIVILEGED: u32 = 65_534;

pub(crate) struct PgServer {
    child: Child,
    port: u16,
    bin: PathBuf,
    dir: tempfile::TempDir,
}

/// The folder of PostgreSQL's server programs (Debian keeps them out of
/// PATH, under /usr/lib/postgresql/VERSION/bin), the newest version.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").is_file() && bin.join("postgres").is_file())
        .collect();
    versions.sort_by_key(|p| p.parent().and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok()));
    versions.pop().unwrap_or_else(|| {
        panic!(
            "POSTGRESQL IS NOT INSTALLED: this test runs a real PostgreSQL server from Debian's postgresql \
             package (scripts/test installs it with apt-get)"
        )
    })
}

fn as_unprivileged_if_root(cmd: &mut Command, dir: &Path) {
    let root = std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false);
    if root {
        std::os::unix::fs::chown(dir, Some(UNPRIVILEGED), Some(UNPRIVILEGED)).expect("hand the cluster folder over");
        cmd.uid(UNPRIVILEGED).gid(UNPRIVILEGED);
    }
}

impl PgServer {
    /// A new cluster with a `hotline` user (no password: trust on
    /// loopback) and a `hotline` database, ready for connections.
    pub(crate) fn start() -> PgServer {
        let bin = bin_dir();
        let dir = tempfile::tempdir().expect("a folder for the cluster");
        let data = dir.path().join("data");
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", "hotline", "-A", "trust", "-E", "UTF8", "--no-sync", "--locale=C"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        as_unprivileged_if_root(&mut initdb, dir.path());
        let made = initdb.output().expect("run initdb");
        assert!(made.status.success(), "initdb failed: {}", String::from_utf8_lossy(&made.stderr));
        let port = free_port();
        let child = launch(&bin, dir.path(), port);
        let pg = PgServer { child, port, bin, dir };
        pg.wait_ready();
        let mut admin = pg.client("postgres");
        admin.batch_execute("CREATE DATABASE hotline").expect("create the hotline database");
        pg
    }

    /// Stops the server at once (as a crash would) and starts it again on
    /// the same data and port; `down` runs while it is stopped.
    pub(crate) fn restart(&mut self, down: impl FnOnce()) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        down();
        self.child = launch(&self.bin, self.dir.path(), self.port);
        self.wait_ready();
    }

    /// `call_records` for the `hotline` database.
    pub(crate) fn url(&self) -> String {
        format!("postgres://hotline@127.0.0.1:{}/hotline", self.port)
    }

    pub(crate) fn client(&self, database: &str) -> postgres::Client {
        let url = format!("postgres://hotline@127.0.0.1:{}/{database}", self.port);
        postgres::Client::connect(&url, postgres::NoTls).expect("connect to the test PostgreSQL")
    }

    fn wait_ready(&self) {
        let t0 = Instant::now();
        let url = format!("postgres://hotline@127.0.0.1:{}/postgres", self.port);
        loop {
            match postgres::Client::connect(&url, postgres::NoTls) {
                Ok(_) => return,
                Err(e) => {
                    assert!(t0.elapsed() < Duration::from_secs(30), "PostgreSQL did not start: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }
}

/// `postgres` in the foreground on the cluster in `dir`, on `port`.
fn launch(bin: &Path, dir: &Path, port: u16) -> Child {
    let mut server = Command::new(bin.join("postgres"));
    server
        .arg("-D")
        .arg(dir.join("data"))
        .args(["-p", &port.to_string(), "-k"])
        .arg(dir)
        .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=60"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    as_unprivileged_if_root(&mut server, dir);
    server.spawn().expect("start postgres")
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
