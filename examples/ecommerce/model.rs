//! The e-commerce model of "Design Small Aggregates": small aggregates that refer to
//! each other by identity and talk through events.
//!
//! | Concept | Consistent with Order in the same transaction? | Where it lives |
//! |---|---|---|
//! | line items | yes: adding one updates the total | [`OrderItem`], entity of [`Order`] |
//! | status | yes: transitions have invariants | [`OrderStatus`] on [`Order`] |
//! | customer profile | no | [`Customer`], referenced by `Identifier<Customer>` |
//! | customer credit | read, not changed, by the order | [`CustomerCreditView`], a projection ("Option 3") |
//! | shipping address | snapshot at order time | [`ShippingAddress`], value object |
//! | inventory count | no | [`Inventory`], updated through [`OrderPlaced`] |
//! | loyalty points | no | [`CustomerLoyalty`], updated through [`OrderPlaced`] |
//! | fulfilment | no: a flow across the three | [`Fulfilment`], a process manager sending commands |
//!
//! The fulfilment of an order, after "Aggregate Boundaries in Go": the order is placed;
//! [`Inventory`] reserves each line in reaction ([`StockReserved`]), and once every line
//! is reserved the [`Fulfilment`] flow confirms the order ([`ConfirmOrder`]). A line
//! that cannot be served ([`StockReservationFailed`]) leaves the order awaiting a
//! restock, with a deadline: a restock in time serves the waiting order (the inventory
//! keeps its [`WaitingOrder`]s), which cancels the deadline and confirms it; at the
//! deadline the order is cancelled ([`CancelOrder`]), and the flow withdraws the loyalty
//! points the order earned and releases its stock. Every handler changes one aggregate
//! type; the flow only sends commands.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use protean::prelude::*;

/// An amount of money in minor units (cents), with its ISO currency code.
#[value_object]
pub struct Money {
    /// Minor units: 1250 is 12.50.
    #[field(min = 0)]
    pub cents: i64,
    /// ISO 4217 code, such as `EUR`.
    #[field(length = 3)]
    pub currency: String,
}

impl Money {
    /// Zero in the given currency.
    pub fn zero(currency: &str) -> Result<Money, ValidationError> {
        Money::new(0, currency)
    }

    /// The sum, when both are in the same currency.
    pub fn plus(&self, other: &Money) -> Result<Money, DomainError> {
        if self.currency != other.currency {
            return Err(DomainError::rule(format!("cannot add {} to {}", other.currency, self.currency)));
        }
        Ok(Money::new(self.cents + other.cents, self.currency.clone())?)
    }

    /// This amount multiplied by a quantity.
    pub fn times(&self, quantity: u32) -> Result<Money, ValidationError> {
        Money::new(self.cents * i64::from(quantity), self.currency.clone())
    }
}

impl std::fmt::Display for Money {
    /// `12.50 EUR`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", Cents(self.cents))?;
        write!(f, " {}", self.currency)
    }
}

/// An amount in cents, shown as units and cents (`1250` as `12.50`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cents(pub i64);

impl std::fmt::Display for Cents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        write!(f, "{sign}{}.{:02}", self.0.abs() / 100, self.0.abs() % 100)
    }
}

/// Where to ship an order: a snapshot taken when the order is placed, not a live
/// reference to the customer's current address.
#[value_object]
pub struct ShippingAddress {
    #[field(min_length = 1)]
    pub street: String,
    #[field(min_length = 1)]
    pub city: String,
    pub state: Option<String>,
    #[field(min_length = 1, max_length = 12)]
    pub postal_code: String,
    #[field(length = 2)]
    pub country: String,
}

/// The customer's details frozen at order time; later profile changes do not alter it.
#[value_object]
pub struct CustomerSnapshot {
    pub customer_id: Identifier<Customer>,
    #[field(min_length = 1)]
    pub name: String,
    #[field(min_length = 3)]
    pub email: String,
}

/// Where an order is in its life.
#[value_object]
pub enum OrderStatus {
    /// Being filled in.
    Draft,
    /// Placed by the customer; inventory is reserved in reaction.
    Placed,
    /// Placed, but some stock could not be reserved: the compensating outcome.
    AwaitingRestock,
    /// Stock reserved for every line.
    Confirmed,
    /// Cancelled; it no longer changes.
    Cancelled,
}

/// One line of an order as commands and events carry it: values only.
#[value_object]
pub struct OrderLine {
    #[field(min_length = 1)]
    pub sku: String,
    #[field(min = 1, max = 1000)]
    pub quantity: u32,
    pub unit_price: Money,
}

/// An order: its lines, status and total change together, so they are one aggregate.
/// The customer is another aggregate, referred to by identity.
#[aggregate]
#[invariant(post = total_matches_items)]
#[invariant(post = placed_orders_have_items)]
#[invariant(pre = cancelled_orders_do_not_change)]
pub struct Order {
    /// Who placed it: another aggregate, so only its identity.
    pub customer_id: Identifier<Customer>,
    /// The customer's details at order time.
    pub customer: Option<CustomerSnapshot>,
    /// The lines, entities of this aggregate.
    pub items: HasMany<OrderItem>,
    /// Where the order is in its life.
    #[field(default = OrderStatus::Draft)]
    pub status: OrderStatus,
    /// Always the sum of the lines.
    pub total: Money,
    /// Snapshot of the address at order time.
    pub shipping_address: Option<ShippingAddress>,
}

