//! Queries and reads typed by the projection, on every store the build has: the `Field`
//! constants `#[projection]` generates for `#[index]` fields filter and order like the
//! fields named by text; a NaN or infinite bound is refused by name; a page says whether
//! more rows follow, and a query without `limit` stops at 1,000 rows; handlers, process
//! managers and the domain read rows by the projection's key type.

use std::process::ExitCode;
use std::sync::Arc;

use protean::prelude::*;
use protean::runtime::{DeliveryMode, ProcessError, QueryError, DEFAULT_QUERY_LIMIT};
use protean::store::{MemoryStore, Store};

#[path = "support/harness.rs"]
#[allow(dead_code)]
mod harness;

use harness::StoreCase;

mod lending {
    use protean::prelude::*;

    /// The day loans are checked on: a loan due before it is overdue.
    pub const TODAY: u32 = 10;

    #[value_object]
    pub enum LoanStatus {
        Open,
        Returned,
    }

    #[aggregate]
    pub struct Loan {
        pub member: String,
        pub status: LoanStatus,
        pub fined_cents: i64,
    }

    #[command(part_of = Loan)]
    pub struct Lend {
        pub loan_id: Identifier<Loan>,
        pub member: String,
        pub due_day: u32,
        pub fine: f64,
        pub note: Option<String>,
    }

    #[command(part_of = Loan)]
    pub struct ReturnLoan {
        pub loan_id: Identifier<Loan>,
    }

    #[command(part_of = Loan)]
    pub struct ChargeFine {
        pub loan_id: Identifier<Loan>,
        pub cents: i64,
    }

    #[event(part_of = Loan)]
    pub struct Lent {
        pub loan_id: Identifier<Loan>,
        pub member: String,
        pub due_day: u32,
        pub fine: f64,
        pub note: Option<String>,
    }

    #[event(part_of = Loan)]
    pub struct LoanReturned {
        pub loan_id: Identifier<Loan>,
        /// The member's loans still open when this one came back.
        pub still_open: u32,
    }

    pub struct Lending;

    #[handler(part_of = Loan)]
    impl Lending {
        async fn lend(ctx: &mut Context<Loan>, cmd: Lend) -> Result<(), DomainError> {
            let mut loan = Loan::builder()
                .id(cmd.loan_id.clone())
                .member(cmd.member.clone())
                .status(LoanStatus::Open)
                .fined_cents(0)
                .build()?;
            loan.raise(Lent {
                loan_id: cmd.loan_id,
                member: cmd.member,
                due_day: cmd.due_day,
                fine: cmd.fine,
                note: cmd.note,
            });
            ctx.add(loan)?;
            Ok(())
        }

        /// Reads the loan's row by the loan's identity, and the member's open loans by typed filters.
        async fn return_loan(ctx: &mut Context<Loan>, cmd: ReturnLoan) -> Result<(), DomainError> {
            let view = ctx.read::<LoanView>(&cmd.loan_id).await?.ok_or_else(|| DomainError::rule("no such loan"))?;
            let open = ctx
                .query::<LoanView>()
                .filter(LoanView::MEMBER.eq(&view.member))
                .filter(LoanView::STATUS.eq(LoanStatus::Open))
                .fetch()
                .await?;
            let loan = ctx.load(&cmd.loan_id).await?;
            loan.status = LoanStatus::Returned;
            loan.raise(LoanReturned { loan_id: cmd.loan_id, still_open: open.len() as u32 - 1 });
            Ok(())
        }

        async fn charge_fine(ctx: &mut Context<Loan>, cmd: ChargeFine) -> Result<(), DomainError> {
            ctx.load(&cmd.loan_id).await?.fined_cents += cmd.cents;
            Ok(())
        }
    }

