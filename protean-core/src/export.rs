//! Exports of the domain model: a versioned JSON description, a Mermaid class diagram
//! and a Graphviz DOT graph of the aggregate clusters, with the projections and process
//! managers fed by their events.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::contract::json_schemas;
use crate::model::element::ElementKind;
use crate::model::field::FieldShape;
use crate::registry::{Cluster, ElementDescriptor, HandlerInfo, HandlerRole, MessageKind, Model};

/// The `format` field of the JSON export.
pub const MODEL_FORMAT: &str = "protean.model";
/// The version of the JSON export's layout; bumped only when it changes incompatibly.
pub const MODEL_FORMAT_VERSION: u32 = 1;

/// `schemas`: the JSON Schema of each event and command, by stored type name.
fn element_json(d: &ElementDescriptor, model: &Model, schemas: &BTreeMap<String, Value>) -> Value {
    let fields: Vec<Value> = d
        .fields
        .iter()
        .map(|f| {
            json!({
                "name": f.name,
                "type": f.rust_type,
                "shape": (f.shape)(),
                "required": f.required,
                "identity": d.identity == Some(f.name),
                "options": f.options,
                "docs": f.docs,
                "stored": f.stored,
                "presence": f.presence,
            })
        })
        .collect();
    let mut element = json!({
        "kind": d.kind,
        "name": d.name,
        "type_name": d.type_name,
        "version": d.version,
        "module_path": d.module_path,
        "part_of": d.part_of,
        "aggregate": model.aggregate_of(d.name).map(|a| a.name),
        "identity": d.identity,
        "generated_identity": d.generated_identity,
        "fields": fields,
        "invariants": d.invariants,
        "choices": d.choices,
        "docs": d.docs,
    });
    if matches!(d.kind, ElementKind::Command | ElementKind::Event) {
        if let Some(schema) = schemas.get(d.type_name) {
            element["schema"] = schema.clone();
        }
    }
    element
}

/// A reference from one element's field to another element.
struct Edge {
    from_kind: ElementKind,
    from: &'static str,
    field: &'static str,
    to: &'static str,
    relation: Relation,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Relation {
    HasMany,
    HasOne,
    Identity,
    Embeds,
}

impl Relation {
    fn name(self) -> &'static str {
        match self {
            Relation::HasMany => "has_many",
            Relation::HasOne => "has_one",
            Relation::Identity => "identity",
            Relation::Embeds => "embeds",
        }
    }
}

impl Model {
    fn edges(&self) -> Vec<Edge> {
        let mut edges = Vec::new();
        for d in self.elements() {
            for f in d.fields {
                let shape = (f.shape)();
                let Some((to, inner)) = shape.target() else { continue };
                let relation = match inner {
                    FieldShape::HasMany { .. } => Relation::HasMany,
                    FieldShape::HasOne { .. } => Relation::HasOne,
                    // An element's own identity; a projection keyed by another element's
                    // identity does reference it.
                    FieldShape::Identifier { .. } if d.identity == Some(f.name) && to == d.name => continue,
                    FieldShape::Identifier { .. } => Relation::Identity,
                    _ => Relation::Embeds,
                };
                edges.push(Edge { from_kind: d.kind, from: d.name, field: f.name, to, relation });
            }
        }
        edges
    }

    /// The references held in state (aggregates, entities, value objects): what the
    /// pictures draw. Messages' references are in the JSON only.
    fn state_edges(&self) -> Vec<Edge> {
        let mut edges = self.edges();
        edges.retain(|e| !matches!(e.from_kind, ElementKind::Command | ElementKind::Event));
        edges
    }