impl Order {
    fn total_matches_items(&self) -> InvariantResult {
        let sum: i64 = self.items.iter().map(|i| i.unit_price.cents() * i64::from(i.quantity)).sum();
        if sum != *self.total.cents() {
            return Err(ValidationError::field(
                "total",
                format!("must equal the sum of the items ({sum}), is {}", self.total.cents()),
            ));
        }
        Ok(())
    }

    fn placed_orders_have_items(&self) -> InvariantResult {
        if self.status != OrderStatus::Draft && self.items.is_empty() {
            return Err(ValidationError::field("items", "an order that is not a draft has at least one item"));
        }
        Ok(())
    }

    fn cancelled_orders_do_not_change(&self) -> InvariantResult {
        if self.status == OrderStatus::Cancelled {
            return Err(ValidationError::field("status", "a cancelled order does not change"));
        }
        Ok(())
    }

    /// Adds a line to a draft order, keeping the total in step.
    pub fn add_item(
        &mut self,
        sku: &str,
        quantity: u32,
        unit_price: Money,
    ) -> Result<Identifier<OrderItem>, DomainError> {
        self.change(|order| {
            if order.status != OrderStatus::Draft {
                return Err(DomainError::rule("only draft orders accept items"));
            }
            let item = OrderItem::builder().sku(sku).quantity(quantity).unit_price(unit_price.clone()).build()?;
            let id = item.id.clone();
            order.total = order.total.plus(&unit_price.times(quantity)?)?;
            order.items.add(item);
            Ok(id)
        })
    }

    /// Places a draft order and raises [`OrderPlaced`].
    pub fn place(&mut self) -> Result<(), DomainError> {
        self.change(|order| {
            if order.status != OrderStatus::Draft {
                return Err(DomainError::rule("only draft orders can be placed"));
            }
            order.status = OrderStatus::Placed;
            let lines = order
                .items
                .iter()
                .map(|i| OrderLine::new(i.sku.clone(), i.quantity, i.unit_price.clone()))
                .collect::<Result<Vec<_>, _>>()?;
            let event = OrderPlaced {
                order_id: order.id.clone(),
                customer_id: order.customer_id.clone(),
                lines,
                total: order.total.clone(),
            };
            order.raise(event);
            Ok(())
        })
    }

    /// The compensating outcome when stock could not be reserved.
    pub fn mark_awaiting_restock(&mut self, sku: &str) -> Result<(), DomainError> {
        self.change(|order| {
            if order.status == OrderStatus::Placed {
                order.status = OrderStatus::AwaitingRestock;
                let event = OrderAwaitingRestock { order_id: order.id.clone(), sku: sku.to_string() };
                order.raise(event);
            }
            Ok(())
        })
    }

    /// Confirms a placed order (awaiting a restock or not) once its stock is reserved,
    /// raising [`OrderConfirmed`].
    pub fn confirm(&mut self) -> Result<(), DomainError> {
        self.change(|order| {
            if !matches!(order.status, OrderStatus::Placed | OrderStatus::AwaitingRestock) {
                return Err(DomainError::rule(format!("a {} order cannot be confirmed", order.status)));
            }
            order.status = OrderStatus::Confirmed;
            order.raise(OrderConfirmed { order_id: order.id.clone() });
            Ok(())
        })
    }

    /// Cancels the order, raising [`OrderCancelled`]; a confirmed order cannot be
    /// cancelled, and a cancelled order no longer changes.
    pub fn cancel(&mut self) -> Result<(), DomainError> {
        self.change(|order| {
            if order.status == OrderStatus::Confirmed {
                return Err(DomainError::rule("a confirmed order cannot be cancelled"));
            }
            order.status = OrderStatus::Cancelled;
            let event = OrderCancelled {
                order_id: order.id.clone(),
                customer_id: order.customer_id.clone(),
                total: order.total.clone(),
            };
            order.raise(event);
            Ok(())
        })
    }
}

/// One line of an order: inside the order's consistency boundary, since adding or
/// removing one must update the total in the same transaction.
#[entity(part_of = Order)]
pub struct OrderItem {
    #[field(min_length = 1)]
    pub sku: String,
    #[field(min = 1, max = 1000)]
    pub quantity: u32,
    pub unit_price: Money,
}

/// A customer: changes to the profile never need to be consistent with orders. Its
/// credit is decided here and read by the order handler through [`CustomerCreditView`].
#[aggregate]
pub struct Customer {
    #[field(min_length = 1, max_length = 200)]
    pub name: String,
    #[field(min_length = 3)]
    pub email: String,
    /// The most the customer may have in orders not cancelled, in cents; `None`: no limit.
    pub credit_limit_cents: Option<i64>,
    /// Whether new orders are refused.
    #[field(default = false)]
    pub credit_suspended: bool,
}

