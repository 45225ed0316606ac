//! Real servers for tests.
//!
//! Each test process starts at most one private MariaDB on a free 127.0.0.1 port in a temporary
//! folder; every test gets its own database in it. The server runs under a small watchdog that
//! stops it by pid (and removes its folder) as soon as the test process exits, however it exits.
//! A missing server binary is a failure with instructions, never a silent skip.
//!
//! [`app::TestApp`] serves chosen services on a free port over SQLite or that MariaDB.

#![allow(clippy::unwrap_used)] // Test support: a failure here should stop the test loudly.

pub mod app;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (bound then released; the caller binds it next).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

/// Finds a server binary on PATH or in the sbin folders, or panics with how to install it.
pub fn require_binary(name: &str, package: &str) -> PathBuf {
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from));
    for dir in candidates {
        let path = dir.join(name);
        if path.is_file() {
            return path;
        }
    }
    panic!(
        "`{name}` is not installed: these tests need a real server. Install it with \
         `apt-get install -y {package}` (scripts/test.sh does this)."
    );
}

/// A private MariaDB server for this test process.
#[derive(Debug)]
pub struct MariaDb {
    port: u16,
    dir: PathBuf,
}

static MARIADB: OnceLock<MariaDb> = OnceLock::new();

const APP_USER: &str = "app";
const APP_PASSWORD: &str = "app-test-password";

