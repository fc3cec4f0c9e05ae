//! One batch through the commit function (`schema/commit_batch.sql`), in one statement,
//! and the errors of the batches it refuses: protean's SQLSTATEs made the store's errors.
//! Both a lone commit and the group writer ([`group`](super::group)) use it. See
//! docs/storage.md, "How commits work on PostgreSQL".

use std::borrow::Cow;

use super::arrays::Arrays;
use super::{backend, error_detail, not_registered, PostgresStore};
use crate::store::envelope::StreamId;
use crate::store::sql::stored_count;
use crate::store::VersionConflict;
use crate::store::{Batch, Commit, Committed, Projections, Records, RowChange, RowRead, RowVersion, StoreError};

/// The SQLSTATEs of a unit that lost a deadlock or a serialization check to another
/// transaction: it wrote nothing, and is committed again on its own, after its group.
pub(super) const RETRIED: [&str; 2] = ["40P01", "40001"];

/// How many times a batch committed alone is committed again after losing a deadlock or
/// a serialization check, before its caller gets the error.
const LOST_RETRIES: u32 = 8;

/// Whether `error` says its transaction lost a deadlock or a serialization check (it
/// wrote nothing, and may simply be run again).
fn lost_to_another(error: &dyn sqlx::error::DatabaseError) -> bool {
    error.code().is_some_and(|code| RETRIED.contains(&&*code))
}

/// What the commit function raised for one batch: its SQLSTATE and detail, and the error
/// as it came (what the batch is answered when the SQLSTATE is not one of protean's).
pub(super) struct Refusal {
    pub(super) code: Option<String>,
    pub(super) detail: Option<String>,
    pub(super) error: StoreError,
}

/// What a committed batch wrote, from what the commit function returned: each commit's
/// sequence before its events, then its new version.
pub(super) fn committed(commits: Vec<Commit>, returned: &[i64]) -> Result<Vec<Committed>, StoreError> {
    let (firsts, versions) = returned.split_at(returned.len() / 2);
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

/// Whether committing `batch` calls for the workers of every process to wake: it stores
/// an event not delivered yet, or schedules a command. (Cancelling only, or storing
/// events delivered with the commit, does not.)
pub(super) fn wakes_workers(batch: &Batch) -> bool {
    !batch.schedule.is_empty()
        || batch.commits.iter().flat_map(|c| &c.events).any(|event| !batch.delivered.contains(&event.id))
}

impl PostgresStore {
    /// Commits one batch alone: the commit function, in one statement.
    pub(super) async fn commit_alone(&self, batch: Batch) -> Result<Vec<Committed>, StoreError> {
        let wakes = wakes_workers(&batch);
        let mut arrays = Arrays::default();
        arrays.push(&batch)?;
        // A batch that loses a deadlock or a serialization check to another transaction (a
        // group of another process holding what it needs while waiting for what it holds)
        // wrote nothing: it is committed again, after a short random pause.
        let mut lost = 0;
        let outcome: Result<Vec<i64>, sqlx::Error> = loop {
            let outcome =
                match arrays.arguments(false) {
                    Ok(arguments) => sqlx::query_scalar_with(
                        "SELECT protean_commit_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                         $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34,
                         $35, $36, $37, $38, $39, $40, $41, $42, $43)",
                        arguments,
                    )
                    .fetch_one(&self.pool)
                    .await,
                    Err(error) => Err(error),
                };
            match &outcome {
                Err(sqlx::Error::Database(e)) if lost < LOST_RETRIES && lost_to_another(&**e) => {
                    lost += 1;
                    tracing::debug!(attempt = lost, error = %e, "postgres: a commit lost to another transaction, committing again");
                    tokio::time::sleep(std::time::Duration::from_millis(fastrand::u64(1..=5 * u64::from(lost)))).await;
                }
                _ => break outcome,
            }
        };
        match outcome {
            Ok(returned) => {
                if wakes {
                    self.notifier.request();
                }
                committed(batch.commits, &returned)
            }
            Err(sqlx::Error::Database(e)) => {
                let (code, detail) = (e.code().map(Cow::into_owned), error_detail(&*e));
                let refusal = Refusal { code, detail, error: backend(sqlx::Error::Database(e)) };
                Err(self.refused(&batch, refusal).await)
            }
            Err(e) => Err(backend(e)),
        }
    }

    /// The error of a batch the commit function refused: protean's SQLSTATEs made the
    /// store's errors, any other the error as it came.
    pub(super) async fn refused(&self, batch: &Batch, refusal: Refusal) -> StoreError {
        let Refusal { code, detail, error } = refusal;
        match code.as_deref() {
            // The function raises it only for a handled message.
            Some("PT208") => match &batch.handled {
                Some(h) => {
                    StoreError::AlreadyHandled { handler: h.handler.clone().into_owned(), message_id: h.message_id }
                }
                None => error,
            },
            Some("PT409") => self.conflict(&batch.commits, detail.as_deref(), error).await,
            Some("PT410") => row_conflict(&batch.rows, detail.as_deref(), error),
            Some("PT411") => read_conflict(self, &batch.reads, detail.as_deref(), error).await,
            Some("PT404") => not_registered(detail.as_deref().unwrap_or_default()),
            _ => error,
        }
    }

    /// The [`VersionConflict`] of a batch the commit function refused (`error`): the
    /// function stops at the first aggregate whose version moved, and says (in its
    /// `detail`) the version it found there.
    async fn conflict(&self, commits: &[Commit], detail: Option<&str>, error: StoreError) -> StoreError {
        let reported = match detail.map(str::parse::<u64>) {
            Some(Ok(version)) => Some(version),
            Some(Err(parse)) => {
                tracing::warn!(detail, error = %parse, "postgres: a version conflict's detail is not the version found");
                None
            }
            None => {
                tracing::warn!("postgres: a version conflict came without the version found");
                None
            }
        };
        let found = match self.first_conflict(commits).await {
            Ok(found) => found.map(|(commit, now)| (commit, Some(now))),
            Err(e) => {
                tracing::warn!(error = ?e, "postgres: could not load the aggregates of a refused batch");
                None
            }
        };
        // Not found again (or not loaded): the first commit stands for the batch.
        let Some((commit, now)) = found.or_else(|| commits.first().map(|commit| (commit, None))) else {
            return error;
        };
        let actual = reported.or(now).unwrap_or_else(|| {
            tracing::warn!(stream = %commit.stream, "postgres: a version conflict whose version found is unknown; reporting 0");
            0
        });
        VersionConflict { stream: commit.stream.clone(), expected: commit.expected_version, actual }.into()
    }

    /// Which aggregate of a refused batch is no longer at its expected version, and the
    /// version it is at now.
    async fn first_conflict<'c>(&self, commits: &'c [Commit]) -> Result<Option<(&'c Commit, u64)>, StoreError> {
        for commit in commits {
            let now = self.load(&commit.stream).await?.map_or(0, |record| record.version);
            if now != commit.expected_version {
                return Ok(Some((commit, now)));
            }
        }
        Ok(None)
    }
}

