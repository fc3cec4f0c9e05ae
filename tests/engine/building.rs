//! What the domain refuses to build: a command without exactly one handler, an event of
//! an event-sourced aggregate without an apply method, two handler methods with one name,
//! a module that declares nothing.

use protean::prelude::*;
use protean::registry::ModelError;
use protean::runtime::BuildError;

/// The model's problems that refuse to build the domain of `module`.
fn model_error(module: &str) -> ModelError {
    match Domain::builder().module(crate::model(module)).build() {
        Err(BuildError::Model(error)) => error,
        Err(other) => panic!("expected the model's problems, got: {other}"),
        Ok(_) => panic!("expected the model's problems, but the domain was built"),
    }
}

#[test]
fn a_command_needs_exactly_one_handler_when_the_domain_is_built() {
    let problems = |module: &str| {
        let error = model_error(module);
        error.problems.into_iter().map(|p| format!("{} {}: {}", p.code, p.element, p.message)).collect::<Vec<_>>()
    };
    assert_eq!(
        problems("unhandled"),
        ["E101 Post: command `Post` has no handler: add a method `async fn(ctx: &mut Context<Ledger>, command: Post)` \
          to a `#[handler(part_of = Ledger)]`"]
    );
    assert_eq!(
        problems("twice"),
        ["E102 Post: command `Post` has 2 handlers (Posting::post, PostingAgain::post_again): \
          a command is handled exactly once; keep one"]
    );
}

#[test]
fn an_event_sourced_aggregate_applies_what_it_raises_and_needs_an_apply_for_every_event() {
    use crate::unapplied::*;
    let mut wallet = Wallet::builder().coins(0u32).build().unwrap();
    wallet.raise(CoinAdded { coins: 3 });
    assert_eq!(wallet.coins, 3, "raising applies the event at once");
    assert_eq!(wallet.pending_events().len(), 1);
    assert_eq!(Wallet::blank(wallet.id.clone()).coins, 0, "a blank wallet starts from the defaults");

    let error = model_error("unapplied");
    let problems: Vec<String> =
        error.problems.iter().map(|p| format!("{} {}: {}", p.code, p.element, p.message)).collect();
    assert_eq!(
        problems,
        ["E114 CoinLost: event `CoinLost` of the event-sourced `Wallet` has no apply method: add \
          `fn(&mut self, event: &CoinLost)` to an `#[apply] impl Wallet` block"]
    );
}

#[test]
fn two_handler_methods_with_one_name_are_refused_since_handled_events_are_recorded_by_it() {
    let error = model_error("dups");
    let [problem] = error.problems.as_slice() else { panic!("one problem: {error}") };
    assert_eq!((problem.code, problem.element.as_str()), ("E109", "Reactions::on"));
    assert!(
        problem.message.starts_with(
            "2 handler methods are named `Reactions::on` (in engine::dups::billing, engine::dups::shipping)"
        ),
        "{}",
        problem.message
    );
}

#[test]
fn a_module_that_declares_nothing_is_refused_naming_the_modules_that_do_closest_first() {
    // A typo of `engine::ecommerce`: before, a domain with no elements was built, and
    // `process` then said to add a handler that exists.
    let typo = crate::model("ecomerce");
    let error = Domain::builder().module(crate::model("ecommerce")).module(typo.clone()).build().unwrap_err();
    let BuildError::UnknownModule { module, known } = &error else {
        panic!("expected an unknown module, got: {error}")
    };
    assert_eq!(module, &typo);
    assert_eq!(known.first().map(String::as_str), Some(crate::model("ecommerce").as_str()), "closest first");
    for declared in [crate::model("lab"), crate::model("dups::billing"), crate::model("dups"), "engine".to_owned()] {
        assert!(known.contains(&declared), "{declared} is listed: {known:?}");
    }
    assert!(
        known.iter().all(|m| m == "engine" || m.starts_with("engine::")),
        "only modules of this program: {known:?}"
    );
    assert!(error.model().is_none());
    let message = error.to_string();
    assert!(
        message.starts_with(
            "no registered element or handler is declared in module `engine::ecomerce` or below it: \
             `DomainBuilder::module` takes a `module_path!()` prefix; the modules that have some are, \
             closest first: `engine::ecommerce`, "
        ),
        "{message}"
    );
    assert!(message.ends_with(&format!("(and {} more)", known.len() - 8)), "{message}");

    // A path written from `crate::` is not what `module_path!()` gives.
    let error = Domain::builder().module("crate::lab").build().unwrap_err();
    assert!(matches!(&error, BuildError::UnknownModule { module, .. } if module == "crate::lab"), "{error}");

    // A module with handlers only, or a parent of modules with elements, matches.
    assert!(Domain::builder().module(crate::model("dups")).build().is_err_and(|e| e.model().is_some()));
    Domain::builder().module(crate::model("ecommerce")).module(crate::model("lab")).build().unwrap();
}

#[test]
fn a_retry_policy_for_a_handler_the_domain_lacks_is_refused_with_its_code() {
    let built = Domain::builder()
        .module(crate::model("ecommerce"))
        .handler_policy("Nobody::on", protean::runtime::RetryPolicy::default())
        .build();
    let Err(BuildError::Model(error)) = built else { panic!("expected the model's problems") };
    let codes: Vec<(&str, &str)> = error.problems.iter().map(|p| (p.code, p.element.as_str())).collect();
    assert_eq!(codes, [("E115", "Nobody::on")], "{error}");
}
