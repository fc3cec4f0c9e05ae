//! What the docs state about the code, checked against the code: a version number or a
//! command in the docs that the code no longer bears out fails here, not in a user's hands.

use std::path::Path;

/// The text of a file of the repository.
fn doc(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

#[cfg(feature = "sqlite")]
#[test]
fn storage_doc_states_sqlites_schema_version() {
    let version = protean::store::SQLITE_SCHEMA_VERSION.0;
    let text = doc("docs/storage.md");
    assert!(
        text.contains(&format!("SQLite is at schema version {version}:")),
        "docs/storage.md: SQLite's schema version is {version}"
    );
}

#[cfg(feature = "postgres")]
#[test]
fn storage_doc_states_postgresqls_schema_version_and_its_steps() {
    let version = protean::store::POSTGRES_SCHEMA_VERSION.0;
    let text = doc("docs/storage.md");
    assert!(
        text.contains(&format!("PostgreSQL is at schema version {version}.")),
        "docs/storage.md: PostgreSQL's schema version is {version}"
    );
    assert!(text.contains(&format!("`v{version}.sql`")), "docs/storage.md lists the steps up to v{version}.sql");
}

/// Every `cargo run --example NAME` in the README and the guide names an example of the
/// examples' package, with the features it requires.
#[test]
fn documented_example_commands_name_examples_with_their_features() {
    let manifest = doc("examples/Cargo.toml");
    for file in ["README.md", "docs/guide.md", "docs/delivery.md", "docs/projections.md"] {
        let text = doc(file);
        for line in text.lines() {
            let Some(rest) = line.split("cargo run --example ").nth(1) else { continue };
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            let block = manifest
                .split("[[example]]")
                .find(|block| block.contains(&format!("name = \"{name}\"")))
                .unwrap_or_else(|| {
                    panic!("{file}: `cargo run --example {name}`: no such example in examples/Cargo.toml")
                });
            if block.contains("\"http\"") {
                assert!(
                    rest.contains("--features http"),
                    "{file}: `cargo run --example {name}` needs `--features http`: {line}"
                );
            }
        }
    }
}