    /// The model as versioned JSON: every element with its fields (each with its stored
    /// key and presence), options, invariants and docs, and each event and command with
    /// its JSON Schema as stored (`schema`, see [`crate::contract::json_schema`]); each
    /// cluster; and the references between elements. Keys and lists are
    /// in a stable order, so the output can be checked in and diffed.
    pub fn to_json(&self) -> Value {
        let clusters: Vec<Value> = self
            .clusters()
            .iter()
            .map(|c| {
                let names = |v: &[&ElementDescriptor]| v.iter().map(|d| d.name).collect::<Vec<_>>();
                json!({
                    "aggregate": c.root.name,
                    "entities": names(&c.entities),
                    "commands": names(&c.commands),
                    "events": names(&c.events),
                    "value_objects": c.value_objects,
                })
            })
            .collect();
        let references: Vec<Value> = self
            .edges()
            .iter()
            .map(|e| json!({"from": e.from, "field": e.field, "to": e.to, "relation": e.relation.name()}))
            .collect();
        let handlers: Vec<Value> = self
            .handlers()
            .iter()
            .map(|h| {
                json!({
                    "handler": h.handler,
                    "method": h.method,
                    "part_of": h.aggregate,
                    "handles": h.kind,
                    "role": h.role,
                    "message": h.message,
                    "type_name": h.type_name,
                    "docs": h.docs,
                })
            })
            .collect();
        let schemas = json_schemas(self);
        json!({
            "format": MODEL_FORMAT,
            "format_version": MODEL_FORMAT_VERSION,
            "elements": self.elements().iter().map(|d| element_json(d, self, &schemas)).collect::<Vec<_>>(),
            "clusters": clusters,
            "references": references,
            "handlers": handlers,
        })
    }

    /// The model as a Mermaid class diagram: one namespace per aggregate cluster;
    /// composition for `HasMany`/`HasOne`, dashed arrows for identity references,
    /// the commands and events of each aggregate, and an arrow from each event to what
    /// it moves: an aggregate (`reacts`), a projection (`projects`) or a process
    /// manager (`moves the flow`).
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("classDiagram\n");
        let clusters = self.clusters();
        let mut placed = std::collections::BTreeSet::new();
        for c in &clusters {
            let _ = writeln!(out, "  namespace {}Cluster {{", c.root.name);
            for d in cluster_members(c) {
                placed.insert(d.name);
                mermaid_class(&mut out, d, "    ");
            }
            for vo in c.value_objects.iter().filter(|vo| shared_by(&clusters, vo) == 1) {
                if let Some(d) = self.element(vo) {
                    placed.insert(d.name);
                    mermaid_class(&mut out, d, "    ");
                }
            }
            out.push_str("  }\n");
        }
        for d in self.elements().iter().filter(|d| !placed.contains(d.name)) {
            mermaid_class(&mut out, d, "  ");
        }
        for e in self.state_edges() {
            let arrow = match e.relation {
                Relation::HasMany => format!("{} \"1\" *-- \"*\" {} : {}", e.from, e.to, e.field),
                Relation::HasOne => format!("{} \"1\" *-- \"0..1\" {} : {}", e.from, e.to, e.field),
                Relation::Identity => format!("{} ..> {} : {} (by identity)", e.from, e.to, e.field),
                Relation::Embeds => format!("{} o-- {} : {}", e.from, e.to, e.field),
            };
            let _ = writeln!(out, "  {arrow}");
        }
        for c in &clusters {
            for cmd in &c.commands {
                let _ = writeln!(out, "  {} ..> {} : changes", cmd.name, c.root.name);
            }
            for ev in &c.events {
                let _ = writeln!(out, "  {} ..> {} : raises", c.root.name, ev.name);
            }
        }
        for h in self.reactions() {
            let _ = writeln!(out, "  {} ..> {} : {} {}", h.message, h.aggregate, h.name(), verb(h.role));
        }
        out
    }

    /// The event handlers, projectors and process managers' steps: their reactions link
    /// the clusters, and feed the projections and flows, in the pictures.
    fn reactions(&self) -> impl Iterator<Item = &HandlerInfo> + '_ {
        self.handlers().iter().filter(|h| h.kind == MessageKind::Event)
    }

    /// The model as a Graphviz DOT graph: one box per aggregate cluster (root, entities,
    /// commands, events and the value objects only it uses), with identity references
    /// between clusters drawn dashed, and dashed arrows from each event to the
    /// aggregates, projections and process managers it moves (colored by role).
    pub fn to_dot(&self) -> String {
        let mut out = String::from(
            "digraph protean_model {\n  rankdir=LR;\n  compound=true;\n  node [shape=record, fontname=\"Helvetica\", fontsize=10];\n  edge [fontname=\"Helvetica\", fontsize=9];\n",
        );
        let clusters = self.clusters();
        let mut placed = std::collections::BTreeSet::new();
        for c in &clusters {
            let _ = writeln!(
                out,
                "  subgraph \"cluster_{0}\" {{\n    label=\"{0} aggregate\";\n    style=rounded;\n    color=\"#4a6fa5\";",
                c.root.name
            );
            for d in cluster_members(c) {
                placed.insert(d.name);
                dot_node(&mut out, d, "    ");
            }
            for vo in c.value_objects.iter().filter(|vo| shared_by(&clusters, vo) == 1) {
                if let Some(d) = self.element(vo) {
                    placed.insert(d.name);
                    dot_node(&mut out, d, "    ");
                }
            }
            out.push_str("  }\n");
        }
        for d in self.elements().iter().filter(|d| !placed.contains(d.name)) {
            dot_node(&mut out, d, "  ");
        }
        for e in self.state_edges() {
            let style = match e.relation {
                Relation::HasMany => "arrowtail=diamond, dir=back, headlabel=\"*\"",
                Relation::HasOne => "arrowtail=diamond, dir=back, headlabel=\"0..1\"",
                Relation::Identity => "style=dashed, color=\"#a05a2c\"",
                Relation::Embeds => "arrowtail=odiamond, dir=back",
            };
            let _ = writeln!(out, "  \"{}\" -> \"{}\" [label=\"{}\", {style}];", e.from, e.to, e.field);
        }
        for c in &clusters {
            for cmd in &c.commands {
                let _ = writeln!(out, "  \"{}\" -> \"{}\" [label=\"changes\", style=dotted];", cmd.name, c.root.name);
            }
            for ev in &c.events {
                let _ = writeln!(out, "  \"{}\" -> \"{}\" [label=\"raises\", style=dotted];", c.root.name, ev.name);
            }
        }
        for h in self.reactions() {
            let (label, color) = match h.role {
                HandlerRole::Handler => (h.name().to_string(), "#2c7a4b"),
                role => (
                    format!("{} ({})", h.name(), verb(role)),
                    if role == HandlerRole::ProcessManager { "#8a3b8f" } else { "#b8860b" },
                ),
            };
            let _ = writeln!(
                out,
                "  \"{}\" -> \"{}\" [label=\"{label}\", style=dashed, color=\"{color}\"];",
                h.message, h.aggregate,
            );
        }
        out.push_str("}\n");
        out
    }
}

