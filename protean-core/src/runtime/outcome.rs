//! What processing a command or delivering events ends with: [`Processed`],
//! [`Delivered`], [`DeliveryFailure`] and [`ProcessError`].

use uuid::Uuid;

use crate::model::error::{DomainError, StoreError, VersionConflict};
use crate::registry::HandlerInfo;
use crate::store::{Committed, Envelope};

/// Why processing a command (or delivering an event) failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ProcessError {
    /// The command or event was refused: invalid fields, a broken invariant, a business
    /// rule, something not found. Nothing was written.
    #[error("`{type_name}` was rejected: {error}")]
    Rejected {
        /// The stable type name of the command or event refused (`"Order.PlaceOrder"`).
        type_name: &'static str,
        /// Why.
        error: DomainError,
    },
    /// An inline projector (`#[projector(projection = V, inline)]`) refused an event the
    /// unit of work of the command (or of the event handler) raised: the command is
    /// refused, as by its handler, and nothing was written.
    #[error(
        "`{type_name}` was rejected: the inline projector `{}` refused the event `{}` it raised: {error}",
        projector.name(),
        projector.type_name()
    )]
    RejectedByProjector {
        /// The stable type name of the command refused (`"Talk.SubmitTalk"`), or of the
        /// event whose handler's unit of work raised the event.
        type_name: &'static str,
        /// The projector method that refused: its [`name`](HandlerInfo::name)
        /// (`"TalkTitles::submitted"`), and the [`type_name`](HandlerInfo::type_name) of
        /// the event it refused (`"Talk.TalkSubmitted"`).
        projector: &'static HandlerInfo,
        /// Why.
        error: DomainError,
    },
    /// Another unit of work changed the aggregate first, on every attempt allowed.
    #[error(transparent)]
    Conflict(#[from] VersionConflict),
    /// No handler takes this command in this domain.
    #[error(
        "no handler takes the command `{0}`: add a method taking it to a `#[handler(part_of = ..)]` of its aggregate"
    )]
    Unhandled(&'static str),
    /// Loading or saving failed.
    #[error(transparent)]
    Store(StoreError),
    /// There is no dead letter of this event for this handler (it was replayed or
    /// discarded already, or is being retried), nor a stranded held delivery of it (one
    /// held behind a dead letter waits for that one to be replayed or discarded), or the
    /// handler is not in this domain.
    #[error("no dead letter of event {event_id} for `{handler}`")]
    NoDeadLetter {
        /// The handler named.
        handler: String,
        /// The event named.
        event_id: Uuid,
    },
    /// A projection query or rebuild that cannot run as asked.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The command committed, but handlers reacting to its events failed: what
    /// [`Processed::all_delivered`] makes of a [`Processed`] with failures. The events
    /// are kept, and [`Domain::retry_failed`](crate::runtime::Domain::retry_failed) delivers them again.
    #[error("{} reaction(s) failed: {}", failures.len(), failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    ReactionsFailed {
        /// Each failed delivery.
        failures: Vec<DeliveryFailure>,
    },
}

/// A query that cannot be run as written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// Queries filter and order only on declared fields (`#[index]`), which stores index.
    #[error("`{projection}` has no declared field `{field}` to query on (declared with #[index]: {declared:?})")]
    NotIndexed {
        /// The projection.
        projection: &'static str,
        /// The field asked for.
        field: String,
        /// The fields it declares.
        declared: &'static [&'static str],
    },
    /// A filter compares with a string, number, boolean or null only.
    #[error("`{field}` can be compared with a string, number, boolean or null, not with {value}")]
    NotScalar {
        /// The field.
        field: String,
        /// The value given, as JSON.
        value: String,
    },
    /// A filter compares with a float that is not a number (NaN) or infinite: stored
    /// numbers are finite (JSON has neither), and no number compares with NaN.
    #[error("`{field}` cannot be compared with {value}: stored numbers are finite, and none compares with NaN")]
    NotFinite {
        /// The field.
        field: String,
        /// The value given: `NaN`, `inf` or `-inf`.
        value: String,
    },
    /// A rebuild needs the projection's projectors.
    #[error("no projector of `{0}` is registered in this domain")]
    NoProjector(&'static str),
    /// A projection named by text (an operator's command) that this domain does not have.
    #[error("this domain has no projection `{name}` (it has: {})", known.join(", "))]
    UnknownProjection {
        /// The name asked for.
        name: String,
        /// The projections the domain has, by name.
        known: Vec<&'static str>,
    },
}

impl From<StoreError> for ProcessError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(conflict) => ProcessError::Conflict(conflict),
            other => ProcessError::Store(other),
        }
    }
}

