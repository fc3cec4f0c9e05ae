//! The checks of the rules in [`RULES`](super::RULES) that the registry (or the store
//! facts handed in) can decide: each pushes `(element, message, fix)` per finding.

use super::{CheckConfig, Found};
use crate::model::element::ElementKind;
use crate::registry::{HandlerInfo, HandlerRole, MessageKind, Model};

/// The handler methods taking events.
fn event_handlers(model: &Model) -> impl Iterator<Item = &HandlerInfo> {
    model.handlers().iter().filter(|h| h.kind == MessageKind::Event)
}

/// Whether the event `key` is an element of the model.
fn in_domain(model: &Model, key: &str) -> bool {
    model.elements().iter().any(|d| d.key == key)
}

/// `E001`.
pub(super) fn handler_takes_unknown_event(model: &Model, _: &CheckConfig, found: &mut Found) {
    for h in event_handlers(model).filter(|h| !in_domain(model, h.message_key)) {
        found.push((
            h.name().to_owned(),
            format!("`{}` takes the event `{}`, which is not in this domain, so it never runs", h.name(), h.message),
            format!("include the module of `{}` in the domain, or remove the method", h.message),
        ));
    }
}

/// `E004`.
pub(super) fn scheduled_command_without_handler(model: &Model, config: &CheckConfig, found: &mut Found) {
    let Some(facts) = config.facts() else { return };
    for (type_name, &pending) in facts.scheduled.iter().filter(|(_, &n)| n > 0) {
        if model.of_kind(ElementKind::Command).any(|c| c.type_name == type_name) {
            continue;
        }
        found.push((
            type_name.clone(),
            format!(
                "the store holds {pending} pending scheduled command(s) of type `{type_name}`, which no command of \
                 this build has: they never fire (workers leave them pending and count them failed when due)"
            ),
            "bring the command back (or give a command `name = \"..\"` that stores this type name), or cancel them \
             with `ops scheduled cancel ID`"
                .to_owned(),
        ));
    }
}

/// `W001`.
pub(super) fn event_without_reaction(model: &Model, _: &CheckConfig, found: &mut Found) {
    for event in model.of_kind(ElementKind::Event) {
        if !event_handlers(model).any(|h| h.message_key == event.key) {
            found.push((
                event.name.to_owned(),
                format!(
                    "no handler, projector or process manager step takes the event `{}`: it is only stored \
                     (and applied, in an event-sourced aggregate)",
                    event.name
                ),
                "react to it, or ignore this warning".to_owned(),
            ));
        }
    }
}

/// `W002`.
pub(super) fn aggregate_without_commands(model: &Model, _: &CheckConfig, found: &mut Found) {
    for aggregate in model.of_kind(ElementKind::Aggregate) {
        let changed = model.handlers().iter().any(|h| h.aggregate_key == aggregate.key);
        let commanded = model.of_kind(ElementKind::Command).any(|c| c.part_of == Some(aggregate.name));
        if !changed && !commanded {
            found.push((
                aggregate.name.to_owned(),
                format!(
                    "no command and no handler changes the aggregate `{}`: nothing in this domain creates one",
                    aggregate.name
                ),
                format!("add a `#[command(part_of = {})]` and its handler, or remove it", aggregate.name),
            ));
        }
    }
}

/// `W003`.
pub(super) fn event_never_stored(model: &Model, config: &CheckConfig, found: &mut Found) {
    let Some(facts) = config.facts() else { return };
    for event in model.of_kind(ElementKind::Event) {
        if facts.events.get(event.type_name).copied().unwrap_or(0) == 0 {
            found.push((
                event.name.to_owned(),
                format!(
                    "the store holds no event `{}` (stored as `{}`): nothing has raised it yet",
                    event.name, event.type_name
                ),
                "raise it where the model says it happens, or remove it if nothing ever will; on a young store, \
                 ignore this note"
                    .to_owned(),
            ));
        }
    }
}

/// `W005`.
pub(super) fn process_manager_never_ends(model: &Model, _: &CheckConfig, found: &mut Found) {
    for process in model.of_kind(ElementKind::ProcessManager) {
        let steps: Vec<&HandlerInfo> = model
            .handlers()
            .iter()
            .filter(|h| h.aggregate_key == process.key && h.role == HandlerRole::ProcessManager)
            .collect();
        if steps.is_empty() || steps.iter().any(|h| h.ends) {
            continue;
        }
        found.push((
            process.name.to_owned(),
            format!(
                "no step of the process manager `{}` calls `.end()`, so each of its flows is kept, and reacts to \
                 its events, forever",
                process.name
            ),
            "call `ctx.end()` in the step that finishes a flow (a call in a helper function is not seen: turn \
             this rule off with `--severity W005=off` if so)"
                .to_owned(),
        ));
    }
}

/// `W004`.
pub(super) fn projection_fed_by_no_event(model: &Model, _: &CheckConfig, found: &mut Found) {
    for view in model.of_kind(ElementKind::Projection) {
        let methods: Vec<&HandlerInfo> = model
            .handlers()
            .iter()
            .filter(|h| h.aggregate_key == view.key)
            .filter(|h| matches!(h.role, HandlerRole::Projector | HandlerRole::InlineProjector))
            .collect();
        if methods.iter().any(|h| h.kind == MessageKind::Event && in_domain(model, h.message_key)) {
            continue;
        }
        let taken: Vec<String> = methods.iter().map(|h| format!("`{}`", h.message)).collect();
        let message = if taken.is_empty() {
            format!("no projector method feeds the projection `{}`, so its rows never change", view.name)
        } else {
            format!(
                "the projectors of `{}` take only events that are not in this domain ({}), so its rows never change",
                view.name,
                taken.join(", ")
            )
        };
        found.push((
            view.name.to_owned(),
            message,
            format!(
                "include the modules of the events its projectors take, or add a method taking an event of this \
                 domain to an `#[projector(projection = {})]` block",
                view.name
            ),
        ));
    }
}

/// `W007`.
pub(super) fn aggregate_too_large(model: &Model, config: &CheckConfig, found: &mut Found) {
    let limits = config.limits();
    for cluster in model.clusters() {
        let measured = [
            ("root fields", cluster.root.fields.len(), limits.fields, "--max-fields"),
            ("entities", cluster.entities.len(), limits.entities, "--max-entities"),
            ("events", cluster.events.len(), limits.events, "--max-events"),
        ];
        let past: Vec<_> = measured.iter().filter(|(_, n, limit, _)| n > limit).collect();
        if past.is_empty() {
            continue;
        }
        let what: Vec<String> = past.iter().map(|(what, n, limit, _)| format!("{n} {what} (limit {limit})")).collect();
        let flags: Vec<&str> = past.iter().map(|(.., flag)| *flag).collect();
        found.push((
            cluster.root.name.to_owned(),
            format!("the aggregate `{}` is past its size bounds: {}", cluster.root.name, what.join(", ")),
            format!(
                "draw it around what must be consistent in one transaction and split the rest into aggregates \
                 referenced by identity; or, if it is as small as its rules allow, raise the bound ({})",
                flags.join(", ")
            ),
        ));
    }
}
