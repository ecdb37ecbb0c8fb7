//! W3C Trace Context (`traceparent`): how one request is followed from the edge to the origin
//! and the app. A valid incoming `traceparent` is kept; a request without one gets a new trace.
//! The trace id is the request id in every log line about the request.

use std::fmt;

pub const TRACEPARENT_HEADER: &str = "traceparent";

/// The response header naming the request's id (its trace id), on the origin's answers and on
/// every error the edge answers itself: what to search the logs for.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// A `traceparent` value, version 00: `00-<trace id: 32 hex>-<parent id: 16 hex>-<flags: 2 hex>`.
/// Kept as its lowercase hex text: the edge only checks, forwards and logs it (and formatting
/// 128-bit integers would cost the worker's bundle kilobytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: String,
    parent_id: String,
    flags: String,
}

impl TraceContext {
    /// A new trace from random bits (an all-zero id, which the spec forbids and random input
    /// never gives, becomes 1).
    pub fn new(trace_id: [u8; 16], parent_id: [u8; 8]) -> Self {
        let nonzero = |mut hex: String| {
            if hex.bytes().all(|b| b == b'0') {
                hex.pop();
                hex.push('1');
            }
            hex
        };
        TraceContext {
            trace_id: nonzero(hex(&trace_id)),
            parent_id: nonzero(hex(&parent_id)),
            flags: "00".into(),
        }
    }

    /// Reads a `traceparent` header; anything not a valid one is `None` (and is replaced).
    pub fn parse(header: &str) -> Option<Self> {
        // Fixed offsets: `vv-` then 32, 16 and 2 hex digits separated by `-` (55 bytes). Version
        // 00 ends there; a later version may add `-…` after, which is ignored.
        let header = header.trim();
        let bytes = header.as_bytes();
        // The dashes first: they make every offset below a character boundary.
        if ![2, 35, 52].iter().all(|&at| bytes.get(at) == Some(&b'-')) {
            return None;
        }
        let ends_right = match bytes.get(55) {
            None => bytes.len() == 55,
            Some(b'-') => &header[..2] != "00",
            Some(_) => false,
        };
        if !ends_right {
            return None;
        }
        let (version, trace, parent, flags) =
            (&header[..2], &header[3..35], &header[36..52], &header[53..55]);
        let nonzero = |text: &str| text.bytes().any(|b| b != b'0');
        let valid = [version, trace, parent, flags].iter().all(|part| is_lower_hex(part))
            && version != "ff"
            && nonzero(trace)
            && nonzero(parent);
        valid.then(|| TraceContext {
            trace_id: trace.into(),
            parent_id: parent.into(),
            flags: flags.into(),
        })
    }

    /// The trace id as 32 hex digits: the request id.
    pub fn trace_id(&self) -> &str {
        &self.trace_id
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "00-{}-{}-{}", self.trace_id, self.parent_id, self.flags)
    }
}

fn is_lower_hex(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|byte| [DIGITS[usize::from(byte >> 4)], DIGITS[usize::from(byte & 15)]])
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_spec_example_round_trips() {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let context = TraceContext::parse(header).unwrap();
        assert_eq!(context.to_string(), header);
        assert_eq!(context.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let zero = TraceContext::new([0; 16], [0; 8]);
        assert_eq!(TraceContext::parse(&zero.to_string()), Some(zero), "never all zeros");
    }

    #[test]
    fn invalid_headers_are_refused() {
        for header in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(header), None, "{header:?}");
        }
        // Multi-byte characters where the dashes should be are refused, not sliced through
        // (found by the property test below).
        let shifted = "\u{1da9b}\u{fffc}\u{11305}\u{1f77b}a\u{1f300}\u{c60} 0A A   0\u{10ac0}A\u{ae} \u{13a0} a\u{1128f}aa\u{b4b}0-";
        assert_eq!(shifted.as_bytes()[55], b'-');
        assert_eq!(TraceContext::parse(shifted), None);
        let future = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-next";
        assert!(TraceContext::parse(future).is_some(), "later versions may add fields");
    }

    proptest! {
        #[test]
        fn parsing_never_panics_and_what_parses_round_trips(header in "\\PC{0,80}") {
            if let Some(context) = TraceContext::parse(&header) {
                prop_assert_eq!(TraceContext::parse(&context.to_string()), Some(context));
            }
        }

        #[test]
        fn new_contexts_are_always_valid(trace in any::<[u8; 16]>(), parent in any::<[u8; 8]>()) {
            let context = TraceContext::new(trace, parent);
            prop_assert_eq!(TraceContext::parse(&context.to_string()), Some(context));
        }
    }
}
