//! A small scripted rtp-server for end-to-end tests (std::net, a thread per
//! connection): AFINN-111 at `/emotion_values`, and at `/tweets/1` and
//! `/tweets/2` either a fixed list of events (then the connection stays open
//! and silent, like a quiet stream) or an endless generator written as fast as
//! the client reads.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// What `/tweets/<n>` serves.
#[derive(Clone)]
pub enum Streams {
    /// These framed events on stream 1 and stream 2, once: the first
    /// connection of a stream gets them and stays open, silent; later ones get
    /// an empty stream.
    Fixed(Arc<[Vec<String>; 2]>),
    /// Endless events made by this function of (stream, event number).
    Endless(Arc<dyn Fn(u8, u64) -> String + Send + Sync>),
}

/// A running script server; it lives as long as the test process.
pub struct ScriptServer {
    pub url: String,
    /// Events written so far, both streams.
    pub sent: Arc<AtomicU64>,
}

/// Starts the server.
pub fn serve(streams: Streams) -> ScriptServer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let sent = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&sent);
    let served: Arc<[AtomicU64; 2]> = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let streams = streams.clone();
            let counter = Arc::clone(&counter);
            let served = Arc::clone(&served);
            thread::spawn(move || handle(conn, &streams, &counter, &served));
        }
    });
    ScriptServer { url, sent }
}

/// AFINN-111 as the lab server serves it: lines joined by `\r\n`.
pub fn afinn_body() -> String {
    tweetflow::AFINN_111
        .lines()
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\r\n")
}

fn handle(conn: TcpStream, streams: &Streams, sent: &AtomicU64, served: &[AtomicU64; 2]) {
    let mut r = BufReader::new(conn.try_clone().unwrap());
    let mut request = String::new();
    if r.read_line(&mut request).unwrap_or(0) == 0 {
        return;
    }
    let mut line = String::new();
    while r.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
        line.clear();
    }
    let path = request.split_whitespace().nth(1).unwrap_or("");
    let mut s = conn;
    let _ = (|| -> std::io::Result<()> {
        if path == "/emotion_values" {
            let body = afinn_body();
            return write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
        let stream: u8 = match path {
            "/tweets/1" => 1,
            "/tweets/2" => 2,
            _ => return s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
        };
        s.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n",
        )?;
        match streams {
            Streams::Fixed(events) => {
                let k = usize::from(stream - 1);
                if served[k].fetch_add(1, Ordering::SeqCst) > 0 {
                    return Ok(());
                }
                for ev in &events[k] {
                    s.write_all(ev.as_bytes())?;
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                s.flush()?;
                // Silent but open, as a quiet stream; the client's read
                // timeout or shutdown ends it.
                thread::sleep(Duration::from_secs(3600));
                Ok(())
            }
            Streams::Endless(make) => {
                for n in 0.. {
                    s.write_all(make(stream, n).as_bytes())?;
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            }
        }
    })();
}

/// A framed event holding a valid tweet whose text is `text`; with `original`,
/// a retweet carrying it as `retweeted_status`.
pub fn tweet_event(id: i64, text: &str, original: Option<serde_json::Value>) -> String {
    let tweet = tweet_value(id, text, original);
    let data = tweetflow::testkit::event_data(&tweet.to_string());
    tweetflow::testkit::framed(&data)
}

/// A tweet object: `id`, `text`, a user with followers, counts, no hashtags.
pub fn tweet_value(id: i64, text: &str, original: Option<serde_json::Value>) -> serde_json::Value {
    let mut t = serde_json::json!({
        "created_at": "Mon Apr 18 19:30:47 +0000 2016",
        "id": id,
        "text": text,
        "user": {"id": 1000 + id % 97, "followers_count": 10, "screen_name": format!("u{}", id % 97)},
        "retweet_count": 1,
        "favorite_count": 2,
        "lang": "en",
    });
    if let Some(o) = original {
        t["retweeted_status"] = o;
    }
    t
}
