//! Finds every unknown key and unknown kind name in a config file at once.
//!
//! serde stops at the first unknown key. To report them all, the file is first read as a
//! generic YAML tree in which every node keeps its position, and that tree is walked
//! against the schema. The key names allowed at each place are not copied here: they are
//! asked from the `Deserialize` impls of [`crate::config`] themselves (serde passes its
//! field and variant lists to the deserializer), so this walk cannot drift from the
//! schema. Only the nesting (which struct sits under which key) is written down here.

use super::did_you_mean;
use crate::config::{
    Check, Config, Converter, DeleteDetection, EntityDef, FieldDef, FieldMap, FlowDef,
    LengthPolicy, MappingDef, Message, PartSpec, RuleDef, RuleSetDef, Severity, SystemConfig,
    Trigger,
};
use crate::load::Diagnostic;
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::{Deserialize, Deserializer};
use serde_saphyr::Spanned;
use std::cell::Cell;
use std::fmt;

/// A YAML node with the position where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
    /// The node's content.
    pub kind: NodeKind,
}

/// What a YAML node holds. Scalars keep their text; the schema walk needs no more.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// `~`, `null` or nothing.
    Null,
    /// Any scalar, as text.
    Scalar(String),
    /// A list.
    Seq(Vec<Node>),
    /// A map, in file order.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// True for an empty document.
    pub fn is_empty(&self) -> bool {
        matches!(self.kind, NodeKind::Null)
    }

    fn key_text(&self) -> String {
        match &self.kind {
            NodeKind::Scalar(s) => s.clone(),
            NodeKind::Null => "~".to_string(),
            _ => "<complex key>".to_string(),
        }
    }

    /// The dotted path (`flows.crm_to_erp.trigger`) of the last node that starts at or
    /// before `line:column`, to say where a serde error happened.
    pub fn path_at(&self, line: u32, column: u32) -> Option<String> {
        let mut best: Option<Vec<String>> = None;
        let mut path = Vec::new();
        self.find(line, column, &mut path, &mut best);
        best.filter(|p| !p.is_empty()).map(|p| p.join("."))
    }

    fn find(&self, line: u32, column: u32, path: &mut Vec<String>, best: &mut Option<Vec<String>>) {
        match &self.kind {
            NodeKind::Map(entries) => {
                for (k, v) in entries {
                    if (k.line, k.column) > (line, column) {
                        return;
                    }
                    path.push(k.key_text());
                    *best = Some(path.clone());
                    v.find(line, column, path, best);
                    path.pop();
                }
            }
            NodeKind::Seq(items) => {
                for (i, v) in items.iter().enumerate() {
                    if (v.line, v.column) > (line, column) {
                        return;
                    }
                    path.push(i.to_string());
                    *best = Some(path.clone());
                    v.find(line, column, path, best);
                    path.pop();
                }
            }
            _ => {}
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Spanned::<NodeKind>::deserialize(d)?;
        let (line, column) = crate::load::pos(s.referenced);
        Ok(Node {
            line,
            column,
            kind: s.value,
        })
    }
}