/// The [`VersionConflict`] of a batch whose row change the commit function refused, from
/// the error's detail (`i:version`: the change's 1-based index and the row's version
/// found); `error`, the refusal as it came, when the detail says otherwise.
fn row_conflict(rows: &[RowChange], detail: Option<&str>, error: StoreError) -> StoreError {
    let found = detail.and_then(|detail| {
        let (index, actual) = detail.split_once(':')?;
        let change = rows.get(index.parse::<usize>().ok()?.checked_sub(1)?)?;
        Some((change, actual.parse::<u64>().ok()?))
    });
    match found {
        Some((change, actual)) => VersionConflict {
            stream: StreamId::new(change.projection.clone(), change.key.as_str()),
            expected: change.expected_version,
            actual,
        }
        .into(),
        None => {
            tracing::warn!(detail, "postgres: a row version conflict's detail is not `index:version`");
            error
        }
    }
}

/// The [`VersionConflict`] of a batch the commit function refused for a stale read
/// (`error`), from its detail: `k:i:version` names the i-th row read by key (1-based, in
/// the order of the batch's reads by key) and the version found; `q:i` the i-th query,
/// whose rows are read again (`now`, outside the commit) to name the row that moved.
async fn read_conflict(
    store: &PostgresStore,
    reads: &[RowRead],
    detail: Option<&str>,
    error: StoreError,
) -> StoreError {
    let by_key = || reads.iter().filter(|r| matches!(r, RowRead::Key { .. }));
    let queries = || reads.iter().filter(|r| matches!(r, RowRead::Query { .. }));
    let nth = |n: &str| n.parse::<usize>().ok()?.checked_sub(1);
    match detail.and_then(|d| d.split_once(':')) {
        Some(("k", rest)) => {
            let found = rest
                .split_once(':')
                .and_then(|(i, version)| Some((by_key().nth(nth(i)?)?, version.parse::<u64>().ok()?)));
            if let Some((RowRead::Key { projection, key, found }, actual)) = found {
                let expected = found.as_ref().map_or(0, |f| f.version);
                return VersionConflict { stream: StreamId::new(projection.clone(), key.as_str()), expected, actual }
                    .into();
            }
        }
        Some(("q", i)) => {
            if let Some(read @ RowRead::Query { query, .. }) = nth(i).and_then(|i| queries().nth(i)) {
                let now = match store.query_projection(query.clone()).await {
                    Ok(rows) => rows.iter().map(RowVersion::of).collect(),
                    Err(e) => {
                        tracing::warn!(error = ?e, "postgres: could not read again the rows of a stale query");
                        Vec::new()
                    }
                };
                let stream = StreamId::new(query.projection.clone(), "?query");
                return read.stale(&now).unwrap_or(VersionConflict { stream, expected: 0, actual: 0 }).into();
            }
        }
        _ => {}
    }
    tracing::warn!(detail, "postgres: a stale read's detail is not `k:index:version` or `q:index`");
    error
}
