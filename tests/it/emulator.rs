//! The emulator seen from a plain HTTP client (a raw `TcpStream`), as any
//! client of the real rtp-server would see it.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use tweetflow::{Emulator, EmulatorConfig, Rate};

const KILL: &[u8] = b"{\"message\": panic}";
/// Failure guard for reads (never the thing asserted).
const GUARD: Duration = Duration::from_secs(30);

fn start(f: impl FnOnce(&mut EmulatorConfig)) -> Emulator {
    let mut cfg = EmulatorConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        rate: Rate::Max,
        users: 3_000,
        ..EmulatorConfig::default()
    };
    f(&mut cfg);
    Emulator::start(cfg).unwrap()
}

#[derive(Debug)]
enum Chunk {
    Full(Vec<u8>),
    /// The connection ended inside a chunk: what arrived of it.
    Cut(Vec<u8>),
    /// The terminal `0` chunk: the body ended properly.
    End,
    /// The connection closed between two chunks.
    Eof,
}

struct Resp {
    status: u16,
    headers: HashMap<String, String>,
    reader: BufReader<TcpStream>,
}

fn request(addr: SocketAddr, raw: &str) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(GUARD)).unwrap();
    s.write_all(raw.as_bytes()).unwrap();
    let mut reader = BufReader::new(s);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.ends_with("\r\n"), "{line:?}");
    let mut parts = line.split(' ');
    assert_eq!(parts.next(), Some("HTTP/1.1"));
    let status = parts.next().unwrap().parse().unwrap();
    let mut headers = HashMap::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        let (k, v) = line.trim_end().split_once(": ").unwrap();
        headers.insert(k.to_ascii_lowercase(), v.to_string());
    }
    Resp {
        status,
        headers,
        reader,
    }
}

fn get(addr: SocketAddr, path: &str, extra: &str) -> Resp {
    request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n"),
    )
}

impl Resp {
    fn body(mut self) -> Vec<u8> {
        let n: usize = self.headers["content-length"].parse().unwrap();
        let mut body = vec![0; n];
        self.reader.read_exact(&mut body).unwrap();
        body
    }

    fn chunk(&mut self) -> Chunk {
        let mut line = String::new();
        if self.reader.read_line(&mut line).unwrap_or(0) == 0 {
            return Chunk::Eof;
        }
        if !line.ends_with("\r\n") {
            return Chunk::Cut(Vec::new());
        }
        let size = usize::from_str_radix(line.trim_end(), 16).unwrap();
        if size == 0 {
            return Chunk::End;
        }
        let mut data = Vec::with_capacity(size);
        (&mut self.reader)
            .take(size as u64)
            .read_to_end(&mut data)
            .unwrap();
        if data.len() < size {
            return Chunk::Cut(data);
        }
        let mut crlf = [0u8; 2];
        if self.reader.read_exact(&mut crlf).is_err() {
            return Chunk::Cut(data);
        }
        assert_eq!(&crlf, b"\r\n");
        Chunk::Full(data)
    }

    /// The next `n` events, each the whole of one HTTP chunk.
    fn events(&mut self, n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|_| match self.chunk() {
                Chunk::Full(c) => c,
                other => panic!("expected an event, got {other:?}"),
            })
            .collect()
    }
}

/// Splits one event into its optional id and its data, checking the framing
/// byte for byte.
fn parse_event(ev: &[u8]) -> (Option<u64>, &[u8]) {
    let rest = ev
        .strip_prefix(b"event: \"message\"\n\n")
        .unwrap_or_else(|| panic!("bad head: {}", String::from_utf8_lossy(ev)));
    let rest = rest
        .strip_suffix(b"\n\n")
        .expect("event ends with a blank line");
    let (id, rest) = match rest.strip_prefix(b"id: ") {
        Some(r) => {
            let nl = r.iter().position(|&b| b == b'\n').unwrap();
            let id = std::str::from_utf8(&r[..nl]).unwrap().parse().unwrap();
            (Some(id), &r[nl + 1..])
        }
        None => (None, rest),
    };
    let data = rest.strip_prefix(b"data: ").expect("data line");
    assert!(!data.contains(&b'\n'), "one data line");
    (id, data)
}

fn tweet_of(data: &[u8]) -> Value {
    let v: Value = serde_json::from_slice(data)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(data)));
    assert_eq!(v.as_object().unwrap().len(), 1);
    let m = &v["message"];
    assert!(m["unix_timestamp_100us"].is_u64());
    m["tweet"].clone()
}

