//! Two handler methods with one name (`Reactions::on`) in two modules: the domain
//! refuses to build, since handled events are recorded by that name.

pub mod billing {
    use protean::prelude::*;

    #[aggregate]
    pub struct Bill {
        pub total: i64,
    }

    #[event(part_of = Bill)]
    pub struct Billed {
        pub id: Identifier<Bill>,
    }

    pub struct Reactions;

    #[handler(part_of = Bill)]
    impl Reactions {
        async fn on(ctx: &mut Context<Bill>, event: &Billed) -> Result<(), DomainError> {
            ctx.load(&event.id).await?.total += 1;
            Ok(())
        }
    }
}

pub mod shipping {
    use protean::prelude::*;

    #[aggregate]
    pub struct Parcel {
        pub count: i64,
    }

    pub struct Reactions;

    #[handler(part_of = Parcel)]
    impl Reactions {
        async fn on(ctx: &mut Context<Parcel>, event: &super::billing::Billed) -> Result<(), DomainError> {
            ctx.load(&event.id.cast::<Parcel>()).await?.count += 1;
            Ok(())
        }
    }
}