impl Customer {
    /// Renames the customer and raises [`CustomerRenamed`].
    pub fn rename(&mut self, name: &str) -> Result<(), DomainError> {
        self.change(|customer| {
            customer.name = name.to_string();
            let event = CustomerRenamed { customer_id: customer.id.clone(), name: name.to_string() };
            customer.raise(event);
            Ok(())
        })
    }

    /// Sets the credit limit and raises [`CreditLimitSet`].
    pub fn set_credit_limit(&mut self, limit_cents: i64) -> Result<(), DomainError> {
        self.change(|customer| {
            customer.credit_limit_cents = Some(limit_cents);
            customer.raise(CreditLimitSet { customer_id: customer.id.clone(), limit_cents });
            Ok(())
        })
    }

    /// Suspends the customer's credit and raises [`CreditSuspended`].
    pub fn suspend_credit(&mut self, reason: &str) -> Result<(), DomainError> {
        self.change(|customer| {
            if customer.credit_suspended {
                return Err(DomainError::rule(format!("the credit of customer {} is already suspended", customer.id)));
            }
            customer.credit_suspended = true;
            customer.raise(CreditSuspended { customer_id: customer.id.clone(), reason: reason.to_string() });
            Ok(())
        })
    }

    /// Restores a suspended credit and raises [`CreditRestored`].
    pub fn restore_credit(&mut self) -> Result<(), DomainError> {
        self.change(|customer| {
            if !customer.credit_suspended {
                return Err(DomainError::rule(format!("the credit of customer {} is not suspended", customer.id)));
            }
            customer.credit_suspended = false;
            customer.raise(CreditRestored { customer_id: customer.id.clone() });
            Ok(())
        })
    }
}

/// An order waiting for stock of a SKU: kept by its [`Inventory`], served on a restock.
#[value_object]
pub struct WaitingOrder {
    pub order_id: Identifier<Order>,
    #[field(min = 1)]
    pub quantity: u32,
}

/// Stock of one SKU; its identity is the SKU itself.
#[aggregate]
#[invariant(post = never_over_reserved)]
pub struct Inventory {
    /// On hand.
    pub available: u32,
    /// Promised to placed orders.
    #[field(default = 0u32)]
    pub reserved: u32,
    /// Orders whose line of this SKU could not be reserved, oldest first: a restock
    /// reserves for them. (An inventory stored before this field existed reads as
    /// having none waiting.)
    #[serde(default)]
    pub waiting: Vec<WaitingOrder>,
}

impl Inventory {
    fn never_over_reserved(&self) -> InvariantResult {
        if self.reserved > self.available {
            return Err(ValidationError::field("reserved", "cannot exceed the available stock"));
        }
        Ok(())
    }

    /// The SKU this stock is for.
    pub fn sku(&self) -> String {
        self.id.to_string()
    }

    /// What is on hand and not promised.
    pub fn free(&self) -> u32 {
        self.available - self.reserved
    }

    /// Adds stock that arrived, then reserves it for the waiting orders, oldest first,
    /// each whose whole quantity is now free ([`StockReserved`] for each).
    pub fn restock(&mut self, quantity: u32) -> Result<(), DomainError> {
        self.change(|stock| {
            stock.available += quantity;
            let event = StockAdded { sku: stock.sku(), quantity, available: stock.available };
            stock.raise(event);
            for waiting in std::mem::take(&mut stock.waiting) {
                if waiting.quantity > stock.free() {
                    stock.waiting.push(waiting);
                    continue;
                }
                stock.reserved += waiting.quantity;
                let event = StockReserved { sku: stock.sku(), order_id: waiting.order_id, quantity: waiting.quantity };
                stock.raise(event);
            }
            Ok(())
        })
    }

    /// Reserves stock for an order, raising [`StockReserved`], or, when there is not
    /// enough, records the order as waiting and raises [`StockReservationFailed`].
    pub fn reserve(&mut self, order_id: &Identifier<Order>, quantity: u32) -> Result<bool, DomainError> {
        self.change(|stock| {
            let free = stock.free();
            if quantity > free {
                stock.waiting.push(WaitingOrder::new(order_id.clone(), quantity)?);
                let event =
                    StockReservationFailed { sku: stock.sku(), order_id: order_id.clone(), requested: quantity, free };
                stock.raise(event);
                return Ok(false);
            }
            stock.reserved += quantity;
            let event = StockReserved { sku: stock.sku(), order_id: order_id.clone(), quantity };
            stock.raise(event);
            Ok(true)
        })
    }

    /// Gives back what an order had of this SKU, raising [`StockReleased`]: it stops
    /// waiting, or its reserved quantity is free again.
    pub fn release(&mut self, order_id: &Identifier<Order>, quantity: u32) -> Result<(), DomainError> {
        self.change(|stock| {
            let waiting = stock.waiting.iter().position(|w| w.order_id == *order_id && w.quantity == quantity);
            let was_waiting = match waiting {
                Some(index) => {
                    stock.waiting.remove(index);
                    true
                }
                None => {
                    stock.reserved = stock.reserved.saturating_sub(quantity);
                    false
                }
            };
            let event = StockReleased { sku: stock.sku(), order_id: order_id.clone(), quantity, was_waiting };
            stock.raise(event);
            Ok(())
        })
    }
}

