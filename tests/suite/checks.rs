//! `Domain::check`: the coded model checks on small models — a projection fed by no
//! event of the domain (W004), an aggregate past its size bounds (W007), findings handed
//! in from elsewhere and severities set per code — and the e-commerce example, clean of
//! both new rules.

use protean::prelude::*;
use protean::registry::{CheckConfig, Diagnostic, Level, Severity, StoreFacts, RULES, UPCASTER_GAP};

/// A module the `fed` domain does not include.
#[allow(dead_code)]
mod outside {
    use protean::prelude::*;

    #[aggregate]
    pub struct Pinger {
        pub pings: u64,
    }

    #[event(part_of = Pinger)]
    pub struct Pinged {
        pub id: Identifier<Pinger>,
    }
}

/// A ledger with one projection fed by its event and one fed only by an event from
/// outside the domain.
#[allow(dead_code)]
mod fed {
    use protean::prelude::*;

    #[aggregate]
    pub struct Ledger {
        pub cents: i64,
    }

    #[command(part_of = Ledger)]
    pub struct Post {
        pub id: Identifier<Ledger>,
        pub cents: i64,
    }

    #[event(part_of = Ledger)]
    pub struct Posted {
        pub id: Identifier<Ledger>,
        pub cents: i64,
    }

    pub struct Ledgers;

    #[handler(part_of = Ledger)]
    impl Ledgers {
        async fn post(ctx: &mut Context<Ledger>, command: Post) -> Result<(), DomainError> {
            let _ = (ctx, command);
            Ok(())
        }
    }

    #[projection]
    pub struct Totals {
        #[key]
        pub ledger: String,
        pub cents: i64,
    }

    pub struct TotalsProjector;

    #[projector(projection = Totals)]
    impl TotalsProjector {
        async fn posted(rows: &mut Rows<Totals>, e: &Posted) -> Result<(), DomainError> {
            rows.put(Totals { ledger: e.id.to_string(), cents: e.cents }).await
        }
    }

    /// Fed by `Pinged` only, which is not in this domain: its rows never change.
    #[projection]
    pub struct Pings {
        #[key]
        pub pinger: String,
        pub count: u64,
    }

    pub struct PingsProjector;

    #[projector(projection = Pings)]
    impl PingsProjector {
        async fn pinged(rows: &mut Rows<Pings>, e: &super::outside::Pinged) -> Result<(), DomainError> {
            rows.put(Pings { pinger: e.id.to_string(), count: 1 }).await
        }
    }
}

fn domain(module: &str) -> Domain {
    Domain::builder().module(format!("{}::{module}", module_path!())).build().expect("the model runs")
}

fn codes(found: &[Diagnostic]) -> Vec<(&str, &str)> {
    found.iter().map(|d| (d.code, d.element.as_str())).collect()
}

#[test]
fn a_projection_fed_only_by_events_outside_the_domain_is_w004() {
    let domain = domain("fed");
    let found = domain.check(&CheckConfig::default());
    assert_eq!(codes(&found), [("E001", "PingsProjector::pinged"), ("W004", "Pings")], "{found:#?}");
    let w004 = &found[1];
    assert_eq!((w004.rule, w004.severity), ("projection-fed-by-no-event", Severity::Warning));
    assert_eq!(
        w004.message,
        "the projectors of `Pings` take only events that are not in this domain (`Pinged`), so its rows never change"
    );
    assert!(w004.fix.starts_with("include the modules of the events its projectors take"), "{}", w004.fix);
    assert_eq!(domain.model().diagnose(), found, "`Model::diagnose` is the default configuration");

    // With the event's module in the domain, the projection is fed: nothing to report.
    let whole = Domain::builder()
        .module(format!("{}::fed", module_path!()))
        .module(format!("{}::outside", module_path!()))
        .build()
        .unwrap();
    let found = whole.check(&CheckConfig::default());
    assert!(found.iter().all(|d| d.code != "W004" && d.code != "E001"), "{found:#?}");
}

#[test]
fn an_aggregate_past_a_bound_is_w007_naming_the_bound_and_the_numbers() {
    let domain = domain("fed");
    let w007 = |config: &CheckConfig| -> Vec<Diagnostic> {
        domain.check(config).into_iter().filter(|d| d.code == "W007").collect()
    };
    assert!(w007(&CheckConfig::default()).is_empty(), "within the default bounds (30 fields, 10 entities, 40 events)");
    let fields = domain.model().element("Ledger").unwrap().fields.len();
    let found = w007(&CheckConfig::default().max_fields(1).max_entities(0).max_events(0));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!((found[0].element.as_str(), found[0].rule), ("Ledger", "aggregate-too-large"));
    assert_eq!(
        found[0].message,
        format!("the aggregate `Ledger` is past its size bounds: {fields} root fields (limit 1), 1 events (limit 0)")
    );
    assert!(found[0].fix.ends_with("raise the bound (--max-fields, --max-events)"), "{}", found[0].fix);
    // At the bound is within it.
    assert!(w007(&CheckConfig::default().max_fields(fields).max_events(1)).is_empty());
}

#[test]
fn the_ecommerce_model_has_no_projection_fed_by_nothing_and_no_aggregate_too_large() {
    let domain = Domain::builder().module(crate::example("ecommerce")).build().unwrap();
    let found = domain.check(&CheckConfig::default());
    assert!(found.iter().all(|d| d.code != "W004" && d.code != "W007"), "{found:#?}");
}