    #[projection]
    pub struct LoanView {
        #[key]
        pub loan_id: Identifier<Loan>,
        #[index]
        pub member: String,
        #[index]
        pub overdue: bool,
        #[index]
        pub due_day: u32,
        #[index]
        pub fine: f64,
        #[index]
        pub status: LoanStatus,
        #[index]
        pub note: Option<String>,
    }

    pub struct LoanViews;

    #[projector(projection = LoanView, inline)]
    impl LoanViews {
        async fn lent(rows: &mut Rows<LoanView>, event: &Lent) -> Result<(), DomainError> {
            rows.put(LoanView {
                loan_id: event.loan_id.clone(),
                member: event.member.clone(),
                overdue: event.due_day < TODAY,
                due_day: event.due_day,
                fine: event.fine,
                status: LoanStatus::Open,
                note: event.note.clone(),
            })
            .await
        }

        async fn returned(rows: &mut Rows<LoanView>, event: &LoanReturned) -> Result<(), DomainError> {
            rows.update(&event.loan_id, |view| view.status = LoanStatus::Returned).await?;
            Ok(())
        }
    }

    /// Charges the fine of an overdue loan when it comes back, read from its row by the
    /// loan's identity.
    #[process_manager(correlate = loan_id)]
    pub struct Fining {
        pub loan_id: Identifier<Loan>,
    }

    #[process_manager]
    impl Fining {
        async fn returned(ctx: &mut Flow<Self>, event: &LoanReturned) -> Result<Self, DomainError> {
            let view = ctx.read::<LoanView>(&event.loan_id).await?;
            if let Some(view) = view.filter(|v| v.overdue) {
                ctx.send(ChargeFine { loan_id: event.loan_id.clone(), cents: (view.fine * 100.0).round() as i64 });
            }
            ctx.end();
            Ok(Fining { loan_id: event.loan_id.clone() })
        }
    }
}

use lending::*;

fn domain(store: Arc<dyn Store>) -> Domain {
    Domain::builder()
        .module(module_path!().to_string() + "::lending")
        .shared_store(store)
        .delivery(DeliveryMode::Inline)
        .build()
        .expect("the lending model is valid")
}

async fn lend(domain: &Domain, member: &str, due_day: u32, fine: f64, note: Option<&str>) -> Identifier<Loan> {
    let loan_id = Identifier::generate();
    let command = Lend { loan_id: loan_id.clone(), member: member.into(), due_day, fine, note: note.map(Into::into) };
    domain.process(command).await.expect("lent").all_delivered().unwrap();
    loan_id
}

/// The four loans the cases query: Ann's overdue one (due day 3, a fine of 1.5, a note),
/// Ann's next one (day 12), Bob's overdue one (day 5, 2.5) and Cy's (day 20, a note).
async fn four_loans(domain: &Domain) -> [Identifier<Loan>; 4] {
    [
        lend(domain, "ann", 3, 1.5, Some("worn")).await,
        lend(domain, "ann", 12, 0.0, None).await,
        lend(domain, "bob", 5, 2.5, None).await,
        lend(domain, "cy", 20, 0.0, Some("new")).await,
    ]
}

fn due_days(rows: &[LoanView]) -> Vec<u32> {
    rows.iter().map(|v| v.due_day).collect()
}

