//! Units of work: isolated until they commit, refused when stale, checked against the
//! invariants however their aggregates were changed.

use protean::prelude::*;
use protean::store::VersionConflict;

use crate::ecommerce::*;
use crate::{shop, sku};

#[tokio::test]
async fn a_stale_unit_of_work_gets_a_typed_conflict_and_writes_nothing() {
    let domain = shop();
    let id = sku("BOOK-1");
    domain.process(Restock { sku: id.clone(), quantity: 5 }).await.unwrap().all_delivered().unwrap();

    let mut first = domain.unit_of_work::<Inventory>();
    let mut second = domain.unit_of_work::<Inventory>();
    first.load(&id).await.unwrap().restock(1).unwrap();
    second.load(&id).await.unwrap().restock(100).unwrap();
    first.commit().await.unwrap().all_delivered().unwrap();
    let Err(ProcessError::Conflict(conflict)) = second.commit().await else { panic!("a conflict") };
    assert_eq!(conflict, VersionConflict { stream: conflict.stream.clone(), expected: 1, actual: 2 });
    assert_eq!(&*conflict.stream.id, "BOOK-1");
    assert_eq!(domain.get(&id).await.unwrap().unwrap().available, 6);
}

#[tokio::test]
async fn units_of_work_are_isolated_and_write_only_when_committed() {
    let domain = shop();
    let id = sku("BOOK-1");
    domain.process(Restock { sku: id.clone(), quantity: 5 }).await.unwrap().all_delivered().unwrap();

    let mut unit = domain.unit_of_work::<Inventory>();
    unit.load(&id).await.unwrap().restock(10).unwrap();
    // The identity map: the same aggregate, with the change, on the second load.
    assert_eq!(unit.load(&id).await.unwrap().available, 15);
    // Another unit (and the store) still sees the committed state.
    assert_eq!(domain.get(&id).await.unwrap().unwrap().available, 5);
    drop(unit);
    assert_eq!(domain.get(&id).await.unwrap().unwrap().available, 5, "dropped, never written");
    assert_eq!(domain.events_of(&id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn invariants_are_checked_before_saving_even_after_direct_field_changes() {
    let domain = shop();
    let id = sku("BOOK-1");
    domain.process(Restock { sku: id.clone(), quantity: 5 }).await.unwrap().all_delivered().unwrap();
    let mut unit = domain.unit_of_work::<Inventory>();
    unit.load(&id).await.unwrap().reserved = 9; // bypasses `reserve`
    let error = unit.commit().await.unwrap_err();
    let Some(DomainError::Validation(errors)) = error.rejection() else { panic!("invalid: {error}") };
    assert_eq!(errors.messages("reserved"), ["cannot exceed the available stock"]);
    assert_eq!(domain.get(&id).await.unwrap().unwrap().reserved, 0);
}

#[tokio::test]
async fn removal_is_committed_and_a_stale_writer_is_refused() {
    let domain = shop();
    let id = sku("BOOK-1");
    domain.process(Restock { sku: id.clone(), quantity: 5 }).await.unwrap().all_delivered().unwrap();
    let mut stale = domain.unit_of_work::<Inventory>();
    stale.load(&id).await.unwrap().restock(1).unwrap();

    let mut unit = domain.unit_of_work::<Inventory>();
    unit.remove(&id).await.unwrap();
    assert!(unit.find(&id).await.unwrap().is_none(), "removed within the unit");
    unit.commit().await.unwrap().all_delivered().unwrap();
    assert!(domain.get(&id).await.unwrap().is_none());
    assert!(matches!(stale.commit().await, Err(ProcessError::Conflict(_))));
}
