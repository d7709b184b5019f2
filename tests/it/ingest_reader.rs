//! Stream reader and lexicon fetch against scripted HTTP servers (raw TCP), for
//! what the emulator does not do: split line ends, silent connections, error
//! statuses, `retry:`, oversized events, shutdown.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver};
use tweetflow::testkit as fixture;
use tweetflow::Shutdown;
use tweetflow::{fetch_lexicon, spawn_reader, SourceConfig, SourceStats};
use tweetflow::{Ingest, SeqGen};

/// What one connection of the scripted server does.
#[derive(Clone)]
enum Conn {
    /// Answer 200 and write these body pieces (close-delimited), pausing
    /// `gap` between them, then close.
    Body(Vec<Vec<u8>>),
    /// Answer 200 with a chunked body of these HTTP chunks, then end it properly.
    Chunked(Vec<Vec<u8>>),
    /// Answer 200, write these pieces, then stay silent (socket open) for the duration.
    BodyThenSilent(Vec<Vec<u8>>, Duration),
    /// Answer with this status and a short body.
    Status(u16),
    /// Answer 200 and keep sending this event until the client goes away.
    Endless(Vec<u8>),
}

struct Server {
    url: String,
    /// Request headers (lower-case names) and accept time of every connection.
    requests: Requests,
}

/// Serves `script` connection by connection; after the script, every further
/// connection gets `after`.
fn serve(script: Vec<Conn>, after: Conn) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let reqs = Arc::clone(&requests);
    thread::spawn(move || {
        let mut script = script.into_iter();
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let conn = script.next().unwrap_or_else(|| after.clone());
            let reqs = Arc::clone(&reqs);
            thread::spawn(move || handle(stream, conn, reqs));
        }
    });
    Server { url, requests }
}

type Requests = Arc<Mutex<Vec<(Vec<(String, String)>, Instant)>>>;

fn handle(stream: TcpStream, conn: Conn, reqs: Requests) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut headers = Vec::new();
    let mut line = String::new();
    reader.read_line(&mut line).unwrap_or(0); // request line
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.trim_end().split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    reqs.lock().unwrap().push((headers, Instant::now()));
    let mut s = stream;
    let ok_close =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";
    let _ = match conn {
        Conn::Body(pieces) => (|| {
            s.write_all(ok_close.as_bytes())?;
            for p in pieces {
                s.write_all(&p)?;
                s.flush()?;
                thread::sleep(Duration::from_millis(5));
            }
            Ok::<_, std::io::Error>(())
        })(),
        Conn::Chunked(chunks) => (|| {
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")?;
            for c in chunks {
                write!(s, "{:x}\r\n", c.len())?;
                s.write_all(&c)?;
                s.write_all(b"\r\n")?;
                s.flush()?;
            }
            s.write_all(b"0\r\n\r\n")
        })(),
        Conn::BodyThenSilent(pieces, d) => (|| {
            s.write_all(ok_close.as_bytes())?;
            for p in pieces {
                s.write_all(&p)?;
            }
            s.flush()?;
            thread::sleep(d);
            Ok(())
        })(),
        Conn::Status(code) => {
            write!(
                s,
                "HTTP/1.1 {code} Nope\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope"
            )
        }
        Conn::Endless(ev) => (|| {
            s.write_all(ok_close.as_bytes())?;
            loop {
                s.write_all(&ev)?;
                thread::sleep(Duration::from_millis(1));
            }
        })(),
    };
}

fn cfg(url: &str) -> SourceConfig {
    SourceConfig {
        server: url.to_owned(),
        read_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(5),
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        ..SourceConfig::default()
    }
}

fn tweet_event(id: i64, event_id: Option<&str>) -> String {
    let data = fixture::event_data(&fixture::tweet_json(id, 1, 10, None));
    match event_id {
        Some(i) => format!("event: \"message\"\n\nid: {i}\ndata: {data}\n\n"),
        None => fixture::framed(&data),
    }
}

const GUARD: Duration = Duration::from_secs(60);

/// Receives until `n` ingest items arrived (failure guard: 60 s).
fn recv_n(rx: &Receiver<Ingest>, n: usize) -> Vec<Ingest> {
    (0..n)
        .map(|i| {
            rx.recv_timeout(GUARD)
                .unwrap_or_else(|_| panic!("only {i} of {n} items arrived"))
        })
        .collect()
}

fn tweet_id(i: &Ingest) -> i64 {
    match i {
        Ingest::Tweet(t) => t.id,
        Ingest::Kill { .. } => -1,
    }
}

struct Running {
    rx: Receiver<Ingest>,
    stats: Arc<SourceStats>,
    shutdown: Shutdown,
    handle: thread::JoinHandle<()>,
}

