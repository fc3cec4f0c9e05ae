//! Reading a projection's rows in memory: one by key, or the rows of a [`RowQuery`], its
//! filters and order evaluated over each row's JSON.

use std::cmp::Ordering;
use std::sync::Arc;

use serde_json::Value;

use super::{Inner, StoredRow};
use crate::store::envelope::StreamId;
use crate::store::{FilterOp, Row, RowFilter, RowQuery, StoreError};

/// Row `key` of projection `name`: of copy `generation`, or of the serving copy.
pub(super) fn row_in(inner: &Inner, name: &str, generation: Option<u64>, key: &str) -> Option<Row> {
    let projected = inner.projections.get(name)?;
    let generation = generation.unwrap_or(projected.generation);
    let row = projected.copies.get(&generation)?.get(key)?;
    Some(Row { key: key.to_owned(), generation, version: row.version, json: Arc::clone(&row.json) })
}

/// The rows of `query`, from the serving copy.
pub(super) fn query_in(inner: &Inner, query: &RowQuery) -> Result<Vec<Row>, StoreError> {
    for filter in &query.filters {
        check_filter(filter)?;
    }
    let Some(projected) = inner.projections.get(&*query.projection) else { return Ok(Vec::new()) };
    let Some(copy) = projected.copies.get(&projected.generation) else { return Ok(Vec::new()) };
    let parse = !query.filters.is_empty() || !query.order.is_empty();
    // Each matching row with the values it is ordered by.
    let mut found: Vec<(Vec<Value>, &String, &StoredRow)> = Vec::new();
    for (key, row) in copy {
        let mut sort_by = Vec::new();
        if parse {
            let value: Value = serde_json::from_str(&row.json).map_err(|e| {
                let stream = StreamId::new(query.projection.clone(), key.as_str());
                StoreError::corrupt(&stream, row.version, format!("the projection row does not read: {e}"))
            })?;
            if !query.filters.iter().all(|filter| holds(filter, value.get(&filter.field))) {
                continue;
            }
            sort_by = query.order.iter().map(|o| value.get(&o.field).cloned().unwrap_or(Value::Null)).collect();
        }
        found.push((sort_by, key, row));
    }
    found.sort_by(|(a, a_key, _), (b, b_key, _)| {
        for ((a, b), order) in a.iter().zip(b).zip(&query.order) {
            let ordering = order_values(a, b);
            let ordering = if order.descending { ordering.reverse() } else { ordering };
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        a_key.cmp(b_key)
    });
    let rows = found.into_iter().skip(query.offset).take(query.limit).map(|(_, key, row)| Row {
        key: key.clone(),
        generation: projected.generation,
        version: row.version,
        json: Arc::clone(&row.json),
    });
    Ok(rows.collect())
}

/// Refuses the filters this store cannot evaluate: an order with `null`, and values
/// that are not JSON scalars.
fn check_filter(filter: &RowFilter) -> Result<(), StoreError> {
    match (&filter.value, filter.op) {
        (Value::Null, FilterOp::Eq | FilterOp::Ne) | (Value::Bool(_) | Value::Number(_) | Value::String(_), _) => {
            Ok(())
        }
        (Value::Null, op) => Err(StoreError::Unsupported(format!(
            "a row filter on `{}` compares with null by `{}`: only equal and not equal can",
            filter.field,
            op.sql()
        ))),
        (Value::Array(_) | Value::Object(_), _) => Err(StoreError::Unsupported(format!(
            "a row filter on `{}` compares with {}: only JSON scalars (string, number, boolean, null) can be compared",
            filter.field, filter.value
        ))),
    }
}

/// Whether a row whose field `filter.field` is `field` (`None`: missing) passes `filter`.
fn holds(filter: &RowFilter, field: Option<&Value>) -> bool {
    match (&filter.value, filter.op) {
        (Value::Null, FilterOp::Eq) => field.is_none_or(Value::is_null),
        (Value::Null, FilterOp::Ne) => field.is_some_and(|value| !value.is_null()),
        (value, op) => match field.and_then(|field| compare_scalars(field, value)) {
            None => false,
            Some(ordering) => match op {
                FilterOp::Eq => ordering == Ordering::Equal,
                FilterOp::Ne => ordering != Ordering::Equal,
                FilterOp::Lt => ordering == Ordering::Less,
                FilterOp::Le => ordering != Ordering::Greater,
                FilterOp::Gt => ordering == Ordering::Greater,
                FilterOp::Ge => ordering != Ordering::Less,
            },
        },
    }
}

/// How two JSON scalars of the same kind compare; `None` for different kinds (which
/// never match) and for anything but strings, numbers and booleans.
fn compare_scalars(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        (Value::Number(a), Value::Number(b)) => Some(compare_numbers(a, b)),
        (Value::String(a), Value::String(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
        _ => None,
    }
}

/// Numbers by value: exactly when both are integers, as floats otherwise.
fn compare_numbers(a: &serde_json::Number, b: &serde_json::Number) -> Ordering {
    let integer = |n: &serde_json::Number| n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from));
    match (integer(a), integer(b)) {
        (Some(a), Some(b)) => a.cmp(&b),
        _ => {
            let (a, b) = (a.as_f64().unwrap_or(f64::NAN), b.as_f64().unwrap_or(f64::NAN));
            a.partial_cmp(&b).unwrap_or_else(|| a.total_cmp(&b))
        }
    }
}

/// The order of a query's field values, ascending: missing and null first, then
/// booleans, numbers, strings, arrays and objects (each kind by value; arrays and
/// objects by their JSON text).
fn order_values(a: &Value, b: &Value) -> Ordering {
    let kind = |value: &Value| match value {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    };
    kind(a).cmp(&kind(b)).then_with(|| match compare_scalars(a, b) {
        Some(ordering) => ordering,
        None if a.is_null() => Ordering::Equal,
        None => a.to_string().cmp(&b.to_string()),
    })
}
