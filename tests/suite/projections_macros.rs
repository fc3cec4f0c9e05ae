//! `#[projection]`, `#[projector]` and `#[process_manager]`: what they generate and
//! register, and how the model and its exports show them. No store is needed.

/// A shop whose credit view and fulfilment flow are fed by its events.
#[allow(dead_code)]
mod shop {
    use protean::prelude::*;

    #[aggregate]
    pub struct Customer {
        pub name: String,
    }

    #[aggregate]
    pub struct Order {
        pub customer_id: Identifier<Customer>,
    }

    #[aggregate]
    pub struct Inventory {
        pub available: u32,
    }

    #[event(part_of = Customer)]
    pub struct CustomerRegistered {
        pub customer_id: Identifier<Customer>,
        pub credit_cents: i64,
    }

    #[event(part_of = Order)]
    pub struct OrderPlaced {
        pub order_id: Identifier<Order>,
        pub customer_id: Identifier<Customer>,
        pub total_cents: i64,
    }

    #[event(part_of = Inventory)]
    pub struct StockReserved {
        pub order_id: Identifier<Order>,
    }

    #[event(part_of = Order)]
    pub struct OrderPaid {
        /// Named differently: the step routes by it with `#[correlate(order)]`.
        pub order: Identifier<Order>,
    }

    #[command(part_of = Inventory)]
    pub struct ReserveStock {
        pub order_id: Identifier<Order>,
    }

    pub struct InventoryCommands;

    #[handler(part_of = Inventory)]
    impl InventoryCommands {
        async fn reserve(ctx: &mut Context<Inventory>, command: ReserveStock) -> Result<(), DomainError> {
            let _ = (ctx, command);
            Ok(())
        }
    }

    /// How much credit a customer has left (read by the order handler: "look up in a read model").
    #[projection]
    pub struct CustomerCreditView {
        #[key]
        pub customer_id: Identifier<Customer>,
        #[index]
        pub status: String,
        #[index]
        pub available_cents: i64,
        pub orders: u32,
    }

    pub struct CreditProjector;

    #[projector(projection = CustomerCreditView)]
    impl CreditProjector {
        /// A new customer starts with the credit they registered with.
        async fn registered(rows: &mut Rows<CustomerCreditView>, e: &CustomerRegistered) -> Result<(), DomainError> {
            rows.put(CustomerCreditView {
                customer_id: e.customer_id.clone(),
                status: "active".into(),
                available_cents: e.credit_cents,
                orders: 0,
            })
            .await
        }

        async fn placed(rows: &mut Rows<CustomerCreditView>, e: &OrderPlaced) -> Result<(), DomainError> {
            rows.update(&e.customer_id, |v| {
                v.orders += 1;
                v.available_cents -= e.total_cents;
            })
            .await?;
            Ok(())
        }
    }

    /// Orders per customer, counted in the unit of work that places them.
    #[projection(version = 2)]
    pub struct OrderCount {
        #[key]
        pub customer: String,
        pub orders: u64,
    }

    pub struct OrderCounter;

    #[projector(projection = OrderCount, inline)]
    impl OrderCounter {
        async fn placed(rows: &mut Rows<OrderCount>, e: &OrderPlaced) -> Result<(), DomainError> {
            let key = e.customer_id.to_string();
            rows.upsert(&key, || OrderCount { customer: key.clone(), orders: 0 }, |c| c.orders += 1).await
        }
    }

    /// Takes an order from placement to shipping.
    #[process_manager(correlate = order_id)]
    pub struct Fulfilment {
        pub order_id: Identifier<Order>,
        pub stage: String,
    }

    #[process_manager]
    impl Fulfilment {
        /// Starts a flow: reserves the stock of a placed order.
        async fn placed(ctx: &mut Flow<Self>, e: &OrderPlaced) -> Result<Self, DomainError> {
            ctx.send(ReserveStock { order_id: e.order_id.clone() });
            Ok(Fulfilment { order_id: e.order_id.clone(), stage: "reserving".into() })
        }

