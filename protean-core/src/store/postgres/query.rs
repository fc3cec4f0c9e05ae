//! The SQL of a projection's query ([`RowQuery`]): run by
//! [`Projections::query_projection`](crate::store::Projections::query_projection),
//! explained by [`PostgresStore::explain_query`], and checked again by the commit
//! function for a unit of work that read it. See docs/storage.md, "Projections and
//! scheduled commands on PostgreSQL".

use std::fmt::Write as _;

use super::{backend, PostgresStore};
use crate::store::{FilterOp, RowQuery, RowVersion, StoreError};

/// `name` when it is a projection's or field's name the store may write into SQL: ASCII
/// letters, digits and `_`; else [`StoreError::Unsupported`].
pub(super) fn identifier<'n>(what: &str, name: &'n str) -> Result<&'n str, StoreError> {
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(name)
    } else {
        Err(StoreError::Unsupported(format!(
            "postgres: {what} `{name}` may hold only ASCII letters, digits and `_` (it is written into SQL and \
             index names)"
        )))
    }
}

/// The SQL of a [`RowQuery`] and the JSON values it binds (`$1`…; the limit and offset
/// follow them).
pub(super) fn query_sql(query: &RowQuery) -> Result<(String, Vec<String>), StoreError> {
    let mut values = Vec::new();
    let sql = query_text(query, &mut |value| {
        values.push(value);
        format!("${}", values.len())
    })?;
    Ok((sql, values))
}

/// The statement the commit function runs to check a query a unit of work read (see
/// `schema/commit_batch.sql`): the query with its values written in as literals, giving
/// its rows' keys, copies and versions as one JSON array in key order.
pub(super) fn query_check_sql(query: &RowQuery) -> Result<String, StoreError> {
    // Standard strings (PostgreSQL's default since 9.1): a quote is the only character
    // to double.
    let sql = query_text(query, &mut |value| format!("'{}'", value.replace('\'', "''")))?;
    Ok(format!(
        "SELECT coalesce(jsonb_agg(jsonb_build_array(q.key, q.generation, q.version) ORDER BY q.key COLLATE \"C\"), \
         '[]'::jsonb) FROM ({sql}) AS q"
    ))
}

/// What [`query_check_sql`] is compared with: the rows read, as the same JSON array.
pub(super) fn query_check_expected(found: &[RowVersion]) -> String {
    let mut found: Vec<&RowVersion> = found.iter().collect();
    found.sort_by(|a, b| a.key.cmp(&b.key));
    let rows: Vec<serde_json::Value> =
        found.iter().map(|r| serde_json::json!([r.key, r.generation, r.version])).collect();
    serde_json::Value::Array(rows).to_string()
}

/// The SQL of a [`RowQuery`], with each value (a JSON text; the limit and the offset as
/// numbers) written as what `param` gives for it.
fn query_text(query: &RowQuery, param: &mut dyn FnMut(String) -> String) -> Result<String, StoreError> {
    let name = identifier("projection", &query.projection)?;
    // The projection is written in, not bound: the partial indexes' predicate
    // (`projection = '…'`) must be seen to hold, whatever plan the statement gets.
    let mut sql = format!(
        "SELECT key, generation, version, json::text AS json FROM protean_projection_rows
         WHERE projection = '{name}'
         AND generation = (SELECT generation FROM protean_projections WHERE name = '{name}')"
    );
    for filter in &query.filters {
        let field = identifier("field", &filter.field)?;
        let column = format!("(json->'{field}')");
        let kind = match &filter.value {
            serde_json::Value::Null => {
                let condition = match filter.op {
                    FilterOp::Eq => format!("({column} IS NULL OR {column} = 'null'::jsonb)"),
                    FilterOp::Ne => format!("({column} IS NOT NULL AND {column} <> 'null'::jsonb)"),
                    op => {
                        return Err(StoreError::Unsupported(format!(
                            "postgres: a filter on `{field}` compares null with `{}`: only `=` and `<>` take null",
                            op.sql()
                        )))
                    }
                };
                let _ = write!(sql, " AND {condition}");
                continue;
            }
            serde_json::Value::Bool(_) => "boolean",
            serde_json::Value::Number(_) => "number",
            serde_json::Value::String(_) => "string",
            serde_json::Value::Array(_) | serde_json::Value::Object(_) => {
                return Err(StoreError::Unsupported(format!(
                    "postgres: a filter on `{field}` compares it with {}: only JSON scalars compare",
                    filter.value
                )))
            }
        };
        let value = param(filter.value.to_string());
        // jsonb orders values of different kinds too (null < string < number < boolean):
        // the kind is checked, so they never match.
        let _ = write!(sql, " AND {column} {} {value}::jsonb AND jsonb_typeof({column}) = '{kind}'", filter.op.sql());
    }
    sql.push_str(" ORDER BY ");
    for order in &query.order {
        let field = identifier("field", &order.field)?;
        // JSON null and a missing field are one and the same: first ascending, last descending.
        let direction = if order.descending { "DESC NULLS LAST" } else { "ASC NULLS FIRST" };
        let _ = write!(sql, "nullif(json->'{field}', 'null'::jsonb) {direction}, ");
    }
    let limit = param(i64::try_from(query.limit).unwrap_or(i64::MAX).to_string());
    let offset = param(i64::try_from(query.offset).unwrap_or(i64::MAX).to_string());
    let _ = write!(sql, "key COLLATE \"C\" LIMIT {limit}::bigint OFFSET {offset}::bigint");
    Ok(sql)
}

