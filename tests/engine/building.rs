//! What the domain refuses to build: a command without exactly one handler, an event of
//! an event-sourced aggregate without an apply method, two handler methods with one name.

use protean::prelude::*;

#[test]
fn a_command_needs_exactly_one_handler_when_the_domain_is_built() {
    let problems = |module: &str| {
        let error = Domain::builder().module(crate::model(module)).build().unwrap_err();
        error.problems.into_iter().map(|p| format!("{}: {}", p.element, p.message)).collect::<Vec<_>>()
    };
    assert_eq!(
        problems("unhandled"),
        ["Post: command `Post` has no handler: add a method `async fn(ctx: &mut Context<Ledger>, command: Post)` \
          to a `#[handler(part_of = Ledger)]`"]
    );
    assert_eq!(
        problems("twice"),
        ["Post: command `Post` has 2 handlers (Posting::post, PostingAgain::post_again): \
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

    let error = Domain::builder().module(crate::model("unapplied")).build().unwrap_err();
    let problems: Vec<String> = error.problems.iter().map(|p| format!("{}: {}", p.element, p.message)).collect();
    assert_eq!(
        problems,
        ["CoinLost: event `CoinLost` of the event-sourced `Wallet` has no apply method: add \
          `fn(&mut self, event: &CoinLost)` to an `#[apply] impl Wallet` block"]
    );
}

#[test]
fn two_handler_methods_with_one_name_are_refused_since_handled_events_are_recorded_by_it() {
    let error = Domain::builder().module(crate::model("dups")).build().unwrap_err();
    let [problem] = error.problems.as_slice() else { panic!("one problem: {error}") };
    assert_eq!(problem.element, "Reactions::on");
    assert!(
        problem.message.starts_with(
            "2 handler methods are named `Reactions::on` (in engine::dups::billing, engine::dups::shipping)"
        ),
        "{}",
        problem.message
    );
}