        async fn reserved(&mut self, ctx: &mut Flow<Self>, e: &StockReserved) -> Result<(), DomainError> {
            let _ = e;
            self.stage = "reserved".into();
            ctx.end();
            Ok(())
        }

        #[correlate(order)]
        async fn paid(&mut self, ctx: &mut Flow<Self>, e: &OrderPaid) -> Result<(), DomainError> {
            let _ = (ctx, e);
            self.stage = "paid".into();
            Ok(())
        }
    }

    /// A process manager without a struct-level `correlate`: each step names its own.
    #[process_manager]
    pub struct Billing {
        pub order_id: Identifier<Order>,
    }

    #[process_manager]
    impl Billing {
        #[correlate(order_id)]
        async fn placed(ctx: &mut Flow<Self>, e: &OrderPlaced) -> Result<Self, DomainError> {
            let _ = ctx;
            Ok(Billing { order_id: e.order_id.clone() })
        }
    }
}

/// A projection and a process manager that nothing feeds, and a projection named like
/// an aggregate of another module.
#[allow(dead_code)]
mod unfed {
    use protean::prelude::*;

    #[projection]
    pub struct Orphan {
        #[key]
        pub id: String,
    }

    #[process_manager(correlate = id)]
    pub struct Idle {
        pub id: String,
    }

    /// Named like `shop::Customer`: rows and streams are kept under the name.
    #[projection]
    pub struct Customer {
        #[key]
        pub id: String,
    }
}

use protean::model::ElementKind;
use protean::prelude::*;
use protean::registry::HandlerRole;
use shop::*;

fn shop() -> Domain {
    Domain::builder().module(module_path!().to_string() + "::shop").build().expect("the shop model is valid")
}

#[test]
fn a_projection_knows_its_name_version_key_and_indexed_fields() {
    let view = CustomerCreditView {
        customer_id: Identifier::parse("c-1").unwrap(),
        status: "active".into(),
        available_cents: 500,
        orders: 0,
    };
    assert_eq!(<CustomerCreditView as ReadModel>::NAME, "CustomerCreditView");
    assert_eq!(CustomerCreditView::VERSION, 1);
    assert_eq!(CustomerCreditView::INDEXED, ["status", "available_cents"]);
    assert_eq!(view.key(), "c-1");
    assert_eq!(OrderCount::VERSION, 2);
    assert!(OrderCount::INDEXED.is_empty());
    assert_eq!(OrderCount { customer: "c-2".into(), orders: 3 }.key(), "c-2");
    let spec = CustomerCreditView::spec();
    assert_eq!((&*spec.name, spec.version), ("CustomerCreditView", 1));

    // The derives: cloned, compared, and stored as JSON.
    let json = serde_json::to_value(&view).unwrap();
    assert_eq!(json["available_cents"], 500);
    let back: CustomerCreditView = serde_json::from_value(json).unwrap();
    assert_eq!(back, view.clone());
    assert!(format!("{view:?}").contains("CustomerCreditView"));
}

#[test]
fn a_process_manager_knows_its_name_and_correlation_field() {
    assert_eq!(<Fulfilment as ProcessManager>::NAME, "Fulfilment");
    assert_eq!(<Fulfilment as ProcessManager>::CORRELATE, "order_id");
    assert_eq!(<Billing as ProcessManager>::CORRELATE, "", "each step names its own");
    let flow = Fulfilment { order_id: Identifier::generate(), stage: "reserving".into() };
    assert_eq!(flow.clone(), flow);
}