#[test]
fn severities_are_set_per_code_and_off_drops_the_findings() {
    let domain = domain("fed");
    let config = CheckConfig::default().severity("E001", Level::Note).severity("W004", Level::Error);
    let found: Vec<(&str, Severity)> = domain.check(&config).iter().map(|d| (d.code, d.severity)).collect();
    assert_eq!(found, [("E001", Severity::Note), ("W004", Severity::Error)]);
    let config = CheckConfig::default().severity("E001", Level::Off).severity("W004", Level::Off);
    assert_eq!(domain.check(&config), []);
}

#[test]
fn findings_computed_elsewhere_are_merged_in_rule_order_at_their_configured_severity() {
    let domain = domain("fed");
    let gap = UPCASTER_GAP.finding("Posted", "`Posted` is at version 2 with no upcaster from 1", "add an upcaster");
    assert_eq!((gap.code, gap.rule, gap.severity), ("E002", "upcaster-gap", Severity::Error));
    let config = CheckConfig::default().extra([gap.clone()]);
    assert_eq!(
        codes(&domain.check(&config)),
        [("E001", "PingsProjector::pinged"), ("E002", "Posted"), ("W004", "Pings")],
        "in the order of RULES"
    );
    let lowered = domain.check(&config.clone().severity("E002", Level::Warning));
    assert_eq!(lowered.iter().find(|d| d.code == "E002").map(|d| d.severity), Some(Severity::Warning));
    let off = domain.check(&config.severity("E002", Level::Off));
    assert!(off.iter().all(|d| d.code != "E002"), "{off:#?}");
}

#[test]
fn the_store_rules_report_only_with_the_stores_facts() {
    let domain = domain("fed");
    assert!(domain.check(&CheckConfig::default()).iter().all(|d| d.code != "W003" && d.code != "E004"));
    let posted = domain.model().element("Posted").unwrap().type_name;
    let post = domain.model().element("Post").unwrap().type_name;
    let mut facts = StoreFacts::default();
    facts.events.insert(posted.to_owned(), 0);
    facts.scheduled.insert(post.to_owned(), 2);
    facts.scheduled.insert("Ledger.Retired".to_owned(), 3);
    let found = domain.check(&CheckConfig::default().severity("E001", Level::Off).store_facts(facts.clone()));
    assert_eq!(codes(&found), [("E004", "Ledger.Retired"), ("W003", "Posted"), ("W004", "Pings")], "{found:#?}");
    assert_eq!(found[0].severity, Severity::Error);
    assert!(found[0].message.starts_with("the store holds 3 pending scheduled command(s) of type `Ledger.Retired`"));
    assert_eq!(found[1].severity, Severity::Note, "W003 is a note by default");

    facts.events.insert(posted.to_owned(), 1);
    facts.scheduled.remove("Ledger.Retired");
    let found = domain.check(&CheckConfig::default().store_facts(facts));
    assert!(found.iter().all(|d| d.code != "W003" && d.code != "E004"), "{found:#?}");
}

#[test]
fn the_operations_doc_lists_every_rule_and_every_refusal_code() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operations.md")).unwrap();
    for rule in RULES {
        let row = format!("| `{}` | `{}` | {} |", rule.code, rule.rule, rule.severity);
        assert!(doc.contains(&row), "docs/operations.md lacks the row starting `{row}`");
    }
    for refusal in protean::registry::REFUSALS {
        let row = format!("| `{}` | `{}` |", refusal.code, refusal.name);
        assert!(doc.contains(&row), "docs/operations.md lacks the row starting `{row}`");
    }
}

/// A flow whose steps never end it, beside the shop flow of `projections_macros`, which
/// does (`ctx.end()` in a step).
#[allow(dead_code)]
mod endless {
    use protean::prelude::*;

    #[aggregate]
    pub struct Door {
        pub open: bool,
    }

    #[command(part_of = Door)]
    pub struct Knock {
        pub door: Identifier<Door>,
    }

    #[event(part_of = Door)]
    pub struct Knocked {
        pub door: Identifier<Door>,
    }

    pub struct Doors;

    #[handler(part_of = Door)]
    impl Doors {
        async fn knock(ctx: &mut Context<Door>, command: Knock) -> Result<(), DomainError> {
            let _ = (ctx, command);
            Ok(())
        }
    }

    #[process_manager(correlate = door)]
    pub struct Answering {
        pub door: Identifier<Door>,
        pub knocks: u32,
    }

    #[process_manager]
    impl Answering {
        async fn first(ctx: &mut Flow<Self>, e: &Knocked) -> Result<Self, DomainError> {
            let _ = ctx;
            Ok(Answering { door: e.door.clone(), knocks: 1 })
        }

        async fn again(&mut self, ctx: &mut Flow<Self>, e: &Knocked) -> Result<(), DomainError> {
            let _ = (ctx, e);
            self.knocks += 1;
            Ok(())
        }
    }
}

#[test]
fn a_process_manager_no_step_of_which_ends_its_flow_is_w005() {
    let endless = Domain::builder().module(module_path!().to_string() + "::endless").build().unwrap();
    let found: Vec<Diagnostic> =
        endless.check(&CheckConfig::default()).into_iter().filter(|d| d.code == "W005").collect();
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].element, "Answering");
    assert!(found[0].message.contains("no step of the process manager `Answering` calls `.end()`"), "{found:#?}");
    let shop = Domain::builder().module(crate::example("ecommerce")).build().unwrap();
    assert!(shop.check(&CheckConfig::default()).iter().all(|d| d.code != "W005"), "Fulfilment ends its flows");
}
