//! A real `redis-server` on a loopback port for the tests that need one (the shared
//! store, message-queue integrations): started in a temp dir, ready once it answers
//! `PING`, killed on drop; can be stopped and started again on the same port and data.

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// How Redis keeps its data.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// Nothing on disk.
    None,
    /// Append-only file, fsynced on every write (`appendfsync always`).
    AofAlways,
}

pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    password: String,
    persistence: Persistence,
    bin: PathBuf,
    dir: tempfile::TempDir,
    /// The TLS port, when it also serves TLS (the plain port stays for the tests' own
    /// checks).
    pub tls_port: Option<u16>,
}

impl RedisServer {
    /// Starts one; `None` when no `redis-server` is installed.
    pub fn start(password: &str, persistence: Persistence) -> Option<RedisServer> {
        let bin = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
            .into_iter()
            .find(|p| Path::new(p).exists())?;
        let mut server = RedisServer {
            child: None,
            port: super::free_port(),
            password: password.to_string(),
            persistence,
            bin: PathBuf::from(bin),
            dir: tempfile::tempdir().unwrap(),
            tls_port: None,
        };
        server.restart();
        Some(server)
    }

    /// [`RedisServer::start`] also serving TLS with `cert_pem` and `key_pem` (clients
    /// are not asked for certificates).
    pub fn start_tls(password: &str, cert_pem: &str, key_pem: &str) -> Option<RedisServer> {
        let mut server = Self::start(password, Persistence::None)?;
        std::fs::write(server.dir.path().join("tls.crt"), cert_pem).unwrap();
        std::fs::write(server.dir.path().join("tls.key"), key_pem).unwrap();
        server.tls_port = Some(super::free_port());
        server.restart();
        Some(server)
    }

    /// `rediss://:password@localhost:tls-port/`.
    pub fn tls_url(&self) -> String {
        let port = self.tls_port.expect("started with start_tls");
        format!("rediss://:{}@localhost:{port}/", self.password)
    }

    /// `redis://:password@127.0.0.1:port/`.
    pub fn url(&self) -> String {
        format!("redis://:{}@127.0.0.1:{}/", self.password, self.port)
    }

    /// Kills it (SIGKILL: what a crash does).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops it answering without closing anything (SIGSTOP: a stuck server, whose
    /// connections stay open and whose port still accepts).
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Lets a frozen server answer again (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, which: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill").args([which, &pid]).status().unwrap();
        assert!(status.success(), "kill {which} {pid}");
    }

    /// Starts it again (after [`RedisServer::kill`]) on the same port and data.
    pub fn restart(&mut self) {
        self.kill();
        let (aof, fsync) = match self.persistence {
            Persistence::None => ("no", "everysec"),
            Persistence::AofAlways => ("yes", "always"),
        };
        let child = Command::new(&self.bin)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", aof, "--appendfsync", fsync])
            .args(["--requirepass", &self.password])
            .args(self.tls_args())
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        self.wait_ready();
    }

    fn tls_args(&self) -> Vec<String> {
        let Some(port) = self.tls_port else {
            return Vec::new();
        };
        let file = |name: &str| self.dir.path().join(name).display().to_string();
        vec![
            "--tls-port".into(),
            port.to_string(),
            "--tls-cert-file".into(),
            file("tls.crt"),
            "--tls-key-file".into(),
            file("tls.key"),
            "--tls-auth-clients".into(),
            "no".into(),
        ]
    }

    /// Waits until it answers `PING` (after AUTH) with `PONG`.
    fn wait_ready(&self) {
        let started = Instant::now();
        loop {
            if self.pong() {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "redis-server did not answer PING on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn pong(&self) -> bool {
        let Ok(mut conn) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = conn.set_read_timeout(Some(Duration::from_secs(1)));
        let pw = &self.password;
        let request = format!(
            "*2\r\n$4\r\nAUTH\r\n${}\r\n{pw}\r\n*1\r\n$4\r\nPING\r\n",
            pw.len()
        );
        if conn.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut answer = Vec::new();
        let mut buf = [0u8; 64];
        while !String::from_utf8_lossy(&answer).contains("\r\n+") {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
            if String::from_utf8_lossy(&answer).contains("PONG") {
                return true;
            }
        }
        String::from_utf8_lossy(&answer).contains("PONG")
    }

    /// Every key and value in Redis, as text (for scans that nothing secret is there).
    pub fn dump_everything(&self) -> String {
        let keys = self.cli(&["--scan"]);
        let mut all = keys.clone();
        for key in keys.lines().filter(|k| !k.is_empty()) {
            let read: &[&str] = match self.cli(&["TYPE", key]).trim() {
                "string" => &["GET"],
                "hash" => &["HGETALL"],
                "stream" => &["XRANGE", key, "-", "+"],
                "zset" => &["ZRANGE", key, "0", "-1", "WITHSCORES"],
                "list" => &["LRANGE", key, "0", "-1"],
                "set" => &["SMEMBERS"],
                other => panic!("key {key} of unexpected type {other}"),
            };
            let args: Vec<&str> = if read.len() == 1 {
                vec![read[0], key]
            } else {
                read.to_vec()
            };
            all.push_str(&self.cli(&args));
        }
        all
    }

    /// `redis-cli --raw ARGS` against this server.
    pub fn cli(&self, args: &[&str]) -> String {
        let cli = self.bin.with_file_name("redis-cli");
        let port = self.port.to_string();
        let out = Command::new(&cli)
            .args([
                "-p",
                &port,
                "-a",
                &self.password,
                "--no-auth-warning",
                "--raw",
            ])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).to_string()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
