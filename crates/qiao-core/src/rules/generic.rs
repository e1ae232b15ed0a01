//! The `generic` pack: checks every entity against its own data dictionary — required
//! fields (key fields always), type and precision, length in characters, enum values.

use super::{Message, RulePack, Severity, Violation};
use crate::config::{EntityDef, FieldDef};
use crate::mapping::show;
use crate::record::{Record, Value};
use crate::types::FieldType;

/// Owner of dictionary violations: the dictionary says nothing about roles, and a record
/// that breaks its own schema is first an integration matter.
const OWNER: &str = "it";

/// The always-on pack derived from the data dictionary.
#[derive(Debug, Clone, Copy, Default)]
pub struct GenericPack;

/// How a field is named to people: `「客户名称」(name)` when it has a label.
pub(super) fn label(field: &str, def: Option<&FieldDef>) -> (String, String) {
    match def.and_then(|d| d.label.as_deref()) {
        Some(l) => (format!("「{l}」({field})"), format!("`{field}` ({l})")),
        None => (format!("「{field}」"), format!("`{field}`")),
    }
}

impl RulePack for GenericPack {
    fn name(&self) -> &str {
        super::GENERIC
    }

    fn check(&self, entity: &str, def: &EntityDef, rec: &Record, out: &mut Vec<Violation>) {
        for (name, f) in &def.fields {
            let v = rec.get(name);
            let is_key = def.key.iter().any(|k| &k.value == name);
            // Labels and shown values are formatted only for a violation: this runs for
            // every field of every record of a bulk load.
            let labels = || label(name, Some(f));
            let mut push = |code: &str, zh: String, en: String, detail: String| {
                out.push(Violation {
                    code: code.to_string(),
                    field: Some(name.clone()),
                    severity: Severity::Error,
                    owner: OWNER.to_string(),
                    message: Message { zh, en },
                    detail: format!("entity `{entity}`, field `{name}`: {detail}"),
                });
            };
            if v.is_blank() {
                if f.required || is_key {
                    let (zh_name, en_name) = labels();
                    let why = if is_key { "a key field" } else { "required" };
                    push(
                        "GEN-REQUIRED",
                        format!("{zh_name}为必填项，当前为空，请在源系统中补全"),
                        format!("{en_name} is required but empty; fill it in at the source system"),
                        format!("the field is {why} in the data dictionary and the value is blank"),
                    );
                }
                continue;
            }
            // Types were checked when the engine was built; a field whose type does not
            // parse cannot get here, so skipping it loses nothing.
            let Some(ty) = cached_type(&f.ty.value) else {
                continue;
            };
            match (ty.as_ref(), v) {
                (
                    FieldType::Text {
                        max_chars: Some(max),
                    },
                    Value::Text(s),
                ) if s.chars().count() > *max => {
                    let ((zh_name, en_name), shown) = (labels(), show(v, f.sensitive));
                    let n = s.chars().count();
                    push(
                        "GEN-LENGTH",
                        format!("{zh_name}长度为 {n} 个字符，超过上限 {max} 个字符，请缩短"),
                        format!(
                            "{en_name} has {n} characters, more than the limit of {max}; shorten it"
                        ),
                        format!(
                            "value {shown} has {n} characters ({} bytes); type `{ty}` allows {max} characters",
                            s.len()
                        ),
                    );
                }
                (FieldType::Enum(allowed), Value::Text(s)) if !allowed.contains(s) => {
                    let ((zh_name, en_name), shown) = (labels(), show(v, f.sensitive));
                    let list = allowed.join(", ");
                    push(
                        "GEN-ENUM",
                        format!("{zh_name}的值 {shown} 不在允许的取值中（{list}）"),
                        format!("{en_name} value {shown} is not one of: {list}"),
                        format!("value {shown} is not in `{ty}`"),
                    );
                }
                _ => {
                    if let Err(e) = ty.conform(v) {
                        let ((zh_name, en_name), shown) = (labels(), show(v, f.sensitive));
                        // The type's own message quotes the raw value: keep it out when
                        // the field is sensitive.
                        let why = if f.sensitive {
                            format!("value {shown} ({}) does not fit `{ty}`", v.type_name())
                        } else {
                            e
                        };
                        push(
                            "GEN-TYPE",
                            format!("{zh_name}的值 {shown} 不符合类型 {ty}"),
                            format!("{en_name} value {shown} is not a valid `{ty}`: {why}"),
                            why,
                        );
                    }
                }
            }
        }
    }
}

/// The parsed type of a dictionary type text, parsed once per thread: the dictionary is
/// small and fixed, the records are many.
fn cached_type(text: &str) -> Option<std::rc::Rc<FieldType>> {
    type Cache = std::collections::HashMap<String, Option<std::rc::Rc<FieldType>>>;
    thread_local! {
        static TYPES: std::cell::RefCell<Cache> = Default::default();
    }
    TYPES.with(|t| {
        if let Some(ty) = t.borrow().get(text) {
            return ty.clone();
        }
        let ty = FieldType::parse(text).ok().map(std::rc::Rc::new);
        t.borrow_mut().insert(text.to_string(), ty.clone());
        ty
    })
}
