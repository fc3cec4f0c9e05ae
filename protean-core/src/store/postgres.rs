//! The shared store: PostgreSQL, through sqlx, for many processes on many machines.
//!
//! Writes check versions under a row lock (`SELECT … FOR UPDATE`), so two processes
//! changing one aggregate never both win: the second gets a [`VersionConflict`] and its
//! handler runs again. Relays claim undelivered events one claim at a time (a
//! transaction-level advisory lock, with `FOR UPDATE SKIP LOCKED` on the rows), so each
//! stream is handed out in order; the handlers then run in parallel, and the handled
//! messages recorded in their transactions make each effect happen once.
//!
//! Claims are owned: each store has an owner identity, made when it connects, and holds a
//! session-level advisory lock on a key derived from it, on a connection of its own, for
//! as long as it lives. A claim records its owner, and is respected while its lease runs
//! and its owner still holds that lock; when the owner's process dies, its connection
//! closes, the server releases the lock, and the claim is free at once.

use std::borrow::Cow;
use std::time::Duration;

use time::OffsetDateTime;

use std::sync::{Arc, Mutex};

use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection, Row};
use uuid::Uuid;

use super::sql::{from_micros, micros, stored_count, to_i64};
use super::{Batch, BoxFuture, Commit, Committed, Record, SchemaVersion, Snapshot, Store, StoreError, VersionConflict};
use crate::store::envelope::{Envelope, StreamId};

/// The schema version this code writes; [`Store::migrate`] brings older databases up to it.
pub const SCHEMA_VERSION: i32 = 3;

/// Serializes migrations and claims across processes (an arbitrary, fixed key).
const MIGRATION_LOCK: i64 = 0x7072_6f74_6561_6e01;
const CLAIM_LOCK: i64 = 0x7072_6f74_6561_6e02;

const SCHEMA_V1: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS protean_schema (version INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS protean_aggregates (
        aggregate     TEXT   NOT NULL,
        id            TEXT   NOT NULL,
        version       BIGINT NOT NULL,
        state         TEXT,
        last_sequence BIGINT NOT NULL,
        PRIMARY KEY (aggregate, id))",
    "CREATE TABLE IF NOT EXISTS protean_events (
        position       BIGSERIAL,
        id             UUID    NOT NULL,
        aggregate      TEXT    NOT NULL,
        stream_id      TEXT    NOT NULL,
        sequence       BIGINT  NOT NULL,
        type_name      TEXT    NOT NULL,
        version        INTEGER NOT NULL,
        payload        TEXT    NOT NULL,
        recorded_at    BIGINT  NOT NULL,
        correlation_id UUID    NOT NULL,
        causation_id   UUID    NOT NULL,
        delivered      BOOLEAN NOT NULL DEFAULT FALSE,
        claimed_until  BIGINT,
        PRIMARY KEY (aggregate, stream_id, sequence))",
    // Few indexes, as every one is written on every insert: the stream's key, and the ids
    // of the events not delivered yet (marking finds them there; delivered ones leave it).
    "CREATE INDEX IF NOT EXISTS protean_events_undelivered ON protean_events (id) WHERE NOT delivered",
    "CREATE TABLE IF NOT EXISTS protean_handled (
        handler    TEXT NOT NULL,
        message_id UUID NOT NULL,
        PRIMARY KEY (handler, message_id))",
    "CREATE TABLE IF NOT EXISTS protean_snapshots (
        aggregate TEXT   NOT NULL,
        id        TEXT   NOT NULL,
        sequence  BIGINT NOT NULL,
        state     TEXT   NOT NULL,
        PRIMARY KEY (aggregate, id, sequence))",
    "CREATE TABLE IF NOT EXISTS protean_read_models (
        name TEXT NOT NULL,
        key  TEXT NOT NULL,
        json TEXT NOT NULL,
        PRIMARY KEY (name, key))",
];

/// Version 2: an event-sourced aggregate's version counts its events (see
/// [`Commit::advance`]). The commit function takes each commit's advance, so the old
/// one (without it) goes; the records of event-sourced aggregates (state `null`) written
/// by older code, which counted commits, move to their last sequence.
const SCHEMA_V2: &[&str] = &[
    "DROP FUNCTION IF EXISTS protean_commit_batch(text[], text[], bigint[], text[], integer[], uuid[], text[],
        integer[], text[], bigint[], uuid[], uuid[], text, uuid, uuid[], text[])",
    "UPDATE protean_aggregates SET version = last_sequence WHERE state = 'null' AND version < last_sequence",
];