/// What an event does through a handler method of this role, as the pictures say it.
fn verb(role: HandlerRole) -> &'static str {
    match role {
        HandlerRole::Handler => "reacts",
        HandlerRole::Projector => "projects",
        HandlerRole::InlineProjector => "projects inline",
        HandlerRole::ProcessManager => "moves the flow",
    }
}

fn cluster_members<'a>(c: &'a Cluster<'a>) -> impl Iterator<Item = &'a ElementDescriptor> {
    std::iter::once(c.root)
        .chain(c.entities.iter().copied())
        .chain(c.commands.iter().copied())
        .chain(c.events.iter().copied())
}

fn shared_by(clusters: &[Cluster<'_>], vo: &str) -> usize {
    clusters.iter().filter(|c| c.value_objects.contains(&vo)).count()
}

fn mermaid_class(out: &mut String, d: &ElementDescriptor, indent: &str) {
    let _ = writeln!(out, "{indent}class {} {{", d.name);
    let _ = writeln!(out, "{indent}  <<{}>>", d.kind.label());
    for f in d.fields {
        let ty = (f.shape)().render().replace(['<', '>'], "~");
        let _ = writeln!(out, "{indent}  +{ty} {}", f.name);
    }
    for choice in d.choices {
        let _ = writeln!(out, "{indent}  {choice}");
    }
    let _ = writeln!(out, "{indent}}}");
}

fn dot_escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('<', "\\<")
        .replace('>', "\\>")
        .replace('{', "\\{")
        .replace('}', "\\}")
        .replace('|', "\\|")
}

fn dot_node(out: &mut String, d: &ElementDescriptor, indent: &str) {
    let mut rows = String::new();
    for f in d.fields {
        let _ = write!(rows, "{}: {}\\l", f.name, dot_escape(&(f.shape)().render()));
    }
    for choice in d.choices {
        let _ = write!(rows, "{choice}\\l");
    }
    let fill = match d.kind {
        ElementKind::Aggregate => "#dae8fc",
        ElementKind::Entity => "#e1f0da",
        ElementKind::ValueObject => "#fff2cc",
        ElementKind::Command => "#e8e0f5",
        ElementKind::Event => "#fde0d0",
        ElementKind::Projection => "#d5f0f0",
        ElementKind::ProcessManager => "#f0d9ef",
    };
    let _ = writeln!(
        out,
        "{indent}\"{}\" [label=\"{{«{}»\\n{}|{rows}}}\", style=filled, fillcolor=\"{fill}\"];",
        d.name,
        d.kind.label(),
        d.name
    );
}
