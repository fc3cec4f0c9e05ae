//! Given / when / then for process managers: events in, then the commands the flow sent
//! or scheduled, and whether it ended. The commands are not fired, only recorded, so a
//! scenario checks the flow alone.

use std::fmt::Debug;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::Location;

use crate::model::element::{Command, Event};
use crate::registry::HandlerRole;
use crate::runtime::{Domain, ProcessManager, ProjectionKey};
use crate::store::{Envelope, Scheduled};

/// A process manager scenario for the flow with one key.
///
/// ```no_run
/// # extern crate protean_core as protean;
/// # use protean::testing::FlowScenario;
/// # use protean::runtime::{Domain, ProcessManager};
/// # use protean::model::Event;
/// # async fn demo<P: ProcessManager, E: Event + Clone>(domain: Domain, placed: E) {
/// let outcome = FlowScenario::<P>::new(domain, "order-1").when(placed).await;
/// outcome.then_running().then_nothing_scheduled();
/// # }
/// ```
pub struct FlowScenario<P: ProcessManager> {
    domain: Domain,
    key: String,
    given: Vec<(String, Envelope)>,
    _p: PhantomData<fn() -> P>,
}

impl<P: ProcessManager> Debug for FlowScenario<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowScenario")
            .field("process", &P::NAME)
            .field("key", &self.key)
            .field("given", &self.given.iter().map(|(n, _)| n).collect::<Vec<_>>())
            .finish()
    }
}

impl<P: ProcessManager> FlowScenario<P> {
    /// A scenario on `domain` (fresh, on the in-memory store) for the flow keyed `key`
    /// (the value of the events' correlation field).
    pub fn new(domain: Domain, key: &(impl ProjectionKey + ?Sized)) -> Self {
        FlowScenario { domain, key: key.key_text(), given: Vec::new(), _p: PhantomData }
    }

    /// Given this event was delivered to the process manager.
    #[track_caller]
    pub fn given<E: Event>(mut self, event: E) -> Self {
        let name = super::step_name(format_args!("event {}", E::TYPE_NAME), Location::caller());
        self.given.push((name, super::event_envelope(event)));
        self
    }