/// Version 3: a claim records its owner, the store that made it.
const SCHEMA_V3: &[&str] = &["ALTER TABLE protean_events ADD COLUMN IF NOT EXISTS claimed_by UUID"];

/// The advisory-lock keys every live store holds (see [`PostgresStore::owner`]), as
/// `pg_advisory_lock(bigint)` takes them: `pg_locks` splits a key into its high and low
/// halves.
const LIVE_OWNERS: &str = "SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks
    WHERE locktype = 'advisory' AND objsubid = 1 AND granted
    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";

/// The advisory-lock key of an owner identity: its first eight bytes.
fn owner_key(owner: Uuid) -> i64 {
    let bytes = owner.as_bytes();
    i64::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7]])
}

/// A unit of work's whole batch in one statement, so one round trip: the handled
/// message, each aggregate (version checked under a row lock), its events, and the
/// events to mark delivered. A conflict or a repeated message raises, and the
/// statement, being one, leaves nothing behind. Created (or replaced) by every
/// migration, after the versioned steps.
const COMMIT_FUNCTION: &str = "CREATE OR REPLACE FUNCTION protean_commit_batch(
        p_aggregates text[], p_ids text[], p_expected bigint[], p_advance bigint[], p_states text[],
        p_event_counts integer[], p_event_ids uuid[], p_type_names text[], p_versions integer[], p_payloads text[],
        p_recorded bigint[], p_correlations uuid[], p_causations uuid[], p_handler text, p_message_id uuid,
        p_delivered uuid[], p_snapshots text[])
    RETURNS bigint[] LANGUAGE plpgsql AS $$
    DECLARE
        i integer;
        k integer := 1;
        n integer;
        actual bigint;
        stored bigint;
        last bigint;
        present boolean;
        found_row boolean;
        firsts bigint[] := '{}';
        versions_out bigint[] := '{}';
    BEGIN
        IF p_handler IS NOT NULL THEN
            INSERT INTO protean_handled (handler, message_id) VALUES (p_handler, p_message_id) ON CONFLICT DO NOTHING;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'already handled' USING ERRCODE = 'PT208';
            END IF;
        END IF;
        FOR i IN 1 .. coalesce(array_length(p_aggregates, 1), 0) LOOP
            SELECT a.version, a.state IS NOT NULL, a.last_sequence INTO stored, present, last
                FROM protean_aggregates a WHERE a.aggregate = p_aggregates[i] AND a.id = p_ids[i] FOR UPDATE;
            found_row := FOUND;
            IF NOT found_row THEN
                stored := 0;
                actual := 0;
                last := 0;
            ELSIF present THEN
                actual := stored;
            ELSE
                actual := 0;
            END IF;
            IF actual <> p_expected[i] THEN
                RAISE EXCEPTION 'version conflict' USING ERRCODE = 'PT409', DETAIL = actual::text;
            END IF;
            n := p_event_counts[i];
            IF found_row THEN
                -- Versions keep rising across a removal: a stale writer of the removed one is refused.
                UPDATE protean_aggregates SET version = stored + p_advance[i], state = p_states[i], last_sequence = last + n
                    WHERE aggregate = p_aggregates[i] AND id = p_ids[i];
            ELSE
                INSERT INTO protean_aggregates (aggregate, id, version, state, last_sequence)
                    VALUES (p_aggregates[i], p_ids[i], p_expected[i] + p_advance[i], p_states[i], last + n)
                    ON CONFLICT (aggregate, id) DO NOTHING;
                IF NOT FOUND THEN
                    RAISE EXCEPTION 'version conflict' USING ERRCODE = 'PT409', DETAIL = '1';
                END IF;
            END IF;
            firsts := firsts || last;
            versions_out := versions_out || (stored + p_advance[i]);
            INSERT INTO protean_events (id, aggregate, stream_id, sequence, type_name, version, payload, recorded_at,
                    correlation_id, causation_id, delivered)
                SELECT p_event_ids[j], p_aggregates[i], p_ids[i], last + (j - k + 1), p_type_names[j], p_versions[j], p_payloads[j],
                    p_recorded[j], p_correlations[j], p_causations[j], p_event_ids[j] = ANY(p_delivered)
                FROM generate_series(k, k + n - 1) AS j;
            k := k + n;
            IF p_snapshots[i] IS NOT NULL THEN
                INSERT INTO protean_snapshots (aggregate, id, sequence, state)
                    VALUES (p_aggregates[i], p_ids[i], last + n, p_snapshots[i])
                    ON CONFLICT (aggregate, id, sequence) DO UPDATE SET state = excluded.state;
            END IF;
        END LOOP;
        UPDATE protean_events SET delivered = TRUE WHERE id = ANY(p_delivered) AND NOT delivered;
        RETURN firsts || versions_out;
    END
    $$";

