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
