//! Claim rules: what a route requires of the access token's payload (the app's `jwt_payload`),
//! checked at the edge before the app sees the request, and refused as the current SuperTokens
//! SDKs understand it: 403 `{"message":"invalid claim","claimValidationErrors":[…]}`, which fires
//! their `API_INVALID_CLAIM` event.
//!
//! A rule list is `PATH: REQUIREMENT, REQUIREMENT; PATH: …` where a path is `/exact` or
//! `/prefix/*` (the most specific one matching applies, as for the route rules) and a
//! requirement is `CLAIM = VALUE` (the claim equals the value) or `CLAIM includes VALUE` (the
//! claim is an array holding the value). `CLAIM` is a key of the payload, or a dotted path into
//! it (`st-ev.v`); `VALUE` is `true`, `false`, `null`, a number, a JSON string or a bare word
//! (`admin`, read as a string).

use serde::Serialize;
use serde_json::{json, Value};

use crate::engine::PathRule;

/// One requirement on the payload.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimRequirement {
    /// The claim's path in the payload, one key per segment.
    pub claim: Vec<String>,
    pub test: ClaimTest,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ClaimTest {
    Equals(Value),
    Includes(Value),
}

/// What the SDK reads of a failed requirement: the claim's id (its top-level key, as
/// supertokens-node names its claims) and why, with the expected and the actual value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClaimValidationError {
    pub id: String,
    pub reason: Value,
}

/// The routes' claim rules.
pub type ClaimRules = Vec<PathRule<Vec<ClaimRequirement>>>;

impl ClaimRequirement {
    /// Checks the requirement against `payload` (a token without one has no claims).
    pub fn check(&self, payload: Option<&Value>) -> Result<(), ClaimValidationError> {
        let actual = payload
            .and_then(|payload| self.claim.iter().try_fold(payload, |value, key| value.get(key)));
        let passed = match (&self.test, actual) {
            (ClaimTest::Equals(expected), Some(actual)) => actual == expected,
            (ClaimTest::Includes(expected), Some(Value::Array(items))) => items.contains(expected),
            (_, _) => false,
        };
        if passed {
            return Ok(());
        }
        let actual = actual.cloned().unwrap_or(Value::Null);
        let reason = match &self.test {
            ClaimTest::Equals(expected) => {
                json!({"message": "wrong value", "expectedValue": expected, "actualValue": actual})
            }
            ClaimTest::Includes(expected) => json!({
                "message": "wrong value", "expectedToInclude": expected, "actualValue": actual,
            }),
        };
        Err(ClaimValidationError { id: self.claim[0].clone(), reason })
    }
}

/// Every requirement `payload` fails; empty when it meets them all.
pub fn failures(
    requirements: &[ClaimRequirement],
    payload: Option<&Value>,
) -> Vec<ClaimValidationError> {
    requirements.iter().filter_map(|requirement| requirement.check(payload).err()).collect()
}

/// The 403 body the current SDKs read.
pub fn invalid_claim_body(failures: &[ClaimValidationError]) -> String {
    json!({"message": "invalid claim", "claimValidationErrors": failures}).to_string()
}

/// Parses a rule list (see the module's documentation); the error names the part at fault.
pub fn parse_rules(text: &str) -> Result<ClaimRules, String> {
    let mut rules = Vec::new();
    for rule in text.split(';').map(str::trim).filter(|rule| !rule.is_empty()) {
        let (pattern, requirements) = rule
            .split_once(':')
            .ok_or_else(|| format!("{rule:?} must be PATH: REQUIREMENT[, REQUIREMENT]"))?;
        let requirements = requirements
            .split(',')
            .map(str::trim)
            .filter(|requirement| !requirement.is_empty())
            .map(parse_requirement)
            .collect::<Result<Vec<_>, _>>()?;
        if requirements.is_empty() {
            return Err(format!("{rule:?} names no requirement"));
        }
        let pattern = pattern.trim();
        let rule = PathRule::new(pattern, requirements).ok_or_else(|| {
            format!("{pattern:?} must be /exact/path or /prefix/* (one trailing /*)")
        })?;
        rules.push(rule);
    }
    Ok(rules)
}

