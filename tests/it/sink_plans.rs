//! The writer's prepared statements keep a right plan however the tables grow:
//! a batch's cost must not depend on how many rows they hold, nor on how the
//! first batches looked, nor on anyone running ANALYZE.

use serde_json::Value;
use tweetflow::testkit::{create_schema, records, Prepared, WriterSession};

use super::sink_util::{admin, TestSchema};

/// Every (node type, relation) of an `EXPLAIN (FORMAT JSON)` plan.
fn nodes(plan: &Value, out: &mut Vec<(String, String)>) {
    if let Some(kind) = plan.get("Node Type").and_then(Value::as_str) {
        let rel = plan.get("Relation Name").and_then(Value::as_str);
        out.push((kind.to_string(), rel.unwrap_or("").to_string()));
    }
    for key in ["Plan", "Plans"] {
        match plan.get(key) {
            Some(Value::Array(list)) => list.iter().for_each(|p| nodes(p, out)),
            Some(p) => nodes(p, out),
            None => {}
        }
    }
    if let Value::Array(list) = plan {
        list.iter().for_each(|p| nodes(p, out));
    }
}

#[test]
fn prepared_plans_stay_right_when_the_tables_grow_past_them() {
    // First batches as the mandated delay makes them at a low rate (1 or 10 records),
    // and as large as they come with the delay off.
    for first in [1usize, 10, 300] {
        let schema = TestSchema::new();
        let spool = tempfile::tempdir().unwrap();
        let cfg = schema.config(spool.path());
        let s = &schema.name;
        let mut db = admin();
        create_schema(&mut db, s).unwrap();
        // Nothing analyzes the tables behind the test's back, whatever the server's setting.
        db.batch_execute(&format!(
            "ALTER TABLE \"{s}\".tweets SET (autovacuum_enabled = false);
             ALTER TABLE \"{s}\".users SET (autovacuum_enabled = false);"
        ))
        .unwrap();
        let mut w = WriterSession::open(&cfg).unwrap();
        let mut next = 1i64;
        for _ in 0..8 {
            w.write(&records(next as u64, next, first)).unwrap();
            next += first as i64;
        }
        // The tables grow far past what the plans so far were made on; no ANALYZE.
        db.batch_execute(&format!(
            "INSERT INTO \"{s}\".users (id, screen_name, followers_count, raw, ingest_seq)
               SELECT g, 'u' || g, g % 5000, jsonb_build_object('pad', repeat('u', 600)), 1
               FROM generate_series(10000000, 10060000) g;
             INSERT INTO \"{s}\".tweets (id, user_id, text, raw, ingest_seq)
               SELECT g, 10000000 + g % 60000, 'a tweet',
                      jsonb_build_object('pad', repeat('t', 600)), 1
               FROM generate_series(20000000, 20060000) g;"
        ))
        .unwrap();
        w.write(&records(next as u64, next, first)).unwrap();
        let ids: Vec<i64> = (0..1_000).map(|i| 20_000_000 + i * 37).collect();
        for stmt in Prepared::ALL {
            let plan = w.explain(stmt, &ids).unwrap();
            let mut found = Vec::new();
            nodes(&plan, &mut found);
            assert!(!found.is_empty(), "no plan for {stmt:?}: {plan}");
            for (kind, rel) in &found {
                assert!(
                    !(kind == "Seq Scan" && (rel == "tweets" || rel == "users")),
                    "{stmt:?} reads all of {rel} after first batches of {first}: {plan}"
                );
            }
        }
    }
}