/// The loyalty points an order's total earns: one per whole unit of currency.
pub fn points_for(total: &Money) -> u64 {
    u64::try_from(*total.cents() / 100).unwrap_or(0)
}

/// A customer's loyalty points: its own aggregate, eventually consistent with orders.
#[aggregate]
pub struct CustomerLoyalty {
    pub customer_id: Identifier<Customer>,
    #[field(default = 0u64)]
    pub points: u64,
}

impl CustomerLoyalty {
    /// Adds points for an order's total (one point per whole currency unit).
    pub fn add_points_for(&mut self, total: &Money) -> Result<(), DomainError> {
        self.change(|loyalty| {
            let earned = points_for(total);
            loyalty.points += earned;
            let event = LoyaltyPointsAdded {
                customer_id: loyalty.customer_id.clone(),
                points: earned,
                balance: loyalty.points,
            };
            loyalty.raise(event);
            Ok(())
        })
    }

    /// Withdraws the points an order earned (never below zero), raising
    /// [`LoyaltyPointsWithdrawn`].
    pub fn withdraw_points(&mut self, order_id: &Identifier<Order>, points: u64) -> Result<(), DomainError> {
        self.change(|loyalty| {
            let withdrawn = points.min(loyalty.points);
            loyalty.points -= withdrawn;
            let event = LoyaltyPointsWithdrawn {
                customer_id: loyalty.customer_id.clone(),
                order_id: order_id.clone(),
                points: withdrawn,
                balance: loyalty.points,
            };
            loyalty.raise(event);
            Ok(())
        })
    }
}

/// Place an order: the caller includes the customer data it already has, so the
/// handler never loads the Customer aggregate.
#[command(part_of = Order)]
pub struct PlaceOrder {
    pub order_id: Identifier<Order>,
    pub customer_id: Identifier<Customer>,
    #[field(min_length = 1)]
    pub customer_name: String,
    #[field(min_length = 3)]
    pub customer_email: String,
    #[field(min_length = 1)]
    pub lines: Vec<OrderLine>,
    pub shipping_address: Option<ShippingAddress>,
}

/// Confirm an order whose stock is reserved: sent by [`Fulfilment`].
#[command(part_of = Order)]
pub struct ConfirmOrder {
    pub order_id: Identifier<Order>,
}

/// Cancel an order: the deadline [`Fulfilment`] schedules when the order waits for a restock.
#[command(part_of = Order)]
pub struct CancelOrder {
    pub order_id: Identifier<Order>,
}

/// Add stock of a SKU; the inventory is created on its first restock.
#[command(part_of = Inventory)]
pub struct Restock {
    pub sku: Identifier<Inventory>,
    #[field(min = 1)]
    pub quantity: u32,
}

/// Give back what a cancelled order had of a SKU: sent by [`Fulfilment`].
#[command(part_of = Inventory)]
pub struct ReleaseStock {
    pub sku: Identifier<Inventory>,
    pub order_id: Identifier<Order>,
    #[field(min = 1)]
    pub quantity: u32,
}

/// Register a customer.
#[command(part_of = Customer)]
pub struct RegisterCustomer {
    pub customer_id: Identifier<Customer>,
    #[field(min_length = 1, max_length = 200)]
    pub name: String,
    #[field(min_length = 3)]
    pub email: String,
}

/// Set the most a customer may have in orders not cancelled.
#[command(part_of = Customer)]
pub struct SetCreditLimit {
    pub customer_id: Identifier<Customer>,
    #[field(min = 0)]
    pub limit_cents: i64,
}

/// Suspend a customer's credit: new orders are refused.
#[command(part_of = Customer)]
pub struct SuspendCredit {
    pub customer_id: Identifier<Customer>,
    #[field(min_length = 1)]
    pub reason: String,
}

/// Restore a customer's suspended credit.
#[command(part_of = Customer)]
pub struct RestoreCredit {
    pub customer_id: Identifier<Customer>,
}

/// Withdraw the loyalty points a cancelled order earned: sent by [`Fulfilment`].
#[command(part_of = CustomerLoyalty)]
pub struct WithdrawLoyaltyPoints {
    pub customer_id: Identifier<Customer>,
    pub order_id: Identifier<Order>,
    pub points: u64,
}

/// An order was placed.
#[event(part_of = Order)]
pub struct OrderPlaced {
    pub order_id: Identifier<Order>,
    pub customer_id: Identifier<Customer>,
    pub lines: Vec<OrderLine>,
    pub total: Money,
}

/// An order could not get its stock and waits for a restock.
#[event(part_of = Order)]
pub struct OrderAwaitingRestock {
    pub order_id: Identifier<Order>,
    pub sku: String,
}

/// An order got the stock of every line and is confirmed.
#[event(part_of = Order)]
pub struct OrderConfirmed {
    pub order_id: Identifier<Order>,
}

/// An order was cancelled.
#[event(part_of = Order)]
pub struct OrderCancelled {
    pub order_id: Identifier<Order>,
    pub customer_id: Identifier<Customer>,
    pub total: Money,
}