    async fn deliver(&self, envelope: &Envelope) -> Result<(), String> {
        let engine = self.domain.engine();
        let handlers = engine.events.get(&*envelope.type_name).cloned().unwrap_or_default();
        for handler in handlers {
            if handler.info.role == HandlerRole::ProcessManager && handler.info.aggregate == P::NAME {
                engine.run_event_handler(handler, envelope).await.map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    async fn pending(&self, at: &Location<'_>) -> Vec<Scheduled> {
        match self.domain.pending_commands::<P>(&self.key).await {
            Ok(pending) => pending,
            Err(error) => {
                panic!("could not read the commands of flow `{}`, in the scenario run at {at}: {error}", self.key)
            }
        }
    }

    /// Delivers the `given` events then `when`; what fails panics, naming where the test
    /// gave the step, and `at`: where the test awaits the scenario. (The `when` methods
    /// are not `async fn`s, which cannot take their caller's location, but return the
    /// future.)
    async fn run(self, when: Vec<Envelope>, at: &'static Location<'static>) -> FlowOutcome<P> {
        for (n, (name, envelope)) in self.given.iter().enumerate() {
            if let Err(error) = self.deliver(envelope).await {
                panic!("given step {} ({name}) failed, in the scenario run at {at}: {error}", n + 1);
            }
        }
        let before: Vec<_> = self.pending(at).await.into_iter().map(|s| s.id).collect();
        let mut result = Ok(());
        for envelope in &when {
            if let Err(error) = self.deliver(envelope).await {
                result = Err(error);
                break;
            }
        }
        let pending = self.pending(at).await;
        let sent = pending.iter().filter(|s| !before.contains(&s.id)).cloned().collect();
        let state = match self.domain.flow::<P>(&self.key).await {
            Ok(state) => state,
            Err(error) => panic!("could not read flow `{}`, in the scenario run at {at}: {error}", self.key),
        };
        FlowOutcome { key: self.key, result, sent, pending, state, _p: PhantomData }
    }

    /// When this event is delivered.
    #[track_caller]
    pub fn when<E: Event>(self, event: E) -> impl Future<Output = FlowOutcome<P>> {
        let envelope = super::event_envelope(event);
        self.run(vec![envelope], Location::caller())
    }

    /// When this event is delivered twice (a redelivery after a crash): the second
    /// delivery must change nothing.
    #[track_caller]
    pub fn when_delivered_twice<E: Event>(self, event: E) -> impl Future<Output = FlowOutcome<P>> {
        let envelope = super::event_envelope(event);
        self.run(vec![envelope.clone(), envelope], Location::caller())
    }
}

/// What a flow did in the `when` step, checked with `then_*` (assertions that panic
/// with both sides printed).
#[derive(Debug)]
pub struct FlowOutcome<P: ProcessManager> {
    key: String,
    result: Result<(), String>,
    /// Commands sent or scheduled in the `when` step.
    sent: Vec<Scheduled>,
    /// Every command of the flow not fired yet.
    pending: Vec<Scheduled>,
    state: Option<(P, bool)>,
    _p: PhantomData<fn() -> P>,
}

fn decode<C: Command>(scheduled: &Scheduled) -> Option<C> {
    (scheduled.type_name == C::TYPE_NAME).then(|| serde_json::from_str(&scheduled.payload).ok()).flatten()
}

impl<P: ProcessManager> FlowOutcome<P> {
    #[track_caller]
    fn ok(&self) -> &Self {
        if let Err(error) = &self.result {
            panic!("the step of flow `{}` failed: {error}", self.key);
        }
        self
    }

    /// The commands of type `C` sent now (not deadlines) in the `when` step are these, in order.
    #[track_caller]
    pub fn then_sent<C: Command + PartialEq>(&self, expected: &[C]) -> &Self {
        self.ok();
        let sent: Vec<C> = self.sent.iter().filter(|s| s.name.is_none()).filter_map(decode::<C>).collect();
        assert_eq!(sent, expected, "the commands {} sent by flow `{}`", C::TYPE_NAME, self.key);
        self
    }

    /// No command was sent or scheduled in the `when` step.
    #[track_caller]
    pub fn then_nothing_sent(&self) -> &Self {
        self.ok();
        let sent: Vec<_> = self.sent.iter().map(|s| (&*s.type_name, &*s.payload)).collect();
        assert!(sent.is_empty(), "flow `{}` sent {sent:?}", self.key);
        self
    }

    /// A deadline `name` with this command is pending (scheduled in this step or before).
    #[track_caller]
    pub fn then_scheduled<C: Command + PartialEq>(&self, name: &str, command: &C) -> &Self {
        self.ok();
        let found: Vec<C> =
            self.pending.iter().filter(|s| s.name.as_deref() == Some(name)).filter_map(decode::<C>).collect();
        assert!(
            found.contains(command),
            "flow `{}` has no deadline `{name}` with {command:?}; it has {found:?}",
            self.key
        );
        self
    }

    /// No deadline is pending (none was scheduled, or they were cancelled).
    #[track_caller]
    pub fn then_nothing_scheduled(&self) -> &Self {
        self.ok();
        let names: Vec<_> = self.pending.iter().filter_map(|s| s.name.as_deref()).collect();
        assert!(names.is_empty(), "flow `{}` still has the deadlines {names:?}", self.key);
        self
    }

    /// When the deadline `name` that is pending is due.
    pub fn deadline(&self, name: &str) -> Option<time::OffsetDateTime> {
        self.pending.iter().find(|s| s.name.as_deref() == Some(name)).map(|s| s.due_at)
    }

    /// The flow ended.
    #[track_caller]
    pub fn then_ended(&self) -> &Self {
        self.ok();
        assert!(matches!(self.state, Some((_, true))), "flow `{}` did not end: {:?}", self.key, self.state);
        self
    }

    /// The flow runs (started, not ended).
    #[track_caller]
    pub fn then_running(&self) -> &Self {
        self.ok();
        assert!(matches!(self.state, Some((_, false))), "flow `{}` is not running: {:?}", self.key, self.state);
        self
    }

    /// No flow with this key started.
    #[track_caller]
    pub fn then_not_started(&self) -> &Self {
        self.ok();
        assert!(self.state.is_none(), "flow `{}` exists: {:?}", self.key, self.state);
        self
    }

    /// The step was refused, with an error containing `text`.
    #[track_caller]
    pub fn then_failed_with(&self, text: &str) -> &Self {
        match &self.result {
            Err(error) => assert!(error.contains(text), "flow `{}` failed with `{error}`, not `{text}`", self.key),
            Ok(()) => panic!("the step of flow `{}` succeeded; expected it to fail with `{text}`", self.key),
        }
        self
    }

    /// The flow's state after the step.
    pub fn state(&self) -> Option<&P> {
        self.state.as_ref().map(|(state, _)| state)
    }
}
