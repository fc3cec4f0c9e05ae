//! The SQL of a query over a projection's rows in SQLite: the declared fields'
//! expressions, the names of their partial indexes, the field whose index a query reads,
//! and the statement with its values. See docs/storage.md, "Projections and scheduled
//! commands on SQLite".

use rusqlite::types::Value;

use crate::store::{FilterOp, RowQuery, StoreError};

/// The columns a [`Row`](crate::store::Row) is read from (by `row_of`, in `projections.rs`).
pub(super) const ROW_COLUMNS: &str = "r.key AS key, r.generation AS generation, r.version AS version, r.json AS json";

/// A declared field as it may appear in SQL: letters, digits and `_` only (it is written
/// into a JSON path and an index name, never bound).
pub(super) fn safe_field(field: &str) -> Result<&str, StoreError> {
    if !field.is_empty() && field.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(field)
    } else {
        Err(StoreError::Unsupported(format!(
            "the projection field `{field}` cannot be indexed or queried: a field name is letters, digits and `_`"
        )))
    }
}

/// A projection's name as an SQL string literal, what its partial indexes and queries
/// both say (so that SQLite matches them). A name with a NUL is refused.
pub(super) fn name_literal(name: &str) -> Result<String, StoreError> {
    if name.contains('\0') {
        return Err(StoreError::Unsupported(format!("the projection name {name:?} contains a NUL character")));
    }
    Ok(format!("'{}'", name.replace('\'', "''")))
}

/// The expression a declared field is indexed and queried by.
pub(super) fn field_expression(field: &str) -> String {
    format!("json_extract(json, '$.{field}')")
}

/// `text` with every character but ASCII letters and digits as `_` and two hex digits
/// per byte: so `__` never occurs in it, and different texts stay different.
fn escape_identifier(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() {
            escaped.push(char::from(byte));
        } else {
            escaped.push_str(&format!("_{byte:02x}"));
        }
    }
    escaped
}

/// The name of the index of `field` of projection `name`: `protean_rows__<name>__<field>`,
/// each escaped (see [`escape_identifier`]), so that names stay apart.
pub(super) fn index_name(name: &str, field: &str) -> String {
    format!("protean_rows__{}__{}", escape_identifier(name), escape_identifier(field))
}

/// The field whose index a query reads, SQLite having no statistics to choose by (it
/// would take the primary key's `(projection, generation)` prefix for a few rows): the
/// first one compared for equality (null included), else the first one compared by
/// order, else the first one ordered by; none for a query with neither (the primary key
/// then gives the rows in key order) or only `Ne` filters.
pub(super) fn chosen_field(query: &RowQuery) -> Option<&str> {
    let compared = |ops: &[FilterOp]| query.filters.iter().find(|f| ops.contains(&f.op)).map(|f| f.field.as_str());
    compared(&[FilterOp::Eq])
        .or_else(|| compared(&[FilterOp::Lt, FilterOp::Le, FilterOp::Gt, FilterOp::Ge]))
        .or_else(|| query.order.first().map(|o| o.field.as_str()))
}

/// A JSON scalar as the SQLite value `json_extract` gives for it, with the condition on
/// `json_type` that keeps values of other kinds out (`json_extract` gives 0 and 1 for
/// booleans, and the JSON text for objects and arrays). `None` for null, an object or an
/// array.
fn scalar(value: &serde_json::Value) -> Option<(Value, &'static str)> {
    match value {
        serde_json::Value::String(text) => Some((Value::Text(text.clone()), "= 'text'")),
        serde_json::Value::Bool(flag) => Some((Value::Integer(i64::from(*flag)), "IN ('true', 'false')")),
        serde_json::Value::Number(number) => {
            let value = match (number.as_i64(), number.as_f64()) {
                (Some(integer), _) => Value::Integer(integer),
                // A `u64` past `i64`, or a float: SQLite compares it as a real.
                (None, Some(real)) => Value::Real(real),
                (None, None) => return None,
            };
            Some((value, "IN ('integer', 'real')"))
        }
        serde_json::Value::Null | serde_json::Value::Array(_) | serde_json::Value::Object(_) => None,
    }
}