/// What the generated trait impls let rustdoc list on the projection's and the process
/// manager's pages, checked by the compiler.
#[test]
fn projections_list_their_events_and_process_managers_theirs() {
    fn fed_by<V: protean::runtime::FedBy<E, P>, E: Event, P: 'static>() {}
    fn handles<P: protean::runtime::Handles<E, P>, E: Event>() {}
    fed_by::<CustomerCreditView, CustomerRegistered, CreditProjector>();
    fed_by::<CustomerCreditView, OrderPlaced, CreditProjector>();
    fed_by::<OrderCount, OrderPlaced, OrderCounter>();
    handles::<Fulfilment, OrderPlaced>();
    handles::<Fulfilment, StockReserved>();
    handles::<Fulfilment, OrderPaid>();
}

#[test]
fn the_model_has_projections_and_process_managers_outside_the_clusters() {
    let domain = shop();
    let model = domain.model();
    let names = |kind| model.of_kind(kind).map(|d| d.name).collect::<Vec<_>>();
    assert_eq!(names(ElementKind::Projection), ["CustomerCreditView", "OrderCount"]);
    assert_eq!(names(ElementKind::ProcessManager), ["Billing", "Fulfilment"]);
    assert_eq!(names(ElementKind::Aggregate), ["Customer", "Inventory", "Order"]);
    assert_eq!(ElementKind::Projection.label(), "projection");
    assert_eq!(ElementKind::ProcessManager.label(), "process manager");

    let view = model.element("CustomerCreditView").unwrap();
    assert_eq!(view.identity, Some("customer_id"));
    assert_eq!(
        view.fields.iter().map(|f| f.name).collect::<Vec<_>>(),
        ["customer_id", "status", "available_cents", "orders"]
    );
    assert!(view.docs.starts_with("How much credit a customer has left"));
    assert_eq!(view.part_of, None);
    assert!(model.aggregate_of("CustomerCreditView").is_none());
    let fulfilment = model.element("Fulfilment").unwrap();
    assert_eq!((fulfilment.identity, fulfilment.docs), (None, "Takes an order from placement to shipping."));

    for cluster in model.clusters() {
        assert!(cluster.root.kind == ElementKind::Aggregate);
    }
}

#[test]
fn projector_methods_and_steps_are_registered_with_their_roles() {
    let domain = shop();
    let handlers = domain.model().handlers();
    let find = |id: &str| handlers.iter().find(|h| h.name() == id).unwrap_or_else(|| panic!("{id} is registered"));

    let registered = find("CreditProjector::registered");
    assert_eq!(registered.role(), HandlerRole::Projector);
    assert_eq!((registered.aggregate(), registered.message()), ("CustomerCreditView", "CustomerRegistered"));
    assert_eq!(registered.type_name(), "Customer.CustomerRegistered");
    assert_eq!(registered.docs(), "A new customer starts with the credit they registered with.");
    assert_eq!(find("OrderCounter::placed").role(), HandlerRole::InlineProjector);

    let placed = find("Fulfilment::placed");
    assert_eq!(placed.role(), HandlerRole::ProcessManager);
    assert_eq!((placed.aggregate(), placed.message()), ("Fulfilment", "OrderPlaced"));
    assert_eq!(placed.docs(), "Starts a flow: reserves the stock of a placed order.");
    assert_eq!(find("Fulfilment::paid").message(), "OrderPaid");
    assert_eq!(find("InventoryCommands::reserve").role(), HandlerRole::Handler);
    assert_eq!(handlers.len(), 8);
}

#[test]
fn projectors_route_to_their_projection_and_steps_to_the_event_route() {
    use protean::__private::{HandlerDescriptor, Route};
    let ours = |d: &&HandlerDescriptor| d.info.module_path() == format!("{}::shop", module_path!());
    for descriptor in protean::__private::inventory::iter::<HandlerDescriptor>.into_iter().filter(ours) {
        match (descriptor.info.role(), descriptor.route) {
            (HandlerRole::Projector | HandlerRole::InlineProjector, Route::Project(route)) => {
                assert_eq!(route.projection, descriptor.info.aggregate());
                assert_eq!(route.inline, descriptor.info.role() == HandlerRole::InlineProjector);
                assert_eq!((route.spec)().name, route.projection);
                assert!(descriptor.fire.is_none());
            }
            (HandlerRole::ProcessManager, Route::Event(_)) => assert!(descriptor.fire.is_none()),
            (HandlerRole::Handler, Route::Command(_)) => assert!(descriptor.fire.is_some()),
            (role, route) => panic!("{} has role {role:?} and route {route:?}", descriptor.name()),
        }
    }
}

