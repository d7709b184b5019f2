//! The HTTP side: a small HTTP/1.1 server on `std::net`, one OS thread per
//! connection.
//!
//! It is hand-written rather than built on `tiny_http` because the emulator
//! needs what that crate hides: writing each SSE event as its own HTTP chunk
//! with one `write` (TCP_NODELAY, no buffering), and shutting every open socket
//! down on [`Emulator::stop`] so that streams end promptly even when a client
//! has stopped reading.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown as NetShutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::clock::unix_100us;
use super::corpus::Corpus;
use super::frame::frame_event;
use super::json::http_date;
use super::random::{mix, stream_seed};
use super::rate::{Pacer, Rate};
use super::tweet::{EventKind, TweetGen};
use super::{EmulatorConfig, EmulatorError};
use crate::shutdown::Shutdown;

/// `GET /`, byte for byte as the real server answers it.
pub(crate) const ROOT_JSON: &str = r#"{"routes":["/tweets/1","/tweets/2","/emotion_values","/"],"lab_description":"\n            (1) Process tweets, that is compute the sentiment score, as they come\n            (2) Have a group of workers and a supervisor\n            (3) Dynamically change the number of actors depending on the load\n            (4) In case of panic message, kill the worker actor then restart\n            (5) Actors also must have a random sleep, in the range of 50ms to 500ms, normally distributed\n            ","general_description":"To start streaming data, access the /tweets/1 and /tweets/2 routes. Data is in SSE/EventSource format and is made of real Twitter API data, to access the text use the text field of the obtained json. The dictionary of sentiment scores can be found at the /emotion_values route. Use the `Sum(word_em_score) / Nr. of words in a tweet` to compute the emotional score of a tweet."}"#;

/// `GET /emotion_values`: AFINN-111 in file order, lines joined by `\r\n`, no
/// trailing newline.
pub(crate) fn emotion_values() -> String {
    crate::score::AFINN_111
        .lines()
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\r\n")
}

const SERVER: &str = "tweetflow-emulator";
/// Limits on a request head.
const MAX_LINE: u64 = 8 * 1024;
const MAX_HEADERS: usize = 100;
/// How long an idle connection may take to send its (next) request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Larger `Last-Event-ID`s (nothing the emulator sent: a month of events at full
/// rate; tweet ids stay within i64 below it) restart at 0.
const MAX_RESUME_ID: u64 = 10_000_000_000;
/// How long [`Emulator::stop`] lets streams end on their own before it shuts
/// their sockets down.
const STOP_GRACE: Duration = Duration::from_millis(300);

struct Conn {
    stream: TcpStream,
    handle: Option<JoinHandle<()>>,
}

struct Inner {
    cfg: EmulatorConfig,
    corpus: Arc<Corpus>,
    origin: Instant,
    shutdown: Shutdown,
    conns: Mutex<HashMap<u64, Conn>>,
    next_conn: AtomicU64,
    emotion: Vec<u8>,
}

