//! The errors a domain operation can end with.

use crate::store::StoreError;
use crate::validation::ValidationError;

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
