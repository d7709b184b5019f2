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

    /// A cluster of `n` servers routed on loopback, each with a store of its own,
    /// returned once JetStream takes a stream with `n` replicas (the meta leader is
    /// elected and every node is a peer).
    pub fn cluster(n: usize) -> Vec<NatsServer> {
        let nodes = Self::cluster_nodes(n);
        let urls = nodes
            .iter()
            .map(|s| s.url.clone())
            .collect::<Vec<_>>()
            .join(",");
        let obs = Observer::new(&urls);
        let t = Instant::now();
        loop {
            if obs.try_replicated_stream(n) {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "the {n}-node JetStream cluster did not form"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        nodes
    }

    fn cluster_nodes(n: usize) -> Vec<NatsServer> {
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

/// What the consumer's state says, as the server reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumerState {
    /// Stream sequence of the last message delivered (every one below was delivered).
    pub delivered_seq: u64,
    /// Every message up to this stream sequence is acked.
    pub ack_floor: u64,
    /// Delivered and not yet acked.
    pub ack_pending: u64,
    /// Not yet delivered.
    pub pending: u64,
}

impl ConsumerState {
    /// Messages acked, when each was delivered in order from sequence 1.
    pub fn acked(&self) -> u64 {
        self.delivered_seq - self.ack_pending
    }
}

/// A client of the test's own that reads the server's view (a tokio runtime of its own;
/// `async-nats`, not tweetflow's facade).
pub struct Observer {
    rt: tokio::runtime::Runtime,
    js: async_nats::jetstream::Context,
}

impl Observer {
    /// Connects to `urls` (comma-separated).
    pub fn new(urls: &str) -> Observer {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let addrs: Vec<async_nats::ServerAddr> =
            urls.split(',').map(|u| u.parse().unwrap()).collect();
        let js = rt.block_on(async {
            let client = async_nats::connect(addrs).await.unwrap();
            async_nats::jetstream::new(client)
        });
        Observer { rt, js }
    }

    /// The state of `consumer` of `stream`; `None` while it cannot be read.
    pub fn consumer(&self, stream: &str, consumer: &str) -> Option<ConsumerState> {
        self.rt.block_on(async {
            let s = self.js.get_stream_no_info(stream).await.ok()?;
            let i = tokio::time::timeout(Duration::from_secs(5), s.consumer_info(consumer))
                .await
                .ok()?
                .ok()?;
            Some(ConsumerState {
                delivered_seq: i.delivered.stream_sequence,
                ack_floor: i.ack_floor.stream_sequence,
                ack_pending: i.num_ack_pending as u64,
                pending: i.num_pending,
            })
        })
    }

    /// The messages `stream` holds; `None` while it cannot be read.
    pub fn stream_messages(&self, stream: &str) -> Option<u64> {
        self.rt.block_on(async {
            let mut s = self.js.get_stream(stream).await.ok()?;
            Some(s.info().await.ok()?.state.messages)
        })
    }

    /// Creates and deletes a stream of `replicas` replicas; whether it worked.
    fn try_replicated_stream(&self, replicas: usize) -> bool {
        self.rt.block_on(async {
            let cfg = async_nats::jetstream::stream::Config {
                name: "probe".into(),
                subjects: vec!["probe.x".into()],
                num_replicas: replicas,
                ..Default::default()
            };
            let made = tokio::time::timeout(Duration::from_secs(5), self.js.create_stream(cfg))
                .await
                .is_ok_and(|r| r.is_ok());
            if made {
                let _ = self.js.delete_stream("probe").await;
            }
            made
        })
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}
