//! [`connect`]: the store a URL names.

use std::sync::Arc;

use super::{MemoryStore, SchemaVersion, Store, StoreError, UrlError};

/// Opens the store a URL names. The scheme (what comes before the first `:`) chooses
/// the store, whatever its case (`Sqlite:app.db` is `sqlite:app.db`):
///
/// * `memory:` (or `memory`, or `memory://`) — a new [`MemoryStore`]; never a file;
/// * `sqlite:PATH` or `sqlite://PATH` — a [`SqliteStore`](crate::store::SqliteStore) in
///   the file at `PATH`, created when missing (`sqlite:///var/app.db` is the absolute
///   path `/var/app.db`; `sqlite::memory:` a private SQLite database in memory; an
///   SQLite URI after the scheme, `sqlite:file:app.db?mode=ro`, is taken as one);
/// * a bare path, with no scheme (`app.db`, `data/app.db`, `/var/app.db`,
///   `C:\data\app.db`: a single letter before the `:` is a drive, not a scheme) — the
///   same as `sqlite:PATH`;
/// * `postgres://…` or `postgresql://…` — a [`PostgresStore`](crate::store::PostgresStore),
///   with the defaults of [`PostgresOptions`](crate::store::PostgresOptions).
///
/// Any other scheme (`mysql://…`, `sqlite3:app.db`) is [`UrlError::UnknownScheme`], whose
/// message lists the schemes this build opens; a scheme of a store this build was
/// compiled without (`postgres://…` without the `postgres` feature) is
/// [`UrlError::NotCompiled`], naming the feature to enable. Neither creates a file. The
/// schema is created or upgraded on the way.
///
/// ```
/// # extern crate protean_core as protean;
/// # async fn demo() -> Result<(), protean::store::StoreError> {
/// use protean::store::{connect, StoreError, UrlError};
/// let store = connect("memory:").await?;
/// let refused = connect("mysql://db.internal/shop").await.err();
/// assert!(matches!(refused, Some(StoreError::Url(UrlError::UnknownScheme { .. }))));
/// # let _ = store; Ok(()) }
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(demo()).unwrap();
/// ```
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    match Target::of(url)? {
        Target::Memory => Ok(Arc::new(MemoryStore::new())),
        Target::Sqlite(path) => sqlite(path),
        Target::Postgres => postgres(url).await,
    }
}

/// Where the schema of the store a URL names stands: the version it is at and the one
/// this build works with. See [`schema_status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaStatus {
    /// The store: `"memory"`, `"sqlite"` or `"postgres"`.
    pub backend: &'static str,
    /// The version the database is at (0: no protean schema yet, or no file).
    pub found: SchemaVersion,
    /// The version this build works with, and [`connect`] migrates to.
    pub supported: SchemaVersion,
}

impl SchemaStatus {
    /// The database is at the version this build works with.
    pub fn is_current(&self) -> bool {
        self.found == self.supported
    }

    /// The database is older than this build: migrating brings it up.
    pub fn is_behind(&self) -> bool {
        self.found < self.supported
    }

    /// The database is newer than this build (a later release migrated it): this build
    /// refuses it, and migrating cannot help.
    pub fn is_ahead(&self) -> bool {
        self.found > self.supported
    }
}

/// Reads the schema version of the store a URL names (as [`connect`] reads URLs),
/// without opening a store: nothing is migrated, created or refused. A SQLite file is
/// opened read-only (a missing file is at version 0, and stays missing); PostgreSQL is
/// asked on one connection of its own; memory has no schema to fall behind, and is
/// always current. For deploy gates: `ops migrate --check` is this.
///
/// ```
/// # extern crate protean_core as protean;
/// # async fn demo() -> Result<(), protean::store::StoreError> {
/// use protean::store::schema_status;
/// assert!(schema_status("memory:").await?.is_current());
/// # Ok(()) }
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(demo()).unwrap();
/// ```
pub async fn schema_status(url: &str) -> Result<SchemaStatus, StoreError> {
    match Target::of(url)? {
        Target::Memory => Ok(SchemaStatus { backend: "memory", found: SchemaVersion(0), supported: SchemaVersion(0) }),
        Target::Sqlite(path) => sqlite_status(path),
        Target::Postgres => postgres_status(url).await,
    }
}

#[cfg(feature = "sqlite")]
fn sqlite_status(path: &str) -> Result<SchemaStatus, StoreError> {
    use super::SQLITE_SCHEMA_VERSION;
    if path == ":memory:" {
        // A new private database, migrated when opened: always current.
        return Ok(SchemaStatus { backend: "sqlite", found: SQLITE_SCHEMA_VERSION, supported: SQLITE_SCHEMA_VERSION });
    }
    let found = super::sqlite::schema::file_version(path)?;
    Ok(SchemaStatus { backend: "sqlite", found, supported: SQLITE_SCHEMA_VERSION })
}

#[cfg(not(feature = "sqlite"))]
fn sqlite_status(_path: &str) -> Result<SchemaStatus, StoreError> {
    Err(UrlError::NotCompiled { scheme: "sqlite".into(), store: "SQLite", feature: "sqlite" }.into())
}

