//! The domain model: the registry's descriptors, checked for the rules the compiler
//! cannot see, grouped into aggregate clusters, and exported as JSON, Mermaid and DOT.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::model::element::ElementKind;
use crate::model::field::FieldShape;
use crate::registry::refusal::{self, Refusal};
use crate::registry::{ElementDescriptor, HandlerInfo, HandlerRole, MessageKind};

/// A rule of the model broken in a way the compiler cannot see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelProblem {
    /// The kind of problem's stable code (`"E101"`): see [`REFUSALS`](super::REFUSALS).
    pub code: &'static str,
    /// The element the problem is about.
    pub element: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Every problem found while building a [`Domain`](crate::runtime::Domain).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ModelError {
    /// All problems, not only the first.
    pub problems: Vec<ModelProblem>,
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "the domain model has {} problem(s):", self.problems.len())?;
        for p in &self.problems {
            writeln!(f, "  - {} {}: {}", p.code, p.element, p.message)?;
        }
        Ok(())
    }
}

/// The checked model: the elements and handler methods of a domain, grouped into
/// aggregate clusters. [`Domain::model`](crate::runtime::Domain::model) gives it.
#[derive(Debug, Clone)]
pub struct Model {
    elements: Vec<&'static ElementDescriptor>,
    handlers: Vec<HandlerInfo>,
}

/// One aggregate with everything that belongs to it.
#[derive(Debug, Clone)]
pub struct Cluster<'a> {
    /// The aggregate root.
    pub root: &'a ElementDescriptor,
    /// Its entities, nested ones included.
    pub entities: Vec<&'a ElementDescriptor>,
    /// The commands that change it.
    pub commands: Vec<&'a ElementDescriptor>,
    /// The events it raises.
    pub events: Vec<&'a ElementDescriptor>,
    /// The value objects its root and entities embed.
    pub value_objects: Vec<&'a str>,
}

impl ModelProblem {
    /// A problem of kind `kind` about `element`.
    pub(crate) fn new(kind: Refusal, element: impl Into<String>, message: impl Into<String>) -> Self {
        ModelProblem { code: kind.code, element: element.into(), message: message.into() }
    }
}

impl Model {
    /// Sorts the elements and handlers and checks them for what the compiler cannot see,
    /// such as a command with no handler or with two; `has_applier(aggregate_key,
    /// event_type_name)` says whether an event-sourced aggregate applies that event.
    pub(crate) fn checked(
        mut elements: Vec<&'static ElementDescriptor>,
        mut handlers: Vec<HandlerInfo>,
        has_applier: impl Fn(&str, &str) -> bool,
    ) -> Result<Model, ModelError> {
        elements.sort_by(|a, b| (a.kind, a.name, a.key).cmp(&(b.kind, b.name, b.key)));
        handlers.sort_by(|a, b| (a.handler, a.method, a.module_path).cmp(&(b.handler, b.method, b.module_path)));
        let model = Model { elements, handlers };
        model.check(&has_applier)?;
        Ok(model)
    }

    /// The elements, sorted by kind and name.
    pub fn elements(&self) -> &[&'static ElementDescriptor] {
        &self.elements
    }

    /// The handler methods, sorted by handler and method.
    pub fn handlers(&self) -> &[HandlerInfo] {
        &self.handlers
    }