#[test]
fn the_exports_show_projections_fed_by_events_and_flows_moved_by_them() {
    let domain = shop();
    let json = domain.model().to_json();
    let elements = json["elements"].as_array().unwrap();
    let kind_of = |name: &str| elements.iter().find(|e| e["name"] == name).unwrap()["kind"].clone();
    assert_eq!(kind_of("CustomerCreditView"), "projection");
    assert_eq!(kind_of("Fulfilment"), "process_manager");
    let handlers = json["handlers"].as_array().unwrap();
    let role_of = |method: &str, handler: &str| {
        handlers.iter().find(|h| h["method"] == method && h["handler"] == handler).unwrap()["role"].clone()
    };
    assert_eq!(role_of("placed", "CreditProjector"), "projector");
    assert_eq!(role_of("placed", "OrderCounter"), "inline_projector");
    assert_eq!(role_of("placed", "Fulfilment"), "process_manager");
    assert_eq!(role_of("reserve", "InventoryCommands"), "handler");
    let refs = json["references"].as_array().unwrap();
    assert!(refs.contains(&serde_json::json!({
        "from": "CustomerCreditView", "field": "customer_id", "to": "Customer", "relation": "identity"
    })));

    let mermaid = domain.model().to_mermaid();
    assert!(mermaid.contains("class CustomerCreditView {\n    <<projection>>"), "{mermaid}");
    assert!(mermaid.contains("class Fulfilment {\n    <<process manager>>"), "{mermaid}");
    assert!(mermaid.contains("  OrderPlaced ..> CustomerCreditView : CreditProjector::placed projects\n"));
    assert!(mermaid.contains("  OrderPlaced ..> OrderCount : OrderCounter::placed projects inline\n"));
    assert!(mermaid.contains("  StockReserved ..> Fulfilment : Fulfilment::reserved moves the flow\n"));

    let dot = domain.model().to_dot();
    assert!(dot.contains("\"CustomerCreditView\" [label=\"{«projection»"), "{dot}");
    assert!(dot.contains("\"Fulfilment\" [label=\"{«process manager»"), "{dot}");
    assert!(dot.contains("\"OrderPlaced\" -> \"CustomerCreditView\" [label=\"CreditProjector::placed (projects)\""));
    assert!(dot.contains("\"OrderPaid\" -> \"Fulfilment\" [label=\"Fulfilment::paid (moves the flow)\""));
}

#[test]
fn unfed_projections_and_process_managers_and_shared_names_are_reported() {
    let err = Domain::builder()
        .module(module_path!().to_string() + "::unfed")
        .module(module_path!().to_string() + "::shop")
        .build()
        .unwrap_err();
    let err = err.model().expect("the model's problems");
    let messages: Vec<String> = err.problems.iter().map(|p| format!("{}: {}", p.element, p.message)).collect();
    assert_eq!(messages.len(), 4, "{err}");
    assert!(messages.iter().any(|m| m.starts_with("Orphan: projection `Orphan` has no projector")), "{err}");
    assert!(messages.iter().any(|m| m.starts_with("Idle: process manager `Idle` has no steps")), "{err}");
    assert!(messages.iter().any(|m| m.starts_with("Customer: 2 elements are named `Customer`")), "{err}");
    assert!(messages.iter().any(|m| m.starts_with("Customer: projection `Customer` has no projector")), "{err}");
}
