//! The writer's loop against a fake database and a real buffer (in a temporary
//! directory): what its steps do to the records, the spool and the counters.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::database::{Database, Refusal};
use super::{supervise, Writer, WriterState};
use crate::model::{Record, SeqGen};
use crate::sink::buffer::spool::{fsync_dir, Spool};
use crate::sink::buffer::{Buffer, Limits};
use crate::sink::db::batch::WriteOutcome;
use crate::sink::drain::Drain;
use crate::sink::health::Event;
use crate::sink::{DatabaseProblem, ErrorClass, SinkConfig, SinkError, SinkStats};

/// What the fake does on a write.
enum Answer {
    Write,
    Refuse(Refusal),
    Panic,
}

/// A database that answers writes from a script (then writes), and keeps what it
/// was given.
#[derive(Default)]
struct Fake {
    script: VecDeque<Answer>,
    connected: bool,
    /// `schema_ready` as each connect found it.
    connects: Vec<bool>,
    /// The seqs of each batch written.
    batches: Vec<Vec<u64>>,
}

impl Database for &mut Fake {
    fn is_connected(&self) -> bool {
        self.connected
    }

    fn connect(&mut self, schema_ready: &mut bool) -> Result<(), Refusal> {
        self.connects.push(*schema_ready);
        *schema_ready = true;
        self.connected = true;
        Ok(())
    }

    fn stored_seq_max(&mut self) -> Result<Option<u64>, String> {
        Ok(None)
    }

    fn disconnect(&mut self) {
        self.connected = false;
    }

    fn write(&mut self, records: &[Record]) -> Result<WriteOutcome, Refusal> {
        match self.script.pop_front() {
            Some(Answer::Refuse(r)) => Err(r),
            Some(Answer::Panic) => panic!("fake: writer panic"),
            Some(Answer::Write) | None => {
                self.batches
                    .push(records.iter().map(|r| r.tweet.seq).collect());
                Ok(WriteOutcome {
                    tweets: records.len() as u64,
                    users: 1,
                    ..WriteOutcome::default()
                })
            }
        }
    }
}

fn refusal(class: ErrorClass) -> Refusal {
    Refusal {
        class,
        canceled: false,
        problem: None,
        message: format!("fake {class:?}"),
    }
}

fn rec(seq: u64) -> Record {
    crate::sink::fixture::record(&crate::sink::fixture::Spec {
        seq,
        id: seq as i64,
        ..Default::default()
    })
}

struct Rig {
    _dir: tempfile::TempDir,
    cfg: SinkConfig,
    st: Arc<SinkStats>,
    buffer: Buffer,
    drain: Drain,
}

/// A buffer holding records `1..=n` (closed), the breaker closed, batches of 8.
fn rig(n: u64) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = Spool::open(dir.path(), &fsync_dir).unwrap();
    let st = Arc::new(SinkStats::default());
    let buffer = Buffer::new(spool, 10_000, Limits::default(), Arc::clone(&st));
    for s in 1..=n {
        buffer.push(rec(s));
    }
    buffer.close();
    st.breaker.apply(Event::ProbeOk);
    let cfg = SinkConfig {
        batch_min: 1,
        batch_max: 8,
        batch_initial: 8,
        linger: Duration::from_millis(1),
        shutdown_grace: Duration::from_secs(30),
        ..SinkConfig::default()
    };
    Rig {
        _dir: dir,
        cfg,
        st,
        buffer,
        drain: Drain::default(),
    }
}

impl Rig {
    fn run(
        &self,
        fake: &mut Fake,
        schema_ready: bool,
    ) -> Result<crate::sink::SinkSummary, SinkError> {
        let state = WriterState::new(&self.cfg, Arc::new(SeqGen::starting_at(1)), schema_ready);
        supervise(Writer::new(
            &self.cfg,
            &self.st,
            &self.buffer,
            &self.drain,
            fake,
            state,
        ))
    }

    /// Plays the health checker while `f` runs: a tripped breaker closes again.
    fn with_checker<T>(&self, f: impl FnOnce() -> T) -> T {
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    self.st.breaker.apply(Event::ProbeStart);
                    self.st.breaker.apply(Event::ProbeOk);
                    std::thread::sleep(Duration::from_millis(20));
                }
            });
            let r = f();
            stop.store(true, Ordering::Relaxed);
            r
        })
    }
}

fn seqs(fake: &Fake) -> Vec<u64> {
    fake.batches.iter().flatten().copied().collect()
}