/// A customer registered.
#[event(part_of = Customer)]
pub struct CustomerRegistered {
    pub customer_id: Identifier<Customer>,
    pub name: String,
    pub email: String,
}

/// A customer changed name.
#[event(part_of = Customer)]
pub struct CustomerRenamed {
    pub customer_id: Identifier<Customer>,
    pub name: String,
}

/// A customer's credit limit was set.
#[event(part_of = Customer)]
pub struct CreditLimitSet {
    pub customer_id: Identifier<Customer>,
    pub limit_cents: i64,
}

/// A customer's credit was suspended.
#[event(part_of = Customer)]
pub struct CreditSuspended {
    pub customer_id: Identifier<Customer>,
    pub reason: String,
}

/// A customer's credit was restored.
#[event(part_of = Customer)]
pub struct CreditRestored {
    pub customer_id: Identifier<Customer>,
}

/// Stock arrived.
#[event(part_of = Inventory)]
pub struct StockAdded {
    pub sku: String,
    pub quantity: u32,
    pub available: u32,
}

/// Stock was reserved for an order (when it was placed, or on a restock it waited for).
#[event(part_of = Inventory)]
pub struct StockReserved {
    pub sku: String,
    pub order_id: Identifier<Order>,
    pub quantity: u32,
}

/// Stock could not be reserved for an order: it waits for a restock.
#[event(part_of = Inventory)]
pub struct StockReservationFailed {
    pub sku: String,
    pub order_id: Identifier<Order>,
    pub requested: u32,
    pub free: u32,
}

/// A cancelled order's stock was given back: it no longer waits, or its reservation is free.
#[event(part_of = Inventory)]
pub struct StockReleased {
    pub sku: String,
    pub order_id: Identifier<Order>,
    pub quantity: u32,
    pub was_waiting: bool,
}

/// Loyalty points were added.
#[event(part_of = CustomerLoyalty)]
pub struct LoyaltyPointsAdded {
    pub customer_id: Identifier<Customer>,
    pub points: u64,
    pub balance: u64,
}

/// The loyalty points of a cancelled order were withdrawn.
#[event(part_of = CustomerLoyalty)]
pub struct LoyaltyPointsWithdrawn {
    pub customer_id: Identifier<Customer>,
    pub order_id: Identifier<Order>,
    pub points: u64,
    pub balance: u64,
}

// --- Option 3: the customer's credit, as a read model the order handler reads. ---

/// What the order handler needs to know of a customer's credit: "Option 3: look up in a
/// read model". The order never loads the [`Customer`]; it reads this row, kept by
/// [`CustomerCredit`] from the customer's credit events and the customer's orders.
///
/// A customer with no row (never registered, no order yet) has no limit and is not
/// suspended.
#[projection]
pub struct CustomerCreditView {
    /// Whose credit: the row's key.
    #[key]
    pub customer_id: Identifier<Customer>,
    /// New orders are refused.
    #[index]
    pub suspended: bool,
    /// Why, when suspended.
    pub reason: Option<String>,
    /// The most the customer may have in orders not cancelled, in cents; `None`: no limit.
    #[index]
    pub limit_cents: Option<i64>,
    /// The total of the customer's orders not cancelled, in cents (one currency: this
    /// model has no payments, so only a cancellation lowers it).
    #[index]
    pub outstanding_cents: i64,
    /// Orders placed and not cancelled.
    #[index]
    pub orders: u32,
}

impl CustomerCreditView {
    fn empty(customer_id: &Identifier<Customer>) -> CustomerCreditView {
        CustomerCreditView {
            customer_id: customer_id.clone(),
            suspended: false,
            reason: None,
            limit_cents: None,
            outstanding_cents: 0,
            orders: 0,
        }
    }

    /// Whether an order of `total` may be placed: refused when the credit is suspended,
    /// or when the order would take the customer over the limit.
    pub fn allows(&self, total: &Money) -> Result<(), DomainError> {
        if self.suspended {
            let reason = self.reason.as_deref().unwrap_or("no reason given");
            return Err(DomainError::rule(format!(
                "the credit of customer {} is suspended ({reason})",
                self.customer_id
            )));
        }
        if let Some(limit) = self.limit_cents {
            if self.outstanding_cents + *total.cents() > limit {
                return Err(DomainError::rule(format!(
                    "an order of {total} takes customer {} over the credit limit ({} of {} used)",
                    self.customer_id,
                    Cents(self.outstanding_cents),
                    Cents(limit)
                )));
            }
        }
        Ok(())
    }
}

/// Keeps [`CustomerCreditView`], **inline**: each row changes in the transaction of the
/// event that feeds it. So the order handler reads its own writes: a `PlaceOrder` right
/// after `SuspendCredit` is refused, and two orders in a row both count against the
/// limit, in either delivery mode. An async projector would apply them after the commit
/// (by the workers, in background delivery), and an order placed meanwhile would be
/// checked against the credit as it was. Two orders of one customer placed at once:
/// the order handler's read of this row is checked when its unit of work commits, so
/// the second unit finds the row changed by the first (its order's amount), conflicts
/// and runs again, and its handler reads the first order's amount. The price: every
/// order also writes this row, in its own transaction, and orders of one customer commit
/// one after another — the `Customer` aggregate itself is never locked by one.
pub struct CustomerCredit;

