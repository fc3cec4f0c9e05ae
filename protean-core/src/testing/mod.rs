//! Given / when / then scenarios for command handlers and event handlers, run against
//! a [`Domain`] on the in-memory store: no database needed.
//!
//! ```
//! # extern crate protean_core as protean;
//! # use protean::testing::Scenario;
//! # use protean::runtime::Domain;
//! # async fn demo(domain: Domain) {
//! // given: commands processed, aggregates stored as they are, events delivered;
//! // when: one command (or one event); then: what it raised, or why it was refused.
//! let outcome = Scenario::new(domain).when_nothing().await;
//! outcome.then_no_events();
//! # }
//! ```
//!
//! The `then_*` methods are assertions: they panic with both sides printed, like
//! `assert_eq!`, and the panic is reported at the line of your test that called them.
//! A `given` step that fails panics too, when the scenario runs (at its `when`), naming
//! the step and the lines of your test where the step was given and the `when` awaited.

mod flows;

use std::fmt::Write as _;
use std::future::Future;
use std::panic::Location;

use uuid::Uuid;

use crate::model::element::{Aggregate, Command, Event, RaisedEvent};
use crate::model::error::DomainError;
use crate::model::identity::Identifier;
use crate::runtime::Domain;
use crate::runtime::{Delivered, DeliveryFailure, ProcessError, Processed};
use crate::store::envelope::{Cause, Envelope, StreamId};
use crate::store::BoxFuture;

pub use flows::{FlowOutcome, FlowScenario};

type Step = Box<dyn for<'a> FnOnce(&'a Domain) -> BoxFuture<'a, Result<(), String>> + Send>;

/// A scenario: `given` steps, then one `when`, whose [`Outcome`] is checked with `then_*`.
pub struct Scenario {
    domain: Domain,
    /// Each step, described with where the test gave it.
    given: Vec<(String, Step)>,
}

/// A `given` step's description: what it is, and the line of the test that gave it.
fn step_name(what: impl std::fmt::Display, at: &Location<'_>) -> String {
    format!("{what}, given at {at}")
}

impl std::fmt::Debug for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scenario").field("given", &self.given.iter().map(|(n, _)| n).collect::<Vec<_>>()).finish()
    }
}

#[track_caller]
fn event_envelope<E: Event>(event: E) -> Envelope {
    let stream = StreamId::new(<E::Aggregate as crate::model::element::DomainElement>::NAME, "given");
    // An event serde cannot write is a bug in the test itself: fail it loudly.
    match Envelope::new(RaisedEvent::new(event), stream.clone(), Cause::command(Uuid::now_v7())) {
        Ok(mut envelope) => {
            envelope.sequence = 1;
            envelope
        }
        Err(e) => panic!("the event of the scenario cannot be serialized: {e}"),
    }
}

impl Scenario {
    /// A scenario on `domain`, which should be fresh (built on a new in-memory store).
    pub fn new(domain: Domain) -> Self {
        Scenario { domain, given: Vec::new() }
    }

    /// Given this command was processed (its events delivered as well).
    #[track_caller]
    pub fn given<C: Command>(mut self, command: C) -> Self {
        let name = step_name(format_args!("command {}", C::TYPE_NAME), Location::caller());
        self.given.push((
            name,
            Box::new(move |domain| {
                Box::pin(async move { domain.process(command).await.map(|_| ()).map_err(|e| e.to_string()) })
            }),
        ));
        self
    }

    /// Given this aggregate is stored as it is (its pending events are dropped, not delivered).
    #[track_caller]
    pub fn given_state<A: Aggregate>(mut self, mut aggregate: A) -> Self {
        let name = step_name(format_args!("state of {} `{}`", A::NAME, aggregate.id()), Location::caller());
        aggregate.take_events();
        self.given.push((
            name,
            Box::new(move |domain| {
                Box::pin(async move {
                    let mut unit = domain.unit_of_work::<A>();
                    unit.add(aggregate).map_err(|e| e.to_string())?;
                    unit.commit_unit().await.map(|_| ()).map_err(|e| e.to_string())
                })
            }),
        ));
        self
    }

    /// Given this event happened: it is delivered to its handlers, which change their
    /// aggregates. (Its stream id is `"given"`.)
    #[track_caller]
    pub fn given_event<E: Event>(mut self, event: E) -> Self {
        let name = step_name(format_args!("event {}", E::TYPE_NAME), Location::caller());
        let envelope = event_envelope(event);
        self.given.push((
            name,
            Box::new(move |domain| {
                Box::pin(async move { failures_to_result(&domain.deliver(vec![envelope]).await.failures) })
            }),
        ));
        self
    }

