//! What a service's logs and traces see: a span per command (type, command id,
//! correlation id, attempt) and a span per delivery (handler, event, stream, sequence),
//! with the conversation's correlation id on both.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use protean::prelude::*;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context as LayerContext, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

mod tally {
    use protean::prelude::*;

    #[aggregate]
    pub struct Tally {
        pub count: u32,
    }

    #[command(part_of = Tally, returns = Identifier<Tally>)]
    pub struct OpenTally {}

    #[event(part_of = Tally)]
    pub struct TallyOpened {
        pub tally: Identifier<Tally>,
    }

    #[command(part_of = Tally)]
    pub struct Refuse {}

    /// The handler of tallies.
    pub struct Tallies;

    #[handler(part_of = Tally)]
    impl Tallies {
        async fn open(ctx: &mut Context<Tally>, _command: OpenTally) -> Result<Identifier<Tally>, DomainError> {
            let mut tally = Tally::builder().count(0).build()?;
            tally.raise(TallyOpened { tally: tally.id.clone() });
            Ok(ctx.add(tally)?.id.clone())
        }

        async fn refuse(_ctx: &mut Context<Tally>, _command: Refuse) -> Result<(), DomainError> {
            Err(DomainError::rule("tallies are closed today"))
        }

        /// Counts the opening on the tally itself.
        async fn count_opening(ctx: &mut Context<Tally>, event: &TallyOpened) -> Result<(), DomainError> {
            ctx.load(&event.tally).await?.count += 1;
            Ok(())
        }
    }
}

/// A span as the layer saw it: its name and its fields, recorded values included.
#[derive(Debug, Clone, Default)]
struct SeenSpan {
    name: &'static str,
    fields: BTreeMap<String, String>,
}

/// The events (log lines) seen, with their message and fields.
#[derive(Debug, Clone, Default)]
struct Seen {
    spans: BTreeMap<u64, SeenSpan>,
    events: Vec<BTreeMap<String, String>>,
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_string(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

/// Records every span and event into `Seen`.
struct Recorder(Arc<Mutex<Seen>>);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _ctx: LayerContext<'_, S>) {
        let mut span = SeenSpan { name: attrs.metadata().name(), ..SeenSpan::default() };
        attrs.record(&mut Fields(&mut span.fields));
        self.0.lock().unwrap().spans.insert(id.into_u64(), span);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: LayerContext<'_, S>) {
        if let Some(span) = self.0.lock().unwrap().spans.get_mut(&id.into_u64()) {
            values.record(&mut Fields(&mut span.fields));
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, _ctx: LayerContext<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        self.0.lock().unwrap().events.push(fields);
    }
}

fn domain() -> Domain {
    Domain::builder().module(module_path!().to_string() + "::tally").build().unwrap()
}

/// Runs `f` on a one-thread runtime with the recorder as this thread's subscriber.
fn traced<F: std::future::Future>(f: impl FnOnce() -> F) -> (F::Output, Seen) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let subscriber = tracing_subscriber::registry().with(Recorder(Arc::clone(&seen)));
    let output = tracing::subscriber::with_default(subscriber, || {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f())
    });
    let seen = seen.lock().unwrap().clone();
    (output, seen)
}

#[test]
fn a_command_runs_in_a_span_with_its_type_ids_and_attempt_and_its_reactions_in_delivery_spans() {
    let domain = domain();
    let command_id = Uuid::now_v7();
    let correlation_id = Uuid::now_v7();
    let (processed, seen) =
        traced(|| async { domain.process_with(tally::OpenTally {}, command_id, Some(correlation_id)).await });
    let processed = processed.unwrap();
    processed.all_delivered().unwrap();

    let commands: Vec<_> = seen.spans.values().filter(|s| s.name == "command").collect();
    assert_eq!(commands.len(), 1, "one span per command: {:?}", seen.spans);
    let command = &commands[0].fields;
    assert_eq!(command["command"], "Tally.OpenTally");
    assert_eq!(command["command_id"], command_id.to_string());
    assert_eq!(command["correlation_id"], correlation_id.to_string());
    assert_eq!(command["attempt"], "1");

    let deliveries: Vec<_> = seen.spans.values().filter(|s| s.name == "deliver").collect();
    assert_eq!(deliveries.len(), 1, "one span per delivery: {:?}", seen.spans);
    let delivery = &deliveries[0].fields;
    assert_eq!(delivery["handler"], "Tallies::count_opening");
    assert_eq!(delivery["event"], "Tally.TallyOpened");
    assert_eq!(delivery["event_id"], processed.events[0].id.to_string());
    assert_eq!(delivery["stream"], processed.events[0].stream.to_string());
    assert_eq!(delivery["sequence"], "1");
    assert_eq!(delivery["correlation_id"], correlation_id.to_string(), "the conversation is followed into reactions");
}

#[test]
fn a_rejected_command_is_logged_with_its_reason() {
    let domain = domain();
    let (outcome, seen) = traced(|| async { domain.process(tally::Refuse {}).await });
    assert!(outcome.is_err());
    let rejected = seen
        .events
        .iter()
        .find(|e| e.get("message").map(String::as_str) == Some("command rejected"))
        .unwrap_or_else(|| panic!("no rejection logged: {:?}", seen.events));
    assert!(rejected["error"].contains("tallies are closed today"), "{rejected:?}");
}
