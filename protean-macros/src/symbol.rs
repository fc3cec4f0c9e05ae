//! The attribute keys the macros accept, in one place.

/// `part_of = Parent` on `#[entity]`, `#[command]`, `#[event]` and `#[handler]`.
pub const PART_OF: &str = "part_of";
/// `version = N` on `#[command]`, `#[event]` and `#[projection]`.
pub const VERSION: &str = "version";
/// `name = "Stable.Name"` on `#[command]` and `#[event]`.
pub const NAME: &str = "name";
/// `#[aggregate(event_sourced)]`: the aggregate's events are its state.
pub const EVENT_SOURCED: &str = "event_sourced";
/// `upcast = function` on `#[event]`: brings payloads of older versions up to date.
pub const UPCAST: &str = "upcast";
/// `returns = Type` on `#[command]`: what the command's handler hands back to the caller.
pub const RETURNS: &str = "returns";

/// The field attribute.
pub const FIELD: &str = "field";
/// `#[field(identifier)]`: this field is the identity.
pub const IDENTIFIER: &str = "identifier";
/// `#[field(min = N)]`.
pub const MIN: &str = "min";
/// `#[field(max = N)]`.
pub const MAX: &str = "max";
/// `#[field(min_length = N)]`.
pub const MIN_LENGTH: &str = "min_length";
/// `#[field(max_length = N)]`.
pub const MAX_LENGTH: &str = "max_length";
/// `#[field(length = N)]`.
pub const LENGTH: &str = "length";
/// `#[field(default = expr)]`.
pub const DEFAULT: &str = "default";

/// The invariant attribute on the struct.
pub const INVARIANT: &str = "invariant";
/// `#[invariant(pre = method)]`.
pub const PRE: &str = "pre";
/// `#[invariant(post = method)]`.
pub const POST: &str = "post";

/// `projection = View` on `#[projector]`: the projection whose rows it changes.
pub const PROJECTION: &str = "projection";
/// `#[projector(projection = View, inline)]`: runs in the unit of work raising the event.
pub const INLINE: &str = "inline";
/// `correlate = field` on `#[process_manager]`, and the `#[correlate(field)]` method
/// attribute: the event field holding the flow's key.
pub const CORRELATE: &str = "correlate";
/// `#[key]` on a field of a `#[projection]`: its value keys the rows.
pub const KEY: &str = "key";
/// `#[index]` on a field of a `#[projection]`: queries filter and order on it.
pub const INDEX: &str = "index";
