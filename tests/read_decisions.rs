//! Decisions made on read models, under concurrency ("Option 3" of *Design Small
//! Aggregates*): a handler reads an inline projection and decides, and the decision
//! holds however many units of work race, on every store. A unit's commit re-checks the
//! rows and queries it read; a reader of an unrelated row does not conflict.

use std::process::ExitCode;
use std::sync::Arc;

use protean::prelude::*;
use protean::runtime::{DeliveryMode, ProcessError};
use protean::store::{Store, StreamId};

#[path = "../examples/ecommerce/model.rs"]
#[allow(dead_code)]
mod ecommerce;
#[path = "support/harness.rs"]
#[allow(dead_code)]
mod harness;

use harness::StoreCase;

/// A lending library: a member may have at most [`LIMIT`] loans open.
mod lending {
    use protean::prelude::*;

    /// How many loans a member may have open.
    pub const LIMIT: u32 = 3;

    #[aggregate]
    pub struct Loan {
        pub member: String,
    }

    #[event(part_of = Loan)]
    pub struct LoanOpened {
        pub loan_id: Identifier<Loan>,
        pub member: String,
    }

    /// Opens a loan when the member's count (a row per member) is under the limit.
    #[command(part_of = Loan)]
    pub struct Borrow {
        pub loan_id: Identifier<Loan>,
        pub member: String,
    }

    /// Opens a loan when the member's open loans (a row per loan, counted by a query)
    /// are under the limit.
    #[command(part_of = Loan)]
    pub struct BorrowCounted {
        pub loan_id: Identifier<Loan>,
        pub member: String,
    }

    /// A member's open loans, kept in the transaction of each loan's opening.
    #[projection]
    pub struct MemberLoans {
        #[key]
        pub member: String,
        pub open: u32,
    }

    /// One row per open loan, queried by member.
    #[projection]
    pub struct OpenLoan {
        #[key]
        pub loan_id: Identifier<Loan>,
        #[index]
        pub member: String,
    }

    pub struct Counts;

    #[projector(projection = MemberLoans, inline)]
    impl Counts {
        async fn opened(rows: &mut Rows<MemberLoans>, event: &LoanOpened) -> Result<(), DomainError> {
            let new = || MemberLoans { member: event.member.clone(), open: 0 };
            rows.upsert(&event.member, new, |m| m.open += 1).await
        }
    }

    pub struct Loans;

    #[projector(projection = OpenLoan, inline)]
    impl Loans {
        async fn opened(rows: &mut Rows<OpenLoan>, event: &LoanOpened) -> Result<(), DomainError> {
            rows.put(OpenLoan { loan_id: event.loan_id.clone(), member: event.member.clone() }).await
        }
    }

    fn open(ctx: &mut Context<Loan>, loan_id: Identifier<Loan>, member: String) -> Result<(), DomainError> {
        let loan = ctx.add(Loan::builder().id(loan_id.clone()).member(member.clone()).build()?)?;
        loan.raise(LoanOpened { loan_id, member });
        Ok(())
    }

    pub struct LoanCommands;

    #[handler(part_of = Loan)]
    impl LoanCommands {
        async fn borrow(ctx: &mut Context<Loan>, command: Borrow) -> Result<(), DomainError> {
            let open_loans = ctx.read::<MemberLoans>(&command.member).await?.map_or(0, |m| m.open);
            // What a handler does between reading and deciding (a call elsewhere): the
            // other units run meanwhile, on every store.
            tokio::task::yield_now().await;
            if open_loans >= LIMIT {
                return Err(DomainError::rule(format!("{} has {open_loans} loans open", command.member)));
            }
            open(ctx, command.loan_id, command.member)
        }

        async fn borrow_counted(ctx: &mut Context<Loan>, command: BorrowCounted) -> Result<(), DomainError> {
            let open_loans = ctx.query::<OpenLoan>().eq("member", &command.member).fetch().await?.len();
            tokio::task::yield_now().await;
            if open_loans >= LIMIT as usize {
                return Err(DomainError::rule(format!("{} has {open_loans} loans open", command.member)));
            }
            open(ctx, command.loan_id, command.member)
        }
    }
}

use lending::{Borrow, BorrowCounted, Loan, MemberLoans, OpenLoan, LIMIT};