impl PostgresStore {
    /// The plan PostgreSQL makes for [`query_projection`](crate::store::Projections::query_projection)
    /// of `query` (`EXPLAIN`, one line per row of its output): to see whether a query reads
    /// the index of a declared field. The same SQL and values, only explained.
    pub async fn explain_query(&self, query: RowQuery) -> Result<String, StoreError> {
        let (sql, values) = query_sql(&query)?;
        let sql = format!("EXPLAIN {sql}");
        let mut statement = sqlx::query_scalar::<_, String>(&sql);
        for value in &values {
            statement = statement.bind(value);
        }
        let lines = statement.fetch_all(&self.pool).await.map_err(backend)?;
        Ok(lines.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{RowFilter, RowOrder};

    #[test]
    fn names_outside_letters_digits_and_underscores_are_refused() {
        for bad in ["", "a-b", "a'b", "a b", "é", "a.b", "a\"b"] {
            assert!(matches!(identifier("field", bad), Err(StoreError::Unsupported(_))), "{bad:?}");
        }
        assert!(identifier("field", "Credit_limit2").is_ok());
    }

    #[test]
    fn queries_filter_by_kind_and_refuse_what_does_not_compare() {
        let query = |value: serde_json::Value, op: FilterOp| RowQuery {
            projection: "View".into(),
            filters: vec![RowFilter { field: "f".into(), op, value }],
            order: vec![RowOrder { field: "g".into(), descending: true }],
            limit: 10,
            offset: 0,
        };
        let (sql, values) = query_sql(&query(serde_json::json!(5), FilterOp::Ge)).unwrap();
        assert!(sql.contains("(json->'f') >= $1::jsonb AND jsonb_typeof((json->'f')) = 'number'"), "{sql}");
        assert!(
            sql.ends_with(
                "ORDER BY nullif(json->'g', 'null'::jsonb) DESC NULLS LAST, key COLLATE \"C\" LIMIT $2::bigint OFFSET $3::bigint"
            ),
            "{sql}"
        );
        assert_eq!(values, ["5", "10", "0"]);
        let (sql, values) = query_sql(&query(serde_json::Value::Null, FilterOp::Eq)).unwrap();
        assert!(sql.contains("IS NULL OR"), "{sql}");
        assert_eq!(values, ["10", "0"]);
        for (value, op) in [
            (serde_json::Value::Null, FilterOp::Lt),
            (serde_json::json!([1]), FilterOp::Eq),
            (serde_json::json!({"a": 1}), FilterOp::Eq),
        ] {
            assert!(matches!(query_sql(&query(value, op)), Err(StoreError::Unsupported(_))));
        }
        let mut bad = query(serde_json::json!(1), FilterOp::Eq);
        bad.filters[0].field = "f'; DROP TABLE x; --".into();
        assert!(matches!(query_sql(&bad), Err(StoreError::Unsupported(_))));
        assert!(matches!(query_check_sql(&bad), Err(StoreError::Unsupported(_))));
    }

    #[test]
    fn a_query_checked_at_commit_has_its_values_written_in_quoted() {
        let query = RowQuery {
            projection: "View".into(),
            filters: vec![RowFilter { field: "f".into(), op: FilterOp::Eq, value: serde_json::json!("it's") }],
            order: vec![],
            limit: 10,
            offset: 2,
        };
        let sql = query_check_sql(&query).unwrap();
        assert!(sql.contains("(json->'f') = '\"it''s\"'::jsonb"), "{sql}");
        assert!(sql.contains("LIMIT '10'::bigint OFFSET '2'::bigint"), "{sql}");
        assert!(!sql.contains('$'), "{sql}");
        let found = [
            RowVersion { key: "b".into(), generation: 1, version: 2 },
            RowVersion { key: "a".into(), generation: 1, version: 7 },
        ];
        assert_eq!(query_check_expected(&found), r#"[["a",1,7],["b",1,2]]"#);
    }
}