    /// Runs the `given` steps; a step that fails panics, naming it, where the test gave
    /// it, and `when`: where the test awaits the scenario. (The `when` methods are not
    /// `async fn`s, which cannot take their caller's location, but return the future.)
    async fn run_given(self, when: &'static Location<'static>) -> Domain {
        for (n, (name, step)) in self.given.into_iter().enumerate() {
            if let Err(error) = step(&self.domain).await {
                panic!("given step {} ({name}) failed, in the scenario run at {when}: {error}", n + 1);
            }
        }
        self.domain
    }

    /// When this command is processed. The outcome carries the handler's reply.
    #[track_caller]
    pub fn when<C: Command>(self, command: C) -> impl Future<Output = Outcome<C::Reply>> {
        let at = Location::caller();
        async move {
            let domain = self.run_given(at).await;
            let id = Uuid::now_v7();
            // A fresh id: nothing to record for a copy (`process` without recording).
            let result = domain.process_as(command, crate::store::Cause::command(id), false).await;
            Outcome { domain, cause: id, result }
        }
    }

    /// When this event happens: it is delivered to its handlers.
    #[track_caller]
    pub fn when_event<E: Event>(self, event: E) -> impl Future<Output = Outcome> {
        let at = Location::caller();
        let envelope = event_envelope(event);
        async move {
            let domain = self.run_given(at).await;
            let cause = envelope.id;
            let Delivered { mut events, failures } = domain.deliver(vec![envelope]).await;
            events.remove(0); // the event itself
            let result = Ok(Processed { reply: (), command_id: cause, committed: Vec::new(), events, failures });
            Outcome { domain, cause, result }
        }
    }

    /// Only the `given` steps: to check the state they leave.
    #[track_caller]
    pub fn when_nothing(self) -> impl Future<Output = Outcome> {
        let at = Location::caller();
        async move {
            let domain = self.run_given(at).await;
            let id = Uuid::now_v7();
            let result = Ok(Processed {
                reply: (),
                command_id: id,
                committed: Vec::new(),
                events: Vec::new(),
                failures: Vec::new(),
            });
            Outcome { domain, cause: id, result }
        }
    }
}