fn domain(store: Arc<dyn Store>) -> Domain {
    Domain::builder()
        .module(module_path!().to_string() + "::lending")
        .shared_store(store)
        .delivery(DeliveryMode::Inline)
        // Twenty units racing for one row: enough retries that none gives up.
        .conflict_retries(1_000)
        .build()
        .expect("the lending model is valid")
}

/// Rounds of the race, each on a member of its own: enough that a lucky interleaving
/// cannot pass them all.
const ROUNDS: usize = 8;
/// Units of work racing in one round.
const RACERS: usize = 20;

/// `RACERS` loans asked at once for one member, by `ask`, `ROUNDS` times: each round
/// ends with exactly `LIMIT` loans open, the rest refused by the rule.
async fn race<C: Command<Reply = ()> + 'static>(store: Arc<dyn Store>, ask: fn(String) -> C) {
    let domain = Arc::new(domain(store));
    for round in 0..ROUNDS {
        let member = format!("member-{round}");
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..RACERS {
            let (domain, command) = (Arc::clone(&domain), ask(member.clone()));
            tasks.spawn(async move { domain.process(command).await.map(|_| ()) });
        }
        let (mut opened, mut refused) = (0, 0);
        while let Some(outcome) = tasks.join_next().await {
            match outcome.expect("the task ran") {
                Ok(()) => opened += 1,
                Err(ProcessError::Rejected { .. }) => refused += 1,
                Err(other) => panic!("a loan is opened or refused by the rule, not: {other:?}"),
            }
        }
        let open = domain.query::<OpenLoan>().eq("member", &member).fetch().await.unwrap().len();
        let counted = domain.projection::<MemberLoans>(&member).await.unwrap().map_or(0, |m| m.open);
        assert_eq!((opened, refused), (LIMIT as usize, RACERS - LIMIT as usize), "round {round}");
        assert_eq!(open, LIMIT as usize, "round {round}: loans open");
        // The count row is changed by every loan's opening, whichever command opened it.
        assert_eq!(counted, LIMIT, "round {round}: the member's count");
    }
}

fn borrow(member: String) -> Borrow {
    Borrow { loan_id: Identifier::generate(), member }
}

fn borrow_counted(member: String) -> BorrowCounted {
    BorrowCounted { loan_id: Identifier::generate(), member }
}

async fn a_limit_read_by_key_holds_under_a_race(store: Arc<dyn Store>) {
    race(store, borrow).await;
}

async fn a_limit_counted_by_a_query_holds_under_a_race(store: Arc<dyn Store>) {
    race(store, borrow_counted).await;
}

fn loan(member: &str) -> Loan {
    Loan::builder().id(Identifier::generate()).member(member.to_owned()).build().unwrap()
}

/// A unit of work that read `member`'s row, and adds a loan of its own to commit.
async fn reader_of(domain: &Domain, member: &str) -> Context<Loan> {
    let mut ctx = domain.unit_of_work::<Loan>();
    ctx.read::<MemberLoans>(member).await.unwrap();
    ctx.add(loan("someone")).unwrap();
    ctx
}

async fn a_reader_conflicts_only_when_its_own_row_moved(store: Arc<dyn Store>) {
    let domain = domain(store);
    domain.process(borrow("ada".into())).await.unwrap().all_delivered().unwrap();
    // Read ada's row; another unit opens a loan for grace: no conflict.
    let unrelated = reader_of(&domain, "ada").await;
    domain.process(borrow("grace".into())).await.unwrap().all_delivered().unwrap();
    unrelated.commit().await.expect("a change to another member's row is no conflict").all_delivered().unwrap();
    // Read ada's row; another unit opens a loan for ada: the commit conflicts.
    let related = reader_of(&domain, "ada").await;
    domain.process(borrow("ada".into())).await.unwrap().all_delivered().unwrap();
    match related.commit().await {
        Err(ProcessError::Conflict(conflict)) => {
            assert_eq!(conflict.stream, StreamId::new("MemberLoans", "ada"));
            assert_eq!((conflict.expected, conflict.actual), (1, 2));
        }
        other => panic!("a conflict on ada's row, not {other:?}"),
    }
    // Read as absent, then created: the commit conflicts too.
    let absent = reader_of(&domain, "alan").await;
    domain.process(borrow("alan".into())).await.unwrap().all_delivered().unwrap();
    assert!(matches!(absent.commit().await, Err(ProcessError::Conflict(_))));
    // A query: a matching row that appears after it ran is a conflict; one that
    // does not match is not.
    let mut counted = domain.unit_of_work::<Loan>();
    let before = counted.query::<OpenLoan>().eq("member", "ada").fetch().await.unwrap();
    assert_eq!(before.len(), 2);
    counted.add(loan("someone")).unwrap();
    domain.process(borrow("grace".into())).await.unwrap().all_delivered().unwrap();
    counted.commit().await.expect("grace's loan does not match ada's query").all_delivered().unwrap();
    let mut again = domain.unit_of_work::<Loan>();
    again.query::<OpenLoan>().eq("member", "ada").fetch().await.unwrap();
    again.add(loan("someone")).unwrap();
    domain.process(borrow("ada".into())).await.unwrap().all_delivered().unwrap();
    assert!(matches!(again.commit().await, Err(ProcessError::Conflict(_))));
}

