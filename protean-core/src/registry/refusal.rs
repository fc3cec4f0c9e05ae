//! The codes of the problems for which building a [`Domain`](crate::runtime::Domain)
//! refuses a model ([`ModelProblem::code`](super::ModelProblem::code)): one per kind of
//! problem, `E100` and up, stable like the codes of [`RULES`](super::RULES).

use serde::Serialize;

/// A kind of problem that makes building a domain fail: its code, stable name and what
/// it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// The stable code (`"E101"`).
    pub code: &'static str,
    /// The stable name (`"command-without-handler"`).
    pub name: &'static str,
    /// What the problem is, in a sentence.
    pub summary: &'static str,
}

macro_rules! refusals {
    ($($(#[$doc:meta])* $id:ident = $code:literal, $name:literal, $summary:literal;)*) => {
        $(
            $(#[$doc])*
            pub const $id: Refusal = Refusal { code: $code, name: $name, summary: $summary };
        )*
        /// Every kind of problem that refuses a model, in code order.
        pub const REFUSALS: &[Refusal] = &[$($id),*];
    };
}

refusals! {
    /// `E100`.
    DUPLICATE_ELEMENT_NAME = "E100", "duplicate-element-name", "two elements of the domain have the same name";
    /// `E101`.
    COMMAND_WITHOUT_HANDLER = "E101", "command-without-handler", "a command no handler takes";
    /// `E102`.
    COMMAND_WITH_SEVERAL_HANDLERS = "E102", "command-with-several-handlers", "a command more than one handler takes";
    /// `E103`.
    PROJECTION_WITHOUT_PROJECTOR = "E103", "projection-without-projector", "a projection no projector feeds";
    /// `E104`.
    PROCESS_MANAGER_WITHOUT_STEPS = "E104", "process-manager-without-steps", "a process manager with no step";
    /// `E105`.
    DUPLICATE_TYPE_NAME = "E105", "duplicate-type-name", "commands or events that share the type name they are stored under";
    /// `E106`.
    PART_OF_UNKNOWN_ELEMENT = "E106", "part-of-unknown-element", "an element `part_of` an element that is not in the domain";
    /// `E107`.
    PART_OF_CYCLE = "E107", "part-of-cycle", "an entity whose `part_of` chain never reaches an aggregate";
    /// `E108`.
    ENTITY_NOT_HELD = "E108", "entity-not-held", "an entity no field of its parent holds";
    /// `E109`.
    DUPLICATE_HANDLER_ID = "E109", "duplicate-handler-id", "two handler methods with the same `Handler::method` name";
    /// `E110`.
    HANDLER_OF_UNKNOWN_ELEMENT = "E110", "handler-of-unknown-element", "a handler, projector or step of an aggregate, projection or process manager that is not in the domain";
    /// `E111`.
    HANDLER_TAKES_UNKNOWN_COMMAND = "E111", "handler-takes-unknown-command", "a handler method taking a command that is not in the domain";
    /// `E112`.
    STEP_WITHOUT_CORRELATION = "E112", "step-without-correlation-field", "a process manager step with no correlation field";
    /// `E113`.
    STEP_EVENT_LACKS_CORRELATION = "E113", "step-event-lacks-correlation-field", "a step taking an event that lacks the field its flows are keyed by";
    /// `E114`.
    EVENT_WITHOUT_APPLY = "E114", "event-without-apply", "an event of an event-sourced aggregate with no apply method";
    /// `E115`.
    RETRY_POLICY_OF_UNKNOWN_HANDLER = "E115", "retry-policy-of-unknown-handler", "a per-handler retry policy naming an event handler the domain does not have";
}
