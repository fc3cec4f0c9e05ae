//! The domain registry, the checks made when a `Domain` is built, and the model exports.

/// A model that compiles but breaks rules only visible across elements.
#[allow(dead_code)]
mod unheld {
    use protean::prelude::*;

    #[aggregate]
    pub struct Basket {
        pub label: String,
    }

    /// Declared part of `Basket`, but no field of `Basket` holds it.
    #[entity(part_of = Basket)]
    pub struct Forgotten {
        pub note: String,
    }
}

#[allow(dead_code)]
mod twin_a {
    use protean::prelude::*;
    #[aggregate]
    pub struct Ledger {
        pub name: String,
    }
    #[event(part_of = Ledger, name = "Ledger.Opened")]
    pub struct Opened {
        pub name: String,
    }
}

#[allow(dead_code)]
mod twin_b {
    use protean::prelude::*;
    #[aggregate]
    pub struct Ledger {
        pub name: String,
    }
    #[event(part_of = Ledger, name = "Ledger.Opened", version = 2)]
    pub struct OpenedV2 {
        pub name: String,
    }
}

#[allow(dead_code)]
mod elsewhere {
    use protean::prelude::*;
    #[event(part_of = super::twin_a::Ledger)]
    pub struct Audited {
        pub by: String,
    }
}

use protean::model::ElementKind;
use protean::model::FieldShape;
use protean::model::Limit;
use protean::prelude::*;

fn ecommerce() -> Domain {
    Domain::builder().module(crate::example("ecommerce")).build().expect("the e-commerce model is valid")
}

#[test]
fn every_macro_registers_a_descriptor() {
    let domain = ecommerce();
    let names = |kind| domain.model().of_kind(kind).map(|d| d.name).collect::<Vec<_>>();
    assert_eq!(names(ElementKind::Aggregate), ["Customer", "CustomerLoyalty", "Inventory", "Order"]);
    assert_eq!(names(ElementKind::Entity), ["OrderItem"]);
    assert_eq!(
        names(ElementKind::ValueObject),
        ["CustomerSnapshot", "FulfilmentStage", "Money", "OrderLine", "OrderStatus", "ShippingAddress", "WaitingOrder"]
    );
    assert_eq!(
        names(ElementKind::Command),
        [
            "CancelOrder",
            "ConfirmOrder",
            "PlaceOrder",
            "RegisterCustomer",
            "ReleaseStock",
            "Restock",
            "RestoreCredit",
            "SetCreditLimit",
            "SuspendCredit",
            "WithdrawLoyaltyPoints"
        ]
    );
    assert_eq!(
        names(ElementKind::Event),
        [
            "CreditLimitSet",
            "CreditRestored",
            "CreditSuspended",
            "CustomerRegistered",
            "CustomerRenamed",
            "LoyaltyPointsAdded",
            "LoyaltyPointsWithdrawn",
            "OrderAwaitingRestock",
            "OrderCancelled",
            "OrderConfirmed",
            "OrderPlaced",
            "StockAdded",
            "StockReleased",
            "StockReservationFailed",
            "StockReserved"
        ]
    );
}

#[test]
fn descriptors_carry_fields_options_invariants_and_docs() {
    let domain = ecommerce();
    let order = domain.model().element("Order").unwrap();
    assert_eq!(order.identity, Some("id"));
    assert!(order.generated_identity);
    assert!(order.module_path.ends_with("ecommerce"));
    assert!(order.docs.starts_with("An order: its lines, status and total change together"));
    let invariants: Vec<_> = order.invariants.iter().map(|i| (i.name, i.phase)).collect();
    assert_eq!(
        invariants,
        [
            ("total_matches_items", Phase::Post),
            ("placed_orders_have_items", Phase::Post),
            ("cancelled_orders_do_not_change", Phase::Pre)
        ]
    );
    let field = |name| order.fields.iter().find(|f| f.name == name).unwrap();
    assert_eq!((field("items").shape)(), FieldShape::HasMany { entity: "OrderItem" });
    assert_eq!((field("customer_id").shape)(), FieldShape::Identifier { target: "Customer" });
    assert!(field("customer_id").required);
    assert!(!field("status").required, "it has a default");
    assert_eq!(field("status").options.default, Some("OrderStatus :: Draft"));
    assert_eq!(field("customer_id").docs, "Who placed it: another aggregate, so only its identity.");

    let item = domain.model().element("OrderItem").unwrap();
    assert_eq!(item.part_of, Some("Order"));
    let quantity = item.fields.iter().find(|f| f.name == "quantity").unwrap();
    assert_eq!(quantity.options.min, Some(Limit::Int(1)));
    assert_eq!(quantity.options.max, Some(Limit::Int(1000)));

    let money = domain.model().element("Money").unwrap();
    assert_eq!(money.identity, None);
    assert_eq!(money.fields.iter().find(|f| f.name == "currency").unwrap().options.length, Some(3));

    let placed = domain.model().element("OrderPlaced").unwrap();
    assert_eq!((placed.type_name, placed.version, placed.part_of), ("Order.OrderPlaced", 1, Some("Order")));
    assert_eq!(
        domain.model().element("OrderStatus").unwrap().choices,
        ["Draft", "Placed", "AwaitingRestock", "Confirmed", "Cancelled"]
    );
}

