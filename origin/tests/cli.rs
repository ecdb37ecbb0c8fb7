//! The binary's front door: `--help` documents every setting docs/configuration.md lists, and a
//! bad configuration stops start-up with a message naming each bad value.

use std::process::Command;

fn origin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_latch-origin"))
}

#[test]
fn help_and_the_docs_list_the_same_settings() {
    let help = origin().arg("--help").output().unwrap();
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).unwrap();
    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/configuration.md"))
            .unwrap();
    let origin_docs = docs.split("## Edge").next().unwrap();
    let env_names = |text: &str| -> std::collections::BTreeSet<String> {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|word| word.starts_with("LATCH_") || *word == "DATABASE_URL")
            .filter(|word| !word.ends_with('_'))
            .map(str::to_owned)
            .collect()
    };
    let mut documented = env_names(origin_docs);
    // Read by the logger, not a flag.
    documented.remove("LATCH_LOG");
    let in_help = env_names(&help);
    assert_eq!(documented, in_help, "docs/configuration.md and --help disagree");
    for flag in
        ["--database-url", "--refresh-token-lifetime-secs", "--key-rotation-secs", "--config"]
    {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
}

#[test]
fn a_bad_configuration_names_every_bad_value_and_exits_2() {
    let output = origin()
        .env_clear()
        .env("DATABASE_URL", "mysql://nope")
        .env("LATCH_REFRESH_TOKEN_LIFETIME_SECS", "9")
        .env("LATCH_COOKIE_SAME_SITE", "sideways")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    for name in ["database_url", "refresh_token_lifetime_secs", "cookie_same_site"] {
        assert!(stderr.contains(name), "{name} missing from: {stderr}");
    }
    let output = origin().env_clear().env("LATCH_ANTI_CSRF", "maybe").output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(2),
        "a value of the wrong type is refused, not defaulted"
    );
}
