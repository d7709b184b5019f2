//! Real `nats-server` processes for the JetStream tests: each on free loopback ports
//! with `-js -sd <tmpdir>`, killed when dropped. A missing `nats-server` fails the test
//! (`.ci/run` installs Debian's); it never skips.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One running server.
pub struct NatsServer {
    pub url: String,
    pub port: u16,
    child: Option<Child>,
    args: Vec<String>,
    _dir: tempfile::TempDir,
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn(args: &[String]) -> Child {
    Command::new("nats-server")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start nats-server ({e}); install it (apt-get install nats-server)")
        })
}

fn wait_listening(port: u16) {
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "nats-server did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl NatsServer {
    /// A single server with JetStream.
    pub fn start() -> NatsServer {
        Self::with_args(Vec::new())
    }

    fn with_args(extra: Vec<String>) -> NatsServer {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut args: Vec<String> = [
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-sd",
            &dir.path().display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra);
        let child = spawn(&args);
        wait_listening(port);
        NatsServer {
            url: format!("nats://127.0.0.1:{port}"),
            port,
            child: Some(child),
            args,
            _dir: dir,
        }
    }

    /// A cluster of `n` servers routed on loopback; the URL of each.
    pub fn cluster(n: usize) -> Vec<NatsServer> {
        let cluster_ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let routes = cluster_ports
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        (0..n)
            .map(|i| {
                NatsServer::with_args(vec![
                    "-n".into(),
                    format!("node{i}"),
                    "--cluster_name".into(),
                    "tf".into(),
                    "--cluster".into(),
                    format!("nats://127.0.0.1:{}", cluster_ports[i]),
                    "--routes".into(),
                    routes.clone(),
                ])
            })
            .collect()
    }

    /// Kills the server (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again with the same store and ports.
    pub fn restart(&mut self) {
        self.kill();
        self.child = Some(spawn(&self.args));
        wait_listening(self.port);
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}
