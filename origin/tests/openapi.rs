//! The OpenAPI document cannot drift: it is generated from the handlers and the API types, the
//! router serves exactly its operations, and the committed copy must equal it. After a change,
//! regenerate the copy with `LATCH_UPDATE_OPENAPI=1 cargo test -p latch-origin --test openapi`.

use latch_origin::routes::openapi::document;
use latch_shared::api::paths;
use serde_json::Value;

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");

#[test]
fn the_committed_document_is_the_generated_one() {
    let generated = document().to_pretty_json().unwrap() + "\n";
    if std::env::var_os("LATCH_UPDATE_OPENAPI").is_some() {
        std::fs::write(COMMITTED, &generated).unwrap();
    }
    let committed: Value = serde_json::from_str(&std::fs::read_to_string(COMMITTED).unwrap())
        .expect("origin/openapi.json is JSON");
    let generated: Value = serde_json::from_str(&generated).unwrap();
    assert!(
        committed == generated,
        "origin/openapi.json differs from the handlers and types: regenerate it with \
         `LATCH_UPDATE_OPENAPI=1 cargo test -p latch-origin --test openapi` and review the diff"
    );
}

#[test]
fn every_path_of_the_api_is_documented_with_its_bodies_and_errors() {
    let document = serde_json::to_value(document()).unwrap();
    let documented = document["paths"].as_object().unwrap();
    for path in [
        paths::SESSIONS,
        paths::REFRESH,
        paths::VERIFY,
        paths::SESSION,
        paths::SESSION_INFO,
        paths::USER_SESSIONS,
        paths::JWKS,
        paths::SETTINGS,
        paths::ROTATE_KEYS,
        paths::OPENAPI,
        paths::HEALTH,
        paths::READY,
        paths::METRICS,
    ] {
        assert!(documented.contains_key(path), "{path} is not documented");
    }
    // Every operation taking a JSON body documents the 400 and 413 it can get.
    for (path, item) in documented {
        for (method, operation) in item.as_object().unwrap() {
            if operation.get("requestBody").is_some() {
                for status in ["400", "413"] {
                    assert!(
                        operation["responses"].get(status).is_some(),
                        "{method} {path}: {status}"
                    );
                }
            }
        }
    }
    // Every reference resolves.
    let text = document.to_string();
    for reference in text.split("\"$ref\":\"").skip(1) {
        let target = reference.split('"').next().unwrap();
        let pointer = target.trim_start_matches('#');
        assert!(document.pointer(pointer).is_some(), "dangling reference {target}");
    }
    // The API types are the schemas: a numeric user id is part of the contract.
    let user_id = &document["components"]["schemas"]["UserId"];
    assert_eq!(user_id["oneOf"][1]["type"], "integer", "{user_id}");
}

#[test]
fn the_served_document_lists_session_errors_under_the_configured_status() {
    let document = serde_json::to_value(latch_origin::routes::openapi::document_for(419)).unwrap();
    let responses = &document["paths"][paths::REFRESH]["post"]["responses"];
    assert_eq!(responses["419"]["$ref"], "#/components/responses/SessionError");
    assert!(responses.get("440").is_none(), "{responses}");
}