/// The statement of a row query (run by `projections.rs`), reading `index` (which must
/// exist) if given, and the values to bind.
pub(super) fn query_sql(query: &RowQuery, index: Option<&str>) -> Result<(String, Vec<Value>), StoreError> {
    let literal = name_literal(&query.projection)?;
    let indexed = index.map_or(String::new(), |index| format!(" INDEXED BY {index}"));
    let mut sql = format!(
        "SELECT {ROW_COLUMNS} FROM protean_projection_rows AS r{indexed}
         WHERE r.projection = {literal}
           AND r.generation = (SELECT generation FROM protean_projections WHERE name = {literal})"
    );
    let mut values: Vec<Value> = Vec::new();
    for filter in &query.filters {
        let field = safe_field(&filter.field)?;
        let expression = field_expression(field);
        match (&filter.value, filter.op) {
            (serde_json::Value::Null, FilterOp::Eq) => sql.push_str(&format!(" AND {expression} IS NULL")),
            (serde_json::Value::Null, FilterOp::Ne) => sql.push_str(&format!(" AND {expression} IS NOT NULL")),
            (serde_json::Value::Null, op) => {
                return Err(StoreError::Unsupported(format!(
                    "the filter on `{field}` compares null with `{}`: null takes only equal and not equal",
                    op.sql()
                )))
            }
            (value, op) => {
                let (bound, kind) = scalar(value).ok_or_else(|| {
                    StoreError::Unsupported(format!(
                        "the filter on `{field}` compares with {value}: a filter takes a string, number, boolean or null"
                    ))
                })?;
                values.push(bound);
                sql.push_str(&format!(
                    " AND {expression} {} ?{} AND json_type(json, '$.{field}') {kind}",
                    op.sql(),
                    values.len()
                ));
            }
        }
    }
    sql.push_str(" ORDER BY ");
    for order in &query.order {
        let field = safe_field(&order.field)?;
        sql.push_str(&field_expression(field));
        sql.push_str(if order.descending { " DESC, " } else { ", " });
    }
    values.push(Value::Integer(i64::try_from(query.limit).unwrap_or(i64::MAX)));
    values.push(Value::Integer(i64::try_from(query.offset).unwrap_or(i64::MAX)));
    sql.push_str(&format!("r.key LIMIT ?{} OFFSET ?{}", values.len() - 1, values.len()));
    Ok((sql, values))
}

#[cfg(test)]
mod tests {
    use rusqlite::{params_from_iter, Connection};

    use super::super::projections::register;
    use super::*;
    use crate::store::{ProjectionSpec, RowFilter, RowOrder};

    /// What SQLite plans for `query` on a database where `spec` is registered.
    fn plan(spec: &ProjectionSpec, query: &RowQuery) -> String {
        let mut connection = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut connection).unwrap();
        register(&mut connection, spec).unwrap();
        let index = chosen_field(query).map(|field| index_name(&query.projection, field));
        let (sql, values) = query_sql(query, index.as_deref()).unwrap();
        let mut explain = connection.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let details: Vec<String> = explain
            .query_map(params_from_iter(values), |r| r.get::<_, String>("detail"))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        details.join("\n")
    }

    fn spec() -> ProjectionSpec {
        ProjectionSpec { name: "Credit's view".into(), version: 1, indexed: vec!["balance".into(), "name".into()] }
    }

    fn query(filters: Vec<RowFilter>, order: Vec<RowOrder>) -> RowQuery {
        RowQuery { projection: "Credit's view".into(), filters, order, limit: 10, offset: 0 }
    }

    #[test]
    fn queries_use_the_index_of_their_field() {
        let index = index_name("Credit's view", "balance");
        assert_eq!(index, "protean_rows__Credit_27s_20view__balance");
        let filter = RowFilter { field: "balance".into(), op: FilterOp::Gt, value: serde_json::json!(10) };
        let planned = plan(&spec(), &query(vec![filter], vec![]));
        assert!(planned.contains(&format!("USING INDEX {index}")), "{planned}");
        // Ordering by the field alone: read in index order (its entries end with the
        // key), no sort.
        let order = RowOrder { field: "balance".into(), descending: false };
        let planned = plan_of_order(order);
        assert!(planned.contains(&format!("USING INDEX {index}")), "{planned}");
        assert!(!planned.contains("TEMP B-TREE"), "{planned}");
        // Largest first, then by key: in index order, keys sorted within equal values.
        let order = RowOrder { field: "balance".into(), descending: true };
        let planned = plan_of_order(order);
        assert!(planned.contains(&format!("USING INDEX {index}")), "{planned}");
        assert!(!planned.contains("TEMP B-TREE FOR ORDER BY"), "{planned}");
        // Equality on a string field.
        let filter = RowFilter { field: "name".into(), op: FilterOp::Eq, value: serde_json::json!("ann") };
        let planned = plan(&spec(), &query(vec![filter], vec![]));
        assert!(planned.contains(&format!("USING INDEX {}", index_name("Credit's view", "name"))), "{planned}");
        assert!(!planned.contains("TEMP B-TREE"), "{planned}");
    }

    fn plan_of_order(order: RowOrder) -> String {
        plan(&spec(), &query(vec![], vec![order]))
    }

    #[test]
    fn identifiers_stay_apart() {
        assert_ne!(index_name("a_b", "c"), index_name("a", "b_c"));
        assert_ne!(index_name("a", "b__c"), index_name("a__b", "c"));
        assert!(safe_field("balance_2").is_ok());
        for bad in ["", "a.b", "a'b", "a b", "ä", "a]"] {
            assert!(matches!(safe_field(bad), Err(StoreError::Unsupported(_))), "{bad}");
        }
    }
}