#[test]
fn clusters_group_each_aggregate_with_what_belongs_to_it() {
    let domain = ecommerce();
    let clusters = domain.model().clusters();
    let order = clusters.iter().find(|c| c.root.name == "Order").unwrap();
    assert_eq!(order.entities.iter().map(|d| d.name).collect::<Vec<_>>(), ["OrderItem"]);
    assert_eq!(
        order.commands.iter().map(|d| d.name).collect::<Vec<_>>(),
        ["CancelOrder", "ConfirmOrder", "PlaceOrder"]
    );
    assert_eq!(
        order.events.iter().map(|d| d.name).collect::<Vec<_>>(),
        ["OrderAwaitingRestock", "OrderCancelled", "OrderConfirmed", "OrderPlaced"]
    );
    assert_eq!(order.value_objects, ["CustomerSnapshot", "Money", "OrderStatus", "ShippingAddress"]);
    assert_eq!(domain.model().aggregate_of("OrderItem").map(|d| d.name), Some("Order"));
    assert_eq!(domain.model().aggregate_of("StockReserved").map(|d| d.name), Some("Inventory"));
}

#[test]
fn json_export_is_versioned_and_stable() {
    let domain = ecommerce();
    let json = domain.model().to_json();
    assert_eq!(json["format"], "protean.model");
    assert_eq!(json["format_version"], 1);
    assert_eq!(json, ecommerce().model().to_json(), "the same model exports the same JSON");
    let elements = json["elements"].as_array().unwrap();
    let order = elements.iter().find(|e| e["name"] == "Order").unwrap();
    assert_eq!(order["kind"], "aggregate");
    assert_eq!(order["fields"][0]["name"], "id");
    assert_eq!(order["fields"][0]["identity"], true);
    let items = order["fields"].as_array().unwrap().iter().find(|f| f["name"] == "items").unwrap();
    assert_eq!(items["shape"], serde_json::json!({"kind": "has_many", "entity": "OrderItem"}));
    let refs = json["references"].as_array().unwrap();
    assert!(refs.contains(
        &serde_json::json!({"from": "Order", "field": "customer_id", "to": "Customer", "relation": "identity"})
    ));
    assert!(refs
        .contains(&serde_json::json!({"from": "Order", "field": "items", "to": "OrderItem", "relation": "has_many"})));
    // Each event and command carries its JSON Schema as stored; fields their stored key.
    let placed = elements.iter().find(|e| e["name"] == "OrderPlaced").unwrap();
    assert_eq!(placed["schema"]["$id"], "urn:protean:Order.OrderPlaced:v1");
    assert_eq!(placed["schema"]["properties"]["total"]["required"], serde_json::json!(["cents", "currency"]));
    assert_eq!(placed["fields"][0]["stored"], "order_id");
    assert_eq!(placed["fields"][0]["presence"], "required");
    assert!(order.get("schema").is_none(), "aggregates are stored whole, not as messages");
}

/// What the registry records of serde's attributes on a field: the stored key, what a
/// record lacking it reads as, the aliases it is read from, whether it may be left out.
mod stored_form {
    use protean::prelude::*;

    #[aggregate]
    pub struct Shelf {
        pub open: bool,
    }

