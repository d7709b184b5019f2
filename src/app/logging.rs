//! Log output on stderr, at `info` unless `RUST_LOG` says otherwise, as text or
//! as JSON (`--log-format`).
//!
//! Text: when the status lines are drawn on a terminal they are redrawn in
//! place once a second; a log line written below them would be overwritten or
//! would break the picture. So on a terminal every log line first erases the
//! status lines (if they are drawn) and takes their place; the status thread
//! draws them again at its next tick. Elsewhere (a pipe, a file, `--quiet`) the
//! default env_logger format is used unchanged.
//!
//! JSON: one object per line, `{"timestamp", "level", "target", "message",
//! "fields"}`, with the record's key-values as `fields`, so a log shipper needs
//! no parsing rule. Nothing else is written to stderr then (no status line; the
//! run's summary is a log record too).

use std::io::Write;

use serde_json::{Map, Value};

use super::cli::LogFormat;
use crate::pipeline::erase_status_lines;

/// Sets up the process's logger; `terminal`: the status lines are drawn on
/// stderr, which is a terminal. A logger set up earlier is kept.
pub(super) fn init(format: LogFormat, terminal: bool) {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    match format {
        LogFormat::Json => {
            builder.format(|buf, record| {
                let mut fields = FieldsVisitor(Map::new());
                // A visitor that cannot fail: ignore the (impossible) error.
                let _ = record.key_values().visit(&mut fields);
                let line = json_line(
                    &buf.timestamp_micros().to_string(),
                    record.level(),
                    record.target(),
                    &record.args().to_string(),
                    fields.0,
                );
                writeln!(buf, "{line}")
            });
        }
        LogFormat::Text if terminal => {
            builder.format(|buf, record| {
                erase_status_lines(buf)?;
                writeln!(
                    buf,
                    "[{} {:5} {}] {}",
                    buf.timestamp_seconds(),
                    record.level(),
                    record.target(),
                    record.args()
                )
            });
        }
        LogFormat::Text => {}
    }
    let _ = builder.try_init();
}

/// One log record as a JSON object on one line.
fn json_line(
    timestamp: &str,
    level: log::Level,
    target: &str,
    message: &str,
    fields: Map<String, Value>,
) -> String {
    let mut o = Map::new();
    o.insert("timestamp".into(), timestamp.into());
    o.insert("level".into(), level.as_str().into());
    o.insert("target".into(), target.into());
    o.insert("message".into(), message.into());
    o.insert("fields".into(), Value::Object(fields));
    Value::Object(o).to_string()
}

/// Collects a record's key-values: numbers and booleans as such, the rest as text.
struct FieldsVisitor(Map<String, Value>);

impl<'kvs> log::kv::VisitSource<'kvs> for FieldsVisitor {
    fn visit_pair(
        &mut self,
        key: log::kv::Key<'kvs>,
        value: log::kv::Value<'kvs>,
    ) -> Result<(), log::kv::Error> {
        let v = if let Some(b) = value.to_bool() {
            Value::from(b)
        } else if let Some(i) = value.to_i64() {
            Value::from(i)
        } else if let Some(u) = value.to_u64() {
            Value::from(u)
        } else if let Some(f) = value.to_f64() {
            Value::from(f)
        } else {
            Value::from(value.to_string())
        };
        self.0.insert(key.as_str().to_string(), v);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_line_is_one_object_with_the_five_keys() {
        let mut fields = FieldsVisitor(Map::new());
        let kvs: &[(&str, log::kv::Value)] = &[
            ("batch", log::kv::Value::from(500u64)),
            ("ok", log::kv::Value::from(true)),
            ("table", log::kv::Value::from("tweets")),
        ];
        log::kv::Source::visit(kvs, &mut fields).unwrap();
        let line = json_line(
            "2026-12-01T20:00:00.000000Z",
            log::Level::Warn,
            "tweetflow::sink",
            "two\nlines \"quoted\"",
            fields.0,
        );
        assert!(!line.contains('\n'), "{line}");
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["timestamp"], "2026-12-01T20:00:00.000000Z");
        assert_eq!(v["level"], "WARN");
        assert_eq!(v["target"], "tweetflow::sink");
        assert_eq!(v["message"], "two\nlines \"quoted\"");
        assert_eq!(v["fields"]["batch"], 500);
        assert_eq!(v["fields"]["ok"], true);
        assert_eq!(v["fields"]["table"], "tweets");
    }
}