#[projector(projection = CustomerCreditView, inline)]
impl CustomerCredit {
    /// A registered customer gets a row: no limit, not suspended.
    async fn registered(rows: &mut Rows<CustomerCreditView>, event: &CustomerRegistered) -> Result<(), DomainError> {
        rows.upsert(&event.customer_id, || CustomerCreditView::empty(&event.customer_id), |_| {}).await
    }

    /// The limit changes.
    async fn limit_set(rows: &mut Rows<CustomerCreditView>, event: &CreditLimitSet) -> Result<(), DomainError> {
        let new = || CustomerCreditView::empty(&event.customer_id);
        rows.upsert(&event.customer_id, new, |view| view.limit_cents = Some(event.limit_cents)).await
    }

    /// The credit is suspended, with the reason.
    async fn suspended(rows: &mut Rows<CustomerCreditView>, event: &CreditSuspended) -> Result<(), DomainError> {
        let new = || CustomerCreditView::empty(&event.customer_id);
        rows.upsert(&event.customer_id, new, |view| {
            view.suspended = true;
            view.reason = Some(event.reason.clone());
        })
        .await
    }

    /// The credit is restored.
    async fn restored(rows: &mut Rows<CustomerCreditView>, event: &CreditRestored) -> Result<(), DomainError> {
        let new = || CustomerCreditView::empty(&event.customer_id);
        rows.upsert(&event.customer_id, new, |view| {
            view.suspended = false;
            view.reason = None;
        })
        .await
    }

    /// An order counts against the limit.
    async fn order_placed(rows: &mut Rows<CustomerCreditView>, event: &OrderPlaced) -> Result<(), DomainError> {
        let new = || CustomerCreditView::empty(&event.customer_id);
        rows.upsert(&event.customer_id, new, |view| {
            view.outstanding_cents += *event.total.cents();
            view.orders += 1;
        })
        .await
    }

    /// A cancelled order no longer does.
    async fn order_cancelled(rows: &mut Rows<CustomerCreditView>, event: &OrderCancelled) -> Result<(), DomainError> {
        let new = || CustomerCreditView::empty(&event.customer_id);
        rows.upsert(&event.customer_id, new, |view| {
            view.outstanding_cents -= *event.total.cents();
            view.orders = view.orders.saturating_sub(1);
        })
        .await
    }
}

// --- Handlers: each changes one aggregate type; the others react to its events. ---

/// The commands that change an [`Order`].
pub struct OrderCommands;

#[handler(part_of = Order)]
impl OrderCommands {
    /// Creates the order from the command's lines and places it, raising [`OrderPlaced`],
    /// unless the customer's credit (read from [`CustomerCreditView`]) refuses it.
    async fn place(ctx: &mut Context<Order>, command: PlaceOrder) -> Result<(), DomainError> {
        if ctx.find(&command.order_id).await?.is_some() {
            return Err(DomainError::rule(format!("order {} was already placed", command.order_id)));
        }
        let currency = command.lines.first().map_or("EUR", |line| line.unit_price.currency.as_str());
        let customer =
            CustomerSnapshot::new(command.customer_id.clone(), command.customer_name, command.customer_email)?;
        let mut order = Order::builder()
            .id(command.order_id)
            .customer_id(command.customer_id.clone())
            .customer(Some(customer))
            .total(Money::zero(currency)?)
            .shipping_address(command.shipping_address)
            .build()?;
        for line in &command.lines {
            order.add_item(&line.sku, line.quantity, line.unit_price.clone())?;
        }
        // Option 3: the customer's credit, from a read model; the Customer is not loaded.
        // The projection is inline, so this read is checked when the unit commits: an
        // order of the same customer committed meanwhile makes this handler run again.
        let credit = ctx.read::<CustomerCreditView>(&command.customer_id).await?;
        if let Some(credit) = credit {
            credit.allows(&order.total)?;
        }
        order.place()?;
        ctx.add(order)?;
        Ok(())
    }

    /// Confirms an order whose stock is reserved, raising [`OrderConfirmed`].
    async fn confirm(ctx: &mut Context<Order>, command: ConfirmOrder) -> Result<(), DomainError> {
        ctx.load(&command.order_id).await?.confirm()
    }

    /// Cancels an order, raising [`OrderCancelled`].
    async fn cancel(ctx: &mut Context<Order>, command: CancelOrder) -> Result<(), DomainError> {
        ctx.load(&command.order_id).await?.cancel()
    }
}

/// How an [`Order`] reacts to what happens elsewhere.
pub struct OrderReactions;

#[handler(part_of = Order)]
impl OrderReactions {
    /// The compensation of "Aggregate Boundaries in Go": stock could not be reserved for
    /// an order already placed, so the order waits for a restock.
    async fn await_restock(ctx: &mut Context<Order>, event: &StockReservationFailed) -> Result<(), DomainError> {
        ctx.load(&event.order_id).await?.mark_awaiting_restock(&event.sku)
    }
}

/// The commands that change a [`Customer`].
pub struct CustomerCommands;