    #[value_object]
    pub struct Place {
        pub room: String,
        pub row: u32,
    }

    #[event(part_of = Shelf)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct Shelved {
        pub book_title: String,
        #[serde(alias = "copies", alias = "count")]
        pub copy_count: u32,
        #[serde(default)]
        pub note: String,
        #[serde(skip)]
        pub cached: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub label: Option<String>,
        #[serde(flatten)]
        pub place: Place,
    }
}

#[test]
fn the_registry_records_fields_as_stored() {
    let domain = Domain::builder().module(module_path!().to_string() + "::stored_form").build().unwrap();
    let shelved = domain.model().element("Shelved").unwrap();
    let field = |name: &str| shelved.fields().iter().find(|f| f.name() == name).unwrap();
    use protean::registry::Presence;
    assert_eq!((field("book_title").stored(), field("book_title").presence()), ("bookTitle", Presence::Required));
    assert_eq!(field("copy_count").aliases(), ["copies", "count"]);
    assert_eq!(field("note").presence(), Presence::Defaulted, "the user's #[serde(default)]");
    assert_eq!(field("cached").presence(), Presence::Skipped);
    assert!(field("label").may_be_omitted() && field("label").presence() == Presence::Defaulted);
    assert!(field("place").flatten());
    assert!(shelved.serde().deny_unknown_fields);
    // The lock writes a flattened value object's fields at the event's level, and
    // leaves out what serde skips.
    let lock = protean::contract::Lock::of(domain.model()).to_text();
    for line in [
        "field bookTitle text required\n",
        "field copyCount uint32 required alias=copies|count\n",
        "field label optional(text) defaulted omitted-when-empty\n",
        "field room text required\n",
        "field row uint32 required\n",
        "serde deny_unknown_fields\n",
    ] {
        assert!(lock.contains(line), "{line} in {lock}");
    }
    assert!(!lock.contains("cached"), "{lock}");
    // And the stored form is what serde writes and reads.
    use stored_form::{Place, Shelved};
    let event = Shelved::builder()
        .book_title("Dune")
        .copy_count(2)
        .note("")
        .cached(false)
        .place(Place::new("A", 3).unwrap())
        .build()
        .unwrap();
    let json = serde_json::to_value(&event).unwrap();
    assert_eq!(json, serde_json::json!({"bookTitle": "Dune", "copyCount": 2, "note": "", "room": "A", "row": 3}));
    let read: Shelved =
        serde_json::from_value(serde_json::json!({"bookTitle": "Dune", "copies": 2, "room": "A", "row": 3})).unwrap();
    assert_eq!(read, event);
}

#[test]
fn mermaid_and_dot_draw_clusters_and_identity_references() {
    let domain = ecommerce();
    let mermaid = domain.model().to_mermaid();
    assert!(mermaid.starts_with("classDiagram\n"));
    assert!(mermaid.contains("namespace OrderCluster {"));
    assert!(mermaid.contains("<<aggregate>>"));
    assert!(mermaid.contains("Order \"1\" *-- \"*\" OrderItem : items"));
    assert!(mermaid.contains("Order ..> Customer : customer_id (by identity)"));
    assert!(mermaid.contains("Order ..> OrderPlaced : raises"));
    assert!(mermaid.contains("PlaceOrder ..> Order : changes"));

    let dot = domain.model().to_dot();
    assert!(dot.starts_with("digraph protean_model {"));
    assert!(dot.contains("subgraph \"cluster_Order\""));
    assert!(dot.contains("\"Order\" -> \"Customer\" [label=\"customer_id\", style=dashed"));
    assert!(dot.contains("\"Order\" -> \"OrderItem\" [label=\"items\", arrowtail=diamond"));
    assert!(dot.trim_end().ends_with('}'));
}

