//! W3C Trace Context (`traceparent`): how one request is followed from the edge to the origin
//! and the app. A valid incoming `traceparent` is kept; a request without one gets a new trace.
//! The trace id is the request id in every log line about the request.

use std::fmt;

pub const TRACEPARENT_HEADER: &str = "traceparent";

/// A `traceparent` value, version 00: `00-<trace id: 32 hex>-<parent id: 16 hex>-<flags: 2 hex>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: u128,
    parent_id: u64,
    flags: u8,
}

impl TraceContext {
    /// A new trace from random bits (`trace_id` and `parent_id` must not be zero: a zero is
    /// replaced by one, which the spec allows and which never happens with random input).
    pub fn new(trace_id: u128, parent_id: u64) -> Self {
        TraceContext { trace_id: trace_id.max(1), parent_id: parent_id.max(1), flags: 0 }
    }

    /// Reads a `traceparent` header; anything not a valid one is `None` (and is replaced).
    pub fn parse(header: &str) -> Option<Self> {
        let header = header.trim();
        let mut parts = header.split('-');
        let (version, trace, parent, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        // Version 00 has exactly four fields; a later version may add more after these.
        let valid_version = version.len() == 2 && version != "ff" && is_lower_hex(version);
        if !valid_version || (version == "00" && parts.next().is_some()) {
            return None;
        }
        if trace.len() != 32 || parent.len() != 16 || flags.len() != 2 {
            return None;
        }
        if !(is_lower_hex(trace) && is_lower_hex(parent) && is_lower_hex(flags)) {
            return None;
        }
        let trace_id = u128::from_str_radix(trace, 16).ok().filter(|id| *id != 0)?;
        let parent_id = u64::from_str_radix(parent, 16).ok().filter(|id| *id != 0)?;
        let flags = u8::from_str_radix(flags, 16).ok()?;
        Some(TraceContext { trace_id, parent_id, flags })
    }

    /// The trace id as 32 hex digits: the request id.
    pub fn trace_id(&self) -> String {
        format!("{:032x}", self.trace_id)
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "00-{:032x}-{:016x}-{:02x}", self.trace_id, self.parent_id, self.flags)
    }
}

fn is_lower_hex(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
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
        fn new_contexts_are_always_valid(trace in any::<u128>(), parent in any::<u64>()) {
            let context = TraceContext::new(trace, parent);
            prop_assert_eq!(TraceContext::parse(&context.to_string()), Some(context));
        }
    }
}
