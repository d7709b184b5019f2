//! `tweetflow check`: checks a setup without running it, one line per check
//! with ✓ or ✗ and the reason, and fails (exit 1) when any check fails.
//!
//! It takes the flags of `run` and checks what `run` would use:
//!
//! * the server's three routes answer (`/tweets/1` and `/tweets/2` with
//!   `200 text/event-stream`, `/emotion_values` with `200`); without
//!   `--server`, the built-in emulator is started and checked;
//! * the lexicon parses;
//! * the database is reachable with the chosen TLS (and whether the connection
//!   is encrypted, from `pg_stat_ssl`);
//! * the role may create what is missing and write (`CREATE` on the database
//!   or the schema, `TEMP` for the staging tables, `SELECT, INSERT, UPDATE`
//!   on existing tables; not a read-only server);
//! * existing tables are compatible ([`crate::sink::check_tables`]);
//! * the spool directory is writable (a file is created and removed in it, or
//!   in its nearest existing parent when it does not exist yet), with its free
//!   space, and no other tweetflow holds its lock;
//! * the worker threads: the bound `run` would apply, from `vm.max_map_count`,
//!   `RLIMIT_NPROC` and `--max-workers` ([`ThreadBound`]); it fails when a
//!   pool could not hold `--min-workers`.
//!
//! Nothing is created or written in the database. The URL is printed without
//! its password.

use std::path::Path;
use std::time::Duration;

use anyhow::bail;

use super::cli::RunArgs;
use super::config::config_from_args;
use crate::emulator::Emulator;
use crate::engine::{ThreadBound, ThreadLimits};
use crate::pipeline::PipelineConfig;
use crate::score::Lexicon;
use crate::sink::{check_tables, connect_database, redact_url};
use crate::source::{agent, join_url};

/// The outcome of one check.
#[derive(Debug)]
struct Line {
    ok: bool,
    what: String,
    detail: String,
}

fn pass(what: impl Into<String>, detail: impl Into<String>) -> Line {
    Line {
        ok: true,
        what: what.into(),
        detail: detail.into(),
    }
}

fn fail(what: impl Into<String>, detail: impl Into<String>) -> Line {
    Line {
        ok: false,
        what: what.into(),
        detail: detail.into(),
    }
}

/// Runs every check, prints one line each; an error when any failed.
pub(super) fn run(args: &RunArgs) -> anyhow::Result<()> {
    let cfg = config_from_args(args)?;
    let mut lines = Vec::new();
    server_checks(&cfg, &mut lines);
    database_checks(&cfg, &mut lines);
    lines.push(spool_check(&cfg.sink.spool_dir));
    lines.push(thread_check(&cfg));
    for l in &lines {
        println!("{} {}: {}", if l.ok { "✓" } else { "✗" }, l.what, l.detail);
    }
    let failed = lines.iter().filter(|l| !l.ok).count();
    if failed > 0 {
        bail!("{failed} of {} checks failed", lines.len());
    }
    println!("all {} checks passed", lines.len());
    Ok(())
}

/// The routes and the lexicon.
fn server_checks(cfg: &PipelineConfig, lines: &mut Vec<Line>) {
    let mut _emulator = None;
    let server = match &cfg.server {
        Some(s) => s.trim_end_matches('/').to_string(),
        None => match Emulator::start(cfg.emulator.clone()) {
            Ok(e) => {
                let url = e.url();
                _emulator = Some(e);
                url
            }
            Err(e) => {
                lines.push(fail(
                    "server",
                    format!("the built-in emulator does not start: {e}"),
                ));
                lines.push(fail("lexicon", "not checked (no server)"));
                return;
            }
        },
    };
    let mut source = cfg.source.clone();
    source.read_timeout = source.read_timeout.min(Duration::from_secs(10));
    let agent = match agent(&source) {
        Ok(a) => a,
        Err(e) => {
            lines.push(fail(format!("server {server}"), e.to_string()));
            lines.push(fail("lexicon", "not checked (no server)"));
            return;
        }
    };
    for route in ["/tweets/1", "/tweets/2"] {
        let url = join_url(&server, route);
        lines.push(match agent.get(&url).call() {
            // The stream is not read: the answer's head is enough.
            Ok(resp) if resp.content_type() == "text/event-stream" => {
                pass(url, "200 text/event-stream")
            }
            Ok(resp) => fail(
                url,
                format!(
                    "answers {} with {:?}, not text/event-stream",
                    resp.status(),
                    resp.content_type()
                ),
            ),
            Err(e) => fail(url, http_error(e)),
        });
    }
    let url = join_url(&server, "/emotion_values");
    let body = agent.get(&url).call().map_err(http_error).and_then(|r| {
        r.into_string()
            .map_err(|e| format!("reading the body: {e}"))
    });
    match body {
        Ok(text) => {
            lines.push(pass(url.clone(), "200"));
            lines.push(match Lexicon::parse(&text) {
                Ok(lex) => pass(
                    "lexicon",
                    format!("{} entries ({} lines skipped)", lex.len(), lex.skipped()),
                ),
                Err(e) => fail("lexicon", format!("{url} does not parse: {e}")),
            });
        }
        Err(e) => {
            lines.push(fail(url, e));
            lines.push(fail("lexicon", "not checked (its route failed)"));
        }
    }
}