#[handler(part_of = Customer)]
impl CustomerCommands {
    /// Registers a customer, raising [`CustomerRegistered`].
    async fn register(ctx: &mut Context<Customer>, command: RegisterCustomer) -> Result<(), DomainError> {
        if ctx.find(&command.customer_id).await?.is_some() {
            return Err(DomainError::rule(format!("customer {} is already registered", command.customer_id)));
        }
        let customer = Customer::builder()
            .id(command.customer_id.clone())
            .name(command.name.clone())
            .email(command.email.clone())
            .build()?;
        let event = CustomerRegistered { customer_id: command.customer_id, name: command.name, email: command.email };
        ctx.add(customer)?.raise(event);
        Ok(())
    }

    /// Sets a customer's credit limit.
    async fn set_credit_limit(ctx: &mut Context<Customer>, command: SetCreditLimit) -> Result<(), DomainError> {
        ctx.load(&command.customer_id).await?.set_credit_limit(command.limit_cents)
    }

    /// Suspends a customer's credit.
    async fn suspend_credit(ctx: &mut Context<Customer>, command: SuspendCredit) -> Result<(), DomainError> {
        ctx.load(&command.customer_id).await?.suspend_credit(&command.reason)
    }

    /// Restores a customer's credit.
    async fn restore_credit(ctx: &mut Context<Customer>, command: RestoreCredit) -> Result<(), DomainError> {
        ctx.load(&command.customer_id).await?.restore_credit()
    }
}

/// The commands that change an [`Inventory`].
pub struct InventoryCommands;

#[handler(part_of = Inventory)]
impl InventoryCommands {
    /// Adds stock, creating the SKU's inventory on its first restock, and serves the
    /// orders waiting for it.
    async fn restock(ctx: &mut Context<Inventory>, command: Restock) -> Result<(), DomainError> {
        let sku = command.sku.clone();
        let create = || Ok(Inventory::builder().id(sku.clone()).available(0).build()?);
        ctx.load_or_add(&command.sku, create).await?.restock(command.quantity)
    }

    /// Gives back what a cancelled order had of a SKU.
    async fn release(ctx: &mut Context<Inventory>, command: ReleaseStock) -> Result<(), DomainError> {
        ctx.load(&command.sku).await?.release(&command.order_id, command.quantity)
    }
}

/// How [`Inventory`] reacts to orders: its own transaction, after the order's.
pub struct InventoryReactions;

#[handler(part_of = Inventory)]
impl InventoryReactions {
    /// Reserves stock for each line of a placed order; a line that cannot be served
    /// raises [`StockReservationFailed`] instead, and the order waits for a restock.
    async fn reserve(ctx: &mut Context<Inventory>, event: &OrderPlaced) -> Result<(), DomainError> {
        for line in &event.lines {
            let sku = Identifier::<Inventory>::parse(&line.sku).map_err(|e| DomainError::rule(e.to_string()))?;
            ctx.load(&sku).await?.reserve(&event.order_id, line.quantity)?;
        }
        Ok(())
    }
}

/// How [`CustomerLoyalty`] reacts to orders.
pub struct LoyaltyReactions;

/// The fault switch of the example: while this environment variable is set (to
/// anything), [`LoyaltyReactions`] fails to award points, so that an operator (or a test)
/// sees retries and a dead letter, and can replay it once the variable is unset.
pub const FAIL_POINTS: &str = "ECOMMERCE_FAIL_POINTS";

#[handler(part_of = CustomerLoyalty)]
impl LoyaltyReactions {
    /// One point per whole unit of currency spent; the account is opened on the first order.
    async fn award_points(ctx: &mut Context<CustomerLoyalty>, event: &OrderPlaced) -> Result<(), DomainError> {
        if std::env::var_os(FAIL_POINTS).is_some() {
            return Err(DomainError::rule(format!("the loyalty service is down ({FAIL_POINTS} is set)")));
        }
        let id = event.customer_id.cast::<CustomerLoyalty>();
        let open = || Ok(CustomerLoyalty::builder().id(id.clone()).customer_id(event.customer_id.clone()).build()?);
        ctx.load_or_add(&id, open).await?.add_points_for(&event.total)
    }
}

/// The commands that change a [`CustomerLoyalty`].
pub struct LoyaltyCommands;

#[handler(part_of = CustomerLoyalty)]
impl LoyaltyCommands {
    /// Withdraws the points of a cancelled order; a customer without an account has
    /// none to withdraw.
    async fn withdraw_points(
        ctx: &mut Context<CustomerLoyalty>,
        command: WithdrawLoyaltyPoints,
    ) -> Result<(), DomainError> {
        match ctx.find(&command.customer_id.cast::<CustomerLoyalty>()).await? {
            Some(loyalty) => loyalty.withdraw_points(&command.order_id, command.points),
            None => Ok(()),
        }
    }
}

// --- The fulfilment flow: a process manager across Order, Inventory and CustomerLoyalty. ---

/// How long an order waits for a restock before it is cancelled, in milliseconds.
static RESTOCK_WAIT_MILLIS: AtomicU64 = AtomicU64::new(24 * 3600 * 1000);