fn failures_to_result(failures: &[DeliveryFailure]) -> Result<(), String> {
    if failures.is_empty() {
        return Ok(());
    }
    Err(failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
}

/// What the `when` step did, to be checked with the `then_*` assertions. `R` is the
/// reply of the command's handler (`()` unless the command declares `returns = T`).
#[derive(Debug)]
pub struct Outcome<R = ()> {
    domain: Domain,
    cause: Uuid,
    result: Result<Processed<R>, ProcessError>,
}

fn describe(events: &[&Envelope]) -> String {
    let mut out = String::new();
    for e in events {
        let _ = write!(out, "\n    {} {}", e.type_name, e.payload);
    }
    if out.is_empty() {
        out.push_str(" (none)");
    }
    out
}

fn describe_expected(events: &[RaisedEvent]) -> String {
    let mut out = String::new();
    for e in events {
        let json = e.to_json_string().unwrap_or_else(|err| format!("<unserializable: {err}>"));
        let _ = write!(out, "\n    {} {json}", e.type_name());
    }
    if out.is_empty() {
        out.push_str(" (none)");
    }
    out
}

fn same_event(actual: &Envelope, expected: &RaisedEvent) -> bool {
    let payload: Option<serde_json::Value> = serde_json::from_str(&actual.payload).ok();
    actual.type_name == expected.type_name() && payload.is_some() && payload == expected.to_json().ok()
}

impl<R> Outcome<R> {
    /// The processing result, for checks of your own.
    pub fn result(&self) -> &Result<Processed<R>, ProcessError> {
        &self.result
    }

    /// The reply of the command's handler; panics when the `when` step was refused.
    #[track_caller]
    pub fn reply(&self) -> &R {
        &self.processed().reply
    }

    /// The domain after the scenario, to look at stored state with [`Domain::get`].
    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    #[track_caller]
    fn processed(&self) -> &Processed<R> {
        match &self.result {
            Ok(processed) => processed,
            Err(error) => panic!("expected the `when` step to succeed, but it was refused: {error}"),
        }
    }

    /// The events the `when` message caused directly (not those of the handlers that
    /// reacted to them).
    #[track_caller]
    pub fn direct_events(&self) -> Vec<&Envelope> {
        self.processed().events.iter().filter(|e| e.causation_id == self.cause).collect()
    }

    /// Every event raised, the reactions' included, in delivery order.
    #[track_caller]
    pub fn all_events(&self) -> Vec<&Envelope> {
        self.processed().events.iter().collect()
    }

    #[track_caller]
    fn compare(&self, actual: Vec<&Envelope>, expected: Vec<RaisedEvent>, which: &str) -> &Self {
        let matches = actual.len() == expected.len() && actual.iter().zip(&expected).all(|(a, e)| same_event(a, e));
        assert!(matches, "{which} differ\n  expected:{}\n  actual:{}", describe_expected(&expected), describe(&actual));
        self
    }

    /// Then the `when` message directly raised exactly these events, in this order,
    /// compared by type and content (`event.into()` makes a [`RaisedEvent`]).
    #[track_caller]
    pub fn then_events(&self, expected: impl IntoIterator<Item = RaisedEvent>) -> &Self {
        self.compare(self.direct_events(), expected.into_iter().collect(), "direct events")
    }

    /// Then exactly these events were raised in all, the reactions' included, in order.
    #[track_caller]
    pub fn then_all_events(&self, expected: impl IntoIterator<Item = RaisedEvent>) -> &Self {
        self.compare(self.all_events(), expected.into_iter().collect(), "events")
    }

    /// Then the events raised in all had these type names, in order.
    #[track_caller]
    pub fn then_event_types(&self, expected: &[&str]) -> &Self {
        let actual: Vec<&str> = self.all_events().iter().map(|e| &*e.type_name).collect();
        assert_eq!(actual, expected, "event types differ");
        self
    }

    /// Then nothing was raised.
    #[track_caller]
    pub fn then_no_events(&self) -> &Self {
        self.compare(self.all_events(), Vec::new(), "events")
    }

    /// Then no event handler failed.
    #[track_caller]
    pub fn then_no_failures(&self) -> &Self {
        let failures = &self.processed().failures;
        assert!(
            failures.is_empty(),
            "expected no failed deliveries, got: {}",
            failures_to_result(failures).unwrap_err()
        );
        self
    }

    /// Then an event handler failed on the event; returns the failures to look at.
    #[track_caller]
    pub fn then_delivery_failed(&self) -> &[DeliveryFailure] {
        let failures = &self.processed().failures;
        assert!(!failures.is_empty(), "expected a failed delivery, but every handler succeeded");
        failures
    }

    /// Then the `when` step was refused; returns the error to look at.
    #[track_caller]
    pub fn then_error(&self) -> &ProcessError {
        match &self.result {
            Ok(processed) => panic!(
                "expected the `when` step to be refused, but it succeeded and raised:{}",
                describe(&processed.events.iter().collect::<Vec<_>>())
            ),
            Err(error) => error,
        }
    }

    /// Then the `when` step was refused by a business rule with this message (by its
    /// handler, or by an inline projector of an event it raised).
    #[track_caller]
    pub fn then_rejected_by_rule(&self, message: &str) -> &Self {
        match self.then_error() {
            error if matches!(error.rejection(), Some(DomainError::Rule(actual)) if actual == message) => self,
            other => panic!("expected a rejection by the rule {message:?}, got: {other}"),
        }
    }

    /// Then the `when` step was refused as invalid (by its handler, or by an inline
    /// projector), with (at least) these `(field path, message)` problems.
    #[track_caller]
    pub fn then_invalid(&self, expected: &[(&str, &str)]) -> &Self {
        let Some(DomainError::Validation(errors)) = self.then_error().rejection() else {
            panic!("expected a validation error, got: {}", self.then_error());
        };
        for (path, message) in expected {
            assert!(
                errors.messages(path).iter().any(|m| m == message),
                "expected `{path}: {message}` among the validation errors, got: {errors}"
            );
        }
        self
    }

    /// Then the stored aggregate with this identity passes `check`.
    ///
    /// It is an assertion like the others, not a future, so it cannot be left
    /// unawaited: the scenario's in-memory store answers at once. (On a store that does
    /// not, it panics and says to use `outcome.domain().get(..).await`.)
    #[track_caller]
    pub fn then_state<A: Aggregate>(&self, id: &Identifier<A>, check: impl FnOnce(&A)) -> &Self {
        match answered_at_once(self.domain.get(id)) {
            Some(Ok(Some(aggregate))) => check(&aggregate),
            Some(Ok(None)) => panic!("expected {} `{id}` to be stored, but it is not", A::NAME),
            Some(Err(error)) => panic!("{} `{id}` could not be loaded: {error}", A::NAME),
            None => panic!(
                "then_state reads the scenario's in-memory store, and this domain's store did not answer at once: \
                 use `outcome.domain().get(&id).await` on it"
            ),
        }
        self
    }
}

/// The output of a future that completes without waiting (the in-memory store's
/// answers), or `None` if it would wait.
fn answered_at_once<F: std::future::Future>(future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(output) => Some(output),
        std::task::Poll::Pending => None,
    }
}
