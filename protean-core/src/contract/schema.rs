//! A JSON Schema (draft 2020-12) per event and command: what another service may check
//! a payload against. Made from the lock's blocks, so the schema and the lock say the
//! same thing.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::lock::{Block, Lock};
use super::ty::Ty;
use crate::registry::{Model, Presence};

/// The JSON Schema of one event or command version: an object with the stored keys as
/// properties, those a stored payload must have as `required`, and `additionalProperties:
/// false` when the element refuses unknown fields. Its `$id` is
/// `urn:protean:<type name>:v<version>`.
pub fn json_schema(block: &Block) -> Value {
    let mut object = object_schema(block, "");
    let mut head = Map::new();
    head.insert("$schema".into(), json!("https://json-schema.org/draft/2020-12/schema"));
    head.insert("$id".into(), json!(format!("urn:protean:{}:v{}", block.type_name, block.version)));
    head.insert("title".into(), json!(block.type_name));
    head.insert(
        "description".into(),
        json!(format!("{} {} at version {}", block.kind.as_str(), block.type_name, block.version)),
    );
    head.append(&mut object);
    Value::Object(head)
}

/// The JSON Schemas of the model's events and commands, current versions, by stored
/// type name.
pub fn json_schemas(model: &Model) -> BTreeMap<String, Value> {
    Lock::of(model)
        .blocks
        .values()
        .filter(|b| b.kind.is_message())
        .map(|b| (b.type_name.clone(), json_schema(b)))
        .collect()
}

/// The schema of the object whose fields are the block's lines under `prefix`.
fn object_schema(block: &Block, prefix: &str) -> Map<String, Value> {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for (key, field) in block.children(prefix) {
        let mut schema = type_schema(block, &field.ty, &field.path);
        if let Some(map) = schema.as_object_mut() {
            for limit in &field.limits {
                if let Some((name, value)) = limit.split_once('=') {
                    add_limit(map, &field.ty, name, value);
                }
            }
        }
        properties.insert(key.to_owned(), schema);
        if field.presence == Presence::Required {
            required.push(key.to_owned());
        }
    }
    let mut schema = Map::new();
    schema.insert("type".into(), json!("object"));
    schema.insert("properties".into(), Value::Object(properties));
    schema.insert("required".into(), json!(required));
    if block.deny_unknown_fields {
        schema.insert("additionalProperties".into(), json!(false));
    }
    schema
}

fn type_schema(block: &Block, ty: &Ty, path: &str) -> Value {
    match ty {
        Ty::Bool => json!({ "type": "boolean" }),
        Ty::Char => json!({ "type": "string", "minLength": 1, "maxLength": 1 }),
        Ty::Int(bits) => {
            let bits = u32::from(*bits).min(64);
            if bits >= 64 {
                json!({ "type": "integer" })
            } else {
                json!({ "type": "integer", "minimum": -(1i64 << (bits - 1)), "maximum": (1i64 << (bits - 1)) - 1 })
            }
        }
        Ty::Uint(bits) => {
            let bits = u32::from(*bits).min(64);
            if bits >= 64 {
                json!({ "type": "integer", "minimum": 0 })
            } else {
                json!({ "type": "integer", "minimum": 0, "maximum": (1u64 << bits) - 1 })
            }
        }
        Ty::Float(_) => json!({ "type": "number" }),
        Ty::Text => json!({ "type": "string" }),
        Ty::Uuid => json!({ "type": "string", "format": "uuid" }),
        Ty::Identifier(target) => json!({ "type": "string", "description": format!("the identity of a {target}") }),
        Ty::Timestamp => json!({
            "type": "object",
            "properties": {
                "secs_since_epoch": { "type": "integer", "minimum": 0 },
                "nanos_since_epoch": { "type": "integer", "minimum": 0, "maximum": 999_999_999 }
            },
            "required": ["secs_since_epoch", "nanos_since_epoch"]
        }),
        Ty::Choice(names) => json!({ "enum": names }),
        Ty::Object => Value::Object(object_schema(block, &format!("{path}."))),
        Ty::List(of) => json!({ "type": "array", "items": type_schema(block, of, &format!("{path}[]")) }),
        Ty::Optional(of) => json!({ "anyOf": [type_schema(block, of, path), { "type": "null" }] }),
        Ty::Other(_) => json!({}),
    }
}

/// A `#[field(..)]` limit as the JSON Schema keyword of the field's type.
fn add_limit(schema: &mut Map<String, Value>, ty: &Ty, name: &str, value: &str) {
    let number: Option<Value> = value
        .parse::<i64>()
        .map(Value::from)
        .ok()
        .or_else(|| value.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(Value::Number));
    let Some(number) = number else { return };
    let list = matches!(ty, Ty::List(_));
    let keyword = match name {
        "min" => "minimum",
        "max" => "maximum",
        "min_length" if list => "minItems",
        "max_length" if list => "maxItems",
        "min_length" => "minLength",
        "max_length" => "maxLength",
        "length" => {
            let (low, high) = if list { ("minItems", "maxItems") } else { ("minLength", "maxLength") };
            schema.insert(low.into(), number.clone());
            schema.insert(high.into(), number);
            return;
        }
        _ => return,
    };
    schema.insert(keyword.into(), number);
}
