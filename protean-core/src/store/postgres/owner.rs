//! The owner's advisory lock: each store holds a session-level advisory lock on a key
//! derived from its owner identity, on a connection of its own, for as long as it lives;
//! a claim is respected while its owner holds that lock. See docs/storage.md,
//! "Guarantees" (claims are owned).

use sqlx::postgres::PgConnection;
use sqlx::Connection;
use uuid::Uuid;

use super::backend;
use crate::store::StoreError;

/// The advisory-lock keys every live store holds (see [`PostgresStore::owner`]), as
/// `pg_advisory_lock(bigint)` takes them: `pg_locks` splits a key into its high and low
/// halves.
pub(super) const LIVE_OWNERS: &str = "SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks
    WHERE locktype = 'advisory' AND objsubid = 1 AND granted
    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";

/// The advisory-lock key of an owner identity: its first eight bytes.
pub(super) fn owner_key(owner: Uuid) -> i64 {
    let bytes = owner.as_bytes();
    i64::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7]])
}

/// Takes the advisory lock of a new owner identity on `liveness`, and returns the
/// identity: a random key is free unless another live store drew it, and is then drawn
/// again.
pub(super) async fn take_owner(liveness: &mut PgConnection) -> Result<Uuid, StoreError> {
    for _ in 0..8 {
        let owner = Uuid::new_v4();
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(owner_key(owner))
            .fetch_one(&mut *liveness)
            .await
            .map_err(backend)?;
        if locked {
            return Ok(owner);
        }
    }
    Err(StoreError::Unsupported("postgres: no free advisory-lock key for this store's owner identity".into()))
}

/// Releases the owner's lock held on `connection`, and closes it. Released by a
/// statement, so that the claims are free when this returns: a closed connection's
/// backend ends (and drops its locks) only some time later.
pub(super) async fn release_owner(mut connection: PgConnection) -> Result<(), StoreError> {
    let unlocked = sqlx::query("SELECT pg_advisory_unlock_all()").execute(&mut connection).await;
    connection.close().await.map_err(backend)?;
    unlocked.map(drop).map_err(backend)
}