    /// The element with this name.
    pub fn element(&self, name: &str) -> Option<&'static ElementDescriptor> {
        self.elements.iter().copied().find(|d| d.name == name)
    }

    /// The elements of one kind.
    pub fn of_kind(&self, kind: ElementKind) -> impl Iterator<Item = &'static ElementDescriptor> + '_ {
        self.elements.iter().copied().filter(move |d| d.kind == kind)
    }

    /// The aggregate an element belongs to (itself for an aggregate), following `part_of`.
    pub fn aggregate_of(&self, name: &str) -> Option<&'static ElementDescriptor> {
        let mut current = self.element(name)?;
        for _ in 0..=self.elements.len() {
            match (current.kind, current.part_of) {
                (ElementKind::Aggregate, _) => return Some(current),
                (_, Some(parent)) => current = self.element(parent)?,
                (_, None) => return None,
            }
        }
        None
    }

    /// Each aggregate with its entities, commands, events and value objects.
    pub fn clusters(&self) -> Vec<Cluster<'static>> {
        self.of_kind(ElementKind::Aggregate)
            .map(|root| {
                let members = |kind| {
                    self.of_kind(kind)
                        .filter(|d| self.aggregate_of(d.name).map(|a| a.key) == Some(root.key))
                        .collect::<Vec<_>>()
                };
                let entities = members(ElementKind::Entity);
                let mut value_objects = BTreeSet::new();
                for holder in std::iter::once(root).chain(entities.iter().copied()) {
                    for field in holder.fields {
                        self.collect_value_objects(&(field.shape)(), &mut value_objects);
                    }
                }
                Cluster {
                    root,
                    entities,
                    commands: members(ElementKind::Command),
                    events: members(ElementKind::Event),
                    value_objects: value_objects.into_iter().collect(),
                }
            })
            .collect()
    }

    fn collect_value_objects(&self, shape: &FieldShape, into: &mut BTreeSet<&'static str>) {
        if let Some((name, FieldShape::ValueObject { .. } | FieldShape::Choices { .. })) = shape.target() {
            if into.insert(name) {
                if let Some(vo) = self.element(name) {
                    for field in vo.fields {
                        self.collect_value_objects(&(field.shape)(), into);
                    }
                }
            }
        }
    }

    fn check(&self, has_applier: &dyn Fn(&str, &str) -> bool) -> Result<(), ModelError> {
        let mut problems = Vec::new();
        let mut problem =
            |kind: Refusal, element: &str, message: String| problems.push(ModelProblem::new(kind, element, message));

        let mut by_name: BTreeMap<&str, Vec<&ElementDescriptor>> = BTreeMap::new();
        for d in &self.elements {
            by_name.entry(d.name).or_default().push(d);
        }
        for (name, same) in by_name.iter().filter(|(_, v)| v.len() > 1) {
            let places: Vec<_> = same.iter().map(|d| d.module_path).collect();
            problem(
                refusal::DUPLICATE_ELEMENT_NAME,
                name,
                format!(
                    "{} elements are named `{name}` (in {}): names must be unique in a domain; rename one, \
                     or build the domain from one module with `Domain::builder().module(..)`",
                    same.len(),
                    places.join(", ")
                ),
            );
        }

        let mut type_names: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for d in self.elements.iter().filter(|d| matches!(d.kind, ElementKind::Command | ElementKind::Event)) {
            type_names.entry(d.type_name).or_default().push(d.name);
        }
        for (type_name, names) in type_names.iter().filter(|(_, v)| v.len() > 1) {
            problem(
                refusal::DUPLICATE_TYPE_NAME,
                names[0],
                format!(
                    "`{}` share the stored type name `{type_name}`: give each a unique `name = \"..\"`",
                    names.join("`, `")
                ),
            );
        }

        for d in &self.elements {
            let Some(parent) = d.part_of else { continue };
            let Some(parent_d) = self.element(parent) else {
                problem(
                    refusal::PART_OF_UNKNOWN_ELEMENT,
                    d.name,
                    format!(
                        "`{}` is `part_of = {parent}`, but `{parent}` is not in this domain: include its module",
                        d.name
                    ),
                );
                continue;
            };
            if d.kind == ElementKind::Entity {
                if self.aggregate_of(d.name).is_none() {
                    problem(
                        refusal::PART_OF_CYCLE,
                        d.name,
                        format!("`part_of` of `{}` never leads to an aggregate (it forms a cycle): make the chain end at an `#[aggregate]`", d.name),
                    );
                }
                let held = parent_d.fields.iter().any(|f| {
                    matches!((f.shape)(), FieldShape::HasMany { entity } | FieldShape::HasOne { entity } if entity == d.name)
                });
                if !held {
                    problem(
                        refusal::ENTITY_NOT_HELD,
                        d.name,
                        format!(
                            "entity `{}` is `part_of = {parent}`, but no field of `{parent}` holds it: \
                             add a `HasMany<{0}>` or `HasOne<{0}>` field to `{parent}`",
                            d.name
                        ),
                    );
                }
            }
        }

        self.check_handlers(&mut problem);
        self.check_correlation(&mut problem);
        self.check_event_sourcing(has_applier, &mut problem);

        if problems.is_empty() {
            Ok(())
        } else {
            Err(ModelError { problems })
        }
    }

    fn check_event_sourcing(
        &self,
        has_applier: &dyn Fn(&str, &str) -> bool,
        problem: &mut impl FnMut(Refusal, &str, String),
    ) {
        for aggregate in self.of_kind(ElementKind::Aggregate).filter(|a| a.event_sourced) {
            for event in self.of_kind(ElementKind::Event).filter(|e| e.part_of == Some(aggregate.name)) {
                if !has_applier(aggregate.key, event.type_name) {
                    problem(
                        refusal::EVENT_WITHOUT_APPLY,
                        event.name,
                        format!(
                            "event `{}` of the event-sourced `{}` has no apply method: add \
                             `fn(&mut self, event: &{0})` to an `#[apply] impl {1}` block",
                            event.name, aggregate.name
                        ),
                    );
                }
            }
        }
    }

    /// Every process manager's step takes events that hold the field its flows are keyed
    /// by: otherwise no event it takes could ever be routed to a flow. (The macros refuse
    /// it at compile time; this catches what they cannot see.)
    fn check_correlation(&self, problem: &mut impl FnMut(Refusal, &str, String)) {
        for step in self.handlers.iter().filter(|h| h.role == HandlerRole::ProcessManager) {
            let Some(event) = self.elements.iter().find(|d| d.key == step.message_key) else { continue };
            let field = step.correlate;
            if field.is_empty() {
                problem(
                    refusal::STEP_WITHOUT_CORRELATION,
                    step.handler,
                    format!(
                        "step `{}` has no correlation field: name the field of `{}` holding the flow's key on \
                         the struct, `#[process_manager(correlate = field)]`, or on the step, `#[correlate(field)]`",
                        step.name(),
                        event.name
                    ),
                );
            } else if !event.fields.iter().any(|f| f.name == field) {
                problem(
                    refusal::STEP_EVENT_LACKS_CORRELATION,
                    step.handler,
                    format!(
                        "step `{}` takes `{}`, which has no field `{field}` to route it to its flow by: add \
                         `{field}` to `{1}`, or name the field of `{1}` that holds the flow's key on the step, \
                         with `#[correlate(field)]`",
                        step.name(),
                        event.name
                    ),
                );
            }
        }
    }

    /// Every projection has a projector and every process manager a step: without them
    /// nothing would ever change their rows or flows.
    fn check_fed(&self, problem: &mut impl FnMut(Refusal, &str, String)) {
        let fed = |d: &ElementDescriptor, roles: &[HandlerRole]| {
            self.handlers.iter().any(|h| h.aggregate_key == d.key && roles.contains(&h.role))
        };
        for view in self.of_kind(ElementKind::Projection) {
            if !fed(view, &[HandlerRole::Projector, HandlerRole::InlineProjector]) {
                problem(
                    refusal::PROJECTION_WITHOUT_PROJECTOR,
                    view.name,
                    format!(
                        "projection `{0}` has no projector, so its rows never change: add an \
                         `#[projector(projection = {0})]` impl block with a method per event that feeds it, \
                         or include its module",
                        view.name
                    ),
                );
            }
        }
        for process in self.of_kind(ElementKind::ProcessManager) {
            if !fed(process, &[HandlerRole::ProcessManager]) {
                problem(
                    refusal::PROCESS_MANAGER_WITHOUT_STEPS,
                    process.name,
                    format!(
                        "process manager `{0}` has no steps, so no flow ever starts: add a \
                         `#[process_manager] impl {0}` block with a method per event it takes",
                        process.name
                    ),
                );
            }
        }
    }

    fn check_handlers(&self, problem: &mut impl FnMut(Refusal, &str, String)) {
        let mut by_command: BTreeMap<&str, Vec<&HandlerInfo>> = BTreeMap::new();
        for h in self.handlers.iter().filter(|h| h.kind == MessageKind::Command) {
            by_command.entry(h.message_key).or_default().push(h);
        }
        for command in self.of_kind(ElementKind::Command) {
            let aggregate = command.part_of.unwrap_or("its aggregate");
            match by_command.get(command.key).map(Vec::as_slice) {
                None | Some([]) => problem(
                    refusal::COMMAND_WITHOUT_HANDLER,
                    command.name,
                    format!(
                        "command `{}` has no handler: add a method `async fn(ctx: &mut Context<{aggregate}>, command: {0})` \
                         to a `#[handler(part_of = {aggregate})]`",
                        command.name
                    ),
                ),
                Some([_]) => {}
                Some(several) => problem(
                    refusal::COMMAND_WITH_SEVERAL_HANDLERS,
                    command.name,
                    format!(
                        "command `{}` has {} handlers ({}): a command is handled exactly once; keep one",
                        command.name,
                        several.len(),
                        several.iter().map(|h| h.name()).collect::<Vec<_>>().join(", ")
                    ),
                ),
            }
        }
        self.check_fed(problem);
        let mut ids: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for h in &self.handlers {
            ids.entry(h.id).or_default().push(h.module_path);
        }
        for (id, modules) in ids.iter().filter(|(_, m)| m.len() > 1) {
            problem(
                refusal::DUPLICATE_HANDLER_ID,
                id,
                format!(
                    "{} handler methods are named `{id}` (in {}): the events a handler took are recorded by \
                     that name, so it must be unique; rename one",
                    modules.len(),
                    modules.join(", ")
                ),
            );
        }
        for h in &self.handlers {
            if !self.elements.iter().any(|d| d.key == h.aggregate_key) {
                let what = match h.role {
                    HandlerRole::Handler => format!("handler `{}` is `part_of = {}`", h.name(), h.aggregate),
                    HandlerRole::Projector | HandlerRole::InlineProjector => {
                        format!("projector `{}` is for the projection `{}`", h.name(), h.aggregate)
                    }
                    HandlerRole::ProcessManager => {
                        format!("`{}` is a step of the process manager `{}`", h.name(), h.aggregate)
                    }
                };
                problem(
                    refusal::HANDLER_OF_UNKNOWN_ELEMENT,
                    h.handler,
                    format!("{what}, which is not in this domain: include its module"),
                );
            }
            if h.kind == MessageKind::Command && !self.elements.iter().any(|d| d.key == h.message_key) {
                problem(
                    refusal::HANDLER_TAKES_UNKNOWN_COMMAND,
                    h.handler,
                    format!(
                        "handler `{}` takes the command `{}`, which is not in this domain: include its module",
                        h.name(),
                        h.message
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{ContainerSerde, FieldDescriptor, FieldOptions, Presence, Upcasts};

    fn identifier() -> FieldShape {
        FieldShape::Identifier { target: "Loan" }
    }

    fn field(name: &'static str) -> FieldDescriptor {
        FieldDescriptor {
            name,
            rust_type: "Identifier<Loan>",
            shape: identifier,
            required: true,
            options: <FieldOptions as Default>::default(),
            docs: "",
            stored: name,
            presence: Presence::Required,
            may_be_omitted: false,
            flatten: false,
            aliases: &[],
        }
    }

    fn element(
        kind: ElementKind,
        name: &'static str,
        part_of: Option<&'static str>,
        fields: Vec<FieldDescriptor>,
    ) -> &'static ElementDescriptor {
        Box::leak(Box::new(ElementDescriptor {
            kind,
            name,
            key: Box::leak(format!("lending::{name}").into_boxed_str()),
            type_name: name,
            version: 1,
            module_path: "lending",
            part_of,
            identity: None,
            generated_identity: false,
            fields: Box::leak(fields.into_boxed_slice()),
            invariants: &[],
            choices: &[],
            docs: "",
            event_sourced: false,
            serde: ContainerSerde::default(),
            indexed: &[],
            upcasts: Upcasts::None,
            upcaster: None,
            decode: None,
        }))
    }

    /// A step of `Lending` taking `event`, routed by `correlate`.
    fn step(method: &'static str, event: &'static str, correlate: &'static str) -> HandlerInfo {
        HandlerInfo {
            handler: "Lending",
            method,
            id: Box::leak(format!("Lending::{method}").into_boxed_str()),
            module_path: "lending",
            aggregate_key: "lending::Lending",
            aggregate: "Lending",
            kind: MessageKind::Event,
            message_key: Box::leak(format!("lending::{event}").into_boxed_str()),
            message: event,
            type_name: event,
            docs: "",
            role: HandlerRole::ProcessManager,
            correlate,
            ends: false,
        }
    }

    fn lending() -> Vec<&'static ElementDescriptor> {
        vec![
            element(ElementKind::Aggregate, "Loan", None, vec![]),
            element(ElementKind::Aggregate, "Member", None, vec![]),
            element(ElementKind::Event, "BookLent", Some("Loan"), vec![field("loan_id"), field("member_id")]),
            element(ElementKind::Event, "MemberSuspended", Some("Member"), vec![field("member_id")]),
            element(ElementKind::ProcessManager, "Lending", None, vec![field("loan_id")]),
        ]
    }

    #[test]
    fn a_step_whose_event_lacks_the_correlation_field_is_a_build_error() {
        let steps = vec![step("lent", "BookLent", "loan_id"), step("suspended", "MemberSuspended", "loan_id")];
        let err = Model::checked(lending(), steps, |_, _| true).unwrap_err();
        assert_eq!(
            err.problems,
            vec![ModelProblem {
                code: "E113",
                element: "Lending".into(),
                message: "step `Lending::suspended` takes `MemberSuspended`, which has no field `loan_id` to route it \
                          to its flow by: add `loan_id` to `MemberSuspended`, or name the field of `MemberSuspended` \
                          that holds the flow's key on the step, with `#[correlate(field)]`"
                    .into(),
            }]
        );
    }

    #[test]
    fn steps_routed_by_fields_their_events_hold_build() {
        let steps = vec![step("lent", "BookLent", "loan_id"), step("suspended", "MemberSuspended", "member_id")];
        let model = Model::checked(lending(), steps, |_, _| true).unwrap();
        let routed: Vec<_> = model.handlers().iter().map(|h| (h.name(), h.correlation_field())).collect();
        assert_eq!(routed, [("Lending::lent", Some("loan_id")), ("Lending::suspended", Some("member_id"))]);
    }

    #[test]
    fn a_step_without_a_correlation_field_is_a_build_error() {
        let steps = vec![step("lent", "BookLent", "")];
        let err = Model::checked(lending(), steps, |_, _| true).unwrap_err();
        let messages: Vec<_> = err.problems.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(messages.len(), 1, "{err}");
        assert!(messages[0].starts_with("step `Lending::lent` has no correlation field"), "{err}");
    }
}