async fn typed_filters_select_what_their_text_form_does(store: Arc<dyn Store>) {
    let domain = domain(store);
    four_loans(&domain).await;
    let typed = domain.query::<LoanView>().filter(LoanView::OVERDUE.eq(true)).order_by(LoanView::DUE_DAY);
    let text = domain.query::<LoanView>().eq("overdue", true).order_by("due_day");
    assert_eq!(due_days(&typed.fetch().await.unwrap()), [3, 5]);
    assert_eq!(due_days(&text.fetch().await.unwrap()), [3, 5]);

    let member = String::from("ann");
    let anns = domain.query::<LoanView>().filter(LoanView::MEMBER.eq(&member)).order_by_desc(LoanView::DUE_DAY);
    assert_eq!(due_days(&anns.fetch().await.unwrap()), [12, 3], "by a &String, largest first");
    let early = domain.query::<LoanView>().filter(LoanView::MEMBER.eq("ann")).filter(LoanView::DUE_DAY.lt(10));
    assert_eq!(due_days(&early.fetch().await.unwrap()), [3], "by a &str and an integer literal");
    let fined = domain.query::<LoanView>().filter(LoanView::FINE.gt(1.0)).order_by(LoanView::FINE);
    assert_eq!(due_days(&fined.fetch().await.unwrap()), [3, 5], "floats compare as numbers");
    let range = domain.query::<LoanView>().filter(LoanView::DUE_DAY.ge(5)).filter(LoanView::DUE_DAY.le(12));
    assert_eq!(due_days(&range.order_by(LoanView::DUE_DAY).fetch().await.unwrap()), [5, 12]);
    let unnoted = domain.query::<LoanView>().filter(LoanView::NOTE.eq(None)).order_by(LoanView::DUE_DAY);
    assert_eq!(due_days(&unnoted.fetch().await.unwrap()), [5, 12], "`None` is a missing or null field");
    let noted = domain.query::<LoanView>().filter(LoanView::NOTE.ne(None)).order_by(LoanView::DUE_DAY);
    assert_eq!(due_days(&noted.fetch().await.unwrap()), [3, 20]);
    let worn = domain.query::<LoanView>().filter(LoanView::NOTE.eq(Some("worn".to_owned()))).fetch().await.unwrap();
    assert_eq!(due_days(&worn), [3]);
    let others = domain.query::<LoanView>().filter(LoanView::MEMBER.ne("ann")).order_by(LoanView::MEMBER);
    assert_eq!(due_days(&others.fetch().await.unwrap()), [5, 20]);
    let open = domain.query::<LoanView>().filter(LoanView::STATUS.eq(LoanStatus::Open)).fetch().await.unwrap();
    assert_eq!(open.len(), 4, "a choice compares by its name");
}

async fn a_nan_bound_is_reported_as_nan(store: Arc<dyn Store>) {
    let domain = domain(store);
    four_loans(&domain).await;
    let typed = domain.query::<LoanView>().filter(LoanView::FINE.lt(f64::NAN)).fetch().await;
    match typed {
        Err(ProcessError::Query(error @ QueryError::NotFinite { .. })) => {
            assert_eq!(error, QueryError::NotFinite { field: "fine".into(), value: "NaN".into() });
            let text = error.to_string();
            assert!(text.contains("NaN") && !text.contains("null"), "{text}");
        }
        other => panic!("a NaN bound is refused as NaN, got {other:?}"),
    }
    match domain.query::<LoanView>().eq("fine", f64::NAN).fetch().await {
        Err(ProcessError::Query(QueryError::NotFinite { field, value })) => {
            assert_eq!((field, value), ("fine".into(), "NaN".into()))
        }
        other => panic!("by text too (not as an equality with null, which would match missing fields), got {other:?}"),
    }
    match domain.query::<LoanView>().ge("fine", f64::INFINITY).fetch().await {
        Err(ProcessError::Query(QueryError::NotFinite { value, .. })) => assert_eq!(value, "inf"),
        other => panic!("an infinite bound is refused by name, got {other:?}"),
    }
    assert_eq!(domain.query::<LoanView>().filter(LoanView::FINE.lt(2.0)).fetch().await.unwrap().len(), 3);
}