impl MariaDb {
    /// The process's server, started on first use.
    pub fn shared() -> &'static MariaDb {
        MARIADB.get_or_init(MariaDb::start)
    }

    fn start() -> MariaDb {
        let mariadbd = require_binary("mariadbd", "mariadb-server");
        let install_db = require_binary("mariadb-install-db", "mariadb-server");
        // The folder outlives this function: the watchdog removes it after stopping the server.
        let dir = tempfile::Builder::new().prefix("fintech-mariadb-").tempdir().unwrap().keep();
        let data = dir.join("data");
        // As root, MariaDB must be told to stay root (`--user=root`); as any other user (a CI agent
        // container running as uid 1000) it runs as that user, and `--user` would make
        // mariadb-install-db try, and fail, to chown the data folder.
        let user = if running_as_root() { "--user=root" } else { "" };
        // A temporary folder of its own: servers sharing /tmp (one per test process, started at
        // once) removed each other's temporary tables during install ("Unknown table
        // 'mysql.tmp_user_sys'"). install-db hands options it does not know to the server.
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        let out = Command::new(&install_db)
            .arg("--no-defaults")
            .args(Some(user).filter(|u| !u.is_empty()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .output()
            .expect("run mariadb-install-db");
        assert!(out.status.success(), "mariadb-install-db failed: {}", String::from_utf8_lossy(&out.stderr));

        let port = free_port();
        let socket = dir.join("sock");
        let server = format!(
            "{} --no-defaults --datadir={} --tmpdir={} --port={port} --bind-address=127.0.0.1 --socket={} {user} \
             --pid-file={} --log-error={} --skip-name-resolve --skip-log-bin \
             --innodb-buffer-pool-size=128M --innodb-flush-log-at-trx-commit=1 --max-connections=500",
            mariadbd.display(),
            data.display(),
            tmp.display(),
            socket.display(),
            dir.join("mariadbd.pid").display(),
            dir.join("error.log").display(),
        );
        start_watched(&server, &dir, port, "MariaDB", "error.log", Duration::from_secs(60));
        // Drop the anonymous users install-db creates (they shadow 'app'@'%' logins), then add
        // the application's user.
        let sql = format!(
            "DELETE FROM mysql.global_priv WHERE User=''; FLUSH PRIVILEGES; \
             CREATE USER '{APP_USER}'@'%' IDENTIFIED BY '{APP_PASSWORD}'; \
             GRANT ALL PRIVILEGES ON *.* TO '{APP_USER}'@'%'; FLUSH PRIVILEGES;"
        );
        run_sql(&socket, &sql);
        MariaDb { port, dir }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// URL of a database that does not exist yet, unique to the caller.
    pub fn fresh_database_url(&self) -> String {
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        format!("mysql://{APP_USER}:{APP_PASSWORD}@127.0.0.1:{}/{name}", self.port)
    }

    /// URL of the server with no database selected.
    pub fn server_url(&self) -> String {
        format!("mysql://{APP_USER}:{APP_PASSWORD}@127.0.0.1:{}", self.port)
    }
}

/// Starts `server` (a shell command line) in its own process group under a watchdog that stops
/// the group once this test process is gone and then removes `dir`, and waits until it accepts
/// connections on `port`; panics with the server's log (`dir/log`) when it does not within
/// `within`. The group matters for servers with children (the Pub/Sub emulator is a script
/// that starts a JVM). The watchdog outlives this process by design, so it is never waited on
/// here.
fn start_watched(server: &str, dir: &Path, port: u16, name: &str, log: &str, within: Duration) {
    let script = format!(
        "setsid {server} & child=$!; \
         while kill -0 {parent} 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 0.5; done; \
         kill -- -$child 2>/dev/null; wait $child; rm -rf '{dir}'",
        parent = std::process::id(),
        dir = dir.display(),
    );
    #[allow(clippy::zombie_processes)]
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
    let deadline = Instant::now() + within;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if Instant::now() > deadline {
            let text = std::fs::read_to_string(dir.join(log)).unwrap_or_default();
            panic!("{name} did not start within {} s:\n{text}", within.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A private Redis server for this test process: no persistence, 127.0.0.1 only, stopped by
/// pid by a watchdog when the test process exits.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
}

static REDIS: OnceLock<RedisServer> = OnceLock::new();

impl RedisServer {
    /// The process's server, started on first use.
    pub fn shared() -> &'static RedisServer {
        REDIS.get_or_init(RedisServer::start)
    }

    /// A server of the caller's own (one it may pause or stop), stopped when the process exits.
    pub fn start() -> RedisServer {
        let binary = require_binary("redis-server", "redis-server");
        let dir = tempfile::Builder::new().prefix("fintech-redis-").tempdir().unwrap().keep();
        let port = free_port();
        let server = format!(
            "{} --bind 127.0.0.1 --port {port} --save '' --appendonly no --dir '{}' --logfile '{}'",
            binary.display(),
            dir.display(),
            dir.join("redis.log").display(),
        );
        start_watched(&server, &dir, port, "redis-server", "redis.log", Duration::from_secs(20));
        RedisServer { port }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

/// A private Google Pub/Sub emulator for this test process (`gcloud beta emulators pubsub`, from
/// the Google Cloud CLI), stopped with its JVM by the watchdog when the test process exits.
/// Tests isolate themselves by project id ([`PubSubEmulator::project`]).
#[derive(Debug)]
pub struct PubSubEmulator {
    port: u16,
}

static PUBSUB: OnceLock<PubSubEmulator> = OnceLock::new();

impl PubSubEmulator {
    /// The process's emulator, started on first use (a few seconds: it is a JVM).
    pub fn shared() -> &'static PubSubEmulator {
        PUBSUB.get_or_init(PubSubEmulator::start)
    }

    fn start() -> PubSubEmulator {
        let gcloud = require_binary("gcloud", "google-cloud-cli google-cloud-cli-pubsub-emulator");
        require_binary("java", "default-jre-headless");
        let dir = tempfile::Builder::new().prefix("fintech-pubsub-").tempdir().unwrap().keep();
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let port = free_port();
        // A private gcloud configuration folder: the emulator must not touch the user's.
        let server = format!(
            "env CLOUDSDK_CONFIG='{dir}/gcloud' CLOUDSDK_CORE_DISABLE_PROMPTS=1 {gcloud} beta emulators pubsub start \
             --host-port=127.0.0.1:{port} --project=fintech-test --data-dir='{dir}/data' >'{dir}/emulator.log' 2>&1",
            gcloud = gcloud.display(),
            dir = dir.display(),
        );
        start_watched(&server, &dir, port, "the Pub/Sub emulator", "emulator.log", Duration::from_secs(90));
        PubSubEmulator { port }
    }

    /// `http://127.0.0.1:<port>`, the endpoint clients are given.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A project id of its own for one test: topics and subscriptions do not meet other tests'.
    pub fn project(&self) -> String {
        format!("test-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
    }
}

/// A private Cloud Storage emulator for this test process (`gcp-storage-emulator`, in memory, from
/// the tools virtualenv `.tools/venv` that scripts/test.sh fills), with one bucket,
/// [`StorageEmulator::BUCKET`]. Tests isolate themselves by key prefix.
#[derive(Debug)]
pub struct StorageEmulator {
    port: u16,
}

static STORAGE: OnceLock<StorageEmulator> = OnceLock::new();

impl StorageEmulator {
    pub const BUCKET: &'static str = "fintech-test";

    /// The process's emulator, started on first use.
    pub fn shared() -> &'static StorageEmulator {
        STORAGE.get_or_init(StorageEmulator::start)
    }

    fn start() -> StorageEmulator {
        let binary = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/venv/bin/gcp-storage-emulator");
        assert!(
            binary.is_file(),
            "gcp-storage-emulator is not installed in .tools/venv: run ./scripts/test.sh, or \
             `bash -c '. scripts/lib/tools-venv.sh && tools_venv_install scripts/requirements/test-servers.txt'`"
        );
        let dir = tempfile::Builder::new().prefix("fintech-gcs-").tempdir().unwrap().keep();
        let port = free_port();
        let server = format!(
            "{} start --host=127.0.0.1 --port={port} --in-memory --default-bucket={} >'{}' 2>&1",
            binary.display(),
            Self::BUCKET,
            dir.join("emulator.log").display(),
        );
        start_watched(&server, &dir, port, "the Cloud Storage emulator", "emulator.log", Duration::from_secs(30));
        StorageEmulator { port }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// aiosmtpd (from the tools virtualenv `.tools/venv`) storing every message it accepts in a
/// maildir, on a free 127.0.0.1 port; stopped by its pid when dropped. One per test: each test
/// reads only its own messages.
#[derive(Debug)]
pub struct SmtpSink {
    child: std::process::Child,
    port: u16,
    maildir: PathBuf,
    dir: tempfile::TempDir,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SmtpSink {
    /// Starts aiosmtpd; `tls` = (certificate, key) offers STARTTLS and requires it.
    pub fn start(tls: Option<(&Path, &Path)>) -> SmtpSink {
        let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/venv/bin/python");
        let ok = Command::new(&python)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "aiosmtpd is not installed in .tools/venv: run ./scripts/test.sh, or \
             `bash -c '. scripts/lib/tools-venv.sh && tools_venv_install scripts/requirements/test-servers.txt'`"
        );
        let dir = tempfile::tempdir().unwrap();
        let maildir = dir.path().join("maildir");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        let mut cmd = Command::new(python);
        cmd.args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")]);
        if let Some((cert, key)) = tls {
            cmd.arg("--tlscert").arg(cert).arg("--tlskey").arg(key);
        }
        cmd.args(["-c", "aiosmtpd.handlers.Mailbox"]).arg(&maildir);
        let child = cmd.stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log).spawn().unwrap();
        let mut sink = SmtpSink { child, port, maildir, dir };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            let log = std::fs::read_to_string(sink.dir.path().join("log")).unwrap_or_default();
            assert!(sink.child.try_wait().unwrap().is_none(), "aiosmtpd exited:\n{log}");
            assert!(Instant::now() < deadline, "aiosmtpd did not listen on 127.0.0.1:{port}:\n{log}");
            std::thread::sleep(Duration::from_millis(50));
        }
        sink
    }

    /// The messages received, as stored (headers, with aiosmtpd's X-MailFrom and X-RcptTo).
    pub fn messages(&self) -> Vec<String> {
        let new = self.maildir.join("new");
        let Ok(entries) = std::fs::read_dir(&new) else { return Vec::new() };
        entries.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap()).collect()
    }

    /// The messages received, decoded by Python's `email` package: one JSON object each with
    /// `to`, `from`, `subject`, `content_type`, `text` and `html` (the parts' decoded content, or
    /// null), in the order they arrived.
    pub fn parsed(&self) -> Vec<serde_json::Value> {
        const PARSE: &str = r#"
import email, json, pathlib, sys
from email import policy
out = []
for p in sorted(pathlib.Path(sys.argv[1]).glob("*"), key=lambda p: p.stat().st_mtime_ns):
    m = email.message_from_bytes(p.read_bytes(), policy=policy.default)
    text, html = m.get_body(("plain",)), m.get_body(("html",))
    out.append({"to": str(m["To"]), "from": str(m["From"]), "subject": str(m["Subject"]),
                "content_type": m.get_content_type(),
                "text": text.get_content() if text else None, "html": html.get_content() if html else None})
print(json.dumps(out))
"#;
        let new = self.maildir.join("new");
        if !new.is_dir() {
            return Vec::new();
        }
        let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/venv/bin/python");
        let out = Command::new(python).args(["-c", PARSE]).arg(&new).output().unwrap();
        assert!(out.status.success(), "parsing the messages: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

/// Whether this process's effective uid is 0 (from /proc/self/status; no libc binding needed).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let ids = status.lines().find_map(|l| l.strip_prefix("Uid:"))?.to_owned();
            ids.split_whitespace().nth(1).map(|euid| euid == "0")
        })
        .unwrap_or(false)
}

fn run_sql(socket: &Path, sql: &str) {
    let client = require_binary("mariadb", "mariadb-client");
    let out = Command::new(client)
        .args(["--no-defaults", "--protocol=socket", "-uroot"])
        .arg(format!("--socket={}", socket.display()))
        .args(["-e", sql])
        .output()
        .expect("run the mariadb client");
    assert!(out.status.success(), "bootstrap SQL failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// Runs each named `async fn(Backend)` of a test file twice, as `sqlite::<name>` and
/// `mariadb::<name>`, on a two-thread runtime. The file imports `Backend`.
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Backend::Sqlite).await })*
        }
        mod mariadb {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Backend::MariaDb).await })*
        }
    };
}
