//! The listener: binds (falling back to a free port when the asked one is
//! taken), then serves a [`Routes`] table on two threads until dropped.
//!
//! Two threads, so a slow answer (a pause waits for the writer to finish its
//! batch) never holds up a probe. Each takes the next request from
//! `tiny_http`, turns it into a [`Request`], asks the table and writes the
//! [`Response`]; a handler that panics answers 500 and the thread goes on.
//! Every answer carries `Cache-Control: no-store`: probes and metrics are
//! live values.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::routes::{Method, Request, Response, Routes};
use crate::supervise::panic_message;

/// Threads that answer requests.
const THREADS: usize = 2;
/// How long a thread waits for a request before it looks at the stop flag.
const POLL: Duration = Duration::from_millis(250);

/// Why the endpoint did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpsError {
    /// The address's port is taken by another process (and no fallback was asked for).
    #[error("{addr} is in use by another process")]
    Taken {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The address cannot be listened on (not a local address, no permission, …).
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The HTTP server could not take the listening socket.
    #[error("cannot serve HTTP on {addr}: {message}")]
    Server {
        /// The bound address.
        addr: SocketAddr,
        /// What `tiny_http` said.
        message: String,
    },
    /// The OS refused a thread.
    #[error("cannot start the endpoint's threads")]
    Spawn(#[source] io::Error),
}

/// The running endpoint; dropping it stops and joins its threads.
pub struct OpsServer {
    addr: SocketAddr,
    http: Arc<tiny_http::Server>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for OpsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpsServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl OpsServer {
    /// Listens on `want` and serves `routes` over `state`; a taken port is
    /// [`OpsError::Taken`].
    pub fn start<S: Send + Sync + 'static>(
        want: SocketAddr,
        routes: Routes<S>,
        state: Arc<S>,
    ) -> Result<OpsServer, OpsError> {
        OpsServer::serve(bind(want, false)?, want, routes, state)
    }

    /// As [`OpsServer::start`], but when `want`'s port is taken, listens on a
    /// free port of the same address and says so in the log (for a default
    /// address, which nobody chose).
    pub fn start_or_free_port<S: Send + Sync + 'static>(
        want: SocketAddr,
        routes: Routes<S>,
        state: Arc<S>,
    ) -> Result<OpsServer, OpsError> {
        OpsServer::serve(bind(want, true)?, want, routes, state)
    }

    fn serve<S: Send + Sync + 'static>(
        listener: TcpListener,
        want: SocketAddr,
        routes: Routes<S>,
        state: Arc<S>,
    ) -> Result<OpsServer, OpsError> {
        let addr = listener
            .local_addr()
            .map_err(|source| OpsError::Bind { addr: want, source })?;
        // tiny_http spawns its accept and connection threads unnamed; a new
        // thread inherits its creator's kernel name, so creating the server on
        // a thread named `ops-…` charges their CPU to the ops group (see
        // `ThreadGroup`) instead of to no stage.
        let created = crate::stats::spawn_thread("ops-start", None, move || {
            tiny_http::Server::from_listener(listener, None).map_err(|e| e.to_string())
        })
        .map_err(OpsError::Spawn)?
        .join()
        .map_err(|_| OpsError::Server {
            addr,
            message: "the thread creating the server panicked".to_string(),
        })?;
        let http = created.map_err(|message| OpsError::Server { addr, message })?;
        let mut server = OpsServer {
            addr,
            http: Arc::new(http),
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::with_capacity(THREADS),
        };
        let routes = Arc::new(routes);
        for i in 0..THREADS {
            let http = Arc::clone(&server.http);
            let stop = Arc::clone(&server.stop);
            let routes = Arc::clone(&routes);
            let state = Arc::clone(&state);
            let spawned = crate::stats::spawn_thread(format!("ops-http-{i}"), None, move || {
                serve(&http, &routes, &state, &stop)
            });
            match spawned {
                Ok(t) => server.threads.push(t),
                // Dropping `server` stops the threads already started.
                Err(e) => return Err(OpsError::Spawn(e)),
            }
        }
        Ok(server)
    }

    /// The bound address (the real port when a free one was taken).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT/`, with loopback for an unspecified address.
    pub fn url(&self) -> String {
        let mut a = self.addr;
        if a.ip().is_unspecified() {
            a.set_ip(match a {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        format!("http://{a}/")
    }
}

impl Drop for OpsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for _ in &self.threads {
            self.http.unblock();
        }
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                log::error!("ops: an endpoint thread panicked");
            }
        }
    }
}

/// Binds `want`; when its port is taken, a free port of the same address if
/// `fallback`, else [`OpsError::Taken`].
fn bind(want: SocketAddr, fallback: bool) -> Result<TcpListener, OpsError> {
    match TcpListener::bind(want) {
        Ok(l) => Ok(l),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse && want.port() != 0 && fallback => {
            let mut any = want;
            any.set_port(0);
            let l =
                TcpListener::bind(any).map_err(|source| OpsError::Bind { addr: any, source })?;
            if let Ok(got) = l.local_addr() {
                log::warn!(
                    "ops: the default address {want} is taken; listening on {got} instead \
                     (a --metrics-addr given explicitly never moves)"
                );
            }
            Ok(l)
        }
        Err(source) if source.kind() == io::ErrorKind::AddrInUse => {
            Err(OpsError::Taken { addr: want, source })
        }
        Err(source) => Err(OpsError::Bind { addr: want, source }),
    }
}

fn serve<S>(http: &tiny_http::Server, routes: &Routes<S>, state: &S, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        match http.recv_timeout(POLL) {
            Ok(Some(rq)) => respond(rq, routes, state),
            Ok(None) => {}
            Err(e) => {
                if !stop.load(Ordering::SeqCst) {
                    log::error!("ops: the listener failed: {e}; the endpoint stops");
                }
                return;
            }
        }
    }
}

fn respond<S>(rq: tiny_http::Request, routes: &Routes<S>, state: &S) {
    let method = match rq.method() {
        tiny_http::Method::Get | tiny_http::Method::Head => Some(Method::Get),
        tiny_http::Method::Post => Some(Method::Post),
        _ => None,
    };
    let url = rq.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
    let authorization = rq
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
        .map(|h| h.value.as_str().to_string());
    let answer = match method {
        None => Response::text(405, "method not allowed\n").with_header("Allow", "GET, HEAD, POST"),
        Some(method) => {
            let req = Request {
                method,
                path,
                query,
                authorization: authorization.as_deref(),
            };
            match catch_unwind(AssertUnwindSafe(|| routes.answer(state, &req))) {
                Ok(r) => r,
                Err(p) => {
                    log::error!(
                        "ops: the handler of {path} panicked: {}",
                        panic_message(p.as_ref())
                    );
                    Response::text(500, "internal error\n")
                }
            }
        }
    };
    let mut out = tiny_http::Response::from_data(answer.body).with_status_code(answer.status);
    let headers = [
        ("Content-Type", answer.content_type.to_string()),
        ("Cache-Control", "no-store".to_string()),
    ];
    for (name, value) in headers.into_iter().chain(answer.headers) {
        match tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            Ok(h) => out.add_header(h),
            Err(()) => log::error!("ops: header {name} of {path} is not valid; left out"),
        }
    }
    if let Err(e) = rq.respond(out) {
        log::debug!("ops: cannot answer {path}: {e}");
    }
}
