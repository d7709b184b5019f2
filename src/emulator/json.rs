//! Hand-written JSON output helpers for the generator: a table-driven string
//! escaper, an integer formatter and the two date formats the server needs.
//!
//! Pure and allocation-free: everything appends to a caller's `Vec<u8>`.

/// How non-ASCII characters are written inside JSON strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Escape {
    /// UTF-8 as is (what an Elixir encoder writes); only `"`, `\` and control
    /// characters are escaped.
    Utf8,
    /// Every non-ASCII character as `\uXXXX` (surrogate pairs above U+FFFF), as
    /// Twitter's own API wrote them.
    Ascii,
}

/// `NEEDS[b]` is true for bytes that cannot be copied verbatim in `Utf8` mode.
const NEEDS: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

const HEX: &[u8; 16] = b"0123456789abcdef";

fn push_u_escape(out: &mut Vec<u8>, unit: u32) {
    out.extend_from_slice(&[
        b'\\',
        b'u',
        HEX[((unit >> 12) & 0xf) as usize],
        HEX[((unit >> 8) & 0xf) as usize],
        HEX[((unit >> 4) & 0xf) as usize],
        HEX[(unit & 0xf) as usize],
    ]);
}

fn push_control(out: &mut Vec<u8>, b: u8) {
    match b {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        b'\n' => out.extend_from_slice(b"\\n"),
        b'\r' => out.extend_from_slice(b"\\r"),
        b'\t' => out.extend_from_slice(b"\\t"),
        0x08 => out.extend_from_slice(b"\\b"),
        0x0c => out.extend_from_slice(b"\\f"),
        _ => push_u_escape(out, u32::from(b)),
    }
}

/// Appends `s` as a quoted JSON string.
pub(super) fn push_str(out: &mut Vec<u8>, s: &str, mode: Escape) {
    out.push(b'"');
    push_str_body(out, s, mode);
    out.push(b'"');
}

/// Appends the escaped content of `s` without the quotes.
pub(super) fn push_str_body(out: &mut Vec<u8>, s: &str, mode: Escape) {
    let bytes = s.as_bytes();
    match mode {
        Escape::Utf8 => {
            let mut start = 0;
            for (i, &b) in bytes.iter().enumerate() {
                if NEEDS[b as usize] {
                    out.extend_from_slice(&bytes[start..i]);
                    push_control(out, b);
                    start = i + 1;
                }
            }
            out.extend_from_slice(&bytes[start..]);
        }
        Escape::Ascii => {
            let mut start = 0;
            let mut i = 0;
            while i < bytes.len() {
                let b = bytes[i];
                if b < 0x80 {
                    if NEEDS[b as usize] {
                        out.extend_from_slice(&bytes[start..i]);
                        push_control(out, b);
                        start = i + 1;
                    }
                    i += 1;
                    continue;
                }
                out.extend_from_slice(&bytes[start..i]);
                // `s` is valid UTF-8 and `i` is at a char boundary here.
                let c = s[i..].chars().next().unwrap_or('\u{fffd}');
                let cp = c as u32;
                if cp > 0xffff {
                    let v = cp - 0x1_0000;
                    push_u_escape(out, 0xd800 + (v >> 10));
                    push_u_escape(out, 0xdc00 + (v & 0x3ff));
                } else {
                    push_u_escape(out, cp);
                }
                i += c.len_utf8();
                start = i;
            }
            out.extend_from_slice(&bytes[start..]);
        }
    }
}

/// Appends the decimal digits of `n`.
pub(super) fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Appends the decimal digits of `n`, with a `-` when negative.
pub(super) fn push_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    push_u64(out, n.unsigned_abs());
}

/// Appends `n` as a JSON string (`"123"`), as in Twitter's `id_str`.
pub(super) fn push_u64_str(out: &mut Vec<u8>, n: u64) {
    out.push(b'"');
    push_u64(out, n);
    out.push(b'"');
}

