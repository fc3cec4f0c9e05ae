//! `#[process_manager]` on a struct: the state of a flow. The struct gets the derives,
//! `DomainElement` and the registry descriptor like every element, and
//! `ProcessManager`: its name and the event field its flows are keyed by. Its steps are
//! the methods of `#[process_manager] impl` blocks (see `crate::steps`).

use proc_macro2::TokenStream;
use quote::quote;

use super::descriptor::descriptor;
use super::{declared_struct, derives, element_consts, private};
use crate::ast::Element;

/// The correlation field of `#[process_manager(correlate = field)]`, `""` when not given.
fn correlate(el: &Element) -> String {
    el.args.correlate.as_ref().map(ToString::to_string).unwrap_or_default()
}

/// The whole expansion of a checked `#[process_manager]` struct.
pub(super) fn process_manager(el: &Element) -> TokenStream {
    let p = private();
    let ident = &el.ident;
    let name = ident.to_string();
    let correlate = correlate(el);
    let keyed = if correlate.is_empty() {
        "Each step names the event field holding the flow's key with `#[correlate(field)]`.".to_string()
    } else {
        format!("Its flows are keyed by the events' field `{correlate}`.")
    };
    let doc = format!(
        "**Process manager** `{name}`: the state of one flow across aggregates, started and moved on by the \
         events listed under [*Trait Implementations*](#trait-implementations) as `Handles<Event, {name}>`. \
         {keyed} It acts only by sending and scheduling commands."
    );
    let derive = derives(el, &["Clone", "Debug", "PartialEq", "Serialize", "Deserialize"]);
    let item = declared_struct(el, quote!(#[doc = ""] #[doc = #doc] #derive), TokenStream::new(), TokenStream::new());
    let consts = element_consts(el);
    let descriptor = descriptor(el);
    quote! {
        #item
        #consts
        #[automatically_derived]
        impl #p::ProcessManager for #ident {
            const NAME: &'static str = #name;
            const CORRELATE: &'static str = #correlate;
        }
        #descriptor
    }
}