/// How long an order waits for a restock before [`Fulfilment`] cancels it: a day,
/// unless [`set_restock_wait`] changed it.
pub fn restock_wait() -> Duration {
    Duration::from_millis(RESTOCK_WAIT_MILLIS.load(Ordering::Relaxed))
}

/// Sets how long orders placed from now on wait for a restock (the demo shortens it,
/// so that a deadline passes while it runs).
pub fn set_restock_wait(wait: Duration) {
    RESTOCK_WAIT_MILLIS.store(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX), Ordering::Relaxed);
}

/// Where the fulfilment of an order stands.
#[value_object]
pub enum FulfilmentStage {
    /// Placed: waiting for the stock of every line.
    Reserving,
    /// A line could not be reserved: waiting for a restock, until the deadline.
    AwaitingRestock,
    /// Every line reserved: the order is being confirmed.
    Confirming,
    /// Confirmed; the flow ended.
    Confirmed,
    /// Cancelled at the deadline, its points withdrawn and its stock released; the flow ended.
    Cancelled,
}

/// The fulfilment of one order, keyed by the events' `order_id`: placed → every line
/// reserved → confirmed; or, out of stock, awaiting a restock until a deadline
/// ([`restock_wait`]), then cancelled, its loyalty points withdrawn and its stock
/// released. It never loads an aggregate: it keeps what it needs of the order (its
/// lines, its points) and sends commands.
///
/// Its first step takes [`OrderPlaced`], which [`InventoryReactions`] also takes and
/// answers with [`StockReserved`] or [`StockReservationFailed`]: the handlers of an event
/// are given it one after the other, sorted by name (inline and by the workers alike), so
/// this flow has started (`Fulfilment` < `InventoryReactions`) before the answer exists.
/// That holds when the first step succeeds at once: a handler that fails is retried
/// without holding up the others, so an answer could then come first, and be ignored
/// (no flow runs for its order yet).
#[process_manager(correlate = order_id)]
pub struct Fulfilment {
    /// The order: the flow's key.
    pub order_id: Identifier<Order>,
    /// Who placed it, whose points are withdrawn if it is cancelled.
    pub customer_id: Identifier<Customer>,
    /// The order's lines: what is reserved, and released if it is cancelled.
    pub lines: Vec<OrderLine>,
    /// Lines reserved so far.
    pub lines_reserved: u32,
    /// The loyalty points the order earned.
    pub points: u64,
    /// Where the flow stands.
    pub stage: FulfilmentStage,
}

#[process_manager]
impl Fulfilment {
    /// An order was placed: its flow starts, and waits for the stock of each line.
    async fn placed(_ctx: &mut Flow<Self>, event: &OrderPlaced) -> Result<Self, DomainError> {
        Ok(Fulfilment {
            order_id: event.order_id.clone(),
            customer_id: event.customer_id.clone(),
            lines: event.lines.clone(),
            lines_reserved: 0,
            points: points_for(&event.total),
            stage: FulfilmentStage::Reserving,
        })
    }

    /// A line was reserved (at once, or on a restock): once every line is, the deadline
    /// goes and the order is confirmed.
    async fn stock_reserved(&mut self, ctx: &mut Flow<Self>, event: &StockReserved) -> Result<(), DomainError> {
        self.lines_reserved += 1;
        if self.lines_reserved as usize >= self.lines.len() {
            ctx.cancel("restock");
            ctx.send(ConfirmOrder { order_id: event.order_id.clone() });
            self.stage = FulfilmentStage::Confirming;
        }
        Ok(())
    }

    /// A line could not be reserved: the order waits for a restock, until a deadline
    /// (one per order, however many lines wait).
    async fn out_of_stock(&mut self, ctx: &mut Flow<Self>, event: &StockReservationFailed) -> Result<(), DomainError> {
        if self.stage == FulfilmentStage::Reserving {
            ctx.schedule_after("restock", restock_wait(), CancelOrder { order_id: event.order_id.clone() });
            self.stage = FulfilmentStage::AwaitingRestock;
        }
        Ok(())
    }

    /// The order was confirmed: the flow is done.
    async fn order_confirmed(&mut self, ctx: &mut Flow<Self>, _event: &OrderConfirmed) -> Result<(), DomainError> {
        self.stage = FulfilmentStage::Confirmed;
        ctx.end();
        Ok(())
    }

    /// The order was cancelled: the points it earned are withdrawn and the stock of
    /// each line released (or the line stops waiting), then the flow is done.
    async fn order_cancelled(&mut self, ctx: &mut Flow<Self>, event: &OrderCancelled) -> Result<(), DomainError> {
        if self.points > 0 {
            ctx.send(WithdrawLoyaltyPoints {
                customer_id: event.customer_id.clone(),
                order_id: event.order_id.clone(),
                points: self.points,
            });
        }
        for line in &self.lines {
            let sku = Identifier::<Inventory>::parse(&line.sku).map_err(|e| DomainError::rule(e.to_string()))?;
            ctx.send(ReleaseStock { sku, order_id: event.order_id.clone(), quantity: line.quantity });
        }
        self.stage = FulfilmentStage::Cancelled;
        ctx.end();
        Ok(())
    }
}
