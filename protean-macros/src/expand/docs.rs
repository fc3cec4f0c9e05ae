//! The paragraph the macros add to an element's own documentation, after the user's:
//! what kind of element it is, what it belongs to, and where its page lists what it
//! touches and who reacts to it.
//!
//! The text names types in code spans, never in intra-doc links. The trait impls that
//! rustdoc lists on the page link every type involved (`impl Raises<OrderPlaced> for
//! Order`), and rustdoc resolves those whatever the types are named and leaves out the
//! private ones; a generated link could be ambiguous (an entity named `Copy` is also a
//! derive macro) or point to a private item, warnings a user's `-D warnings` would turn
//! into errors they could not fix.

use proc_macro2::TokenStream;
use quote::{quote, ToTokens};

use super::{last_segment, stable_type_name, version};
use crate::ast::{Body, Element, Kind};

/// Where the relations are listed: the page's section of trait implementations.
const LISTED: &str = "[*Trait Implementations*](#trait-implementations)";

/// The generated paragraph of an aggregate, entity, value object, command or event, as
/// doc attributes to put after the user's (a blank line first, so it is a paragraph of
/// its own).
pub(super) fn element_doc(el: &Element) -> TokenStream {
    let text = match el.kind {
        Kind::Aggregate => aggregate(el),
        Kind::Entity => entity(el),
        Kind::ValueObject => value_object(el),
        Kind::Command => command(el),
        Kind::Event => event(el),
        // Their macros write their own (see `projection` and `process`).
        Kind::Projection | Kind::ProcessManager => return TokenStream::new(),
    };
    quote!(#[doc = ""] #[doc = #text])
}

/// The name of the element's `part_of`, for the text.
fn parent(el: &Element) -> String {
    el.part_of().map(last_segment).unwrap_or_default()
}

/// The paragraph of an aggregate.
fn aggregate(el: &Element) -> String {
    let name = &el.ident;
    let sourced = if el.args.event_sourced { ", event-sourced (its state is replayed from its events)" } else { "" };
    format!(
        "**Aggregate** `{name}`{sourced}: a consistency boundary, loaded, changed and saved as one. Listed under \
         {LISTED}: the commands that change it (`Accepts<Command>`), the events it raises (`Raises<Event>`), the \
         entities it holds (`Contains<Entity>`), and each handler method that changes it, with the command or event \
         it takes (`Handles<Message, Handler>`). Other aggregates refer to it by `Identifier<{name}>`."
    )
}

/// The paragraph of an entity.
fn entity(el: &Element) -> String {
    let (name, parent) = (&el.ident, parent(el));
    format!(
        "**Entity** held by `{parent}`: it has an identity of its own, lives in its aggregate's cluster and changes \
         only through that aggregate. Listed under {LISTED}: what holds it (`Contains<{name}>`), and the entities it \
         holds in turn (`Contains<Entity>`)."
    )
}

/// The paragraph of a value object, a struct or an enum of choices.
fn value_object(el: &Element) -> String {
    let name = &el.ident;
    match el.body {
        Body::Choices(_) => format!(
            "**Value object** `{name}`: one of a closed set of choices (`Choices::CHOICES`), stored by variant name, \
             and parsed from it with `str::parse`."
        ),
        Body::Struct(_) => format!(
            "**Value object** `{name}`: no identity, compared by value, immutable (its fields are read through \
             getters); `{name}::new(..)` and `{name}::builder()` check it."
        ),
    }
}

/// The paragraph of a command.
fn command(el: &Element) -> String {
    let (name, parent) = (&el.ident, parent(el));
    let (type_name, version) = (stable_type_name(el), version(el));
    let reply = el.args.returns.as_ref().map_or_else(String::new, |t| {
        format!(" Its handler replies with `{}`.", t.to_token_stream().to_string().replace(' ', ""))
    });
    format!(
        "**Command** of `{parent}`, stored as `{type_name}` (version {version}): a request to change one `{parent}`.\
         {reply} Listed under {LISTED}: the aggregate it changes (`Accepts<{name}>`), and the handler method that \
         handles it (`Handles<{name}, Handler>`, on that aggregate)."
    )
}

/// The paragraph of an event: who reacts to it is listed on its page.
fn event(el: &Element) -> String {
    let (name, parent) = (&el.ident, parent(el));
    let (type_name, version) = (stable_type_name(el), version(el));
    format!(
        "**Event** of `{parent}`, stored as `{type_name}` (version {version}): a fact that `{parent}` raises. Listed \
         under {LISTED}: the aggregate raising it (`Raises<{name}>`), and who reacts to it — each handler method as \
         `Handles<{name}, Handler>` (on the aggregate it changes), each projector as `FedBy<{name}, Projector>` (on \
         the projection it feeds), and each process manager as `Handles<{name}, ProcessManager>`."
    )
}