fn check_tweet(t: &Value) {
    assert!(t["id"].is_u64());
    assert_eq!(
        t["id_str"].as_str().unwrap(),
        t["id"].as_u64().unwrap().to_string()
    );
    assert!(t["text"].is_string());
    assert!(t["created_at"].as_str().unwrap().ends_with(" +0000 2016"));
    assert!(t["user"]["id"].is_u64());
    assert!(t["user"]["followers_count"].is_u64());
    assert!(t["user"]["screen_name"].is_string());
    assert!(t["retweet_count"].is_u64() && t["favorite_count"].is_u64());
    assert!(t["lang"].is_string());
    assert!(t["timestamp_ms"].as_str().unwrap().parse::<u64>().is_ok());
    for k in ["hashtags", "urls", "user_mentions", "symbols"] {
        assert!(t["entities"][k].is_array(), "entities.{k}");
    }
    if let Some(rt) = t.get("retweeted_status") {
        assert!(rt["user"]["id"].is_u64());
        assert!(rt["retweet_count"].as_u64().unwrap() > 0);
    }
}

#[test]
fn root_is_the_real_servers_json_byte_for_byte() {
    let emu = start(|_| {});
    let r = get(emu.addr(), "/", "");
    assert_eq!(r.status, 200);
    assert!(r.headers["content-type"].starts_with("application/json"));
    let body = r.body();
    let expected = r#"{"routes":["/tweets/1","/tweets/2","/emotion_values","/"],"lab_description":"\n            (1) Process tweets, that is compute the sentiment score, as they come\n            (2) Have a group of workers and a supervisor\n            (3) Dynamically change the number of actors depending on the load\n            (4) In case of panic message, kill the worker actor then restart\n            (5) Actors also must have a random sleep, in the range of 50ms to 500ms, normally distributed\n            ","general_description":"To start streaming data, access the /tweets/1 and /tweets/2 routes. Data is in SSE/EventSource format and is made of real Twitter API data, to access the text use the text field of the obtained json. The dictionary of sentiment scores can be found at the /emotion_values route. Use the `Sum(word_em_score) / Nr. of words in a tweet` to compute the emotional score of a tweet."}"#;
    assert_eq!(String::from_utf8(body).unwrap(), expected);
    assert!(emu.url().starts_with("http://127.0.0.1:"));
}

#[test]
fn emotion_values_parse_into_2477_entries_with_15_phrases() {
    let emu = start(|_| {});
    let body = String::from_utf8(get(emu.addr(), "/emotion_values", "").body()).unwrap();
    assert!(!body.ends_with('\n'));
    let entries: Vec<(&str, i32)> = body
        .split("\r\n")
        .map(|l| {
            let (w, s) = l.split_once('\t').unwrap();
            (w, s.parse().unwrap())
        })
        .collect();
    assert_eq!(entries.len(), 2_477);
    assert_eq!(entries.iter().filter(|(w, _)| w.contains(' ')).count(), 15);
    assert_eq!(entries[0], ("abandon", -2));
    assert!(entries.contains(&("can't stand", -3)));
    let lex = tweetflow::Lexicon::afinn_111();
    assert!(entries.iter().all(|(w, s)| lex.get(w) == Some(*s)));
}