/// A ureq error for a person: the status for an HTTP answer, else the transport's.
fn http_error(e: ureq::Error) -> String {
    match e {
        ureq::Error::Status(code, resp) => {
            format!("answers {code} {}", resp.status_text())
        }
        // Without the URL: the line names it already.
        ureq::Error::Transport(t) => {
            let s = t.to_string();
            match t.url() {
                Some(u) => s
                    .strip_prefix(&format!("{u}: "))
                    .map_or(s.clone(), str::to_string),
                None => s,
            }
        }
    }
}

/// What the role may do, from the catalog (see [`privilege_problems`]).
#[derive(Debug, Default, Clone)]
struct Privileges {
    user: String,
    database: String,
    db_create: bool,
    temp: bool,
    schema_exists: bool,
    schema_create: bool,
    schema_usage: bool,
    read_only: bool,
    /// Tables not there yet (the sink would create them).
    missing_tables: usize,
    /// Existing tables: name, SELECT, INSERT, UPDATE.
    tables: Vec<(&'static str, bool, bool, bool)>,
}

/// What keeps the role from creating the missing objects and writing (empty: nothing).
fn privilege_problems(schema: &str, p: &Privileges) -> Vec<String> {
    let (u, d) = (&p.user, &p.database);
    let mut out = Vec::new();
    if p.read_only {
        out.push("the server is read-only (transaction_read_only = on; a standby?)".into());
    }
    if !p.temp {
        out.push(format!(
            "{u} may not create temporary tables (the writer's staging): GRANT TEMP ON \
             DATABASE {d} TO {u}"
        ));
    }
    // The sink runs `CREATE SCHEMA IF NOT EXISTS` and `CREATE TABLE IF NOT EXISTS`
    // at start (`schema::create`); PostgreSQL checks the CREATE privilege of both
    // before it looks whether the object exists, so both are needed even when
    // the schema and the tables are there.
    if !p.schema_exists {
        if !p.db_create {
            out.push(format!(
                "schema {schema} does not exist and {u} may not create it: GRANT CREATE ON \
                 DATABASE {d} TO {u}"
            ));
        }
    } else {
        if !p.db_create {
            out.push(format!(
                "{u} may not run CREATE SCHEMA IF NOT EXISTS {schema} (done at start, even \
                 when the schema exists): GRANT CREATE ON DATABASE {d} TO {u}"
            ));
        }
        if !p.schema_usage {
            out.push(format!(
                "{u} has no USAGE on schema {schema}: GRANT USAGE ON SCHEMA {schema} TO {u}"
            ));
        }
        if !p.schema_create {
            let what = if p.missing_tables > 0 {
                "tables are missing in schema {schema} and {u} may not create them"
            } else {
                "CREATE TABLE IF NOT EXISTS (done at start, even when the tables exist)"
            };
            let what = what.replace("{schema}", schema).replace("{u}", u);
            out.push(format!("{what}: GRANT CREATE ON SCHEMA {schema} TO {u}"));
        }
    }
    for (t, select, insert, update) in &p.tables {
        let missing: Vec<&str> = [
            (*select, "SELECT"),
            (*insert, "INSERT"),
            (*update, "UPDATE"),
        ]
        .iter()
        .filter(|(has, _)| !has)
        .map(|(_, name)| *name)
        .collect();
        if !missing.is_empty() {
            out.push(format!(
                "{u} may not write {schema}.{t}: GRANT {} ON {schema}.{t} TO {u}",
                missing.join(", ")
            ));
        }
    }
    out
}

/// Reachability with TLS, privileges, tables.
fn database_checks(cfg: &PipelineConfig, lines: &mut Vec<Line>) {
    let what = format!("database {}", redact_url(&cfg.sink.database_url));
    let schema = cfg.sink.schema.as_str();
    let mut client = match connect_database(&cfg.sink) {
        Ok(c) => c,
        Err(e) => {
            let msg = match e {
                crate::sink::SinkError::Connect { message, .. } => message,
                other => other.to_string(),
            };
            lines.push(fail(what, msg));
            lines.push(fail("privileges", "not checked (no database connection)"));
            lines.push(fail("tables", "not checked (no database connection)"));
            return;
        }
    };
    let tls = client.query_one(
        "SELECT s.ssl, COALESCE(s.version, ''), COALESCE(s.cipher, ''), \
                current_setting('server_version') \
           FROM pg_stat_ssl s WHERE s.pid = pg_backend_pid()",
        &[],
    );
    lines.push(match tls {
        Ok(r) => {
            let (ssl, version, cipher, server): (bool, String, String, String) =
                (r.get(0), r.get(1), r.get(2), r.get(3));
            let enc = if ssl {
                format!("encrypted ({version}, {cipher})")
            } else {
                "not encrypted".to_string()
            };
            pass(what, format!("connected to PostgreSQL {server}, {enc}"))
        }
        Err(e) => fail(what, format!("connected, but a first query failed: {e}")),
    });

    let tables = match check_tables(&mut client, schema) {
        Ok((problems, present)) => {
            lines.push(if problems.is_empty() {
                let detail = if present.is_empty() {
                    format!("none in schema {schema} yet (tweetflow creates them)")
                } else {
                    format!("{schema}.{} compatible", present.join(", "))
                };
                pass("tables", detail)
            } else {
                fail("tables", problems.join("; "))
            });
            Some(present)
        }
        Err(e) => {
            lines.push(fail("tables", format!("cannot read the catalog: {e}")));
            None
        }
    };
    let privs = tables
        .ok_or_else(|| "not checked (the catalog is unreadable)".to_string())
        .and_then(|present| {
            read_privileges(&mut client, schema, &present).map_err(|e| e.to_string())
        });
    // Tables first in the catalog order, but print privileges before tables.
    let tables_line = lines.pop();
    lines.push(match privs {
        Ok(p) => {
            let problems = privilege_problems(schema, &p);
            if problems.is_empty() {
                pass(
                    "privileges",
                    format!("{} may create what is missing and write", p.user),
                )
            } else {
                fail("privileges", problems.join("; "))
            }
        }
        Err(e) => fail("privileges", e),
    });
    lines.extend(tables_line);
}

fn read_privileges(
    c: &mut postgres::Client,
    schema: &str,
    present: &[&'static str],
) -> Result<Privileges, postgres::Error> {
    let r = c.query_one(
        "SELECT current_user::text, current_database()::text,
                has_database_privilege(current_database(), 'CREATE'),
                has_database_privilege(current_database(), 'TEMP'),
                n.oid IS NOT NULL,
                COALESCE(has_schema_privilege(n.oid, 'CREATE'), false),
                COALESCE(has_schema_privilege(n.oid, 'USAGE'), false),
                current_setting('transaction_read_only') = 'on'
           FROM (SELECT 1) AS one LEFT JOIN pg_namespace n ON n.nspname = $1",
        &[&schema],
    )?;
    let mut p = Privileges {
        user: r.get(0),
        database: r.get(1),
        db_create: r.get(2),
        temp: r.get(3),
        schema_exists: r.get(4),
        schema_create: r.get(5),
        schema_usage: r.get(6),
        read_only: r.get(7),
        missing_tables: 2 - present.len(),
        tables: Vec::new(),
    };
    for t in present {
        let r = c.query_one(
            "SELECT has_table_privilege(c.oid, 'SELECT'), has_table_privilege(c.oid, 'INSERT'),
                    has_table_privilege(c.oid, 'UPDATE')
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = $1 AND c.relname = $2",
            &[&schema, t],
        )?;
        p.tables.push((t, r.get(0), r.get(1), r.get(2)));
    }
    Ok(p)
}

/// The worker threads' bound under this process's limits.
fn thread_check(cfg: &PipelineConfig) -> Line {
    let bound = ThreadBound::new(
        ThreadLimits::read(),
        cfg.core.max_workers,
        cfg.core.max_threads,
    );
    if bound.per_pool < cfg.core.min_workers {
        fail(
            "worker threads",
            format!("{bound}: fewer than --min-workers {}", cfg.core.min_workers),
        )
    } else {
        pass("worker threads", bound.to_string())
    }
}

/// The spool directory: writable, and its free space.
fn spool_check(dir: &Path) -> Line {
    let what = format!("spool {}", dir.display());
    // The nearest existing directory: the spool itself, or where it will be created.
    let mut at = dir;
    let mut exists = true;
    while !at.exists() {
        exists = false;
        match at.parent() {
            Some(p) if !p.as_os_str().is_empty() => at = p,
            _ => {
                at = Path::new(".");
                break;
            }
        }
    }
    if !at.is_dir() {
        return fail(what, format!("{} is not a directory", at.display()));
    }
    let probe = at.join(format!(".tweetflow-check-{}", std::process::id()));
    if let Err(e) = std::fs::write(&probe, b"check") {
        return fail(what, format!("cannot write in {}: {e}", at.display()));
    }
    let _ = std::fs::remove_file(&probe);
    let free = match rustix::fs::statvfs(at) {
        Ok(s) => format!(
            "{} free",
            human_bytes(s.f_bavail.saturating_mul(s.f_frsize))
        ),
        Err(e) => format!("free space unknown ({e})"),
    };
    if exists {
        if let Ok(Some(pid)) = super::lock::holder(dir) {
            return fail(
                what,
                format!(
                    "in use by another tweetflow (pid {pid}): one instance per spool directory"
                ),
            );
        }
        pass(what, format!("writable, {free}"))
    } else {
        pass(
            what,
            format!(
                "missing, will be created in {} (writable, {free})",
                at.display()
            ),
        )
    }
}

/// `1536` → `1.5 KiB`.
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_granted() -> Privileges {
        Privileges {
            user: "tf".into(),
            database: "db".into(),
            db_create: true,
            temp: true,
            schema_exists: true,
            schema_create: true,
            schema_usage: true,
            read_only: false,
            missing_tables: 0,
            tables: vec![("users", true, true, true), ("tweets", true, true, true)],
        }
    }

    #[test]
    fn privileges_needed_are_named_with_the_grant_that_fixes_them() {
        assert!(privilege_problems("s", &all_granted()).is_empty());
        // Tables there and writable: CREATE is still needed (the start-up DDL).
        let p = Privileges {
            db_create: false,
            schema_create: false,
            ..all_granted()
        };
        assert_eq!(
            privilege_problems("s", &p),
            vec![
                "tf may not run CREATE SCHEMA IF NOT EXISTS s (done at start, even when the \
                 schema exists): GRANT CREATE ON DATABASE db TO tf"
                    .to_string(),
                "CREATE TABLE IF NOT EXISTS (done at start, even when the tables exist): GRANT \
                 CREATE ON SCHEMA s TO tf"
                    .into(),
            ]
        );

        let p = Privileges {
            schema_exists: false,
            db_create: false,
            missing_tables: 2,
            tables: vec![],
            ..all_granted()
        };
        assert_eq!(
            privilege_problems("s", &p),
            vec![
                "schema s does not exist and tf may not create it: GRANT CREATE ON DATABASE db \
                  TO tf"
                    .to_string()
            ]
        );
        let p = Privileges {
            temp: false,
            read_only: true,
            schema_usage: false,
            schema_create: false,
            missing_tables: 1,
            tables: vec![("users", true, false, false)],
            ..all_granted()
        };
        assert_eq!(
            privilege_problems("s", &p),
            vec![
                "the server is read-only (transaction_read_only = on; a standby?)".to_string(),
                "tf may not create temporary tables (the writer's staging): GRANT TEMP ON \
                 DATABASE db TO tf"
                    .into(),
                "tf has no USAGE on schema s: GRANT USAGE ON SCHEMA s TO tf".into(),
                "tables are missing in schema s and tf may not create them: GRANT CREATE ON \
                 SCHEMA s TO tf"
                    .into(),
                "tf may not write s.users: GRANT INSERT, UPDATE ON s.users TO tf".into(),
            ]
        );
    }

    #[test]
    fn sizes_read_as_a_person_would() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }
}
