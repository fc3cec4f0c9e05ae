//! The handler's context: one instance per identity, and read models read, never
//! changed.

use protean::prelude::*;

use crate::lab;

#[tokio::test]
async fn the_identity_map_gives_one_instance_per_identity() {
    let domain = Domain::builder().module(crate::model("lab")).build().unwrap();
    let id = Identifier::<lab::Counter>::generate();
    domain.process(lab::BumpTwice { id: id.clone() }).await.unwrap().all_delivered().unwrap();
    let counter = domain.get(&id).await.unwrap().unwrap();
    assert_eq!((counter.count, counter.version()), (2, 1));
}

#[tokio::test]
async fn handlers_read_read_models_without_changing_them() {
    let domain = Domain::builder().module(crate::model("lab")).build().unwrap();
    let id = Identifier::<lab::Counter>::generate();
    domain.process(lab::BumpTwice { id: id.clone() }).await.unwrap().all_delivered().unwrap();
    let command = lab::BumpByPrice { id: id.clone(), product: "pen".into() };
    let error = domain.process(command.clone()).await.unwrap_err();
    assert_eq!(error.rejection(), Some(&DomainError::rule("no price for pen")));
    domain.put_read_model("pen", &lab::Price { cents: 40 }).await.unwrap();
    domain.process(command).await.unwrap().all_delivered().unwrap();
    assert_eq!(domain.get(&id).await.unwrap().unwrap().count, 42);
    assert_eq!(domain.read_model::<lab::Price>("pen").await.unwrap().unwrap().cents, 40);
}

#[tokio::test]
async fn a_loaded_aggregate_does_not_hold_the_identity_it_was_loaded_by() {
    let domain = Domain::builder().module(crate::model("lab")).build().unwrap();
    let loan = lab::Loan::builder().title("Dune").returned(false).renewals(0u32).build().unwrap();
    let id = loan.id.clone();
    let mut unit = domain.unit_of_work::<lab::Loan>();
    unit.add(loan).unwrap();
    unit.commit().await.unwrap().all_delivered().unwrap();
    domain.process(lab::RenewLoan { loan_id: id.clone() }).await.unwrap().all_delivered().unwrap();
    let processed = domain.process(lab::ReturnLoan { loan_id: id.clone() }).await.unwrap();
    assert_eq!(processed.events.len(), 1);
    let loan = domain.get(&id).await.unwrap().unwrap();
    assert_eq!((loan.returned, loan.renewals), (true, 2));
}