/// The e-commerce example's "Option 3": twenty orders of 10.00 EUR placed at once for a
/// customer whose credit limit is 50.00 EUR: five are placed, fifteen refused, and the
/// outstanding amount is the limit, to the cent.
async fn the_e_commerce_credit_limit_holds_under_a_race(store: Arc<dyn Store>) {
    use ecommerce::{Money, OrderLine, PlaceOrder, RegisterCustomer, Restock, SetCreditLimit};
    let domain = Arc::new(
        Domain::builder()
            .module(module_path!().to_string() + "::ecommerce")
            .shared_store(store)
            .delivery(DeliveryMode::Inline)
            .conflict_retries(1_000)
            .build()
            .expect("the e-commerce model is valid"),
    );
    let customer = Identifier::generate();
    let register =
        RegisterCustomer { customer_id: customer.clone(), name: "Ada".into(), email: "ada@example.com".into() };
    domain.process(register).await.unwrap().all_delivered().unwrap();
    let limit = SetCreditLimit { customer_id: customer.clone(), limit_cents: 5_000 };
    domain.process(limit).await.unwrap().all_delivered().unwrap();
    let book = Identifier::parse("BOOK-1").unwrap();
    domain.process(Restock { sku: book, quantity: 1_000 }).await.unwrap().all_delivered().unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..RACERS {
        let order = PlaceOrder {
            order_id: Identifier::generate(),
            customer_id: customer.clone(),
            customer_name: "Ada".into(),
            customer_email: "ada@example.com".into(),
            lines: vec![OrderLine::new("BOOK-1", 1, Money::new(1_000, "EUR").unwrap()).unwrap()],
            shipping_address: None,
        };
        let domain = Arc::clone(&domain);
        tasks.spawn(async move { domain.process(order).await.map(|_| ()) });
    }
    let (mut placed, mut refused) = (0, 0);
    while let Some(outcome) = tasks.join_next().await {
        match outcome.expect("the task ran") {
            Ok(()) => placed += 1,
            Err(ProcessError::Rejected { .. }) => refused += 1,
            Err(other) => panic!("an order is placed or refused by the credit rule, not: {other:?}"),
        }
    }
    assert_eq!((placed, refused), (5, RACERS - 5));
    let credit = domain.projection::<ecommerce::CustomerCreditView>(&customer).await.unwrap().expect("a credit row");
    assert_eq!(credit.outstanding_cents, 5_000);
}

fn cases() -> Vec<(&'static str, StoreCase)> {
    vec![
        ("the_e_commerce_credit_limit_holds_under_a_race", |s| {
            Box::pin(the_e_commerce_credit_limit_holds_under_a_race(s))
        }),
        ("a_limit_read_by_key_holds_under_a_race", |s| Box::pin(a_limit_read_by_key_holds_under_a_race(s))),
        ("a_limit_counted_by_a_query_holds_under_a_race", |s| {
            Box::pin(a_limit_counted_by_a_query_holds_under_a_race(s))
        }),
        ("a_reader_conflicts_only_when_its_own_row_moved", |s| {
            Box::pin(a_reader_conflicts_only_when_its_own_row_moved(s))
        }),
    ]
}

fn main() -> ExitCode {
    harness::run(harness::every_store("read-decisions", cases, 8))
}