impl ProcessError {
    /// Classifies a handler's error: store failures stay store failures, the rest is a rejection.
    pub fn from_domain(message: &'static str, error: DomainError) -> Self {
        match error {
            DomainError::Store(store) => store.into(),
            error => ProcessError::Rejected { type_name: message, error },
        }
    }

    /// The domain error of a rejection: by the handler ([`Rejected`](Self::Rejected)) or
    /// by an inline projector ([`RejectedByProjector`](Self::RejectedByProjector)).
    pub fn rejection(&self) -> Option<&DomainError> {
        match self {
            ProcessError::Rejected { error, .. } | ProcessError::RejectedByProjector { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// An event one handler failed to handle. The event is kept, and
/// [`Domain::retry_failed`](crate::runtime::Domain::retry_failed) delivers it to that handler again.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryFailure {
    /// The handler method that failed.
    pub handler: HandlerInfo,
    /// The event it was given.
    pub event: Envelope,
    /// What went wrong on the last attempt.
    pub error: ProcessError,
}

impl std::fmt::Display for DeliveryFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} failed on {} #{} of {}: {}",
            self.handler.name(),
            self.event.type_name,
            self.event.sequence,
            self.event.stream,
            self.error
        )
    }
}

/// What processing a command did, and what its handler handed back.
///
/// The command is committed once `process` returns `Ok`. In
/// [inline](crate::runtime::DeliveryMode::Inline) delivery the handlers reacting to its
/// events ran before `process` returned, and may have failed:
/// [`failures`](Self::failures) lists them, and [`all_delivered`](Self::all_delivered)
/// turns any failure into an error. In [background](crate::runtime::DeliveryMode::Background)
/// delivery they had not run yet, so `failures` is empty: the workers retry and
/// dead-letter what fails ([`Domain::delivery_status`](crate::runtime::Domain::delivery_status),
/// [`Domain::dead_letters`](crate::runtime::Domain::dead_letters); see
/// [seeing failures](crate::runtime::Workers#seeing-failures)).
#[derive(Debug, Clone, PartialEq)]
#[must_use = "it holds the reply; in inline delivery, reactions may have failed: call `.all_delivered()?` \
              (in background delivery the workers report failures: `Domain::delivery_status`)"]
pub struct Processed<R = ()> {
    /// The handler's reply: the `returns = T` the command declares, `()` otherwise.
    pub reply: R,
    /// The id of the command (the correlation id of everything that followed).
    pub command_id: Uuid,
    /// What the command's own unit of work wrote (nothing when it changed nothing).
    pub committed: Vec<Committed>,
    /// Every event raised: the command's first, then those of the handlers that
    /// reacted, in delivery order.
    pub events: Vec<Envelope>,
    /// Deliveries that failed, in inline delivery; also kept by the domain until
    /// retried. Always empty in background delivery: nothing was delivered yet.
    pub failures: Vec<DeliveryFailure>,
}

impl<R> Processed<R> {
    /// The type names of all events raised, in order.
    pub fn event_types(&self) -> Vec<&str> {
        self.events.iter().map(|e| &*e.type_name).collect()
    }

    /// `Ok(())` when every reaction succeeded; otherwise
    /// [`ProcessError::ReactionsFailed`] with the failures (the command itself stays
    /// committed, and the failed events are kept for [`Domain::retry_failed`](crate::runtime::Domain::retry_failed)).
    /// In background delivery no reaction has run yet: always `Ok(())`.
    ///
    /// `domain.process(command).await?.all_delivered()?;`
    pub fn all_delivered(&self) -> Result<(), ProcessError> {
        failed(&self.failures)
    }

    /// The same outcome with another reply.
    pub(crate) fn with_reply<T>(self, reply: T) -> Processed<T> {
        let Processed { reply: _, command_id, committed, events, failures } = self;
        Processed { reply, command_id, committed, events, failures }
    }
}

/// What a delivery run did: the events delivered and the deliveries that failed.
#[derive(Debug, Clone, Default, PartialEq)]
#[must_use = "deliveries may have failed: check `failures`"]
pub struct Delivered {
    /// Every event delivered, with those the handlers raised in turn, in delivery order.
    pub events: Vec<Envelope>,
    /// Deliveries that failed; also kept by the domain until retried.
    pub failures: Vec<DeliveryFailure>,
}

impl Delivered {
    /// `Ok(())` when no delivery failed; otherwise [`ProcessError::ReactionsFailed`]
    /// with the failures (kept for [`Domain::retry_failed`](crate::runtime::Domain::retry_failed) as well).
    pub fn all_delivered(&self) -> Result<(), ProcessError> {
        failed(&self.failures)
    }
}

fn failed(failures: &[DeliveryFailure]) -> Result<(), ProcessError> {
    if failures.is_empty() {
        Ok(())
    } else {
        Err(ProcessError::ReactionsFailed { failures: failures.to_vec() })
    }
}