#[test]
fn other_paths_and_methods_are_refused() {
    let emu = start(|_| {});
    for path in ["/tweets/3", "/tweets", "/nope", "/emotion_values/x"] {
        assert_eq!(get(emu.addr(), path, "").status, 404, "{path}");
    }
    let r = request(emu.addr(), "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(r.status, 405);
    let r = request(emu.addr(), "GARBAGE\r\n\r\n");
    assert_eq!(r.status, 400);
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let emu = start(|_| {});
    let mut r = get(emu.addr(), "/", "");
    let n: usize = r.headers["content-length"].parse().unwrap();
    let mut body = vec![0; n];
    r.reader.read_exact(&mut body).unwrap();
    let mut s = r.reader.into_inner();
    s.write_all(b"GET /emotion_values HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(s);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "HTTP/1.1 200 OK\r\n");
}

#[test]
fn events_are_framed_byte_for_byte_one_per_chunk() {
    let emu = start(|c| c.kill_every = Some(20));
    let mut r = get(emu.addr(), "/tweets/1", "");
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "text/event-stream");
    assert_eq!(r.headers["transfer-encoding"], "chunked");
    let (mut kills, mut tweets) = (0, 0);
    for ev in r.events(1_000) {
        let (id, data) = parse_event(&ev);
        assert_eq!(id, None, "the real server sends no ids");
        if data == KILL {
            assert_eq!(ev, b"event: \"message\"\n\ndata: {\"message\": panic}\n\n");
            kills += 1;
        } else {
            assert!(data.starts_with(b"{\"message\": {\"tweet\": {"));
            assert!(data.ends_with(b"}}"));
            let wrapper_tail = b", \"unix_timestamp_100us\": ";
            assert!(data.windows(wrapper_tail.len()).any(|w| w == wrapper_tail));
            check_tweet(&tweet_of(data));
            tweets += 1;
        }
    }
    assert!(kills > 10 && tweets > 900, "{kills} kills, {tweets} tweets");
}

#[test]
fn http_1_0_clients_get_a_close_delimited_stream() {
    let emu = start(|_| {});
    let mut r = request(emu.addr(), "GET /tweets/2 HTTP/1.0\r\n\r\n");
    assert_eq!(r.status, 200);
    assert!(!r.headers.contains_key("transfer-encoding"));
    let mut buf = vec![0; 64 * 1024];
    r.reader.read_exact(&mut buf).unwrap();
    assert!(buf.starts_with(b"event: \"message\"\n\ndata: {\"message\": "));
}

fn first_tweets(emu: &Emulator, path: &str, n: usize) -> Vec<Value> {
    let mut r = get(emu.addr(), path, "");
    r.events(n)
        .iter()
        .filter_map(|ev| {
            let (_, data) = parse_event(ev);
            (data != KILL).then(|| tweet_of(data))
        })
        .collect()
}

#[test]
fn same_seed_same_tweets_different_seed_or_stream_different() {
    let a = start(|c| c.seed = 5);
    let b = start(|c| c.seed = 5);
    let c = start(|c| c.seed = 6);
    let a1 = first_tweets(&a, "/tweets/1", 100);
    assert!(a1.len() > 90);
    assert_eq!(a1, first_tweets(&b, "/tweets/1", 100));
    assert_eq!(
        a1,
        first_tweets(&a, "/tweets/1", 100),
        "a new connection replays"
    );
    assert_ne!(a1, first_tweets(&c, "/tweets/1", 100));
    let a2 = first_tweets(&a, "/tweets/2", 100);
    let ids1: HashSet<u64> = a1.iter().map(|t| t["id"].as_u64().unwrap()).collect();
    assert!(a2
        .iter()
        .all(|t| !ids1.contains(&t["id"].as_u64().unwrap())));
}

#[test]
fn many_concurrent_clients_are_served_and_those_that_leave_free_their_connections() {
    let emu = start(|c| c.kill_every = None);
    let addr = emu.addr();
    let handles: Vec<_> = (0..8)
        .map(|i| {
            std::thread::spawn(move || {
                let path = if i % 2 == 0 { "/tweets/1" } else { "/tweets/2" };
                let mut r = get(addr, path, "");
                for ev in r.events(300) {
                    let (_, data) = parse_event(&ev);
                    if data != KILL {
                        check_tweet(&tweet_of(data));
                    }
                }
                // Leave without a word, mid-stream.
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    // The server notices the departures and ends those threads.
    let deadline = std::time::Instant::now() + GUARD;
    while emu.connections() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(emu.connections(), 0);
    // And still serves.
    assert_eq!(first_tweets(&emu, "/tweets/1", 5).len(), 5);
}

#[test]
fn retweets_are_a_third_and_users_recur() {
    let emu = start(|c| c.kill_every = None);
    let tweets = first_tweets(&emu, "/tweets/1", 3_000);
    let rts = tweets
        .iter()
        .filter(|t| t.get("retweeted_status").is_some())
        .count();
    let share = rts as f64 / tweets.len() as f64;
    assert!((0.27..0.40).contains(&share), "retweet share {share}");
    let mut per_user: HashMap<u64, usize> = HashMap::new();
    for t in &tweets {
        *per_user
            .entry(t["user"]["id"].as_u64().unwrap())
            .or_default() += 1;
    }
    assert!(per_user.values().filter(|&&n| n >= 2).count() > 100);
    assert!(tweets
        .iter()
        .any(|t| t["user"]["followers_count"].as_u64() == Some(0)));
}

#[test]
fn ids_and_last_event_id_resume() {
    let emu = start(|c| {
        c.ids = true;
        c.kill_every = Some(10);
    });
    let mut r = get(emu.addr(), "/tweets/1", "");
    let first: Vec<(u64, Vec<u8>)> = r
        .events(80)
        .iter()
        .map(|ev| {
            let (id, data) = parse_event(ev);
            (id.unwrap(), data.to_vec())
        })
        .collect();
    let ids: Vec<u64> = first.iter().map(|e| e.0).collect();
    assert_eq!(ids, (1..=80).collect::<Vec<u64>>());
    drop(r);

    for bogus in ["18446744073709551615", "abc", "-3"] {
        let mut r = get(
            emu.addr(),
            "/tweets/1",
            &format!("Last-Event-ID: {bogus}\r\n"),
        );
        assert_eq!(parse_event(&r.events(1)[0]).0, Some(1), "{bogus}");
    }
    let mut again = get(emu.addr(), "/tweets/1", "Last-Event-ID: 50\r\n");
    let resumed = again.events(30);
    for (k, ev) in resumed.iter().enumerate() {
        let (id, data) = parse_event(ev);
        assert_eq!(id, Some(51 + k as u64));
        let orig = &first[50 + k].1;
        if data == KILL || orig.as_slice() == KILL {
            assert_eq!(data, orig.as_slice());
        } else {
            assert_eq!(tweet_of(data), tweet_of(orig));
        }
    }
}

#[test]
fn cut_after_closes_in_the_middle_of_an_event() {
    let emu = start(|c| c.cut_after = Some(25));
    for _ in 0..2 {
        let mut r = get(emu.addr(), "/tweets/2", "");
        r.events(25);
        match r.chunk() {
            Chunk::Cut(part) => {
                assert!(part.starts_with(b"event: \"message\"\n\ndata: "));
                assert!(!part.ends_with(b"\n\n"));
            }
            other => panic!("expected a cut event, got {other:?}"),
        }
        assert!(matches!(r.chunk(), Chunk::Eof));
    }
}

#[test]
fn malformed_every_sends_every_kind_of_broken_event() {
    let emu = start(|c| {
        c.malformed_every = Some(8);
        c.kill_every = None;
    });
    let mut r = get(emu.addr(), "/tweets/1", "");
    let mut kinds: HashMap<&str, usize> = HashMap::new();
    for ev in r.events(2_000) {
        let (_, data) = parse_event(&ev);
        let kind = match serde_json::from_slice::<Value>(data) {
            Err(_) if data.starts_with(b"{\"message\": {\"tweet\": {") => "truncated",
            Err(_) => "not json",
            Ok(v) => {
                let t = &v["message"]["tweet"];
                if t.get("user").is_none() {
                    "no user"
                } else if !t["id"].is_u64() || !t["user"]["followers_count"].is_u64() {
                    "wrong types"
                } else {
                    check_tweet(t);
                    "ok"
                }
            }
        };
        *kinds.entry(kind).or_default() += 1;
    }
    for k in ["truncated", "not json", "no user", "wrong types"] {
        assert!(kinds.get(k).copied().unwrap_or(0) >= 10, "{kinds:?}");
    }
    assert!(kinds["ok"] > 1_500, "{kinds:?}");
}

/// Reads `/tweets/1` and counts events per profile second by the server's
/// `unix_timestamp_100us`.
fn per_profile_second(emu: &Emulator, scale: f64, profile_secs: u64) -> Vec<u64> {
    let mut r = get(emu.addr(), "/tweets/1", "");
    let units = (10_000.0 / scale) as u64; // 100 µs units per profile second
    let tail = b"\"unix_timestamp_100us\": ";
    let mut counts = vec![0u64; profile_secs as usize + 2];
    let mut t0 = None;
    loop {
        let ev = match r.chunk() {
            Chunk::Full(c) => c,
            other => panic!("stream ended: {other:?}"),
        };
        let Some(p) = ev.windows(tail.len()).rposition(|w| w == tail) else {
            continue; // a kill
        };
        let digits: Vec<u8> = ev[p + tail.len()..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .copied()
            .collect();
        let ts: u64 = std::str::from_utf8(&digits).unwrap().parse().unwrap();
        let t0 = *t0.get_or_insert(ts);
        let sec = (ts - t0) / units;
        if sec >= profile_secs {
            break;
        }
        counts[sec as usize] += 1;
    }
    counts.truncate(profile_secs as usize);
    counts
}

#[test]
fn default_profile_swings_an_order_of_magnitude_within_a_minute() {
    // Four times faster: a profile minute takes 15 s.
    let scale = 4.0;
    let emu = start(|c| {
        c.rate = Rate::default();
        c.time_scale = scale;
        c.seed = 1;
    });
    let counts = per_profile_second(&emu, scale, 60);
    // The first and last seconds may be partial.
    let inner = &counts[1..counts.len() - 1];
    let max = *inner.iter().max().unwrap();
    let min = *inner.iter().min().unwrap();
    assert!(max >= 1_000, "{counts:?}");
    assert!((50..=200).contains(&min), "{counts:?}");
    assert!(max >= 10 * min, "{counts:?}");
}

#[test]
fn constant_rate_is_paced() {
    let emu = start(|c| c.rate = Rate::Constant(400.0));
    let counts = per_profile_second(&emu, 1.0, 2);
    // Generous bounds: this guards the pacing, it does not time the machine.
    assert!(
        counts.iter().all(|&c| (200..=600).contains(&c)),
        "{counts:?}"
    );
}

#[test]
fn stop_ends_open_streams_promptly_even_if_clients_do_not_read() {
    let emu = start(|_| {});
    let mut reading = get(emu.addr(), "/tweets/1", "");
    reading.events(10);
    // A client that never reads: the server blocks writing to it.
    let _stalled = get(emu.addr(), "/tweets/2", "");
    std::thread::sleep(Duration::from_millis(300));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        emu.stop();
        let _ = tx.send(());
    });
    rx.recv_timeout(GUARD).expect("stop returned");
    // The reading client's stream ends.
    let mut n = 0;
    while let Chunk::Full(_) = reading.chunk() {
        n += 1;
        assert!(n < 1_000_000, "the stream did not end");
    }
}

#[test]
fn stop_ends_a_paced_stream_with_a_proper_last_chunk() {
    let emu = start(|c| c.rate = Rate::Constant(200.0));
    let mut r = get(emu.addr(), "/tweets/1", "");
    r.events(3);
    let reader = std::thread::spawn(move || loop {
        match r.chunk() {
            Chunk::Full(_) => {}
            other => return other,
        }
    });
    std::thread::sleep(Duration::from_millis(100));
    emu.stop();
    assert!(matches!(reader.join().unwrap(), Chunk::End));
}

#[test]
fn split_chunks_splits_and_joins_events_without_changing_the_bytes() {
    let emu = start(|c| {
        c.split_chunks = true;
        c.seed = 9;
    });
    let mut r = get(emu.addr(), "/tweets/1", "");
    let mut stream = Vec::new();
    let (mut chunks, mut not_at_start, mut joined) = (0, 0, 0);
    while stream.len() < 1_000_000 {
        let Chunk::Full(c) = r.chunk() else {
            panic!("stream ended")
        };
        chunks += 1;
        not_at_start += usize::from(!c.starts_with(b"event: "));
        joined += usize::from(c.windows(7).filter(|w| w == b"event: ").count() >= 2);
        stream.extend_from_slice(&c);
    }
    assert!(not_at_start > 50 && joined > 20, "{chunks} chunks");
    // Reassembled, the bytes are the same events as without the knob.
    let blocks: Vec<&[u8]> = stream.split(|&b| b == b'\n').collect();
    let mut datas = Vec::new();
    for (k, line) in blocks.iter().enumerate() {
        if let Some(d) = line.strip_prefix(b"data: ") {
            if k + 1 < blocks.len() - 1 {
                datas.push(d.to_vec());
            }
        } else {
            assert!(line.is_empty() || *line == b"event: \"message\"", "{k}");
        }
    }
    let plain = start(|c| c.seed = 9);
    let mut p = get(plain.addr(), "/tweets/1", "");
    for (k, ev) in p.events(datas.len()).iter().enumerate() {
        let (_, data) = parse_event(ev);
        if data == KILL {
            assert_eq!(datas[k], KILL);
        } else {
            assert_eq!(tweet_of(&datas[k]), tweet_of(data), "event {k}");
        }
    }
}

#[test]
fn a_busy_port_is_an_error_and_extra_connections_get_503() {
    let emu = start(|c| c.max_connections = 2);
    let busy = Emulator::start(EmulatorConfig {
        bind: emu.addr(),
        ..EmulatorConfig::default()
    });
    assert!(matches!(busy, Err(tweetflow::EmulatorError::Bind { .. })));
    let mut a = get(emu.addr(), "/tweets/1", "");
    let mut b = get(emu.addr(), "/tweets/2", "");
    a.events(1);
    b.events(1);
    assert_eq!(get(emu.addr(), "/", "").status, 503);
    drop((a, b));
}
