//! SSE framing, byte for byte as the real server writes it.
//!
//! Clients of the real server compare whole HTTP chunks with fixed strings, so
//! the emulator must reproduce the exact bytes:
//!
//! ```text
//! event: "message"\n
//! \n
//! data: <payload>\n
//! \n
//! ```
//!
//! - The event name is the nine characters `"message"`, quotes included, and
//!   a blank line stands between the `event:` line and the `data:` line (under
//!   the WHATWG rules it ends a block with no data, so the `data:` block
//!   arrives as a plain `message` event).
//! - LF line ends only; no `retry:`, no comments, no keep-alive lines; `id:`
//!   only when asked for (`--ids`, which the real server does not do).
//! - A kill message is the data [`KILL_PAYLOAD`], `{"message": panic}`, which
//!   is not JSON: clients compare the string.
//!
//! How the framed bytes are cut into HTTP chunks is the server's business.

use super::json::push_u64;

/// The data of a kill event, byte for byte (not valid JSON, as on the real server).
pub(crate) const KILL_PAYLOAD: &[u8] = b"{\"message\": panic}";

/// Appends one SSE event exactly as the real server frames it:
/// `event: "message"\n\ndata: <payload>\n\n`, with `id: N\n` before the `data:`
/// line when `id` is given (the `--ids` knob; the real server sends no ids).
pub fn frame_event(payload: &[u8], id: Option<u64>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"event: \"message\"\n\n");
    if let Some(id) = id {
        out.extend_from_slice(b"id: ");
        push_u64(out, id);
        out.push(b'\n');
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_is_exact() {
        let mut ev = Vec::new();
        frame_event(KILL_PAYLOAD, None, &mut ev);
        assert_eq!(ev, b"event: \"message\"\n\ndata: {\"message\": panic}\n\n");
        ev.clear();
        frame_event(b"{}", Some(12), &mut ev);
        assert_eq!(ev, b"event: \"message\"\n\nid: 12\ndata: {}\n\n");
    }
}
