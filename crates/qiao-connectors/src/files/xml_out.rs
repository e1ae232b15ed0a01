//! Writing records as XML: `<records><element>…</element></records>`, every field a child
//! element, lists as a wrapper of singular items so the XML source reads them back as lists.

use qiao_core::{Change, Value};
use std::fmt::Write;

/// Nesting of maps and lists written before giving up (values this deep are a bug upstream).
const MAX_DEPTH: usize = 64;

/// True for names usable as XML element names (no namespace prefix).
pub(crate) fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let start_ok = first == '_' || first.is_alphabetic();
    start_ok && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// The element name of one item of list field `name`; the XML source reads it back as a list.
pub(crate) fn singular(name: &str) -> String {
    let cut = |suffix: &str| name.strip_suffix(suffix).filter(|s| !s.is_empty());
    if let Some(stem) = cut("ies") {
        return format!("{stem}y");
    }
    for suffix in ["列表", "_list", "List", "list"] {
        if let Some(stem) = cut(suffix) {
            return stem.to_string();
        }
    }
    match cut("s") {
        Some(stem) if !stem.ends_with('s') => stem.to_string(),
        _ => "item".to_string(),
    }
}

/// Renders a batch; `Err((index, message))` names the record that cannot be written.
pub(crate) fn render(
    element: &str,
    encoding_name: &str,
    changes: &[Change],
    op: Option<&str>,
) -> Result<String, (usize, String)> {
    let mut out = format!("<?xml version=\"1.0\" encoding=\"{encoding_name}\"?>\n<records>\n");
    for (index, change) in changes.iter().enumerate() {
        let _ = writeln!(out, "  <{element}>");
        for (name, value) in &change.record.fields {
            field(&mut out, name, value, 2).map_err(|m| (index, m))?;
        }
        if let Some(op_field) = op {
            let v = match change.op {
                qiao_core::Op::Delete => "delete",
                qiao_core::Op::Upsert => "upsert",
            };
            let _ = writeln!(out, "    <{op_field}>{v}</{op_field}>");
        }
        let _ = writeln!(out, "  </{element}>");
    }
    out.push_str("</records>\n");
    Ok(out)
}

fn field(out: &mut String, name: &str, value: &Value, depth: usize) -> Result<(), String> {
    if !is_xml_name(name) {
        return Err(format!(
            "field `{name}` cannot be an XML element name; rename it in the mapping (letters, \
             digits, `_`, `-`, `.`, not starting with a digit)"
        ));
    }
    if depth > MAX_DEPTH {
        return Err(format!(
            "field `{name}` is nested deeper than {MAX_DEPTH} levels"
        ));
    }
    let indent = "  ".repeat(depth);
    match value {
        Value::Null => {
            let _ = writeln!(out, "{indent}<{name}/>");
        }
        Value::Map(map) => {
            let _ = writeln!(out, "{indent}<{name}>");
            for (k, v) in map {
                field(out, k, v, depth + 1)?;
            }
            let _ = writeln!(out, "{indent}</{name}>");
        }
        Value::List(items) => {
            let item = singular(name);
            let _ = writeln!(out, "{indent}<{name}>");
            for v in items {
                field(out, &item, v, depth + 1)?;
            }
            let _ = writeln!(out, "{indent}</{name}>");
        }
        scalar => {
            let text = escape(&scalar.to_string()).map_err(|c| {
                format!(
                    "field `{name}` contains the control character U+{:04X}, which XML 1.0 \
                     cannot carry; remove it from the value",
                    c as u32
                )
            })?;
            let _ = writeln!(out, "{indent}<{name}>{text}</{name}>");
        }
    }
    Ok(())
}

/// Escapes text content; `Err(c)` for a character XML 1.0 does not allow at all.
pub(crate) fn escape(text: &str) -> Result<String, char> {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // A raw CR would be read back as LF (XML end-of-line handling).
            '\r' => out.push_str("&#13;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => return Err(c),
            c => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::xml_in::is_plural_of;
    use super::*;

    #[test]
    fn singular_round_trips_with_the_reader() {
        for name in [
            "lines",
            "entries",
            "boxes",
            "lineList",
            "明细列表",
            "addresses",
        ] {
            assert!(is_plural_of(name, &singular(name)), "{name}");
        }
        assert_eq!(singular("明细"), "item");
        assert_eq!(singular("class"), "item");
    }

    #[test]
    fn names_and_escapes() {
        assert!(is_xml_name("金额") && is_xml_name("_op") && is_xml_name("a.b-c"));
        assert!(!is_xml_name("1a") && !is_xml_name("金额 (元)") && !is_xml_name(""));
        assert_eq!(escape("a<b&c>\r").unwrap(), "a&lt;b&amp;c&gt;&#13;");
        assert_eq!(escape("x\u{1}"), Err('\u{1}'));
    }
}
