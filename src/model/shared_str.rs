//! [`SharedStr`]: the strings of a decoded tweet as ranges of one buffer.
//!
//! A stream reader copies each tweet's JSON text once, into a reference-counted
//! buffer, and every string field that appears in it unescaped (the text, the
//! names, the user object, the original of a retweet) is a range of that buffer.
//! Only strings that JSON escapes changed get bytes of their own, in a second
//! buffer shared by the tweet's other escaped strings. So a tweet costs two or
//! three allocations instead of one per string, and the thread that drops it (the
//! sink) frees two or three blocks the reader allocated instead of a dozen.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::{Deref, Range};
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An immutable string: a range of a shared buffer. Derefs to `str`; compares,
/// hashes, prints and serializes as its text.
#[derive(Clone)]
pub struct SharedStr {
    buf: Arc<str>,
    start: usize,
    end: usize,
}

impl SharedStr {
    /// The whole of `buf`.
    pub fn whole(buf: Arc<str>) -> SharedStr {
        let end = buf.len();
        SharedStr { buf, start: 0, end }
    }

    /// `range` of `buf`; `None` if it is out of bounds or not on character
    /// boundaries.
    pub fn range_of(buf: &Arc<str>, range: Range<usize>) -> Option<SharedStr> {
        buf.get(range.clone())?;
        Some(SharedStr {
            buf: Arc::clone(buf),
            start: range.start,
            end: range.end,
        })
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // In bounds and on character boundaries by construction.
        self.buf.get(self.start..self.end).unwrap_or_default()
    }

    /// The length of the whole buffer this string is a range of.
    pub fn buffer_len(&self) -> usize {
        self.buf.len()
    }

    /// Whether `self` and `other` are ranges of the same buffer.
    pub fn same_buffer(&self, other: &SharedStr) -> bool {
        Arc::ptr_eq(&self.buf, &other.buf)
    }

    /// Whether `self` is a range of `outer`'s bytes (the same buffer, inside its range).
    pub fn within(&self, outer: &SharedStr) -> bool {
        self.same_buffer(outer) && outer.start <= self.start && self.end <= outer.end
    }

    /// Where `self` lies in `outer`'s text, as a byte range of it, when `self` is
    /// [`within`](SharedStr::within) it.
    pub fn range_in(&self, outer: &SharedStr) -> Option<Range<usize>> {
        self.within(outer)
            .then(|| self.start - outer.start..self.end - outer.start)
    }
}

impl Default for SharedStr {
    /// The empty string (one buffer for the whole process).
    fn default() -> SharedStr {
        static EMPTY: OnceLock<Arc<str>> = OnceLock::new();
        SharedStr::whole(Arc::clone(EMPTY.get_or_init(|| Arc::from(""))))
    }
}

