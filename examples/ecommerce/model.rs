//! The e-commerce model of "Design Small Aggregates": small aggregates that refer to
//! each other by identity and talk through events.
//!
//! | Concept | Consistent with Order in the same transaction? | Where it lives |
//! |---|---|---|
//! | line items | yes: adding one updates the total | [`OrderItem`], entity of [`Order`] |
//! | status | yes: transitions have invariants | [`OrderStatus`] on [`Order`] |
//! | customer profile | no | [`Customer`], referenced by `Identifier<Customer>` |
//! | shipping address | snapshot at order time | [`ShippingAddress`], value object |
//! | inventory count | no | [`Inventory`], updated through [`OrderPlaced`] |
//! | loyalty points | no | [`CustomerLoyalty`], updated through [`OrderPlaced`] |

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

    /// Cancels the order; a cancelled order no longer changes.
    pub fn cancel(&mut self) -> Result<(), DomainError> {
        self.change(|order| {
            order.status = OrderStatus::Cancelled;
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

/// A customer: changes to the profile never need to be consistent with orders.
#[aggregate]
pub struct Customer {
    #[field(min_length = 1, max_length = 200)]
    pub name: String,
    #[field(min_length = 3)]
    pub email: String,
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

    /// Adds stock that arrived.
    pub fn restock(&mut self, quantity: u32) -> Result<(), DomainError> {
        self.change(|stock| {
            stock.available += quantity;
            let event = StockAdded { sku: stock.sku(), quantity, available: stock.available };
            stock.raise(event);
            Ok(())
        })
    }

    /// Reserves stock for an order, raising [`StockReserved`], or refuses with
    /// [`StockReservationFailed`] recorded when there is not enough.
    pub fn reserve(&mut self, order_id: &Identifier<Order>, quantity: u32) -> Result<bool, DomainError> {
        self.change(|stock| {
            let free = stock.available - stock.reserved;
            if quantity > free {
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
            let earned = (*total.cents() / 100).max(0) as u64;
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

/// Add stock of a SKU; the inventory is created on its first restock.
#[command(part_of = Inventory)]
pub struct Restock {
    pub sku: Identifier<Inventory>,
    #[field(min = 1)]
    pub quantity: u32,
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

/// A customer changed name.
#[event(part_of = Customer)]
pub struct CustomerRenamed {
    pub customer_id: Identifier<Customer>,
    pub name: String,
}

/// Stock arrived.
#[event(part_of = Inventory)]
pub struct StockAdded {
    pub sku: String,
    pub quantity: u32,
    pub available: u32,
}

/// Stock was reserved for an order.
#[event(part_of = Inventory)]
pub struct StockReserved {
    pub sku: String,
    pub order_id: Identifier<Order>,
    pub quantity: u32,
}

/// Stock could not be reserved for an order.
#[event(part_of = Inventory)]
pub struct StockReservationFailed {
    pub sku: String,
    pub order_id: Identifier<Order>,
    pub requested: u32,
    pub free: u32,
}

/// Loyalty points were added.
#[event(part_of = CustomerLoyalty)]
pub struct LoyaltyPointsAdded {
    pub customer_id: Identifier<Customer>,
    pub points: u64,
    pub balance: u64,
}

// --- Handlers: each changes one aggregate type; the others react to its events. ---

/// The commands that change an [`Order`].
pub struct OrderCommands;

#[handler(part_of = Order)]
impl OrderCommands {
    /// Creates the order from the command's lines and places it, raising [`OrderPlaced`].
    async fn place(ctx: &mut Context<Order>, command: PlaceOrder) -> Result<(), DomainError> {
        if ctx.find(&command.order_id).await?.is_some() {
            return Err(DomainError::rule(format!("order {} was already placed", command.order_id)));
        }
        let currency = command.lines.first().map_or("EUR", |line| line.unit_price.currency.as_str());
        let customer =
            CustomerSnapshot::new(command.customer_id.clone(), command.customer_name, command.customer_email)?;
        let mut order = Order::builder()
            .id(command.order_id)
            .customer_id(command.customer_id)
            .customer(Some(customer))
            .total(Money::zero(currency)?)
            .shipping_address(command.shipping_address)
            .build()?;
        for line in &command.lines {
            order.add_item(&line.sku, line.quantity, line.unit_price.clone())?;
        }
        order.place()?;
        ctx.add(order)?;
        Ok(())
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

/// The commands that change an [`Inventory`].
pub struct InventoryCommands;

#[handler(part_of = Inventory)]
impl InventoryCommands {
    /// Adds stock, creating the SKU's inventory on its first restock.
    async fn restock(ctx: &mut Context<Inventory>, command: Restock) -> Result<(), DomainError> {
        let sku = command.sku.clone();
        let create = || Ok(Inventory::builder().id(sku.clone()).available(0).build()?);
        ctx.load_or_add(&command.sku, create).await?.restock(command.quantity)
    }
}

/// How [`Inventory`] reacts to orders: its own transaction, after the order's.
pub struct InventoryReactions;

#[handler(part_of = Inventory)]
impl InventoryReactions {
    /// Reserves stock for each line of a placed order; a line that cannot be served
    /// raises [`StockReservationFailed`] instead.
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

#[handler(part_of = CustomerLoyalty)]
impl LoyaltyReactions {
    /// One point per whole unit of currency spent; the account is opened on the first order.
    async fn award_points(ctx: &mut Context<CustomerLoyalty>, event: &OrderPlaced) -> Result<(), DomainError> {
        let id = event.customer_id.cast::<CustomerLoyalty>();
        let open = || Ok(CustomerLoyalty::builder().id(id.clone()).customer_id(event.customer_id.clone()).build()?);
        ctx.load_or_add(&id, open).await?.add_points_for(&event.total)
    }
}
