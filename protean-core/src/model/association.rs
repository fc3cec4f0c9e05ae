//! Associations inside one aggregate cluster: [`HasMany`] and [`HasOne`].
//!
//! They hold entities of the enclosing aggregate (or of an entity of it), never another
//! aggregate: that one is referenced by `Identifier<T>`. The macros reject anything else
//! at compile time.

use serde::{Deserialize, Serialize};

use crate::model::identity::{Identifiable, Identifier};

/// The entities of one kind that an aggregate (or entity) holds, keyed by identity and
/// kept in insertion order.
///
/// ```
/// # extern crate protean_core as protean;
/// # use protean::model::HasMany;
/// # use protean::model::{Identifier, Identifiable};
/// # #[derive(Clone, Debug, PartialEq)] struct Line { id: Identifier<Line>, qty: u32 }
/// # impl Identifiable for Line { const IDENTIFIED_NAME: &'static str = "Line"; fn id(&self) -> &Identifier<Line> { &self.id } }
/// let mut lines = HasMany::new();
/// let first = Line { id: Identifier::generate(), qty: 1 };
/// lines.add(first.clone());
/// lines.add(Line { qty: 5, ..first.clone() }); // same identity: replaces
/// assert_eq!(lines.len(), 1);
/// assert_eq!(lines.get(&first.id).map(|l| l.qty), Some(5));
/// assert!(lines.remove(&first.id).is_some());
/// assert!(lines.is_empty());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HasMany<T> {
    items: Vec<T>,
}

impl<T: Identifiable> FromIterator<T> for HasMany<T> {
    /// Collects entities; a later one with the same identity replaces an earlier one.
    fn from_iter<I: IntoIterator<Item = T>>(entities: I) -> Self {
        let mut many = HasMany::new();
        many.extend(entities);
        many
    }
}

impl<T> Default for HasMany<T> {
    fn default() -> Self {
        Self { items: Vec::new() }
    }
}

impl<T> HasMany<T> {
    /// No entities.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many entities are held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The entities, in insertion order.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.items.iter()
    }

    /// The entities, mutably (changes still go through the aggregate root that owns this).
    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, T> {
        self.items.iter_mut()
    }

    /// The entities as a slice.
    pub fn as_slice(&self) -> &[T] {
        &self.items
    }

    /// Removes every entity.
    pub fn clear(&mut self) {
        self.items.clear()
    }
}

impl<T: Identifiable> HasMany<T> {
    /// Adds an entity; one with the same identity is replaced (and returned).
    pub fn add(&mut self, entity: T) -> Option<T> {
        match self.position(entity.id()) {
            Some(i) => Some(std::mem::replace(&mut self.items[i], entity)),
            None => {
                self.items.push(entity);
                None
            }
        }
    }

    /// The entity with this identity.
    pub fn get(&self, id: &Identifier<T>) -> Option<&T> {
        self.items.iter().find(|e| e.id() == id)
    }

    /// The entity with this identity, mutably.
    pub fn get_mut(&mut self, id: &Identifier<T>) -> Option<&mut T> {
        self.items.iter_mut().find(|e| e.id() == id)
    }

    /// Removes and returns the entity with this identity.
    pub fn remove(&mut self, id: &Identifier<T>) -> Option<T> {
        self.position(id).map(|i| self.items.remove(i))
    }

    /// Whether an entity with this identity is held.
    pub fn contains(&self, id: &Identifier<T>) -> bool {
        self.position(id).is_some()
    }

    /// Adds many entities at once (in linear time, where repeated [`add`](Self::add)s
    /// are quadratic); as with `add`, a later entity replaces an earlier one with the
    /// same identity.
    pub fn extend(&mut self, entities: impl IntoIterator<Item = T>) {
        let mut at: std::collections::HashMap<Identifier<T>, usize> =
            self.items.iter().enumerate().map(|(i, e)| (e.id().clone(), i)).collect();
        for entity in entities {
            match at.get(entity.id()) {
                Some(&i) => self.items[i] = entity,
                None => {
                    at.insert(entity.id().clone(), self.items.len());
                    self.items.push(entity);
                }
            }
        }
    }

    fn position(&self, id: &Identifier<T>) -> Option<usize> {
        self.items.iter().position(|e| e.id() == id)
    }
}

impl<T: Identifiable> From<Vec<T>> for HasMany<T> {
    fn from(items: Vec<T>) -> Self {
        items.into_iter().collect()
    }
}

impl<'a, T> IntoIterator for &'a HasMany<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl<T> IntoIterator for HasMany<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

/// At most one entity of the enclosing cluster.
///
/// ```
/// # extern crate protean_core as protean;
/// # use protean::model::HasOne;
/// let mut one: HasOne<u8> = HasOne::new();
/// assert!(one.get().is_none());
/// one.set(7);
/// assert_eq!(one.get(), Some(&7));
/// assert_eq!(one.clear(), Some(7));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HasOne<T> {
    item: Option<T>,
}

impl<T> Default for HasOne<T> {
    fn default() -> Self {
        Self { item: None }
    }
}

impl<T> HasOne<T> {
    /// Holding nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the entity, returning the one it replaces.
    pub fn set(&mut self, entity: T) -> Option<T> {
        self.item.replace(entity)
    }

    /// Removes and returns the entity.
    pub fn clear(&mut self) -> Option<T> {
        self.item.take()
    }

    /// The entity, if any.
    pub fn get(&self) -> Option<&T> {
        self.item.as_ref()
    }

    /// The entity, mutably.
    pub fn get_mut(&mut self) -> Option<&mut T> {
        self.item.as_mut()
    }

    /// Whether an entity is held.
    pub fn is_set(&self) -> bool {
        self.item.is_some()
    }
}

impl<T> From<T> for HasOne<T> {
    fn from(entity: T) -> Self {
        Self { item: Some(entity) }
    }
}

impl<T> From<Option<T>> for HasOne<T> {
    fn from(item: Option<T>) -> Self {
        Self { item }
    }
}

impl<T> crate::model::validation::Measured for HasMany<T> {
    const UNIT: &'static str = "item";
    fn length(&self) -> Option<usize> {
        Some(self.items.len())
    }
}
