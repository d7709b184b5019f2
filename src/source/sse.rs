//! A pure, incremental parser for `text/event-stream` (the WHATWG EventSource
//! "interpreting an event stream" rules), with a bound on the size of one event.
//!
//! Feed it bytes as they arrive, in chunks of any size; it hands back every
//! event completed by those bytes. No I/O, no clock, no logging.
//!
//! Rules implemented (HTML Living Standard, §9.2.6):
//! - one leading UTF-8 BOM (`EF BB BF`) is skipped, also when it arrives split
//!   across reads; invalid UTF-8 is replaced by U+FFFD;
//! - lines end in CRLF, LF or CR, also when the CR and the LF come in
//!   different reads (a CR at the end of a chunk ends the line at once, and an
//!   LF that starts the next chunk is then swallowed);
//! - a line starting with `:` is a comment and ignored;
//! - `name:value` — one space after the colon is removed (only one); a line
//!   with no colon is a field with that whole line as its name and an empty
//!   value;
//! - `data` appends the value and an LF to the data buffer; `event` sets the
//!   event type; `id` sets the last event ID unless the value contains NUL;
//!   `retry` sets the reconnection time when the value is ASCII digits only
//!   (otherwise ignored); other field names are ignored;
//! - an event is dispatched only at a blank line: its last-event-ID becomes
//!   the stream's; a block with an empty data buffer dispatches nothing (the
//!   lab server's `event: "message"` line followed by a blank line is such a
//!   block); one trailing LF is removed from the data; the type defaults to
//!   `message` (also when the `event` field was empty). A half-received event is never dispatched: when the
//!   connection ends the caller drops the parser (or calls [`SseParser::reset`]).
//!
//! Bound: the *size* of an event is the number of bytes of its non-comment
//! lines, each line counted with one byte for its line end (so CR, LF and
//! CRLF streams measure the same). When that exceeds `max_event_bytes`, the
//! event is counted as oversized ([`SseParser::oversized`]), everything
//! buffered for it is freed at once and the rest of it, up to and including
//! its blank line, is skipped without being stored — its `id`, `retry` and
//! `event` fields included. Where invalid UTF-8 is replaced by U+FFFD the
//! growth counts too, so a dispatched event's data never exceeds the bound.
//! The parser's memory therefore stays below three times `max_event_bytes`
//! (partial line + data/event buffers + last event ID) whatever the input.
//! Comment lines are skipped byte by byte and never buffered, so they do not
//! count.

use std::borrow::Cow;

/// One dispatched event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The event type: the last `event` field of the block, or `message`.
    pub event: String,
    /// The `data` lines joined by `\n`.
    pub data: String,
    /// The stream's last event ID at dispatch (persists from earlier events).
    pub id: String,
}

/// Dispatched events, kept for reuse: after [`SseEvents::clear`] the next
/// events are written into the same strings, so a steady stream allocates
/// nothing per event. Only a few slots and small strings are kept (see
/// [`KEEP_SLOTS`], [`KEEP_BYTES`]), so one burst of events or one large event
/// does not stay in memory.
#[derive(Debug, Default)]
pub struct SseEvents {
    slots: Vec<SseEvent>,
    len: usize,
}

/// Slots kept by [`SseEvents::clear`].
const KEEP_SLOTS: usize = 64;
/// A slot's data buffer is kept for reuse only up to this capacity.
const KEEP_BYTES: usize = 64 << 10;

impl SseEvents {
    /// No events.
    pub fn new() -> SseEvents {
        SseEvents::default()
    }

    /// The events dispatched since the last [`SseEvents::clear`], in order.
    pub fn as_slice(&self) -> &[SseEvent] {
        &self.slots[..self.len]
    }

    /// How many events there are.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets the events; their strings stay for the next ones (within bounds).
    pub fn clear(&mut self) {
        self.slots.truncate(KEEP_SLOTS);
        for slot in &mut self.slots {
            if slot.data.capacity() > KEEP_BYTES {
                slot.data = String::new();
            }
        }
        self.len = 0;
    }

    /// The next slot to fill; its strings hold whatever they held before.
    fn push_slot(&mut self) -> &mut SseEvent {
        if self.len == self.slots.len() {
            self.slots.push(SseEvent::default());
        }
        self.len += 1;
        &mut self.slots[self.len - 1]
    }
}

