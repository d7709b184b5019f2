//! What the end-to-end benches share: settings from the environment, a fresh
//! schema of their own on the local PostgreSQL, and this process's memory figures.

#![allow(dead_code)] // each bench uses a part

use postgres::{Client, NoTls};

/// `key` from the environment, parsed, else `default`.
pub fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `DATABASE_URL`, else the local PostgreSQL.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh schema `tf_<tag>_<pid>`, dropped at the end unless `TF_BENCH_KEEP` is set.
pub struct Schema {
    pub name: String,
    pub db: Client,
}

impl Schema {
    pub fn new(tag: &str) -> Schema {
        let name = format!("tf_{tag}_{}", std::process::id());
        let mut db = Client::connect(&database_url(), NoTls).expect("PostgreSQL is needed");
        db.batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"
        ))
        .expect("create schema");
        Schema { name, db }
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if std::env::var_os("TF_BENCH_KEEP").is_some() {
            println!("kept schema {}", self.name);
            return;
        }
        let _ = self
            .db
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
    }
}

/// A figure of /proc/self/status (kB for memory), 0 if absent.
pub fn proc_status(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
