//! Percent-encoding, written once: which bytes a place keeps as they are differs (a path
//! segment, a query value, a header value), the escaping does not.

/// RFC 3986 unreserved characters: what a path segment or a query value keeps.
pub fn unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~')
}

/// `text` with every byte `keep` refuses written as `%XX`.
pub fn encode(text: &str, keep: impl Fn(u8) -> bool) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if keep(byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Every `%XX` decoded; anything else, a malformed escape included, kept as it is. For looking
/// at what a string would mean to a decoder, not for reading values.
pub fn decode_lenient(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let hex = |at: usize| bytes.get(at).and_then(|&b| (b as char).to_digit(16));
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        match (bytes[at], hex(at + 1), hex(at + 2)) {
            (b'%', Some(high), Some(low)) => {
                decoded.push((high * 16 + low) as u8);
                at += 3;
            }
            (byte, _, _) => {
                decoded.push(byte);
                at += 1;
            }
        }
    }
    decoded
}

/// The inverse of [`encode`]: `None` on a malformed escape or bytes that are not UTF-8.
pub fn decode(text: &str) -> Option<String> {
    let malformed = text.match_indices('%').any(|(at, _)| {
        !text
            .as_bytes()
            .get(at + 1..at + 3)
            .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    });
    if malformed {
        return None;
    }
    String::from_utf8(decode_lenient(text)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn malformed_escapes_are_refused_strictly_and_kept_leniently() {
        assert_eq!(decode("a%2"), None);
        assert_eq!(decode("%zz"), None);
        assert_eq!(decode_lenient("a%2"), b"a%2");
        assert_eq!(decode("Zo%C3%AB"), Some("Zoë".into()));
    }

    proptest! {
        #[test]
        fn encoding_round_trips_whatever_is_kept(text in "\\\\PC{0,40}") {
            prop_assert_eq!(decode(&encode(&text, unreserved)), Some(text.clone()));
            let visible = |b: u8| b.is_ascii_graphic() && b != b'%';
            prop_assert_eq!(decode(&encode(&text, visible)), Some(text));
        }
    }
}