/// Where the parser is within the current line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineState {
    /// At the start of a line (nothing of it seen yet).
    Start,
    /// Inside a field line; its bytes so far are in `line`.
    Field,
    /// Inside a comment line; its bytes are skipped.
    Comment,
}

/// Incremental WHATWG event-stream parser. See the module docs for the rules.
#[derive(Debug, Clone)]
pub struct SseParser {
    max_event_bytes: usize,
    /// How many bytes of a leading BOM have been matched (3 = decided).
    bom_seen: u8,
    /// The previous byte was a CR that ended a line: swallow one LF.
    after_cr: bool,
    state: LineState,
    /// The partial field line (never holds a line that is complete).
    line: Vec<u8>,
    /// Data buffer of the current block (each line + LF), UTF-8 already:
    /// each line is converted as it is read, so the block is not validated again.
    data: String,
    event_type: Option<String>,
    /// The last event ID buffer (persists across events).
    id_buffer: String,
    /// The last event ID as of the last dispatch (the "stream's" id).
    last_event_id: String,
    retry_ms: Option<u64>,
    /// Bytes counted for the current block so far.
    block_bytes: usize,
    /// The current block went over the bound and is being skipped.
    skipping: bool,
    oversized: u64,
}

/// The default bound on one event: 1 MiB.
pub(crate) const DEFAULT_MAX_EVENT_BYTES: usize = 1 << 20;

impl Default for SseParser {
    fn default() -> Self {
        SseParser::new(DEFAULT_MAX_EVENT_BYTES)
    }
}

impl SseParser {
    /// A parser for a new stream, with the bound on one event's size.
    pub fn new(max_event_bytes: usize) -> SseParser {
        SseParser {
            max_event_bytes: max_event_bytes.max(1),
            bom_seen: 0,
            after_cr: false,
            state: LineState::Start,
            line: Vec::new(),
            data: String::new(),
            event_type: None,
            id_buffer: String::new(),
            last_event_id: String::new(),
            retry_ms: None,
            block_bytes: 0,
            skipping: false,
            oversized: 0,
        }
    }

    /// A parser for a new connection that continues a stream whose last event
    /// ID was `id` (what was sent as `Last-Event-ID`).
    pub fn with_last_event_id(max_event_bytes: usize, id: &str) -> SseParser {
        let mut p = SseParser::new(max_event_bytes);
        p.id_buffer = id.to_owned();
        p.last_event_id = id.to_owned();
        p
    }

    /// Starts over for a new connection: drops any half-received event and
    /// expects a new BOM, keeping the last event ID, the `retry` value and the
    /// oversized count.
    pub fn reset(&mut self) {
        let id = std::mem::take(&mut self.last_event_id);
        let retry = self.retry_ms;
        let oversized = self.oversized;
        *self = SseParser::with_last_event_id(self.max_event_bytes, &id);
        self.retry_ms = retry;
        self.oversized = oversized;
    }

    /// The stream's last event ID as of the last dispatched block (what a
    /// reconnect sends as `Last-Event-ID`; empty when none was seen).
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// The reconnection time last set by a `retry` field, in milliseconds.
    pub fn retry_ms(&self) -> Option<u64> {
        self.retry_ms
    }

    /// How many events were skipped for exceeding the bound.
    pub fn oversized(&self) -> u64 {
        self.oversized
    }

    /// Bytes currently held for the event being received (for tests of the bound).
    pub fn buffered_bytes(&self) -> usize {
        self.line.len()
            + self.data.len()
            + self.event_type.as_ref().map_or(0, |s| s.len())
            + self.id_buffer.len()
    }

    /// Feeds bytes; returns the events they complete.
    pub fn feed(&mut self, input: &[u8]) -> Vec<SseEvent> {
        let mut out = SseEvents::new();
        self.feed_into(input, &mut out);
        out.as_slice().to_vec()
    }