fn start(cfg: SourceConfig, stream: u8) -> Running {
    let (tx, rx) = bounded(1024);
    let stats = Arc::new(SourceStats::new());
    let shutdown = Shutdown::new();
    let handle = spawn_reader(
        stream,
        cfg,
        Arc::new(SeqGen::starting_at(1)),
        tx,
        Arc::clone(&stats),
        tweetflow::Budget::unlimited(),
        shutdown.clone(),
    )
    .unwrap();
    Running {
        rx,
        stats,
        shutdown,
        handle,
    }
}

impl Running {
    fn stop(self) -> tweetflow::SourceSnapshot {
        self.shutdown.trigger();
        drop(self.rx);
        self.handle.join().unwrap();
        self.stats.snapshot()
    }
}

#[test]
fn split_line_ends_cut_event_and_last_event_id() {
    let e1 = tweet_event(101, Some("1")).replace('\n', "\r\n");
    // CR and LF of one line end in different writes; then a kill; then a
    // half event when the connection is cut.
    let (a, b) = e1.split_at(e1.len() - 3); // "...\r" | "\n\r\n"
    let kill = "event: \"message\"\r\rdata: {\"message\": panic}\r\r";
    let half = &tweet_event(102, Some("2"))[..300];
    let server = serve(
        vec![
            Conn::Body(vec![a.into(), b.into(), kill.into(), half.into()]),
            Conn::Chunked(vec![tweet_event(102, Some("2")).into_bytes()]),
        ],
        Conn::Status(503),
    );
    let r = start(cfg(&server.url), 2);
    let got = recv_n(&r.rx, 3);
    assert_eq!(
        got.iter().map(tweet_id).collect::<Vec<_>>(),
        vec![101, -1, 102]
    );
    assert!(matches!(got[1], Ingest::Kill { stream: 2 }));
    let Ingest::Tweet(t) = &got[2] else {
        unreachable!()
    };
    assert_eq!(t.stream, 2);
    let Ingest::Tweet(t0) = &got[0] else {
        unreachable!()
    };
    assert!(t.seq > t0.seq);
    let s = r.stop();
    assert!(s.connects >= 2 && s.reconnects >= 1, "{s:?}");
    assert_eq!((s.events, s.tweets, s.kills, s.malformed), (3, 2, 1, 0));
    let reqs = server.requests.lock().unwrap();
    let header = |i: usize| {
        reqs[i]
            .0
            .iter()
            .find(|(k, _)| k == "last-event-id")
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header(0), None, "no id seen yet");
    assert_eq!(
        header(1).as_deref(),
        Some("1"),
        "the cut event's id 2 was never committed"
    );
}

#[test]
fn silent_connection_is_dropped_after_the_read_timeout() {
    let server = serve(
        vec![Conn::BodyThenSilent(
            vec![tweet_event(1, None).into_bytes()],
            Duration::from_secs(30),
        )],
        Conn::Body(vec![tweet_event(2, None).into_bytes()]),
    );
    let mut c = cfg(&server.url);
    c.read_timeout = Duration::from_millis(300);
    let r = start(c, 1);
    let got = recv_n(&r.rx, 2);
    assert_eq!(got.iter().map(tweet_id).collect::<Vec<_>>(), vec![1, 2]);
    let s = r.stop();
    assert!(s.reconnects >= 1);
}

#[test]
fn error_statuses_are_retried() {
    let server = serve(
        vec![Conn::Status(503), Conn::Status(404), Conn::Status(500)],
        Conn::Body(vec![tweet_event(7, None).into_bytes()]),
    );
    let r = start(cfg(&server.url), 1);
    assert_eq!(tweet_id(&recv_n(&r.rx, 1)[0]), 7);
    let s = r.stop();
    assert!(s.connect_failures >= 3, "{s:?}");
    assert!(s.connects >= 1);
}

#[test]
fn retry_field_sets_the_reconnect_delay() {
    let server = serve(
        vec![Conn::Body(vec![
            b"retry: 800\n\n".to_vec(),
            tweet_event(1, None).into_bytes(),
        ])],
        Conn::Body(vec![tweet_event(2, None).into_bytes()]),
    );
    let r = start(cfg(&server.url), 1);
    recv_n(&r.rx, 2);
    r.stop();
    let reqs = server.requests.lock().unwrap();
    let gap = reqs[1].1 - reqs[0].1;
    // backoff_initial is 20 ms; only the server's retry explains ≥ 800 ms.
    assert!(gap >= Duration::from_millis(800), "{gap:?}");
}