#[test]
fn every_record_is_written_once_in_order_and_counted() {
    let rig = rig(20);
    let mut fake = Fake::default();
    let sum = rig.run(&mut fake, true).unwrap();
    assert_eq!(seqs(&fake), (1..=20).collect::<Vec<_>>());
    assert!(
        fake.batches.iter().all(|b| b.len() <= 8),
        "{:?}",
        fake.batches
    );
    let s = rig.st.snapshot();
    assert_eq!(s.records_committed, 20);
    assert_eq!(s.batches, fake.batches.len() as u64);
    assert_eq!(s.written_tweets, 20);
    assert_eq!(s.retries, 0);
    assert_eq!(sum.left_in_spool, 0);
    assert_eq!(
        fake.connects,
        [true],
        "one connection, the schema already checked"
    );
}

#[test]
fn a_panic_restarts_the_writer_and_the_batch_it_held_is_written_once() {
    let rig = rig(20);
    let mut fake = Fake {
        script: [Answer::Write, Answer::Panic].into(),
        ..Fake::default()
    };
    rig.run(&mut fake, true).unwrap();
    assert_eq!(seqs(&fake), (1..=20).collect::<Vec<_>>());
    assert_eq!(rig.st.snapshot().writer_restarts, 1);
    assert_eq!(fake.connects.len(), 2, "the restart opens a new connection");
}

#[test]
fn a_lost_connection_spools_the_batch_and_writes_it_after_recovery() {
    let rig = rig(20);
    let mut fake = Fake {
        script: [Answer::Refuse(refusal(ErrorClass::Connection))].into(),
        ..Fake::default()
    };
    rig.with_checker(|| rig.run(&mut fake, true)).unwrap();
    assert_eq!(seqs(&fake), (1..=20).collect::<Vec<_>>());
    let s = rig.st.snapshot();
    assert_eq!(s.retries, 1);
    assert_eq!(s.breaker_trips, 1);
    assert_eq!(
        s.spilled_total, 20,
        "the outage moved everything to the spool"
    );
    assert_eq!(s.records_replayed, 20);
}

#[test]
fn a_permanent_problem_gives_up_with_every_record_in_the_spool() {
    let rig = rig(20);
    let problem = DatabaseProblem::Other {
        message: "fake: read-only".into(),
    };
    let mut fake = Fake {
        script: [Answer::Refuse(Refusal {
            problem: Some(problem.clone()),
            ..refusal(ErrorClass::Permanent)
        })]
        .into(),
        ..Fake::default()
    };
    match rig.run(&mut fake, true) {
        Err(SinkError::Database(p)) => assert_eq!(p, problem),
        other => panic!("expected the problem, got {other:?}"),
    }
    assert!(fake.batches.is_empty());
    assert_eq!(rig.buffer.len(), 20, "all of it waits in the spool");
    assert_eq!(rig.st.snapshot().spilled_total, 20);
    assert!(rig.st.failure().is_some());
}

#[test]
fn a_statement_timeout_halves_the_batch_and_a_vanished_schema_is_created_again() {
    let rig = rig(20);
    let mut fake = Fake {
        script: [
            Answer::Refuse(Refusal {
                canceled: true,
                ..refusal(ErrorClass::Connection)
            }),
            Answer::Refuse(refusal(ErrorClass::Schema)),
        ]
        .into(),
        ..Fake::default()
    };
    rig.with_checker(|| rig.run(&mut fake, true)).unwrap();
    assert_eq!(seqs(&fake), (1..=20).collect::<Vec<_>>());
    assert_eq!(fake.batches[0].len(), 4, "8 halved");
    assert_eq!(
        fake.connects[..3],
        [true, true, false],
        "the schema is checked again after it vanished"
    );
    assert_eq!(rig.st.snapshot().retries, 2);
}

#[test]
fn a_full_disk_is_waited_out_with_back_off_without_tripping_the_breaker() {
    let rig = rig(20);
    let mut fake = Fake {
        script: [Answer::Refuse(refusal(ErrorClass::DiskFull))].into(),
        ..Fake::default()
    };
    rig.run(&mut fake, true).unwrap();
    assert_eq!(seqs(&fake), (1..=20).collect::<Vec<_>>());
    let s = rig.st.snapshot();
    assert_eq!(s.retries, 1);
    assert_eq!(s.breaker_trips, 0);
    assert_eq!(s.sink_reason, None, "the wait is over");
}

#[test]
fn the_drain_deadline_leaves_the_rest_in_the_spool() {
    let rig = rig(20);
    rig.drain.set(std::time::Instant::now());
    let mut fake = Fake::default();
    let sum = rig.run(&mut fake, true).unwrap();
    assert!(fake.batches.is_empty());
    assert_eq!(sum.left_in_spool, 20);
    assert_eq!(rig.buffer.len(), 20);
}
