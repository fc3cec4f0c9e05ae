mod model {
    use protean::prelude::*;

    #[value_object]
    pub struct Money {
        pub cents: i64,
    }
}

fn main() {
    let mut price = model::Money::new(100).unwrap();
    price.cents = 5;
}