#[test]
fn building_a_domain_reports_every_cross_element_problem() {
    let err = Domain::builder()
        .module(module_path!().to_string() + "::unheld")
        .module(module_path!().to_string() + "::twin_a")
        .module(module_path!().to_string() + "::twin_b")
        .build()
        .unwrap_err();
    let err = err.model().expect("the model's problems");
    let messages: Vec<String> = err.problems.iter().map(|p| format!("{}: {}", p.element, p.message)).collect();
    assert_eq!(messages.len(), 3, "{err}");
    assert!(messages.iter().any(|m| m.starts_with("Ledger: 2 elements are named `Ledger`")), "{err}");
    assert!(messages.iter().any(|m| m.contains("share the stored type name `Ledger.Opened`")), "{err}");
    assert!(
        messages
            .iter()
            .any(|m| m.contains("entity `Forgotten` is `part_of = Basket`, but no field of `Basket` holds it")),
        "{err}"
    );
    assert!(err.to_string().starts_with("the domain model has 3 problem(s):"));
    // Each kind of problem has its stable code, listed in `REFUSALS` and shown first.
    let mut codes: Vec<&str> = err.problems.iter().map(|p| p.code).collect();
    codes.sort_unstable();
    assert_eq!(codes, ["E100", "E105", "E108"], "{err}");
    assert!(err.to_string().contains("  - E100 Ledger: 2 elements are named `Ledger`"), "{err}");
    for code in codes {
        assert!(protean::registry::REFUSALS.iter().any(|r| r.code == code), "{code} is in REFUSALS");
    }
}

#[test]
fn a_part_of_outside_the_domain_is_reported() {
    let err = Domain::builder().module(module_path!().to_string() + "::elsewhere").build().unwrap_err();
    let err = err.model().expect("the model's problems");
    assert_eq!(err.problems.len(), 1);
    assert_eq!(
        err.problems[0].message,
        "`Audited` is `part_of = Ledger`, but `Ledger` is not in this domain: include its module"
    );
    let both = Domain::builder()
        .module(module_path!().to_string() + "::elsewhere")
        .module(module_path!().to_string() + "::twin_a")
        .build()
        .unwrap();
    assert_eq!(both.model().elements().len(), 3);
}

#[test]
fn the_project_management_model_is_small_aggregates_connected_by_identity() {
    let domain = Domain::builder().module(crate::example("project_management")).build().unwrap();
    let clusters = domain.model().clusters();
    let roots: Vec<_> = clusters.iter().map(|c| c.root.name).collect();
    assert_eq!(roots, ["Project", "Task", "Team", "TimeEntry", "User"]);
    let task = clusters.iter().find(|c| c.root.name == "Task").unwrap();
    assert_eq!(task.entities.iter().map(|d| d.name).collect::<Vec<_>>(), ["Comment"]);
    assert_eq!(task.events.iter().map(|d| d.name).collect::<Vec<_>>(), ["TaskCompleted", "TaskCreated"]);
    let project = clusters.iter().find(|c| c.root.name == "Project").unwrap();
    assert!(project.entities.is_empty(), "a project holds no tasks, teams or time entries");
    let refs = domain.model().to_json()["references"].clone();
    assert!(refs
        .as_array()
        .unwrap()
        .contains(&serde_json::json!({"from": "TimeEntry", "field": "task_id", "to": "Task", "relation": "identity"})));
}

#[test]
fn the_exports_show_which_handlers_react_to_which_events() {
    let domain = ecommerce();
    let json = domain.model().to_json();
    let handlers = json["handlers"].as_array().expect("a handlers list");
    let reserve = handlers.iter().find(|h| h["method"] == "reserve").expect("the inventory reaction");
    assert_eq!(reserve["handler"], "InventoryReactions");
    assert_eq!(reserve["part_of"], "Inventory");
    assert_eq!(reserve["handles"], "event");
    assert_eq!(reserve["message"], "OrderPlaced");
    assert_eq!(reserve["type_name"], "Order.OrderPlaced");
    let place = handlers.iter().find(|h| h["method"] == "place").expect("the order command handler");
    assert_eq!((&place["handles"], &place["part_of"]), (&serde_json::json!("command"), &serde_json::json!("Order")));
    assert!(domain.model().to_mermaid().contains("  OrderPlaced ..> Inventory : InventoryReactions::reserve reacts\n"));
    assert!(domain
        .model()
        .to_mermaid()
        .contains("  StockReservationFailed ..> Order : OrderReactions::await_restock reacts\n"));
    assert!(domain
        .model()
        .to_dot()
        .contains("\"OrderPlaced\" -> \"CustomerLoyalty\" [label=\"LoyaltyReactions::award_points\""));
}