async fn pages_say_whether_more_rows_follow(store: Arc<dyn Store>) {
    let domain = domain(store);
    four_loans(&domain).await;
    let mut seen = Vec::new();
    let mut nexts = Vec::new();
    let mut offset = 0;
    loop {
        let query = domain.query::<LoanView>().order_by(LoanView::DUE_DAY).limit(3).offset(offset);
        let page = query.fetch_page().await.unwrap();
        seen.extend(due_days(&page.rows));
        nexts.push(page.next);
        let Some(next) = page.next else { break };
        offset = next;
    }
    assert_eq!(seen, [3, 5, 12, 20], "the pages cover every row once");
    assert_eq!(nexts, [Some(3), None]);
    let exact = domain.query::<LoanView>().order_by(LoanView::DUE_DAY).limit(4).fetch_page().await.unwrap();
    assert_eq!((exact.rows.len(), exact.next), (4, None), "a page holding the last row is the last page");
    let whole = domain.query::<LoanView>().fetch_page().await.unwrap();
    assert_eq!((whole.rows.len(), whole.next), (4, None));
}

async fn rows_are_read_by_the_projections_key_type(store: Arc<dyn Store>) {
    let domain = domain(store);
    let [late, on_time, ..] = four_loans(&domain).await;
    for loan in [&late, &on_time] {
        domain.process(ReturnLoan { loan_id: loan.clone() }).await.unwrap().all_delivered().unwrap();
    }
    let view = domain.projection::<LoanView>(&late).await.unwrap().expect("a row under the loan's identity");
    assert_eq!(view.status, LoanStatus::Returned);
    let late_loan = domain.get(&late).await.unwrap().unwrap();
    assert_eq!(late_loan.fined_cents, 150, "the process manager read the overdue row by `&event.loan_id`");
    assert_eq!(domain.get(&on_time).await.unwrap().unwrap().fined_cents, 0);
    let (_, ended) = domain.flow::<Fining>(&late).await.unwrap().expect("a flow per returned loan");
    assert!(ended);
    let events = domain.events_of(&on_time).await.unwrap();
    let returned = events.last().unwrap().event::<LoanReturned>().unwrap();
    assert_eq!(returned.still_open, 0, "the handler's typed query saw Ann's one other loan returned before");
}

/// Without `limit`, a query stops at 1,000 rows; `fetch_page` says more follow, and a
/// limit beyond them gives them all.
async fn a_query_without_a_limit_stops_at_a_thousand_rows() {
    let domain = domain(Arc::new(MemoryStore::new()));
    for day in 0..=DEFAULT_QUERY_LIMIT as u32 {
        lend(&domain, "dee", day, 0.0, None).await;
    }
    assert_eq!(DEFAULT_QUERY_LIMIT, 1_000);
    assert_eq!(domain.query::<LoanView>().fetch().await.unwrap().len(), 1_000);
    let page = domain.query::<LoanView>().order_by(LoanView::DUE_DAY).fetch_page().await.unwrap();
    assert_eq!((page.rows.len(), page.next), (1_000, Some(1_000)));
    let rest = domain.query::<LoanView>().order_by(LoanView::DUE_DAY).offset(1_000).fetch_page().await.unwrap();
    assert_eq!((due_days(&rest.rows), rest.next), (vec![1_000], None));
    assert_eq!(domain.query::<LoanView>().limit(2_000).fetch().await.unwrap().len(), 1_001);
}

fn cases() -> Vec<(&'static str, StoreCase)> {
    vec![
        ("typed_filters_select_what_their_text_form_does", |s| {
            Box::pin(typed_filters_select_what_their_text_form_does(s))
        }),
        ("a_nan_bound_is_reported_as_nan", |s| Box::pin(a_nan_bound_is_reported_as_nan(s))),
        ("pages_say_whether_more_rows_follow", |s| Box::pin(pages_say_whether_more_rows_follow(s))),
        ("rows_are_read_by_the_projections_key_type", |s| Box::pin(rows_are_read_by_the_projections_key_type(s))),
    ]
}

fn main() -> ExitCode {
    let mut trials = harness::every_store("typed-queries", cases, 4);
    trials.push(harness::test(
        "a_query_without_a_limit_stops_at_a_thousand_rows",
        a_query_without_a_limit_stops_at_a_thousand_rows,
    ));
    harness::run(trials)
}