/// The columns an [`Envelope`] is read from.
const EVENT_COLUMNS: &str =
    "id, aggregate, stream_id, sequence, type_name, version, payload, recorded_at, correlation_id, causation_id";

/// A [`Store`] in PostgreSQL, shared by every process that connects to it.
///
/// Each store has an owner identity and, besides its pool, one connection of its own
/// that holds a session-level advisory lock on the owner's key for the store's lifetime
/// (until the last clone is dropped). Claims of undelivered events record their owner;
/// a claim is respected while its lease runs and its owner holds that lock, so a live
/// process's claims are kept, and a dead process's (its connection closed, the server
/// released its lock) are taken over at once. Should that connection break while the
/// process lives, its claims are free to others: events in flight may then be delivered
/// twice, the handled records keeping each handler's effect single.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    owner: Uuid,
    /// The connection holding the owner's advisory lock; never used after connecting,
    /// only kept open.
    _liveness: Arc<Mutex<PgConnection>>,
}

fn backend(e: sqlx::Error) -> StoreError {
    StoreError::backend("postgres", e)
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`) with a pool of
    /// up to 16 connections, and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, 16).await
    }

    /// [`connect`](Self::connect) with the pool size chosen.
    pub async fn connect_with(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new().max_connections(max_connections).connect(url).await.map_err(backend)?;
        let mut liveness = PgConnection::connect(url).await.map_err(backend)?;
        // A random key is free unless another live store drew it: then draw again.
        let mut owner = Uuid::new_v4();
        for _ in 0..8 {
            let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(owner_key(owner))
                .fetch_one(&mut liveness)
                .await
                .map_err(backend)?;
            if locked {
                let store = PostgresStore { pool, owner, _liveness: Arc::new(Mutex::new(liveness)) };
                store.migrate_now().await?;
                return Ok(store);
            }
            owner = Uuid::new_v4();
        }
        Err(StoreError::Unsupported("postgres: no free advisory-lock key for this store's owner identity".into()))
    }

    /// This store's owner identity: what its claims of undelivered events record, and
    /// whose advisory lock shows it is alive. Made when the store connects (its clones
    /// share it).
    pub fn owner(&self) -> Uuid {
        self.owner
    }

    /// The pool, for tests and tools that look at the tables.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn migrate_now(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        for statement in SCHEMA_V1 {
            sqlx::query(statement).execute(&mut *tx).await.map_err(backend)?;
        }
        let current: Option<i32> =
            sqlx::query_scalar("SELECT max(version) FROM protean_schema").fetch_one(&mut *tx).await.map_err(backend)?;
        let current = current.unwrap_or(0);
        if current > SCHEMA_VERSION {
            return Err(StoreError::Schema {
                backend: "postgres",
                found: SchemaVersion(u32::try_from(current).unwrap_or(u32::MAX)),
                supported: SchemaVersion(SCHEMA_VERSION as u32),
            });
        }
        if current < 2 {
            for statement in SCHEMA_V2 {
                sqlx::query(statement).execute(&mut *tx).await.map_err(backend)?;
            }
        }
        if current < 3 {
            for statement in SCHEMA_V3 {
                sqlx::query(statement).execute(&mut *tx).await.map_err(backend)?;
            }
        }
        sqlx::query(COMMIT_FUNCTION).execute(&mut *tx).await.map_err(backend)?;
        if current != SCHEMA_VERSION {
            sqlx::query("DELETE FROM protean_schema").execute(&mut *tx).await.map_err(backend)?;
            sqlx::query("INSERT INTO protean_schema (version) VALUES ($1)")
                .bind(SCHEMA_VERSION)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn commit_now(&self, batch: Batch) -> Result<Vec<Committed>, StoreError> {
        let Batch { commits, handled, delivered } = batch;
        let mut aggregates = Vec::with_capacity(commits.len());
        let mut ids = Vec::with_capacity(commits.len());
        let mut expected = Vec::with_capacity(commits.len());
        let mut advances = Vec::with_capacity(commits.len());
        let mut states = Vec::with_capacity(commits.len());
        let mut counts = Vec::with_capacity(commits.len());
        let mut snapshots = Vec::with_capacity(commits.len());
        let (mut event_ids, mut type_names, mut versions, mut payloads) = (vec![], vec![], vec![], vec![]);
        let (mut recorded, mut correlations, mut causations) = (vec![], vec![], vec![]);
        for commit in &commits {
            aggregates.push(&*commit.stream.aggregate);
            ids.push(&*commit.stream.id);
            expected.push(to_i64(commit.expected_version));
            advances.push(to_i64(commit.advance));
            states.push(commit.state.as_deref());
            counts.push(i32::try_from(commit.events.len()).unwrap_or(i32::MAX));
            snapshots.push(commit.snapshot.as_deref());
            for event in &commit.events {
                event_ids.push(event.id);
                type_names.push(&*event.type_name);
                versions.push(i32::try_from(event.version).unwrap_or(i32::MAX));
                payloads.push(&*event.payload);
                recorded.push(micros(event.recorded_at));
                correlations.push(event.correlation_id);
                causations.push(event.causation_id);
            }
        }
        let outcome: Result<Vec<i64>, sqlx::Error> = sqlx::query_scalar(
            "SELECT protean_commit_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        )
        .bind(&aggregates)
        .bind(&ids)
        .bind(&expected)
        .bind(&advances)
        .bind(&states)
        .bind(&counts)
        .bind(&event_ids)
        .bind(&type_names)
        .bind(&versions)
        .bind(&payloads)
        .bind(&recorded)
        .bind(&correlations)
        .bind(&causations)
        .bind(handled.as_ref().map(|h| &*h.handler))
        .bind(handled.as_ref().map(|h| h.message_id))
        .bind(&delivered)
        .bind(&snapshots)
        .fetch_one(&self.pool)
        .await;
        let firsts = match outcome {
            Ok(firsts) => firsts,
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("PT208") => {
                let (handler, message_id) =
                    handled.map_or((String::new(), Uuid::nil()), |h| (h.handler.to_string(), h.message_id));
                return Err(StoreError::AlreadyHandled { handler, message_id });
            }
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("PT409") => {
                let detail = e.try_downcast_ref::<sqlx::postgres::PgDatabaseError>().and_then(|e| e.detail());
                let actual = detail.and_then(|d| d.parse().ok()).unwrap_or(0);
                // The function stops at the first aggregate whose version moved: find it.
                let conflicting = self.first_conflict(&commits).await?;
                let commit = conflicting.unwrap_or(&commits[0]);
                return Err(VersionConflict {
                    stream: commit.stream.clone(),
                    expected: commit.expected_version,
                    actual,
                }
                .into());
            }
            Err(e) => return Err(backend(e)),
        };
        // The function returns each commit's sequence before its events, then its new version.
        let (firsts, versions) = firsts.split_at(firsts.len() / 2);
        let mut committed = Vec::with_capacity(commits.len());
        for ((commit, &first), &version) in commits.into_iter().zip(firsts).zip(versions) {
            let Commit { stream, mut events, .. } = commit;
            let first = stored_count(first, &stream, "sequence")?;
            for (offset, event) in (1u64..).zip(events.iter_mut()) {
                event.sequence = first + offset;
            }
            let version = stored_count(version, &stream, "version")?;
            committed.push(Committed { stream, version, events });
        }
        Ok(committed)
    }

    /// Which aggregate of a refused batch is no longer at its expected version.
    async fn first_conflict<'c>(&self, commits: &'c [Commit]) -> Result<Option<&'c Commit>, StoreError> {
        for commit in commits {
            if let Some(record) = self.load(&commit.stream).await? {
                if record.version != commit.expected_version {
                    return Ok(Some(commit));
                }
            } else if commit.expected_version != 0 {
                return Ok(Some(commit));
            }
        }
        Ok(None)
    }

    async fn claim_now(&self, limit: usize, lease: Duration) -> Result<Vec<Envelope>, StoreError> {
        let now = OffsetDateTime::now_utc();
        let (now_us, until_us) = (micros(now), micros(now + lease.min(super::MAX_LEASE)));
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // One claim at a time: a claim in flight must not let another relay see a
        // stream's later event before its earlier one is marked claimed.
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(CLAIM_LOCK).execute(&mut *tx).await.map_err(backend)?;
        // The owners alive now: a claim of anyone else is free, whatever its lease says.
        let live: Vec<i64> = sqlx::query_scalar(LIVE_OWNERS).fetch_all(&mut *tx).await.map_err(backend)?;
        let live: foldhash::HashSet<i64> = live.into_iter().collect();
        let mut claimed = Vec::new();
        let mut order = super::ClaimOrder::new();
        // Pages of undelivered events in order, until enough are claimable or none are left
        // (a long blocked stream must not hide the streams after it).
        let page = i64::try_from(limit.saturating_mul(4).max(64)).unwrap_or(i64::MAX);
        let mut after = i64::MIN;
        'pages: loop {
            let rows = sqlx::query(&format!(
                "SELECT {EVENT_COLUMNS}, claimed_until, position, claimed_by FROM protean_events
                 WHERE NOT delivered AND position > $1 ORDER BY position LIMIT $2 FOR UPDATE SKIP LOCKED"
            ))
            .bind(after)
            .bind(page)
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
            for row in &rows {
                if claimed.len() == limit {
                    break 'pages;
                }
                let stream: (String, String) = (row.try_get(1).map_err(backend)?, row.try_get(2).map_err(backend)?);
                let claimed_until: Option<i64> = row.try_get(10).map_err(backend)?;
                let claimed_by: Option<Uuid> = row.try_get(12).map_err(backend)?;
                // A claim from before owners were recorded (no owner) keeps its lease.
                let owner_alive = claimed_by.is_none_or(|owner| live.contains(&owner_key(owner)));
                let leased = claimed_until.is_some_and(|until| until > now_us) && owner_alive;
                if order.take(stream, leased) {
                    claimed.push(envelope(row)?);
                }
            }
            match rows.last() {
                Some(last) if i64::try_from(rows.len()).unwrap_or(0) == page => {
                    after = last.try_get(11).map_err(backend)?;
                }
                _ => break,
            }
        }
        let ids: Vec<Uuid> = claimed.iter().map(|e| e.id).collect();
        sqlx::query(
            "UPDATE protean_events SET claimed_until = $1, claimed_by = $2 WHERE id = ANY($3) AND NOT delivered",
        )
        .bind(until_us)
        .bind(self.owner)
        .bind(&ids)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(claimed)
    }
}

/// An envelope from a row selected with [`EVENT_COLUMNS`]; bad stored values are typed errors.
fn envelope(row: &PgRow) -> Result<Envelope, StoreError> {
    let aggregate: String = row.try_get(1).map_err(backend)?;
    let stream_id: String = row.try_get(2).map_err(backend)?;
    let stream = StreamId::new(aggregate, stream_id);
    let sequence: i64 = row.try_get(3).map_err(backend)?;
    let position = stored_count(sequence, &stream, "event sequence")?;
    let version: i32 = row.try_get(5).map_err(backend)?;
    let version = u32::try_from(version)
        .map_err(|_| StoreError::corrupt(&stream, position, format!("event version {version} is out of range")))?;
    let recorded: i64 = row.try_get(7).map_err(backend)?;
    let payload: String = row.try_get(6).map_err(backend)?;
    let type_name: String = row.try_get(4).map_err(backend)?;
    let recorded_at = from_micros(recorded, &stream, position)?;
    Ok(Envelope::stored_event(
        row.try_get(0).map_err(backend)?,
        Cow::Owned(type_name),
        version,
        stream,
        position,
        recorded_at,
        row.try_get(8).map_err(backend)?,
        row.try_get(9).map_err(backend)?,
        payload.into(),
    ))
}

impl Store for PostgresStore {
    fn migrate(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.migrate_now())
    }

    fn load<'a>(&'a self, stream: &'a StreamId) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        Box::pin(async move {
            let row = sqlx::query(
                "SELECT version, state FROM protean_aggregates WHERE aggregate = $1 AND id = $2 AND state IS NOT NULL",
            )
            .bind(&*stream.aggregate)
            .bind(&*stream.id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
            let Some(row) = row else { return Ok(None) };
            let version: i64 = row.try_get(0).map_err(backend)?;
            let state: String = row.try_get(1).map_err(backend)?;
            Ok(Some(Record { version: stored_count(version, stream, "version")?, state: state.into() }))
        })
    }

    fn commit(&self, batch: Batch) -> BoxFuture<'_, Result<Vec<Committed>, StoreError>> {
        Box::pin(self.commit_now(batch))
    }

    fn claim_undelivered(&self, limit: usize, lease: Duration) -> BoxFuture<'_, Result<Vec<Envelope>, StoreError>> {
        Box::pin(self.claim_now(limit, lease))
    }

    fn mark_delivered(&self, event_ids: Vec<Uuid>) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            sqlx::query("UPDATE protean_events SET delivered = TRUE WHERE id = ANY($1) AND NOT delivered")
                .bind(&event_ids)
                .execute(&self.pool)
                .await
                .map(|_| ())
                .map_err(backend)
        })
    }

    fn is_handled<'a>(&'a self, handler: &'a str, message_id: Uuid) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM protean_handled WHERE handler = $1 AND message_id = $2)",
            )
            .bind(handler)
            .bind(message_id)
            .fetch_one(&self.pool)
            .await
            .map_err(backend)
        })
    }

    fn stream<'a>(&'a self, stream: &'a StreamId) -> BoxFuture<'a, Result<Vec<Envelope>, StoreError>> {
        Box::pin(async move {
            let sql = format!(
                "SELECT {EVENT_COLUMNS} FROM protean_events WHERE aggregate = $1 AND stream_id = $2 ORDER BY sequence"
            );
            let rows = sqlx::query(&sql)
                .bind(&*stream.aggregate)
                .bind(&*stream.id)
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
            rows.iter().map(envelope).collect()
        })
    }

    fn stream_range<'a>(
        &'a self,
        stream: &'a StreamId,
        after: u64,
        up_to: Option<u64>,
    ) -> BoxFuture<'a, Result<Vec<Envelope>, StoreError>> {
        Box::pin(async move {
            let sql = format!(
                "SELECT {EVENT_COLUMNS} FROM protean_events WHERE aggregate = $1 AND stream_id = $2
                 AND sequence > $3 AND sequence <= $4 ORDER BY sequence"
            );
            let rows = sqlx::query(&sql)
                .bind(&*stream.aggregate)
                .bind(&*stream.id)
                .bind(to_i64(after))
                .bind(up_to.map_or(i64::MAX, to_i64))
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
            rows.iter().map(envelope).collect()
        })
    }

    fn load_snapshot<'a>(
        &'a self,
        stream: &'a StreamId,
        at_most: Option<u64>,
    ) -> BoxFuture<'a, Result<Option<Snapshot>, StoreError>> {
        Box::pin(async move {
            let row = sqlx::query(
                "SELECT sequence, state FROM protean_snapshots WHERE aggregate = $1 AND id = $2 AND sequence <= $3
                 ORDER BY sequence DESC LIMIT 1",
            )
            .bind(&*stream.aggregate)
            .bind(&*stream.id)
            .bind(at_most.map_or(i64::MAX, to_i64))
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
            let Some(row) = row else { return Ok(None) };
            let sequence: i64 = row.try_get(0).map_err(backend)?;
            let state: String = row.try_get(1).map_err(backend)?;
            Ok(Some(Snapshot { sequence: u64::try_from(sequence).unwrap_or(0), state: state.into() }))
        })
    }

    fn events(&self, from: u64, limit: usize) -> BoxFuture<'_, Result<Vec<Envelope>, StoreError>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Box::pin(async move {
            let sql = format!("SELECT {EVENT_COLUMNS} FROM protean_events ORDER BY position LIMIT $1 OFFSET $2");
            let rows = sqlx::query(&sql).bind(limit).bind(to_i64(from)).fetch_all(&self.pool).await.map_err(backend)?;
            rows.iter().map(envelope).collect()
        })
    }

    fn read_model<'a>(&'a self, name: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        Box::pin(async move {
            sqlx::query_scalar::<_, String>("SELECT json FROM protean_read_models WHERE name = $1 AND key = $2")
                .bind(name)
                .bind(key)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)
        })
    }

    fn put_read_model<'a>(
        &'a self,
        name: &'a str,
        key: &'a str,
        json: String,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO protean_read_models (name, key, json) VALUES ($1, $2, $3)
                 ON CONFLICT (name, key) DO UPDATE SET json = excluded.json",
            )
            .bind(name)
            .bind(key)
            .bind(json)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(backend)
        })
    }
}