impl<'de> Deserialize<'de> for NodeKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KindVisitor)
    }
}

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = NodeKind;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<NodeKind, E> {
        Ok(NodeKind::Scalar(v.to_string()))
    }
    fn visit_i64<E>(self, v: i64) -> Result<NodeKind, E> {
        Ok(NodeKind::Scalar(v.to_string()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<NodeKind, E> {
        Ok(NodeKind::Scalar(v.to_string()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<NodeKind, E> {
        Ok(NodeKind::Scalar(v.to_string()))
    }
    fn visit_u128<E>(self, v: u128) -> Result<NodeKind, E> {
        Ok(NodeKind::Scalar(v.to_string()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<NodeKind, E> {
        // Only names matter to the walk; the typed pass reads numbers exactly.
        Ok(NodeKind::Scalar(v.to_string()))
    }
    fn visit_str<E>(self, v: &str) -> Result<NodeKind, E> {
        Ok(NodeKind::Scalar(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<NodeKind, E> {
        Ok(NodeKind::Scalar(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<NodeKind, E> {
        Ok(NodeKind::Scalar(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_unit<E>(self) -> Result<NodeKind, E> {
        Ok(NodeKind::Null)
    }
    fn visit_none<E>(self) -> Result<NodeKind, E> {
        Ok(NodeKind::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<NodeKind, D::Error> {
        NodeKind::deserialize(d)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<NodeKind, A::Error> {
        let mut items = Vec::new();
        while let Some(n) = seq.next_element::<Node>()? {
            items.push(n);
        }
        Ok(NodeKind::Seq(items))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<NodeKind, A::Error> {
        let mut entries = Vec::new();
        while let Some(k) = map.next_key::<Node>()? {
            let v = map.next_value::<Node>()?;
            entries.push((k, v));
        }
        Ok(NodeKind::Map(entries))
    }
}

// ---- asking serde for the names a type accepts ----

/// What the probe deserializer learnt from a `Deserialize` impl.
#[derive(Clone, Copy)]
enum Learnt {
    Nothing,
    Names(&'static [&'static str]),
}

/// A deserializer that feeds no data; it only records the field list (structs) or
/// variant list (enums) serde hands it, or, when `variant` is set, selects that variant
/// and records the field list of a struct variant.
struct Probe<'a> {
    out: &'a Cell<Learnt>,
    variant: Option<&'static str>,
}

type ProbeError = de::value::Error;

impl<'de> Deserializer<'de> for Probe<'_> {
    type Error = ProbeError;
    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, ProbeError> {
        Err(de::Error::custom("probe"))
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, ProbeError> {
        self.out.set(Learnt::Names(fields));
        Err(de::Error::custom("probe"))
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ProbeError> {
        match self.variant {
            Some(v) => visitor.visit_enum(ProbeEnum {
                out: self.out,
                variant: v,
            }),
            None => {
                self.out.set(Learnt::Names(variants));
                Err(de::Error::custom("probe"))
            }
        }
    }
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map identifier
        ignored_any
    }
}

struct ProbeEnum<'a> {
    out: &'a Cell<Learnt>,
    variant: &'static str,
}

impl<'de, 'a> de::EnumAccess<'de> for ProbeEnum<'a> {
    type Error = ProbeError;
    type Variant = ProbeEnum<'a>;
    fn variant_seed<S: de::DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self::Variant), ProbeError> {
        let v = seed.deserialize(self.variant.into_deserializer())?;
        Ok((v, self))
    }
}

impl<'de> de::VariantAccess<'de> for ProbeEnum<'_> {
    type Error = ProbeError;
    fn unit_variant(self) -> Result<(), ProbeError> {
        Err(de::Error::custom("probe"))
    }
    fn newtype_variant_seed<S: de::DeserializeSeed<'de>>(
        self,
        _: S,
    ) -> Result<S::Value, ProbeError> {
        Err(de::Error::custom("probe"))
    }
    fn tuple_variant<V: Visitor<'de>>(self, _: usize, _: V) -> Result<V::Value, ProbeError> {
        Err(de::Error::custom("probe"))
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, ProbeError> {
        self.out.set(Learnt::Names(fields));
        Err(de::Error::custom("probe"))
    }
}

/// The field names of struct `T`, or the variant names of enum `T`.
fn names<T: DeserializeOwned>() -> &'static [&'static str] {
    let out = Cell::new(Learnt::Nothing);
    let _ = T::deserialize(Probe {
        out: &out,
        variant: None,
    });
    match out.get() {
        Learnt::Names(n) => n,
        Learnt::Nothing => &[],
    }
}

/// The field names of struct variant `variant` of enum `T`.
fn variant_fields<T: DeserializeOwned>(variant: &'static str) -> &'static [&'static str] {
    let out = Cell::new(Learnt::Nothing);
    let _ = T::deserialize(Probe {
        out: &out,
        variant: Some(variant),
    });
    match out.get() {
        Learnt::Names(n) => n,
        Learnt::Nothing => &[],
    }
}

// ---- the walk ----

/// A place in the schema.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Shape {
    Config,
    System,
    Entity,
    Field,
    Mapping,
    FieldMap,
    Part,
    RuleSet,
    Rule,
    Message,
    Flow,
    Trigger,
    Converter,
    MaxChars,
    Datetime,
    Check,
    Range,
    Severity,
    LengthPolicy,
    Deletes,
    /// Anything goes (or serde checks it alone).
    Leaf,
}

enum Form {
    /// A map with these keys; each key's value has the shape `child(key)`.
    Struct(&'static [&'static str], fn(&str) -> Shape),
    /// A bare variant name or a one-key map `{variant: body}`.
    Enum(&'static [&'static str], fn(&str) -> Shape, &'static str),
    Leaf,
}

fn form(s: Shape) -> Form {
    use Shape as S;
    match s {
        S::Config => Form::Struct(names::<Config>(), |k| match k {
            "systems" => S::System,
            "entities" => S::Entity,
            "mappings" => S::Mapping,
            "rules" => S::RuleSet,
            "flows" => S::Flow,
            _ => S::Leaf,
        }),
        S::System => Form::Struct(names::<SystemConfig>(), |_| S::Leaf),
        S::Entity => Form::Struct(names::<EntityDef>(), |_| S::Leaf),
        S::Field => Form::Struct(names::<FieldDef>(), |_| S::Leaf),
        S::Mapping => Form::Struct(names::<MappingDef>(), |_| S::Leaf),
        S::FieldMap => Form::Struct(names::<FieldMap>(), |k| match k {
            "part" => S::Part,
            _ => S::Leaf,
        }),
        S::Part => Form::Struct(names::<PartSpec>(), |_| S::Leaf),
        S::RuleSet => Form::Struct(names::<RuleSetDef>(), |_| S::Leaf),
        S::Rule => Form::Struct(names::<RuleDef>(), |k| match k {
            "check" => S::Check,
            "severity" => S::Severity,
            "message" => S::Message,
            _ => S::Leaf,
        }),
        S::Message => Form::Struct(names::<Message>(), |_| S::Leaf),
        S::Flow => Form::Struct(names::<FlowDef>(), |k| match k {
            "trigger" => S::Trigger,
            "deletes" => S::Deletes,
            _ => S::Leaf,
        }),
        S::Trigger => Form::Enum(names::<Trigger>(), |_| S::Leaf, "trigger"),
        S::Converter => Form::Enum(
            names::<Converter>(),
            |v| match v {
                "max_chars" => S::MaxChars,
                "datetime" => S::Datetime,
                _ => S::Leaf,
            },
            "converter",
        ),
        S::MaxChars => Form::Struct(variant_fields::<Converter>("max_chars"), |k| match k {
            "policy" => S::LengthPolicy,
            _ => S::Leaf,
        }),
        S::Datetime => Form::Struct(variant_fields::<Converter>("datetime"), |_| S::Leaf),
        S::Check => Form::Enum(
            names::<Check>(),
            |v| match v {
                "range" => S::Range,
                _ => S::Leaf,
            },
            "check",
        ),
        S::Range => Form::Struct(variant_fields::<Check>("range"), |_| S::Leaf),
        S::Severity => Form::Enum(names::<Severity>(), |_| S::Leaf, "severity"),
        S::LengthPolicy => Form::Enum(names::<LengthPolicy>(), |_| S::Leaf, "policy"),
        S::Deletes => Form::Enum(names::<DeleteDetection>(), |_| S::Leaf, "delete detection"),
        S::Leaf => Form::Leaf,
    }
}

/// The hint for a misspelt name: the nearest allowed one, or the list of allowed ones.
pub fn suggest(name: &str, allowed: &[&str]) -> String {
    match did_you_mean(name, allowed.iter().copied()) {
        Some(m) => format!("did you mean `{m}`?"),
        None => format!(
            "allowed here: {}",
            allowed
                .iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Walks the whole file and reports every unknown key and unknown kind name.
pub fn walk_config(root: &Node, file: &str, out: &mut Vec<Diagnostic>) {
    walk(root, Shape::Config, "at the top level", file, out);
}

fn walk(node: &Node, shape: Shape, ctx: &str, file: &str, out: &mut Vec<Diagnostic>) {
    match form(shape) {
        Form::Leaf => {}
        Form::Struct(fields, child) => {
            let NodeKind::Map(entries) = &node.kind else {
                return; // wrong shape: the typed pass reports it with the expected type
            };
            for (k, v) in entries {
                let key = k.key_text();
                if !fields.contains(&key.as_str()) {
                    if !fields.is_empty() {
                        out.push(
                            Diagnostic::error(
                                file,
                                k.line,
                                k.column,
                                format!("unknown key `{key}` {ctx}"),
                            )
                            .with_hint(suggest(&key, fields)),
                        );
                    }
                    continue;
                }
                let sub = child(&key);
                // "unknown check `x` in rule 2 …" reads better than "… in `check` in rule 2 …".
                let sub_ctx = if matches!(form(sub), Form::Enum(..)) {
                    ctx.to_string()
                } else {
                    child_ctx(shape, &key, ctx)
                };
                walk_collection(v, shape, &key, sub, &sub_ctx, file, out);
            }
        }
        Form::Enum(variants, body, what) => match &node.kind {
            NodeKind::Scalar(s) if !variants.contains(&s.as_str()) => {
                out.push(unknown_name(file, node, s, what, ctx, variants));
            }
            NodeKind::Map(entries) if entries.len() == 1 => {
                let (k, v) = &entries[0];
                let key = k.key_text();
                if variants.contains(&key.as_str()) {
                    walk(v, body(&key), &format!("in `{key}` {ctx}"), file, out);
                } else {
                    out.push(unknown_name(file, k, &key, what, ctx, variants));
                }
            }
            _ => {}
        },
    }
}

fn unknown_name(
    file: &str,
    at: &Node,
    name: &str,
    what: &str,
    ctx: &str,
    allowed: &[&str],
) -> Diagnostic {
    Diagnostic::error(
        file,
        at.line,
        at.column,
        format!("unknown {what} `{name}` {ctx}"),
    )
    .with_hint(suggest(name, allowed))
}

/// Under some keys sits a map of named items or a list of items rather than one struct.
fn walk_collection(
    v: &Node,
    parent: Shape,
    key: &str,
    sub: Shape,
    ctx: &str,
    file: &str,
    out: &mut Vec<Diagnostic>,
) {
    use Shape as S;
    let named = matches!(
        (parent, key),
        (
            S::Config,
            "systems" | "entities" | "mappings" | "rules" | "flows"
        ) | (S::Entity | S::Mapping, "fields")
    );
    let listed = matches!(
        (parent, key),
        (S::RuleSet, "rules") | (S::FieldMap, "convert")
    );
    let item_shape = match (parent, key) {
        (S::Entity, "fields") => S::Field,
        (S::Mapping, "fields") => S::FieldMap,
        (S::RuleSet, "rules") => S::Rule,
        (S::FieldMap, "convert") => S::Converter,
        _ => sub,
    };
    if named {
        if let NodeKind::Map(items) = &v.kind {
            for (name, item) in items {
                let item_ctx = item_ctx(parent, key, &name.key_text(), ctx);
                walk(item, item_shape, &item_ctx, file, out);
            }
        }
    } else if listed {
        if let NodeKind::Seq(items) = &v.kind {
            for (i, item) in items.iter().enumerate() {
                let item_ctx = if key == "rules" {
                    format!(
                        "in rule {} of {}",
                        i + 1,
                        ctx.trim_start_matches("in `rules` in ")
                    )
                } else {
                    ctx.to_string()
                };
                walk(item, item_shape, &item_ctx, file, out);
            }
        }
    } else {
        walk(v, sub, ctx, file, out);
    }
}

/// The context text for the value under `key` of a struct.
fn child_ctx(parent: Shape, key: &str, ctx: &str) -> String {
    match parent {
        Shape::Config => String::new(),
        Shape::FieldMap if key == "convert" => format!("in the converters {ctx}"),
        _ => format!("in `{key}` {ctx}"),
    }
}

/// The context text for item `name` of a named collection.
fn item_ctx(parent: Shape, key: &str, name: &str, ctx: &str) -> String {
    match (parent, key) {
        (Shape::Config, "systems") => format!("in system `{name}`"),
        (Shape::Config, "entities") => format!("in entity `{name}`"),
        (Shape::Config, "mappings") => format!("in mapping `{name}`"),
        (Shape::Config, "rules") => format!("in rule set `{name}`"),
        (Shape::Config, "flows") => format!("in flow `{name}`"),
        (Shape::Entity | Shape::Mapping, _) => {
            format!(
                "in field `{name}` of {}",
                ctx.trim_start_matches("in `fields` in ")
            )
        }
        _ => format!("in `{name}` {ctx}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_learns_names_from_serde() {
        assert!(names::<FlowDef>().contains(&"echo_suppression"));
        assert!(names::<FieldDef>().contains(&"type"));
        assert!(names::<Converter>().contains(&"max_chars"));
        assert_eq!(variant_fields::<Check>("range"), &["min", "max"]);
        assert_eq!(variant_fields::<Converter>("datetime"), &["format", "tz"]);
        assert!(names::<Trigger>().contains(&"cron"));
    }

    #[test]
    fn tree_keeps_positions() {
        let n: Node = serde_saphyr::from_str("a:\n  b: [1, x]\n").unwrap();
        let NodeKind::Map(e) = &n.kind else { panic!() };
        let (_, v) = &e[0];
        assert_eq!((v.line, v.column), (2, 3));
        assert_eq!(n.path_at(2, 10).as_deref(), Some("a.b.1"));
    }
}