/// A running emulator. Stops on [`Emulator::stop`] or when dropped.
pub struct Emulator {
    addr: SocketAddr,
    inner: Arc<Inner>,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Emulator {
    /// Binds `cfg.bind` (port 0 picks a free port), builds the corpus of
    /// `cfg.seed` and starts accepting connections on a thread of its own.
    pub fn start(cfg: EmulatorConfig) -> Result<Emulator, EmulatorError> {
        cfg.validate()?;
        let listener = TcpListener::bind(cfg.bind).map_err(|source| EmulatorError::Bind {
            addr: cfg.bind,
            source,
        })?;
        let addr = listener
            .local_addr()
            .map_err(|source| EmulatorError::Bind {
                addr: cfg.bind,
                source,
            })?;
        let corpus = Arc::new(Corpus::with_users(cfg.seed, cfg.users));
        let inner = Arc::new(Inner {
            cfg,
            corpus,
            origin: Instant::now(),
            shutdown: Shutdown::new(),
            conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(0),
            emotion: emotion_values().into_bytes(),
        });
        let acc = Arc::clone(&inner);
        let accept =
            crate::stats::spawn_thread("emulator-accept", None, move || accept_loop(acc, listener))
                .map_err(EmulatorError::Spawn)?;
        log::debug!("emulator listening on {addr}");
        Ok(Emulator {
            addr,
            inner,
            accept: Some(accept),
        })
    }

    /// The bound address (the real port when `bind` had port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT` (loopback when bound to an unspecified address).
    pub fn url(&self) -> String {
        format!("http://{}", connect_addr(self.addr))
    }

    /// The number of open connections.
    pub fn connections(&self) -> usize {
        self.inner.conns.lock().len()
    }

    /// Stops accepting, ends every open stream and joins all threads.
    pub fn stop(mut self) {
        self.shutdown_now();
    }

    fn shutdown_now(&mut self) {
        let Some(accept) = self.accept.take() else {
            return;
        };
        self.inner.shutdown.trigger();
        // Wake the accept loop with a connection of our own.
        let _ = TcpStream::connect_timeout(&connect_addr(self.addr), Duration::from_secs(1));
        if accept.join().is_err() {
            log::error!("emulator accept thread panicked");
        }
        // Streams notice the flag within ~50 ms and end their chunked body
        // properly; whatever is still open after the grace period (a client
        // that does not read, an idle keep-alive connection) is shut down.
        let grace = Instant::now() + STOP_GRACE;
        while !self.inner.conns.lock().is_empty() && Instant::now() < grace {
            std::thread::sleep(Duration::from_millis(5));
        }
        let conns: Vec<Conn> = self.inner.conns.lock().drain().map(|(_, c)| c).collect();
        for c in &conns {
            let _ = c.stream.shutdown(NetShutdown::Both);
        }
        for c in conns {
            if let Some(h) = c.handle {
                if h.join().is_err() {
                    log::error!("emulator connection thread panicked");
                }
            }
        }
        log::debug!("emulator on {} stopped", self.addr);
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.shutdown_now();
    }
}

fn connect_addr(addr: SocketAddr) -> SocketAddr {
    let mut a = addr;
    if a.ip().is_unspecified() {
        a.set_ip(match a {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    a
}

fn accept_loop(inner: Arc<Inner>, listener: TcpListener) {
    let mut last_error_log: Option<Instant> = None;
    for incoming in listener.incoming() {
        if inner.shutdown.is_triggered() {
            break;
        }
        let stream = match incoming {
            Ok(s) => s,
            Err(e) => {
                if last_error_log.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    log::warn!("emulator: accept failed: {e}");
                    last_error_log = Some(Instant::now());
                }
                // E.g. out of file descriptors: do not spin.
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        let open = inner.conns.lock().len();
        if open >= inner.cfg.max_connections {
            log::warn!("emulator: {open} connections open, refusing one");
            let mut s = stream;
            let _ = s.set_write_timeout(Some(Duration::from_secs(1)));
            let _ = write_simple(
                &mut s,
                503,
                "text/plain",
                b"too many connections\n",
                true,
                false,
            );
            continue;
        }
        let clone = match stream.try_clone() {
            Ok(c) => c,
            Err(e) => {
                log::warn!("emulator: cannot register a connection: {e}");
                continue;
            }
        };
        let id = inner.next_conn.fetch_add(1, Ordering::Relaxed);
        inner.conns.lock().insert(
            id,
            Conn {
                stream: clone,
                handle: None,
            },
        );
        let conn_inner = Arc::clone(&inner);
        let spawned = crate::stats::spawn_thread(format!("emulator-conn-{id}"), None, move || {
            serve_connection(&conn_inner, stream);
            conn_inner.conns.lock().remove(&id);
        });
        match spawned {
            Ok(h) => {
                if let Some(c) = inner.conns.lock().get_mut(&id) {
                    c.handle = Some(h);
                }
            }
            Err(e) => {
                log::warn!("emulator: cannot spawn a connection thread: {e}");
                if let Some(c) = inner.conns.lock().remove(&id) {
                    let _ = c.stream.shutdown(NetShutdown::Both);
                }
            }
        }
    }
}

/// A parsed request head.
#[derive(Debug)]
struct Request {
    method: String,
    path: String,
    http11: bool,
    keep_alive: bool,
    last_event_id: Option<String>,
    has_body: bool,
}

#[derive(Debug)]
enum ReadError {
    /// The peer closed the connection before a request began.
    Closed,
    Io(io::Error),
    Bad(&'static str),
}

fn read_line(r: &mut impl BufRead, buf: &mut Vec<u8>) -> Result<usize, ReadError> {
    buf.clear();
    let n = r
        .by_ref()
        .take(MAX_LINE)
        .read_until(b'\n', buf)
        .map_err(ReadError::Io)?;
    if n > 0 && buf.last() != Some(&b'\n') {
        return Err(if n as u64 >= MAX_LINE {
            ReadError::Bad("line too long")
        } else {
            ReadError::Io(io::ErrorKind::UnexpectedEof.into())
        });
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    Ok(n)
}

fn read_request(r: &mut impl BufRead) -> Result<Request, ReadError> {
    let mut line = Vec::with_capacity(256);
    // Tolerate empty lines before a request (RFC 9112 §2.2).
    let mut n = read_line(r, &mut line)?;
    while n > 0 && line.is_empty() {
        n = read_line(r, &mut line)?;
    }
    if n == 0 {
        return Err(ReadError::Closed);
    }
    let text = std::str::from_utf8(&line).map_err(|_| ReadError::Bad("request line not UTF-8"))?;
    let mut parts = text.split_ascii_whitespace();
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::Bad("malformed request line"));
    };
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Err(ReadError::Bad("unsupported HTTP version")),
    };
    let path = target.split(['?', '#']).next().unwrap_or("").to_string();
    let mut req = Request {
        method: method.to_string(),
        path,
        http11,
        keep_alive: http11,
        last_event_id: None,
        has_body: false,
    };
    for _ in 0..=MAX_HEADERS {
        if read_line(r, &mut line)? == 0 {
            return Err(ReadError::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        if line.is_empty() {
            return Ok(req);
        }
        let text = String::from_utf8_lossy(&line);
        let Some((name, value)) = text.split_once(':') else {
            return Err(ReadError::Bad("malformed header"));
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "connection" => {
                let v = value.to_ascii_lowercase();
                if v.contains("close") {
                    req.keep_alive = false;
                } else if v.contains("keep-alive") {
                    req.keep_alive = true;
                }
            }
            "last-event-id" => req.last_event_id = Some(value.to_string()),
            "content-length" => req.has_body |= value != "0",
            "transfer-encoding" => req.has_body = true,
            _ => {}
        }
    }
    Err(ReadError::Bad("too many headers"))
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

fn write_simple(
    s: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &[u8],
    close: bool,
    head_only: bool,
) -> io::Result<()> {
    let date = http_date(crate::model::unix_micros() as i64 / 1_000_000);
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\ndate: {date}\r\nserver: {SERVER}\r\n{}{}\r\n",
        reason(status),
        body.len(),
        if status == 405 { "allow: GET, HEAD\r\n" } else { "" },
        if close { "connection: close\r\n" } else { "" },
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    s.write_all(&out)
}

fn serve_connection(inner: &Inner, mut stream: TcpStream) {
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "?".to_string(), |a| a.to_string());
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(REQUEST_TIMEOUT));
    let read_half = match stream.try_clone() {
        Ok(s) => s,
        Err(e) => {
            log::debug!("emulator: {peer}: {e}");
            return;
        }
    };
    let mut reader = BufReader::new(read_half);
    loop {
        if inner.shutdown.is_triggered() {
            return;
        }
        let req = match read_request(&mut reader) {
            Ok(r) => r,
            Err(ReadError::Closed) => return,
            Err(ReadError::Io(e)) => {
                log::debug!("emulator: {peer}: reading the request: {e}");
                return;
            }
            Err(ReadError::Bad(what)) => {
                log::debug!("emulator: {peer}: bad request: {what}");
                let _ = write_simple(&mut stream, 400, "text/plain", what.as_bytes(), true, false);
                return;
            }
        };
        let head_only = req.method == "HEAD";
        let close = !req.keep_alive || req.has_body;
        if req.method != "GET" && !head_only {
            let _ = write_simple(
                &mut stream,
                405,
                "text/plain",
                b"method not allowed\n",
                true,
                false,
            );
            return;
        }
        let written = match req.path.as_str() {
            "/" => write_simple(
                &mut stream,
                200,
                "application/json; charset=utf-8",
                ROOT_JSON.as_bytes(),
                close,
                head_only,
            ),
            "/emotion_values" => write_simple(
                &mut stream,
                200,
                "text/plain; charset=utf-8",
                &inner.emotion,
                close,
                head_only,
            ),
            "/tweets/1" | "/tweets/2" => {
                let n = if req.path.ends_with('1') { 1 } else { 2 };
                log::debug!("emulator: {peer}: stream {n} opened");
                let sent = stream_events(inner, &mut stream, n, &req, head_only);
                log::debug!("emulator: {peer}: stream {n} ended after {sent} events");
                let _ = stream.shutdown(NetShutdown::Both);
                return;
            }
            _ => write_simple(
                &mut stream,
                404,
                "text/plain",
                b"not found\n",
                close,
                head_only,
            ),
        };
        if written.is_err() || close {
            return;
        }
    }
}

/// Pending events are written once they reach this many bytes, or when the next
/// event is not due yet.
const WRITE_COALESCE: usize = 64 * 1024;

/// Writes the SSE stream until the client goes, the cut knob fires or the
/// emulator stops. Returns the number of complete events sent.
fn stream_events(
    inner: &Inner,
    stream: &mut TcpStream,
    n: u32,
    req: &Request,
    head_only: bool,
) -> u64 {
    let cfg = &inner.cfg;
    // HTTP/1.0 has no chunked encoding: the body then ends when the connection closes.
    let chunked = req.http11;
    let date = http_date(crate::model::unix_micros() as i64 / 1_000_000);
    let head = format!(
        "HTTP/1.1 200 OK\r\ncache-control: no-cache\r\ncontent-type: text/event-stream\r\ndate: {date}\r\nserver: {SERVER}\r\n{}\r\n",
        if chunked { "transfer-encoding: chunked\r\n" } else { "connection: close\r\n" }
    );
    if stream.write_all(head.as_bytes()).is_err() || head_only {
        return 0;
    }

    let mut generator = TweetGen::with_corpus(Arc::clone(&inner.corpus), n);
    generator.set_retweet_share(cfg.retweet_share);
    // `--ids`: event `index` carries id `index + 1`; resuming after id N sends index N next.
    let mut index = if cfg.ids {
        req.last_event_id
            .as_deref()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|&id| id <= MAX_RESUME_ID)
            .unwrap_or(0)
    } else {
        0
    };
    let rate_seed = stream_seed(cfg.seed, n) ^ 0x5241_5445;
    let mut pacer = Pacer::new(
        &cfg.rate,
        rate_seed,
        inner.origin,
        cfg.time_scale,
        Instant::now(),
    );
    let kill_every = cfg.kill_every.filter(|&k| k > 0);
    let malformed_every = cfg.malformed_every.filter(|&m| m > 0);
    let mut payload = Vec::with_capacity(8 * 1024);
    let mut event = Vec::with_capacity(8 * 1024);
    let mut out = Vec::with_capacity(8 * 1024);
    let mut sent = 0u64;
    let mut kills = 0u64;
    // `--split-chunks`: events split over several chunks and joined with the next.
    let mut split_rng = cfg
        .split_chunks
        .then(|| SmallRng::seed_from_u64(mix(rate_seed, 0x0053_504c_4954)));
    let mut held: Vec<u8> = Vec::new();
    loop {
        if inner.shutdown.is_triggered() {
            break;
        }
        if !matches!(cfg.rate, Rate::Max) {
            let now = Instant::now();
            if !pacer.ready(now) {
                if let Some(deadline) = pacer.deadline() {
                    if inner
                        .shutdown
                        .sleep(deadline.saturating_duration_since(now))
                    {
                        break;
                    }
                }
            }
        }
        payload.clear();
        let kind = generator.event_at(
            index,
            unix_100us(),
            kill_every,
            malformed_every,
            &mut payload,
        );
        kills += u64::from(kind == EventKind::Kill);
        event.clear();
        frame_event(&payload, cfg.ids.then_some(index + 1), &mut event);
        if cfg.cut_after == Some(sent) {
            // Cut in the middle of the event (inside its chunk), then drop the connection;
            // the events still pending in `out` go first.
            if !held.is_empty() {
                push_chunk(&mut out, &held, chunked);
            }
            if chunked {
                push_hex(&mut out, event.len());
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(&event[..event.len() / 2]);
            let _ = stream.write_all(&out);
            log::debug!("emulator: stream {n} cut after {sent} events");
            return sent;
        }
        sent += 1;
        index += 1;
        if !matches!(cfg.rate, Rate::Max) {
            pacer.sent(Instant::now());
        }
        match split_rng.as_mut() {
            None => push_chunk(&mut out, &event, chunked),
            Some(rng) => {
                held.extend_from_slice(&event);
                // Join this event with the next one when that one is due now anyway.
                let join =
                    rng.gen_bool(0.25) && held.len() < 64 * 1024 && pacer.ready(Instant::now());
                if join {
                    continue;
                }
                push_split(&mut out, &held, chunked, rng);
                held.clear();
            }
        }
        // Events that are due now anyway go out in one write (each still its own
        // chunk): TCP would merge them too, and a write per event costs the
        // emulator and the client a system call each.
        let more_due = out.len() < WRITE_COALESCE
            && (matches!(cfg.rate, Rate::Max) || pacer.ready(Instant::now()));
        if more_due {
            continue;
        }
        if let Err(e) = stream.write_all(&out) {
            log::debug!("emulator: stream {n}: client gone ({e})");
            return sent;
        }
        out.clear();
    }
    // Stopping: send what is pending and end the chunked body properly if the
    // socket still takes it.
    if !held.is_empty() {
        push_chunk(&mut out, &held, chunked);
    }
    if chunked {
        out.extend_from_slice(b"0\r\n\r\n");
    }
    let _ = stream.write_all(&out);
    log::debug!("emulator: stream {n} stopped after {sent} events ({kills} kills)");
    sent
}

/// Appends `data` as one HTTP chunk (or raw when not chunked).
fn push_chunk(out: &mut Vec<u8>, data: &[u8], chunked: bool) {
    if chunked {
        push_hex(out, data.len());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(data);
    if chunked {
        out.extend_from_slice(b"\r\n");
    }
}

/// Appends `data` as 1 to 4 chunks split at random byte positions (possibly
/// inside a UTF-8 character, as TCP may split it).
fn push_split(out: &mut Vec<u8>, data: &[u8], chunked: bool, rng: &mut SmallRng) {
    let pieces = rng.gen_range(1..=4usize).min(data.len().max(1));
    let mut cuts: Vec<usize> = (1..pieces)
        .map(|_| rng.gen_range(1..data.len().max(2)))
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut start = 0;
    for cut in cuts.into_iter().chain(std::iter::once(data.len())) {
        if cut > start {
            push_chunk(out, &data[start..cut], chunked);
            start = cut;
        }
    }
}

fn push_hex(out: &mut Vec<u8>, mut n: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 16];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = HEX[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emotion_values_is_crlf_joined_afinn() {
        let body = emotion_values();
        assert_eq!(body.split("\r\n").count(), 2_477);
        assert!(!body.ends_with('\n') && !body.ends_with('\r'));
        assert!(body.starts_with("abandon\t-2\r\n"));
        assert!(body.split("\r\n").all(|l| l.split('\t').count() == 2));
    }

    #[test]
    fn root_json_parses_with_routes_in_order() {
        let v: serde_json::Value = serde_json::from_str(ROOT_JSON).unwrap();
        assert_eq!(
            v["routes"],
            serde_json::json!(["/tweets/1", "/tweets/2", "/emotion_values", "/"])
        );
        let lab = v["lab_description"].as_str().unwrap();
        assert_eq!(lab.matches("\n            ").count(), 6);
    }

    #[test]
    fn parses_request_heads() {
        let raw = b"\r\nGET /tweets/1?x=1 HTTP/1.1\r\nHost: a\r\nLast-Event-ID:  41 \r\nConnection: close\r\n\r\n";
        let req = read_request(&mut &raw[..]).unwrap();
        assert_eq!(req.method, "GET");
        assert_eq!(req.path, "/tweets/1");
        assert!(req.http11 && !req.keep_alive);
        assert_eq!(req.last_event_id.as_deref(), Some("41"));

        let req = read_request(&mut &b"GET / HTTP/1.0\n\n"[..]).unwrap();
        assert!(!req.http11 && !req.keep_alive);

        for bad in [
            &b"GET /\r\n\r\n"[..],
            b"GET / HTTP/2\r\n\r\n",
            b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
        ] {
            assert!(matches!(
                read_request(&mut &bad[..]),
                Err(ReadError::Bad(_))
            ));
        }
        assert!(matches!(
            read_request(&mut &b""[..]),
            Err(ReadError::Closed)
        ));
        assert!(matches!(
            read_request(&mut &b"GET / HTTP/1.1\r\nHost: a\r\n"[..]),
            Err(ReadError::Io(_))
        ));
        let long = vec![b'a'; 10_000];
        assert!(matches!(
            read_request(&mut &long[..]),
            Err(ReadError::Bad(_))
        ));
    }

    #[test]
    fn hex() {
        for n in [0usize, 9, 10, 255, 2_200, 65_536] {
            let mut out = Vec::new();
            push_hex(&mut out, n);
            assert_eq!(out, format!("{n:x}").as_bytes());
        }
    }
}