impl Deref for SharedStr {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for SharedStr {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for SharedStr {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for SharedStr {
    fn from(s: &str) -> SharedStr {
        SharedStr::whole(Arc::from(s))
    }
}

impl From<String> for SharedStr {
    fn from(s: String) -> SharedStr {
        SharedStr::whole(Arc::from(s))
    }
}

impl From<&String> for SharedStr {
    fn from(s: &String) -> SharedStr {
        SharedStr::from(s.as_str())
    }
}

impl fmt::Debug for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl PartialEq for SharedStr {
    fn eq(&self, other: &SharedStr) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for SharedStr {}

impl PartialEq<str> for SharedStr {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for SharedStr {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for SharedStr {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<SharedStr> for str {
    fn eq(&self, other: &SharedStr) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<SharedStr> for &str {
    fn eq(&self, other: &SharedStr) -> bool {
        *self == other.as_str()
    }
}

impl Hash for SharedStr {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl Serialize for SharedStr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SharedStr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SharedStr, D::Error> {
        String::deserialize(d).map(SharedStr::from)
    }
}

/// Builds [`SharedStr`]s over one base text: a string that lies inside the base
/// becomes a range of it, any other string is appended to a side buffer.
/// [`finish`](SharedStrs::finish) copies the base and the side buffer once each.
#[derive(Debug)]
pub(crate) struct SharedStrs<'a> {
    base: &'a str,
    side: String,
}

/// A string placed by [`SharedStrs::place`], to be made a [`SharedStr`] by
/// [`Placed::get`] once the buffers exist.
#[derive(Debug, Clone)]
pub(crate) enum Placed {
    /// A range of the base.
    Base(Range<usize>),
    /// A range of the side buffer.
    Side(Range<usize>),
}

/// The buffers of a finished [`SharedStrs`].
#[derive(Debug)]
pub(crate) struct Buffers {
    base: Arc<str>,
    side: Option<Arc<str>>,
}

impl<'a> SharedStrs<'a> {
    /// Places strings over `base`.
    pub(crate) fn over(base: &'a str) -> SharedStrs<'a> {
        SharedStrs {
            base,
            side: String::new(),
        }
    }

    /// Where `s` is: in the base if its bytes are the base's own (a slice of
    /// it), else copied to the side buffer.
    pub(crate) fn place(&mut self, s: &str) -> Placed {
        let base_at = self.base.as_ptr() as usize;
        let at = s.as_ptr() as usize;
        if let Some(start) = at.checked_sub(base_at) {
            if let Some(end) = start.checked_add(s.len()) {
                if self.base.get(start..end).is_some() {
                    return Placed::Base(start..end);
                }
            }
        }
        let start = self.side.len();
        self.side.push_str(s);
        Placed::Side(start..self.side.len())
    }

    /// Copies the base, and the side buffer when anything went there.
    pub(crate) fn finish(self) -> Buffers {
        Buffers {
            base: Arc::from(self.base),
            side: (!self.side.is_empty()).then(|| Arc::from(self.side)),
        }
    }
}

impl Placed {
    /// The string, from `buffers`.
    pub(crate) fn get(&self, buffers: &Buffers) -> SharedStr {
        let (buf, range) = match self {
            Placed::Base(r) => (Some(&buffers.base), r),
            Placed::Side(r) => (buffers.side.as_ref(), r),
        };
        // Ranges of an empty side buffer are empty.
        buf.and_then(|b| SharedStr::range_of(b, range.clone()))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::DefaultHasher;

    fn hash_of<T: Hash + ?Sized>(v: &T) -> u64 {
        let mut h = DefaultHasher::new();
        v.hash(&mut h);
        h.finish()
    }

    #[test]
    fn slices_of_the_base_share_it_and_other_strings_go_to_the_side_buffer() {
        let base = String::from(r#"{"text":"héllo","lang":"en"}"#);
        let mut strs = SharedStrs::over(&base);
        let text = strs.place(&base[9..15]);
        let lang = strs.place(&base[25..27]);
        let whole = strs.place(&base);
        let escaped = String::from("line\nbreak");
        let side = strs.place(&escaped);
        let empty_end = strs.place(&base[base.len()..]);
        assert!(matches!(text, Placed::Base(ref r) if *r == (9..15)));
        assert!(matches!(side, Placed::Side(ref r) if *r == (0..10)));
        let b = strs.finish();
        let (text, lang, whole, side) = (text.get(&b), lang.get(&b), whole.get(&b), side.get(&b));
        assert_eq!(text, "héllo");
        assert_eq!(lang, "en");
        assert_eq!(whole.as_str(), base);
        assert_eq!(side, "line\nbreak");
        assert_eq!(empty_end.get(&b), "");
        assert!(text.same_buffer(&whole) && lang.same_buffer(&whole));
        assert!(!side.same_buffer(&whole));
        assert!(text.within(&whole) && !whole.within(&text) && !side.within(&whole));
        assert_eq!((text.buffer_len(), side.buffer_len()), (base.len(), 10));
    }

    #[test]
    fn a_string_overlapping_the_base_end_is_copied() {
        let both = String::from("abcdef");
        let (base, rest) = both.split_at(3);
        let mut strs = SharedStrs::over(base);
        // Starts inside the base's allocation but ends past the base.
        let over = strs.place(&both[1..5]);
        let after = strs.place(rest);
        assert!(matches!(over, Placed::Side(_)));
        let b = strs.finish();
        assert_eq!(over.get(&b), "bcde");
        assert_eq!(after.get(&b), "def");
    }

    #[test]
    fn no_side_buffer_without_side_strings() {
        let base = "abc";
        let mut strs = SharedStrs::over(base);
        let a = strs.place(&base[..1]);
        let b = strs.finish();
        assert!(b.side.is_none());
        assert_eq!(a.get(&b), "a");
        // A side range without a side buffer (not made by `place`) reads as empty.
        assert_eq!(Placed::Side(0..2).get(&b), "");
    }

    #[test]
    fn ranges_must_be_in_bounds_and_on_char_boundaries() {
        let buf: Arc<str> = Arc::from("é!");
        assert!(SharedStr::range_of(&buf, 0..1).is_none());
        assert!(SharedStr::range_of(&buf, 0..4).is_none());
        assert_eq!(SharedStr::range_of(&buf, 2..3).unwrap(), "!");
    }

    #[test]
    fn range_in_is_the_offset_within_the_outer_string() {
        let buf: Arc<str> = Arc::from("xx{\"user\":{\"id\":1}}yy");
        let outer = SharedStr::range_of(&buf, 2..19).unwrap();
        let inner = SharedStr::range_of(&buf, 10..18).unwrap();
        let span = inner.range_in(&outer).unwrap();
        assert_eq!(&outer.as_str()[span], "{\"id\":1}");
        // Not inside: partly outside, or another buffer with the same text.
        assert_eq!(
            SharedStr::range_of(&buf, 0..4).unwrap().range_in(&outer),
            None
        );
        assert_eq!(SharedStr::from("{\"id\":1}").range_in(&outer), None);
        assert_eq!(outer.range_in(&outer), Some(0..17));
    }

    #[test]
    fn behaves_as_its_text() {
        let buf: Arc<str> = Arc::from("xxabcxx");
        let s = SharedStr::range_of(&buf, 2..5).unwrap();
        let t = SharedStr::from("abc");
        assert_eq!(s, t);
        assert_eq!(hash_of(&s), hash_of("abc"));
        assert_eq!(format!("{s}/{s:?}"), r#"abc/"abc""#);
        assert_eq!(serde_json::to_string(&s).unwrap(), r#""abc""#);
        let back: SharedStr = serde_json::from_str(r#""a\"b""#).unwrap();
        assert_eq!(back, "a\"b");
        assert_eq!(SharedStr::default(), "");
        let owned = String::from("abc");
        assert!("abc" == s && *"abc" == s && s == owned);
    }
}
