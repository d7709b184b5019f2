//! A TCP proxy of the suite's own between tweetflow and the local PostgreSQL, thread
//! per direction. It forwards, goes silent (stops forwarding both ways without closing
//! anything: a network partition), resets the connections it made, or refuses (every
//! connection made so far reset, every new one closed at once: the database away).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// The proxy; it runs until the test process ends.
pub struct Proxy {
    pub port: u16,
    silent: Arc<AtomicBool>,
    refusing: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<(TcpStream, TcpStream)>>>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to 127.0.0.1:5432.
    pub fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let silent = Arc::new(AtomicBool::new(false));
        let refusing = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<(TcpStream, TcpStream)>>> = Arc::default();
        let (s, r, c) = (
            Arc::clone(&silent),
            Arc::clone(&refusing),
            Arc::clone(&conns),
        );
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if r.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect("127.0.0.1:5432") else {
                    continue;
                };
                let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
                    continue;
                };
                c.lock().unwrap().push((c2, s2));
                for (from, to) in [(&client, &server), (&server, &client)] {
                    let (Ok(from), Ok(to)) = (from.try_clone(), to.try_clone()) else {
                        continue;
                    };
                    let silent = Arc::clone(&s);
                    thread::spawn(move || pump(from, to, &silent));
                }
            }
        });
        Proxy {
            port,
            silent,
            refusing,
            conns,
        }
    }

    /// The URL of database `name` through the proxy.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Stops forwarding, both ways, closing nothing.
    pub fn go_silent(&self) {
        self.silent.store(true, Ordering::SeqCst);
    }

    /// Forwards again what waited and what comes.
    pub fn forward(&self) {
        self.silent.store(false, Ordering::SeqCst);
    }

    /// Closes every connection made so far, both sides.
    pub fn reset(&self) {
        for (a, b) in self.conns.lock().unwrap().drain(..) {
            let _ = a.shutdown(Shutdown::Both);
            let _ = b.shutdown(Shutdown::Both);
        }
    }

    /// The database away: every connection reset, every new one closed at once.
    pub fn refuse(&self) {
        self.refusing.store(true, Ordering::SeqCst);
        self.reset();
    }

    /// New connections reach the database again.
    pub fn accept(&self) {
        self.refusing.store(false, Ordering::SeqCst);
    }
}

/// Copies `from` to `to`; while silent it neither reads nor writes (what was read
/// before is held until forwarding resumes).
fn pump(mut from: TcpStream, mut to: TcpStream, silent: &AtomicBool) {
    let _ = from.set_read_timeout(Some(Duration::from_millis(50)));
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if silent.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(20));
            continue;
        }
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => break,
        };
        while silent.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(20));
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