#[test]
fn oversized_and_malformed_events_are_counted_and_skipped() {
    let big = fixture::framed(&"x".repeat(10_000));
    let server = serve(
        vec![Conn::Chunked(vec![
            big.into_bytes(),
            fixture::framed("not json").into_bytes(),
            fixture::framed(r#"{"message": {"tweet": {"id": 5}}}"#).into_bytes(),
            tweet_event(3, None).into_bytes(),
        ])],
        Conn::Endless(b": keep-alive\n".to_vec()),
    );
    let mut c = cfg(&server.url);
    c.max_event_bytes = 4096;
    let r = start(c, 1);
    assert_eq!(tweet_id(&recv_n(&r.rx, 1)[0]), 3);
    let s = r.stop();
    assert_eq!(
        (s.oversized, s.malformed, s.tweets, s.events),
        (1, 2, 1, 3),
        "{s:?}"
    );
    assert!(s.bytes > 10_000);
}

#[test]
fn retweet_sends_original_then_retweet() {
    let orig = fixture::tweet_json(50, 7, 900, None);
    let rt = fixture::framed(&fixture::event_data(&fixture::tweet_json(
        51,
        8,
        9,
        Some(&orig),
    )));
    let server = serve(vec![Conn::Body(vec![rt.into_bytes()])], Conn::Status(503));
    let r = start(cfg(&server.url), 1);
    let got = recv_n(&r.rx, 2);
    assert_eq!(got.iter().map(tweet_id).collect::<Vec<_>>(), vec![50, 51]);
    let (Ingest::Tweet(o), Ingest::Tweet(t)) = (&got[0], &got[1]) else {
        unreachable!()
    };
    assert_eq!(t.retweeted_status_id, Some(50));
    assert!(o.seq < t.seq);
    let s = r.stop();
    assert_eq!((s.tweets, s.retweets, s.events), (2, 1, 1));
}

#[test]
fn shutdown_and_disconnect_end_the_reader() {
    let server = serve(vec![], Conn::Endless(tweet_event(9, None).into_bytes()));
    // Shutdown while events keep coming.
    let r = start(cfg(&server.url), 1);
    recv_n(&r.rx, 5);
    r.shutdown.trigger();
    // Drain so a blocked send can finish, then the thread must end.
    let rx = r.rx.clone();
    let drain = thread::spawn(move || while rx.recv_timeout(Duration::from_secs(2)).is_ok() {});
    r.handle.join().unwrap();
    drop(r.rx);
    drain.join().unwrap();
    // Receiver dropped while events keep coming.
    let r = start(cfg(&server.url), 1);
    recv_n(&r.rx, 5);
    drop(r.rx);
    r.handle.join().unwrap();
    // Shutdown while the server is unreachable (backoff sleep).
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let r = start(cfg(&url), 1);
    thread::sleep(Duration::from_millis(100));
    let s = r.stop();
    assert!(s.connect_failures >= 1);
    assert_eq!(s.connects, 0);
}

#[test]
fn lexicon_is_fetched_after_failures() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let body = tweetflow::AFINN_111
        .lines()
        .collect::<Vec<_>>()
        .join("\r\n");
    thread::spawn(move || {
        for (i, s) in listener.incoming().enumerate() {
            let Ok(mut s) = s else { return };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                line.clear();
            }
            let _ = if i < 2 {
                s.write_all(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            } else {
                write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            };
        }
    });
    let lex = fetch_lexicon(&url, &cfg(&url), &Shutdown::new()).unwrap();
    assert_eq!(lex.len(), 2477);
    assert_eq!(lex.get("does not work"), Some(-3));
    assert_eq!(lex.get("abandon"), Some(-2));

    // Nobody listening: retried until shutdown.
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let shutdown = Shutdown::new();
    let s2 = shutdown.clone();
    let t = thread::spawn(move || fetch_lexicon(&url, &cfg(&url), &s2));
    thread::sleep(Duration::from_millis(300));
    shutdown.trigger();
    assert!(matches!(
        t.join().unwrap(),
        Err(tweetflow::SourceError::Shutdown)
    ));
}

/// Serves `body` as the answer to every request.
fn serve_body(body: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { return };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                line.clear();
            }
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[test]
fn a_lexicon_beyond_the_caps_is_refused_at_once_naming_the_url_and_line() {
    let long = vec!["word"; 10_000].join(" ");
    let url = serve_body(format!("good\t3\r\n{long}\t-2\r\nbad\t-3"));
    let t = Instant::now();
    let err = fetch_lexicon(&url, &cfg(&url), &Shutdown::new()).unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(5), "not retried");
    let msg = err.to_string();
    let cause = std::error::Error::source(&err).map(|s| s.to_string());
    assert!(msg.contains(&format!("{url}/emotion_values")), "{msg}");
    assert_eq!(
        cause.as_deref(),
        Some("line 2 of the lexicon is a phrase of 10000 words; at most 8 are accepted")
    );

    let many: String = (0..=tweetflow::MAX_LEXICON_ENTRIES)
        .map(|i| format!("w{i}\t1\n"))
        .collect();
    let url = serve_body(many);
    let err = fetch_lexicon(&url, &cfg(&url), &Shutdown::new()).unwrap_err();
    let cause = std::error::Error::source(&err).map(|s| s.to_string());
    assert!(
        cause
            .as_deref()
            .is_some_and(|c| c.contains("more than 100000 entries")),
        "{cause:?}"
    );
}