fn parse_requirement(text: &str) -> Result<ClaimRequirement, String> {
    let (claim, test, value) = if let Some((claim, value)) = text.split_once(" includes ") {
        (claim, ClaimTest::Includes as fn(Value) -> ClaimTest, value)
    } else if let Some((claim, value)) = text.split_once('=') {
        (claim, ClaimTest::Equals as fn(Value) -> ClaimTest, value)
    } else {
        return Err(format!("{text:?} must be CLAIM = VALUE or CLAIM includes VALUE"));
    };
    let claim: Vec<String> = claim.trim().split('.').map(str::to_owned).collect();
    let word = |s: &str| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_:".contains(&b))
    };
    if !claim.iter().all(|segment| word(segment)) {
        return Err(format!(
            "{text:?}: a claim is a payload key or a dotted path of keys (letters, digits, - _ :)"
        ));
    }
    let value = value.trim();
    let value = match serde_json::from_str::<Value>(value) {
        Ok(value @ (Value::Bool(_) | Value::Null | Value::Number(_) | Value::String(_))) => value,
        _ if word(value) => Value::String(value.to_owned()),
        _ => {
            return Err(format!(
                "{text:?}: the value must be true, false, null, a number, a \"string\" or a word \
                 (without , or ;)"
            ))
        }
    };
    Ok(ClaimRequirement { claim, test: test(value) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::most_specific;
    use proptest::prelude::*;

    #[test]
    fn rules_parse_into_requirements_per_path() {
        let rules = parse_rules(
            "/admin/*: role includes admin; /account/*: st-ev.v = true, plan = \"pro\"",
        )
        .unwrap();
        let admin = most_specific(&rules, "/admin/users").unwrap();
        assert_eq!(admin[0].claim, ["role"]);
        assert_eq!(admin[0].test, ClaimTest::Includes(json!("admin")));
        let account = most_specific(&rules, "/account").unwrap();
        assert_eq!(account[0].claim, ["st-ev", "v"]);
        assert_eq!(account[0].test, ClaimTest::Equals(json!(true)));
        assert_eq!(account[1].test, ClaimTest::Equals(json!("pro")));
        assert!(most_specific(&rules, "/other").is_none());
        assert_eq!(parse_rules("  ").unwrap(), Vec::new());
    }

    #[test]
    fn bad_rules_are_refused_naming_the_part() {
        for (text, names) in [
            ("/admin/* role includes admin", "PATH: REQUIREMENT"),
            ("/admin/*:", "names no requirement"),
            ("admin: role = x", "/exact/path"),
            ("/a: role ~ admin", "CLAIM = VALUE"),
            ("/a: ro le = x", "dotted path"),
            ("/a: role = [1]", "the value must be"),
            ("/a: role = two words", "the value must be"),
        ] {
            let err = parse_rules(text).unwrap_err();
            assert!(err.contains(names), "{text}: {err}");
        }
    }

    #[test]
    fn a_payload_meets_or_fails_each_requirement_with_what_was_expected() {
        let rules = parse_rules("/a: role includes admin, st-ev.v = true, level = 3").unwrap();
        let requirements = &rules[0].value;
        let good = json!({"role": ["member", "admin"], "st-ev": {"v": true}, "level": 3});
        assert!(failures(requirements, Some(&good)).is_empty());
        let bad = json!({"role": "admin", "st-ev": {"v": false}});
        let failed = failures(requirements, Some(&bad));
        assert_eq!(
            failed.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(),
            ["role", "st-ev", "level"]
        );
        assert_eq!(failed[0].reason["expectedToInclude"], "admin");
        assert_eq!(
            failed[1].reason,
            json!({"message": "wrong value", "expectedValue": true, "actualValue": false})
        );
        assert_eq!(failed[2].reason["actualValue"], Value::Null);
        assert_eq!(failures(requirements, None).len(), 3, "no payload, no claims");
        let body: Value = serde_json::from_str(&invalid_claim_body(&failed)).unwrap();
        assert_eq!(body["message"], "invalid claim");
        assert_eq!(body["claimValidationErrors"][1]["id"], "st-ev");
    }

    proptest! {
        #[test]
        fn any_rule_text_parses_or_is_refused_without_panicking(text in "\\PC{0,120}") {
            let _ = parse_rules(&text);
        }

        #[test]
        fn a_payload_holding_the_value_always_passes(key in "[a-z][a-z0-9_-]{0,8}", word in "[a-z][a-z0-9]{0,8}") {
            let rules = parse_rules(&format!("/x/*: {key} includes {word}, {key}2 = {word}")).unwrap();
            let payload = json!({ key.clone(): [word.clone()], format!("{key}2"): word });
            prop_assert!(failures(&rules[0].value, Some(&payload)).is_empty());
        }
    }
}
