//! The e-commerce model of "Design Small Aggregates" written with protean.
//!
//! `cargo run --example ecommerce` prints the model; add `-- --write-model DIR` to also
//! write `ecommerce.mmd` (Mermaid), `ecommerce.dot` (Graphviz) and `ecommerce.json`.

pub mod model;

use protean::prelude::*;

use model::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let domain = Domain::builder().module("ecommerce::model").build()?;
    println!("{}", domain.to_mermaid());

    let args: Vec<String> = std::env::args().collect();
    if let Some(dir) = args.iter().position(|a| a == "--write-model").and_then(|i| args.get(i + 1)) {
        std::fs::create_dir_all(dir)?;
        std::fs::write(format!("{dir}/ecommerce.mmd"), domain.to_mermaid())?;
        std::fs::write(format!("{dir}/ecommerce.dot"), domain.to_dot())?;
        std::fs::write(format!("{dir}/ecommerce.json"), serde_json_pretty(&domain))?;
        println!("wrote the model to {dir}/ecommerce.{{mmd,dot,json}}");
    }

    // A draft order, built and validated.
    let customer = Customer::builder().name("Ada").email("ada@example.com").build()?;
    let mut order = Order::builder().customer_id(customer.id.clone()).total(Money::zero("EUR")?).build()?;
    order.add_item("BOOK-1", 2, Money::new(1250, "EUR")?)?;
    order.place()?;
    for event in order.take_events() {
        println!("raised {event:?}");
    }

    // Other aggregates react to events, each changing only itself.
    let mut stock = Inventory::builder().id(Identifier::parse("BOOK-1")?).available(1u32).build()?;
    let reserved = stock.reserve(&order.id, 2)?;
    if !reserved {
        order.mark_awaiting_restock("BOOK-1")?; // the compensating outcome
    }
    let mut loyalty = CustomerLoyalty::builder().customer_id(customer.id.clone()).build()?;
    loyalty.add_points_for(&order.total)?;
    let mut customer = customer;
    customer.rename("Ada Lovelace")?;
    println!("order is {}; loyalty points: {}", order.status, loyalty.points);

    // A pre-invariant: a cancelled order refuses every further change.
    order.cancel()?;
    if let Err(refused) = order.add_item("PEN-1", 1, Money::new(100, "EUR")?) {
        println!("refused: {refused}");
    }

    // Every bad field at once.
    let bad = OrderLine::builder().sku("").quantity(0u32).unit_price(Money::new(5, "EUR")?).build();
    if let Err(errors) = bad {
        println!("rejected: {errors}");
    }
    Ok(())
}

fn serde_json_pretty(domain: &Domain) -> String {
    format!("{:#}\n", domain.to_json())
}
