//! The bearer token of the control routes (`Authorization: Bearer <token>`,
//! RFC 6750 §2.1; the scheme name is case-insensitive, RFC 9110 §11.1).
//!
//! Without a configured token the control routes are off: [`Access::Disabled`]
//! (403), so a listener opened by default never lets anyone pause the sink.
//! The comparison takes the same time wherever the tokens differ.

/// What a control request's credentials allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The token matches.
    Granted,
    /// No token is configured: control is off (403).
    Disabled,
    /// The header is missing, not `Bearer`, or the token is wrong (401).
    Denied,
}

/// Checks an `Authorization` header value against the configured token.
pub fn check_bearer(configured: Option<&str>, authorization: Option<&str>) -> Access {
    let Some(expected) = configured.filter(|t| !t.is_empty()) else {
        return Access::Disabled;
    };
    match authorization.and_then(bearer_token) {
        Some(given) if same_bytes(given.as_bytes(), expected.as_bytes()) => Access::Granted,
        _ => Access::Denied,
    }
}

/// The token of a `Bearer <token>` value.
fn bearer_token(value: &str) -> Option<&str> {
    // HTTP's whitespace is ASCII: a Unicode space (U+0085, U+00A0, …) or a vertical
    // tab is part of the value, never a separator (so it never matches a token).
    let ascii_ws = |c: char| c.is_ascii_whitespace();
    let (scheme, token) = value.trim_matches(ascii_ws).split_once(ascii_ws)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim_matches(ascii_ws);
    (!token.is_empty()).then_some(token)
}

/// Equal contents, compared without an early exit.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_configured_bearer_token_is_granted() {
        let t = Some("s3cret");
        assert_eq!(check_bearer(t, Some("Bearer s3cret")), Access::Granted);
        assert_eq!(check_bearer(t, Some("bearer   s3cret ")), Access::Granted);
        assert_eq!(check_bearer(t, Some("Bearer s3cre")), Access::Denied);
        assert_eq!(check_bearer(t, Some("Bearer s3cret2")), Access::Denied);
        assert_eq!(check_bearer(t, Some("Basic s3cret")), Access::Denied);
        assert_eq!(check_bearer(t, Some("s3cret")), Access::Denied);
        assert_eq!(check_bearer(t, Some("Bearer ")), Access::Denied);
        assert_eq!(check_bearer(t, Some("")), Access::Denied);
        assert_eq!(check_bearer(t, None), Access::Denied);
        // No token configured: off, whatever is sent.
        assert_eq!(check_bearer(None, Some("Bearer s3cret")), Access::Disabled);
        assert_eq!(check_bearer(Some(""), Some("Bearer ")), Access::Disabled);
        assert_eq!(check_bearer(None, None), Access::Disabled);
    }

    #[test]
    fn odd_header_values_never_panic() {
        for v in [
            "\u{0}",
            "Bearer\u{a0}x",
            "ß ß",
            "Bearer \u{1F600}",
            "   ",
            "Bearer\t\tx",
        ] {
            let _ = check_bearer(Some("x"), Some(v));
        }
        assert_eq!(
            check_bearer(Some("x"), Some("Bearer\t\tx")),
            Access::Granted
        );
    }
}