/// A broken-down UTC time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Civil {
    /// Proleptic Gregorian year.
    pub(super) year: i64,
    /// 1..=12
    pub(super) month: u32,
    /// 1..=31
    pub(super) day: u32,
    /// 0..=23
    pub(super) hour: u32,
    /// 0..=59
    pub(super) min: u32,
    /// 0..=59
    pub(super) sec: u32,
    /// 0 = Sunday
    pub(super) weekday: u32,
}

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl Civil {
    /// From seconds since the Unix epoch (H. Hinnant's `civil_from_days`).
    pub(super) fn from_unix(secs: i64) -> Civil {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Civil {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            min: ((rem / 60) % 60) as u32,
            sec: (rem % 60) as u32,
            weekday: (days + 4).rem_euclid(7) as u32,
        }
    }
}

fn push_2(out: &mut Vec<u8>, n: u32) {
    out.push(b'0' + (n / 10 % 10) as u8);
    out.push(b'0' + (n % 10) as u8);
}

fn push_hms(out: &mut Vec<u8>, c: &Civil) {
    push_2(out, c.hour);
    out.push(b':');
    push_2(out, c.min);
    out.push(b':');
    push_2(out, c.sec);
}

/// Appends Twitter's date format without quotes: `Mon Apr 18 19:30:47 +0000 2016`.
pub(super) fn push_twitter_date(out: &mut Vec<u8>, unix_secs: i64) {
    let c = Civil::from_unix(unix_secs);
    out.extend_from_slice(WEEKDAYS[c.weekday as usize].as_bytes());
    out.push(b' ');
    out.extend_from_slice(MONTHS[(c.month - 1) as usize].as_bytes());
    out.push(b' ');
    push_2(out, c.day);
    out.push(b' ');
    push_hms(out, &c);
    out.extend_from_slice(b" +0000 ");
    push_i64(out, c.year);
}

/// The IMF-fixdate of an HTTP `date` header: `Mon, 18 Apr 2016 19:30:47 GMT`.
pub(super) fn http_date(unix_secs: i64) -> String {
    let c = Civil::from_unix(unix_secs);
    let mut out = Vec::with_capacity(32);
    out.extend_from_slice(WEEKDAYS[c.weekday as usize].as_bytes());
    out.extend_from_slice(b", ");
    push_2(&mut out, c.day);
    out.push(b' ');
    out.extend_from_slice(MONTHS[(c.month - 1) as usize].as_bytes());
    out.push(b' ');
    push_i64(&mut out, c.year);
    out.push(b' ');
    push_hms(&mut out, &c);
    out.extend_from_slice(b" GMT");
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &str, mode: Escape) -> String {
        let mut out = Vec::new();
        push_str(&mut out, s, mode);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_round_trip_through_serde() {
        let samples = [
            "plain",
            "quote \" back \\ slash",
            "line\nbreak\ttab\r\u{1}\u{8}\u{c}\u{1f}",
            "émoji 😂 ❤️ 日本語 العربية ไทย",
            "",
        ];
        for s in samples {
            for mode in [Escape::Utf8, Escape::Ascii] {
                let json = esc(s, mode);
                let back: String = serde_json::from_str(&json).unwrap();
                assert_eq!(back, s, "{json}");
                if mode == Escape::Ascii {
                    assert!(json.is_ascii(), "{json}");
                }
            }
        }
        assert_eq!(esc("a\"b\\c\nd", Escape::Utf8), r#""a\"b\\c\nd""#);
        assert_eq!(esc("é😂", Escape::Ascii), r#""\u00e9\ud83d\ude02""#);
        assert_eq!(esc("\u{1}", Escape::Utf8), r#""\u0001""#);
    }

    #[test]
    fn integers() {
        for n in [0u64, 7, 10, 99, 1234567890, u64::MAX] {
            let mut out = Vec::new();
            push_u64(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
        let mut out = Vec::new();
        push_i64(&mut out, i64::MIN);
        assert_eq!(out, i64::MIN.to_string().as_bytes());
    }

    #[test]
    fn dates() {
        let mut out = Vec::new();
        push_twitter_date(&mut out, 1_461_007_847);
        assert_eq!(out, b"Mon Apr 18 19:30:47 +0000 2016");
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(http_date(1_798_761_599), "Thu, 31 Dec 2026 23:59:59 GMT");
    }
}