    /// Feeds bytes; appends the events they complete to `out`.
    pub fn feed_into(&mut self, mut input: &[u8], out: &mut SseEvents) {
        // A leading BOM, possibly split across reads.
        const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];
        while self.bom_seen < 3 {
            let Some(&b) = input.first() else { return };
            if b == BOM[self.bom_seen as usize] {
                self.bom_seen += 1;
                input = &input[1..];
            } else {
                // Not a BOM: the bytes matched so far are content.
                let matched = self.bom_seen as usize;
                self.bom_seen = 3;
                if matched > 0 {
                    self.feed_bytes(&BOM[..matched], out);
                }
            }
        }
        self.feed_bytes(input, out);
    }

    fn feed_bytes(&mut self, mut input: &[u8], out: &mut SseEvents) {
        while !input.is_empty() {
            if self.after_cr {
                self.after_cr = false;
                if input[0] == b'\n' {
                    input = &input[1..];
                    continue;
                }
            }
            let eol = memchr::memchr2(b'\n', b'\r', input);
            let (part, rest) = match eol {
                Some(i) => (&input[..i], Some(i)),
                None => (input, None),
            };
            if self.state == LineState::Start && !part.is_empty() {
                self.state = if part[0] == b':' {
                    LineState::Comment
                } else {
                    LineState::Field
                };
            }
            if self.state == LineState::Field && !part.is_empty() {
                self.block_bytes = self.block_bytes.saturating_add(part.len());
                if !self.skipping && self.block_bytes > self.max_event_bytes {
                    self.start_skipping();
                }
            }
            match rest {
                None => {
                    // Partial line: keep it (unless skipped) and wait for more.
                    if self.state == LineState::Field && !self.skipping {
                        self.line.extend_from_slice(part);
                    }
                    return;
                }
                Some(i) => {
                    self.after_cr = input[i] == b'\r';
                    input = &input[i + 1..];
                    match self.state {
                        LineState::Start => self.end_block(out),
                        LineState::Comment => {}
                        LineState::Field => {
                            self.block_bytes = self.block_bytes.saturating_add(1);
                            if !self.skipping && self.block_bytes > self.max_event_bytes {
                                self.start_skipping();
                            }
                            if !self.skipping {
                                if self.line.is_empty() {
                                    self.process_line(part);
                                } else {
                                    let mut line = std::mem::take(&mut self.line);
                                    line.extend_from_slice(part);
                                    self.process_line(&line);
                                    line.clear();
                                    self.line = line;
                                }
                            }
                        }
                    }
                    self.state = LineState::Start;
                }
            }
        }
    }

    fn start_skipping(&mut self) {
        self.skipping = true;
        self.oversized += 1;
        self.line = Vec::new();
        self.data = String::new();
        self.event_type = None;
    }

    fn process_line(&mut self, line: &[u8]) {
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match name {
            b"data" | b"event" | b"id" => {
                if name == b"id" && value.contains(&0) {
                    return;
                }
                // Valid UTF-8 (the common case) is checked by the fast validator;
                // only invalid input takes the replacing conversion.
                let text = match std::str::from_utf8(value) {
                    Ok(t) => Cow::Borrowed(t),
                    Err(_) => String::from_utf8_lossy(value),
                };
                // Replacing invalid UTF-8 can make the value longer (up to 3×):
                // the growth counts towards the bound too, so what is stored
                // never exceeds what was counted.
                let growth = text.len().saturating_sub(value.len());
                if growth > 0 {
                    self.block_bytes = self.block_bytes.saturating_add(growth);
                    if self.block_bytes > self.max_event_bytes {
                        self.start_skipping();
                        return;
                    }
                }
                match name {
                    b"data" => {
                        self.data.push_str(&text);
                        self.data.push('\n');
                    }
                    b"event" => self.event_type = Some(text.into_owned()),
                    _ => self.id_buffer = text.into_owned(),
                }
            }
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                // Digits only; absurdly long values saturate.
                let ms = value.iter().fold(0u64, |acc, &d| {
                    acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
                });
                self.retry_ms = Some(ms);
            }
            _ => {}
        }
    }

    /// A blank line: dispatch the block (if it has data) and start a new one.
    fn end_block(&mut self, out: &mut SseEvents) {
        let skipped = std::mem::replace(&mut self.skipping, false);
        self.block_bytes = 0;
        if skipped {
            // The oversized event ends here; nothing of it is dispatched.
            return;
        }
        self.last_event_id.clone_from(&self.id_buffer);
        let event_type = self.event_type.take();
        if self.data.is_empty() {
            return;
        }
        // The data buffer changes places with the slot's (no copy), less the
        // final LF; the slot's old buffer, cleared, collects the next block.
        let slot = out.push_slot();
        std::mem::swap(&mut self.data, &mut slot.data);
        slot.data.pop();
        self.data.clear();
        slot.event.clear();
        match event_type.as_deref() {
            Some(t) if !t.is_empty() => slot.event.push_str(t),
            _ => slot.event.push_str("message"),
        }
        slot.id.clone_from(&self.last_event_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    fn ev(event: &str, data: &str, id: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
            id: id.into(),
        }
    }

    /// Parses `input` whole, then split at every byte boundary (two chunks),
    /// then byte by byte, then in random chunkings; all must agree.
    fn parse_all_ways(input: &[u8], max: usize) -> (Vec<SseEvent>, SseParser) {
        let mut whole = SseParser::new(max);
        let expected = whole.feed(input);
        for cut in 0..=input.len() {
            let mut p = SseParser::new(max);
            let mut got = p.feed(&input[..cut]);
            got.extend(p.feed(&input[cut..]));
            assert_eq!(
                got,
                expected,
                "split at {cut} of {:?}",
                String::from_utf8_lossy(input)
            );
            assert_eq!(p.last_event_id(), whole.last_event_id());
            assert_eq!(p.retry_ms(), whole.retry_ms());
            assert_eq!(p.oversized(), whole.oversized());
        }
        // Byte by byte into one reused buffer, cleared after each feed: what a
        // slot held before never shows in a later event.
        let mut p = SseParser::new(max);
        let mut got = Vec::new();
        let mut reused = SseEvents::new();
        for b in input {
            p.feed_into(std::slice::from_ref(b), &mut reused);
            got.extend_from_slice(reused.as_slice());
            reused.clear();
        }
        assert_eq!(got, expected, "byte by byte");
        let mut rng = SmallRng::seed_from_u64(input.len() as u64);
        for _ in 0..20 {
            let mut p = SseParser::new(max);
            let mut got = Vec::new();
            let mut reused = SseEvents::new();
            let mut rest = input;
            while !rest.is_empty() {
                let n = rng.gen_range(0..=rest.len().min(7));
                p.feed_into(&rest[..n], &mut reused);
                got.extend_from_slice(reused.as_slice());
                reused.clear();
                rest = &rest[n..];
            }
            assert_eq!(got, expected, "random chunking");
        }
        (expected, whole)
    }

    fn parse(input: &str) -> Vec<SseEvent> {
        parse_all_ways(input.as_bytes(), DEFAULT_MAX_EVENT_BYTES).0
    }

    /// Every line-ending style gives the same events.
    fn with_each_line_ending(lf_text: &str) -> Vec<SseEvent> {
        let lf = parse(lf_text);
        assert_eq!(parse(&lf_text.replace('\n', "\r\n")), lf, "CRLF");
        assert_eq!(parse(&lf_text.replace('\n', "\r")), lf, "CR");
        // Mixed: alternate the three styles line by line.
        let mut mixed = String::new();
        for (i, line) in lf_text.split_inclusive('\n').enumerate() {
            match (line.strip_suffix('\n'), i % 3) {
                (Some(l), 0) => mixed.push_str(&format!("{l}\r\n")),
                (Some(l), 1) => mixed.push_str(&format!("{l}\r")),
                // An LF right after a lone CR would merge into a CRLF.
                (Some(l), _) if mixed.ends_with('\r') => mixed.push_str(&format!("{l}\r\n")),
                _ => mixed.push_str(line),
            }
        }
        assert_eq!(parse(&mixed), lf, "mixed");
        lf
    }

    #[test]
    fn spec_example_stock_ticker() {
        // WHATWG: "data: YHOO\ndata: +2\ndata: 10\n\n" is one event.
        let got = with_each_line_ending("data: YHOO\ndata: +2\ndata: 10\n\n");
        assert_eq!(got, vec![ev("message", "YHOO\n+2\n10", "")]);
    }

    #[test]
    fn spec_example_comments_and_ids() {
        // WHATWG: four blocks; the first is a comment only; the second has
        // data + id; the third has data only (keeps id "1"); the fourth sets
        // no data... "data: third\nid\n" would reset the id.
        let text = ": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n";
        let got = with_each_line_ending(text);
        assert_eq!(
            got,
            vec![
                ev("message", "first event", "1"),
                ev("message", "second event", ""),
                ev("message", " third event", ""),
            ]
        );
    }

    #[test]
    fn spec_example_empty_data() {
        // WHATWG: "data\n\ndata\ndata\n\ndata:" → "" and "\n"; the last block
        // is never dispatched (no blank line).
        let got = with_each_line_ending("data\n\ndata\ndata\n\ndata:");
        assert_eq!(got, vec![ev("message", "", ""), ev("message", "\n", "")]);
    }

    #[test]
    fn spec_example_space_after_colon() {
        // WHATWG: both blocks yield "test": only one leading space is removed.
        let got = with_each_line_ending("data:test\n\ndata: test\n\ndata:  test\n\n");
        assert_eq!(
            got,
            vec![
                ev("message", "test", ""),
                ev("message", "test", ""),
                ev("message", " test", "")
            ]
        );
    }

    #[test]
    fn lab_server_framing_dispatches_only_the_data_block() {
        let text = "event: \"message\"\n\ndata: {\"message\": panic}\n\nevent: \"message\"\n\ndata: {\"a\": 1}\n\n";
        let got = with_each_line_ending(text);
        assert_eq!(
            got,
            vec![
                ev("message", "{\"message\": panic}", ""),
                ev("message", "{\"a\": 1}", "")
            ]
        );
    }

    #[test]
    fn event_type_and_unknown_fields() {
        let got =
            with_each_line_ending("event: add\nfoo: bar\ndata: 1\n\ndata: 2\n\nevent\ndata: 3\n\n");
        assert_eq!(
            got,
            vec![
                ev("add", "1", ""),
                ev("message", "2", ""),
                ev("message", "3", "")
            ]
        );
    }

    #[test]
    fn field_without_colon() {
        // "data" with no colon appends an empty line; "event" resets the type to "".
        let got = with_each_line_ending("data\ndata: x\n\n");
        assert_eq!(got, vec![ev("message", "\nx", "")]);
    }

    #[test]
    fn comments_are_ignored_anywhere() {
        let got = with_each_line_ending(":hello\ndata: a\n: mid\ndata: b\n:\n\n");
        assert_eq!(got, vec![ev("message", "a\nb", "")]);
    }

    #[test]
    fn id_with_nul_is_ignored_and_id_persists() {
        let got = parse("id: 7\ndata: a\n\nid: 8\0x\ndata: b\n\ndata: c\n\n");
        assert_eq!(
            got,
            vec![
                ev("message", "a", "7"),
                ev("message", "b", "7"),
                ev("message", "c", "7")
            ]
        );
    }

    #[test]
    fn id_in_data_less_block_still_updates_last_event_id() {
        let (got, p) = parse_all_ways(b"id: 42\n\n", 1024);
        assert!(got.is_empty());
        assert_eq!(p.last_event_id(), "42");
    }

    #[test]
    fn id_of_a_half_received_block_is_not_committed() {
        let mut p = SseParser::default();
        assert!(p.feed(b"id: 5\ndata: x\n").is_empty());
        assert_eq!(p.last_event_id(), "");
        p.reset();
        assert!(
            p.feed(b"\n").is_empty(),
            "the partial event died with the connection"
        );
    }

    #[test]
    fn retry_digits_only() {
        let (_, p) = parse_all_ways(b"retry: 1500\n\n", 1024);
        assert_eq!(p.retry_ms(), Some(1500));
        for bad in [
            "retry: 15x\n\n",
            "retry: -1\n\n",
            "retry:  15\n\n",
            "retry:\n\n",
            "retry: 1.5\n\n",
        ] {
            let (_, p) = parse_all_ways(bad.as_bytes(), 1024);
            assert_eq!(p.retry_ms(), None, "{bad:?}");
        }
        let (_, p) = parse_all_ways(b"retry: 99999999999999999999999999\n\n", 1024);
        assert_eq!(p.retry_ms(), Some(u64::MAX));
    }

    #[test]
    fn bom_is_skipped_once_even_when_split() {
        let got = parse("\u{FEFF}data: a\n\n");
        assert_eq!(got, vec![ev("message", "a", "")]);
        // A second BOM is content: the field name becomes "\u{FEFF}data".
        assert!(parse("\u{FEFF}\u{FEFF}data: a\n\n").is_empty());
        // A partial BOM is content too (lossy: U+FFFD), still framed right.
        let (got, _) = parse_all_ways(b"\xEF\xBBdata: a\n\ndata: b\n\n", 1024);
        assert_eq!(got, vec![ev("message", "b", "")]);
    }

    #[test]
    fn cr_then_lf_in_the_next_read_is_one_line_end() {
        let mut p = SseParser::default();
        assert!(p.feed(b"data: a\r").is_empty());
        assert!(
            p.feed(b"\n").is_empty(),
            "CRLF split is one line end, not a blank line"
        );
        assert_eq!(p.feed(b"\r"), vec![ev("message", "a", "")]);
        assert!(p.feed(b"\ndata: b\r\r").len() == 1);
    }

    #[test]
    fn cr_cr_and_lf_cr_are_blank_lines() {
        assert_eq!(
            parse("data: a\r\rdata: b\n\r"),
            vec![ev("message", "a", ""), ev("message", "b", "")]
        );
    }

    #[test]
    fn nothing_dispatched_without_blank_line() {
        assert!(parse("data: a\ndata: b\n").is_empty());
        assert!(parse("data: a").is_empty());
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let (got, _) = parse_all_ways(b"data: a\xFFb\n\n", 1024);
        assert_eq!(got, vec![ev("message", "a\u{FFFD}b", "")]);
        let got = parse("data: héllo 🐦 мир\n\n");
        assert_eq!(got, vec![ev("message", "héllo 🐦 мир", "")]);
    }

    #[test]
    fn oversized_event_is_skipped_counted_and_framing_recovers() {
        let big = "x".repeat(100);
        let text = format!("data: ok1\n\ndata: {big}\nid: 9\nretry: 5\n\ndata: ok2\n\n");
        let (got, p) = parse_all_ways(text.as_bytes(), 64);
        assert_eq!(
            got,
            vec![ev("message", "ok1", ""), ev("message", "ok2", "")]
        );
        assert_eq!(p.oversized(), 1);
        assert_eq!(
            p.last_event_id(),
            "",
            "fields of a skipped event are ignored"
        );
        assert_eq!(p.retry_ms(), None);
    }

    #[test]
    fn event_of_exactly_the_bound_passes() {
        // "data: " + 10 + LF = 17 bytes.
        let text = "data: 0123456789\n\n";
        let (got, p) = parse_all_ways(text.as_bytes(), 17);
        assert_eq!(got.len(), 1);
        assert_eq!(p.oversized(), 0);
        let (got, p) = parse_all_ways(text.as_bytes(), 16);
        assert!(got.is_empty());
        assert_eq!(p.oversized(), 1);
        // Same measure whatever the line ending.
        let (got, _) = parse_all_ways(b"data: 0123456789\r\n\r\n", 17);
        assert_eq!(got.len(), 1);
    }

    #[test]
    fn utf8_replacement_growth_counts_towards_the_bound() {
        // 10 invalid bytes become 30 bytes of U+FFFD.
        let mut text = b"data: ".to_vec();
        text.extend_from_slice(&[0xFF; 10]);
        text.extend_from_slice(b"\n\ndata: ok\n\n");
        let (got, p) = parse_all_ways(&text, 20);
        assert_eq!(got, vec![ev("message", "ok", "")]);
        assert_eq!(p.oversized(), 1);
        let (got, p) = parse_all_ways(&text, 40);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].data.len(), 30);
        assert_eq!(p.oversized(), 0);
    }

    #[test]
    fn many_small_lines_count_towards_the_bound() {
        let text = "data: a\n".repeat(50) + "\n";
        let (got, p) = parse_all_ways(text.as_bytes(), 100);
        assert!(got.is_empty());
        assert_eq!(p.oversized(), 1);
    }

    #[test]
    fn memory_stays_bounded_on_endless_input() {
        let mut p = SseParser::new(4096);
        let chunk = [b'x'; 1000];
        assert!(p.feed(b"data: ").is_empty());
        for _ in 0..10_000 {
            assert!(p.feed(&chunk).is_empty());
            assert!(p.buffered_bytes() <= 4096, "{}", p.buffered_bytes());
        }
        // Many lines without a blank line, too.
        let mut p = SseParser::new(4096);
        for _ in 0..10_000 {
            p.feed(b"data: yyyyyyyyyy\n");
            assert!(p.buffered_bytes() <= 2 * 4096);
        }
        // Endless comments are not buffered at all.
        let mut p = SseParser::new(4096);
        p.feed(b":");
        for _ in 0..1000 {
            p.feed(&chunk);
            assert_eq!(p.buffered_bytes(), 0);
        }
        assert_eq!(p.feed(b"\ndata: z\n\n"), vec![ev("message", "z", "")]);
        assert_eq!(p.oversized(), 0);
    }

    #[test]
    fn reset_drops_the_partial_event_and_keeps_the_id() {
        let mut p = SseParser::default();
        assert_eq!(
            p.feed(b"id: 3\ndata: a\n\ndata: half"),
            vec![ev("message", "a", "3")]
        );
        p.reset();
        assert_eq!(
            p.feed(b"\xEF\xBB\xBFdata: b\n\n"),
            vec![ev("message", "b", "3")]
        );
        let mut p = SseParser::with_last_event_id(1024, "77");
        assert_eq!(p.feed(b"data: c\n\n"), vec![ev("message", "c", "77")]);
    }

    /// A deliberately naive reading of the spec over the whole input at once:
    /// decode (lossy), strip one BOM, split lines, interpret.
    fn reference(input: &[u8]) -> (Vec<SseEvent>, String, Option<u64>) {
        let text = String::from_utf8_lossy(input).into_owned();
        let text = text.strip_prefix('\u{FEFF}').unwrap_or(&text).to_owned();
        let mut lines = Vec::new();
        let mut cur = String::new();
        let mut chars = text.chars().peekable();
        // A trailing partial line (left in `cur`) is never processed.
        while let Some(c) = chars.next() {
            match c {
                '\r' => {
                    if chars.peek() == Some(&'\n') {
                        chars.next();
                    }
                    lines.push(std::mem::take(&mut cur));
                }
                '\n' => lines.push(std::mem::take(&mut cur)),
                c => cur.push(c),
            }
        }
        let (mut events, mut data, mut ty, mut id_buf, mut last_id, mut retry) = (
            Vec::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            None,
        );
        for line in lines {
            if line.is_empty() {
                last_id = id_buf.clone();
                if data.is_empty() {
                    ty.clear();
                    continue;
                }
                data.pop();
                events.push(ev(
                    if ty.is_empty() { "message" } else { &ty },
                    &data,
                    &last_id,
                ));
                data.clear();
                ty.clear();
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (name, value) = match line.find(':') {
                Some(i) => {
                    let v = &line[i + 1..];
                    (&line[..i], v.strip_prefix(' ').unwrap_or(v))
                }
                None => (&line[..], ""),
            };
            match name {
                "event" => ty = value.to_owned(),
                "data" => {
                    data.push_str(value);
                    data.push('\n');
                }
                "id" if !value.contains('\0') => id_buf = value.to_owned(),
                "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                    retry = value.parse().ok().or(Some(u64::MAX))
                }
                _ => {}
            }
        }
        (events, last_id, retry)
    }

    #[test]
    fn random_streams_match_a_naive_reference() {
        let pieces: [&[u8]; 16] = [
            b"data",
            b": ",
            b"x",
            b"\n",
            b"\r",
            b"\r\n",
            b":",
            b"id",
            b"event",
            b"retry: 12",
            b"\0",
            b" ",
            b"\xEF\xBB\xBF",
            b"\xF0\x9F",
            b"\xFF",
            b"\n\n",
        ];
        let mut rng = SmallRng::seed_from_u64(11);
        for _ in 0..3000 {
            let mut input = Vec::new();
            for _ in 0..rng.gen_range(0..40) {
                input.extend_from_slice(pieces[rng.gen_range(0..pieces.len())]);
            }
            let mut p = SseParser::default();
            let got = p.feed(&input);
            let (want, last_id, retry) = reference(&input);
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(&input));
            assert_eq!(p.last_event_id(), last_id);
            assert_eq!(p.retry_ms(), retry);
        }
    }

    #[test]
    fn random_streams_agree_across_chunkings() {
        let pieces: [&[u8]; 14] = [
            b"data",
            b": ",
            b"x",
            b"\n",
            b"\r",
            b"\r\n",
            b":",
            b"id",
            b"event",
            b"retry: 12",
            b"\0",
            b" ",
            b"\xEF\xBB\xBF",
            b"\xF0\x9F",
        ];
        let mut rng = SmallRng::seed_from_u64(7);
        for _ in 0..150 {
            let mut input = Vec::new();
            for _ in 0..rng.gen_range(0..30) {
                input.extend_from_slice(pieces[rng.gen_range(0..pieces.len())]);
            }
            parse_all_ways(&input, rng.gen_range(1..40));
        }
    }
}
