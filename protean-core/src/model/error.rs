//! The errors a domain operation can end with.

use uuid::Uuid;

use crate::model::identity::StreamId;
use crate::model::validation::ValidationError;

/// Why a domain operation was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DomainError {
    /// Fields or invariants are broken; every problem is listed.
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// A business rule refused the operation (for example "only draft orders can be placed").
    #[error("{0}")]
    Rule(String),
    /// The thing the operation needs does not exist.
    #[error("{kind} `{id}` was not found")]
    NotFound {
        /// What was looked for (`"Order"`).
        kind: &'static str,
        /// Its identity.
        id: String,
    },
    /// Loading or saving failed; not the domain's fault.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl DomainError {
    /// A business-rule refusal with a message a user can act on.
    pub fn rule(message: impl Into<String>) -> Self {
        DomainError::Rule(message.into())
    }
}

/// A save refused because another unit of work wrote the aggregate first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("version conflict on {stream}: loaded at version {expected}, but it is now at version {actual}")]
pub struct VersionConflict {
    /// The aggregate.
    pub stream: StreamId,
    /// The version the unit of work loaded (0 when it added the aggregate).
    pub expected: u64,
    /// The version found in the store (0 when there is none).
    pub actual: u64,
}

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// Optimistic concurrency: the aggregate changed since it was loaded.
    #[error(transparent)]
    Conflict(#[from] VersionConflict),
    /// Stored data does not read back as what it should be.
    #[error("stored data of {stream} at position {position} is unreadable: {reason}")]
    Corrupt {
        /// The aggregate or stream the data belongs to.
        stream: StreamId,
        /// The version of the record, or the sequence of the event.
        position: u64,
        /// What is wrong.
        reason: String,
    },
    /// A value could not be written as JSON.
    #[error("{what} could not be serialized: {reason}")]
    Serialize {
        /// What was being written.
        what: String,
        /// serde's message.
        reason: String,
    },
    /// The handler already handled this message: the batch was not written.
    #[error("`{handler}` already handled message {message_id}")]
    AlreadyHandled {
        /// The handler.
        handler: String,
        /// The message.
        message_id: Uuid,
    },
    /// The storage backend failed (connection, disk, …).
    #[error("the store failed: {0}")]
    Backend(String),
}

impl StoreError {
    /// Stored data that does not read back.
    pub fn corrupt(stream: &StreamId, position: u64, reason: impl Into<String>) -> Self {
        StoreError::Corrupt { stream: stream.clone(), position, reason: reason.into() }
    }
}