#[cfg(feature = "postgres")]
async fn postgres_status(url: &str) -> Result<SchemaStatus, StoreError> {
    use super::POSTGRES_SCHEMA_VERSION;
    let found = super::postgres::schema::database_version(url).await?;
    Ok(SchemaStatus { backend: "postgres", found, supported: POSTGRES_SCHEMA_VERSION })
}

#[cfg(not(feature = "postgres"))]
async fn postgres_status(url: &str) -> Result<SchemaStatus, StoreError> {
    let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme).to_owned();
    Err(UrlError::NotCompiled { scheme, store: "PostgreSQL", feature: "postgres" }.into())
}

/// The store a URL names.
#[derive(Debug, PartialEq, Eq)]
enum Target<'a> {
    Memory,
    /// The path (or SQLite URI) of the file; `:memory:` for a database in memory.
    Sqlite(&'a str),
    Postgres,
}

impl<'a> Target<'a> {
    fn of(url: &'a str) -> Result<Self, UrlError> {
        let Some((scheme, rest)) = scheme(url) else {
            if url.eq_ignore_ascii_case("memory") {
                return Ok(Target::Memory);
            }
            return sqlite_path(url, url);
        };
        match scheme.to_ascii_lowercase().as_str() {
            "memory" => match rest {
                "" | "//" => Ok(Target::Memory),
                rest => Err(UrlError::MemoryWithPath { rest: rest.to_owned() }),
            },
            "sqlite" => sqlite_path(url, rest.strip_prefix("//").unwrap_or(rest)),
            "postgres" | "postgresql" => Ok(Target::Postgres),
            _ => Err(UrlError::UnknownScheme { scheme: scheme.to_owned() }),
        }
    }
}

/// The scheme of `url` and what follows its `:`, when it has one: a letter, then
/// letters, digits, `+`, `-` or `.` (RFC 3986), two characters at least (one letter is a
/// drive, as in `C:\app.db`).
fn scheme(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once(':')?;
    let mut chars = scheme.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let valid = starts_with_letter && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    (valid && scheme.len() >= 2).then_some((scheme, rest))
}

/// A SQLite file at `path`; an empty one names none.
fn sqlite_path<'a>(url: &str, path: &'a str) -> Result<Target<'a>, UrlError> {
    if path.is_empty() {
        return Err(UrlError::NoPath { url: url.to_owned() });
    }
    Ok(Target::Sqlite(path))
}

#[cfg(feature = "sqlite")]
fn sqlite(path: &str) -> Result<Arc<dyn Store>, StoreError> {
    use super::SqliteStore;
    if path == ":memory:" {
        return Ok(Arc::new(SqliteStore::in_memory()?));
    }
    Ok(Arc::new(SqliteStore::open(path)?))
}

#[cfg(not(feature = "sqlite"))]
fn sqlite(_path: &str) -> Result<Arc<dyn Store>, StoreError> {
    Err(UrlError::NotCompiled { scheme: "sqlite".into(), store: "SQLite", feature: "sqlite" }.into())
}

#[cfg(feature = "postgres")]
async fn postgres(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    Ok(Arc::new(super::PostgresStore::connect(url).await?))
}

#[cfg(not(feature = "postgres"))]
async fn postgres(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme).to_owned();
    Err(UrlError::NotCompiled { scheme, store: "PostgreSQL", feature: "postgres" }.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_are_read_whatever_their_case() {
        assert_eq!(Target::of("memory:"), Ok(Target::Memory));
        assert_eq!(Target::of("MEMORY"), Ok(Target::Memory));
        assert_eq!(Target::of("Memory://"), Ok(Target::Memory));
        assert_eq!(Target::of("Sqlite:a.db"), Ok(Target::Sqlite("a.db")));
        assert_eq!(Target::of("SQLITE:///var/a.db"), Ok(Target::Sqlite("/var/a.db")));
        assert_eq!(Target::of("sqlite::memory:"), Ok(Target::Sqlite(":memory:")));
        assert_eq!(Target::of("PostgreSQL://h/db"), Ok(Target::Postgres));
    }

    #[test]
    fn a_path_without_a_scheme_is_a_sqlite_file() {
        for path in ["app.db", "data/app.db", "/var/app.db", "./odd:name.db", r"C:\data\app.db", "1x:app.db"] {
            assert_eq!(Target::of(path), Ok(Target::Sqlite(path)), "{path}");
        }
    }

    #[test]
    fn unknown_schemes_and_empty_paths_are_refused() {
        assert_eq!(Target::of("mysql://x"), Err(UrlError::UnknownScheme { scheme: "mysql".into() }));
        assert_eq!(Target::of("weird:name.db"), Err(UrlError::UnknownScheme { scheme: "weird".into() }));
        assert_eq!(Target::of("sqlite:"), Err(UrlError::NoPath { url: "sqlite:".into() }));
        assert_eq!(Target::of("sqlite://"), Err(UrlError::NoPath { url: "sqlite://".into() }));
        assert_eq!(Target::of(""), Err(UrlError::NoPath { url: String::new() }));
        assert_eq!(Target::of("memory:x"), Err(UrlError::MemoryWithPath { rest: "x".into() }));
    }
}
