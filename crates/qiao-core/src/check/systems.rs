//! Checks of systems, the store, the default retry schedule and the data dictionary.

use super::{Cx, at, name_hint};
use crate::duration::parse_duration;
use crate::env;
use crate::types::FieldType;

/// Connector kinds this build knows.
pub const SYSTEM_KINDS: &[&str] = &["postgres", "mysql", "sqlite", "files"];
/// File formats of `files` systems.
pub const FILE_FORMATS: &[&str] = &["csv", "jsonl", "xml"];
/// Text encodings of `files` systems.
pub const ENCODINGS: &[&str] = &["utf-8", "gb18030", "gbk"];

/// The type keywords of the data dictionary, for did-you-mean hints.
const TYPE_WORDS: &[&str] = &[
    "text", "integer", "bool", "decimal", "date", "datetime", "enum", "list",
];

/// URL schemes each SQL kind accepts.
fn schemes(kind: &str) -> &'static [&'static str] {
    match kind {
        "postgres" => &["postgres://", "postgresql://"],
        "mysql" => &["mysql://", "mariadb://"],
        "sqlite" => &["sqlite:"],
        _ => &[],
    }
}

pub(super) fn check_systems(cx: &mut Cx) {
    let cfg = cx.cfg;
    if cfg.version != 1 {
        let p = cx.locate(&["version"], false);
        cx.error(
            p,
            format!("config version {} is not known to this qiao", cfg.version),
            "only `version: 1` exists; remove the line or write `version: 1`",
        );
    }
    for (name, sys) in &cfg.systems {
        let kind = sys.kind.value.as_str();
        if let Some(url) = &sys.url
            && env::has_inline_secret(&url.value)
        {
            let var = password_var(name);
            cx.error(
                at(url),
                format!(
                    "the url of system `{name}` contains a password in clear text (`{}`)",
                    env::redact(&url.value)
                ),
                format!(
                    "take the password from the environment: write `{}` and `export {var}=...` \
                     before starting qiao",
                    secret_free(&url.value, &var).unwrap_or_else(|| example_url(kind, name))
                ),
            );
        }
        if !SYSTEM_KINDS.contains(&kind) {
            cx.error(
                at(&sys.kind),
                format!("system `{name}` has unknown kind `{kind}`"),
                name_hint(kind, SYSTEM_KINDS.iter().copied(), "kind"),
            );
            continue;
        }
        let sql = kind != "files";
        match (&sys.url, sql) {
            (None, true) => cx.error(
                at(&sys.kind),
                format!("system `{name}` of kind `{kind}` has no `url`"),
                format!(
                    "add `url: {}` (secrets through `${{ENV_VAR}}`)",
                    example_url(kind, name)
                ),
            ),
            (Some(url), true) => check_url(cx, name, kind, url),
            (Some(url), false) => cx.warning(
                at(url),
                format!("system `{name}` is a `files` system; its `url` is not used"),
                "remove `url`, and give the folder with `path:`",
            ),
            (None, false) => {}
        }
        if sql {
            for key in ["path", "format", "encoding", "delimiter", "record_element"] {
                let set = match key {
                    "path" => sys.path.is_some(),
                    "format" => sys.format.is_some(),
                    "encoding" => sys.encoding.is_some(),
                    "delimiter" => sys.delimiter.is_some(),
                    _ => sys.record_element.is_some(),
                };
                if set {
                    let p = cx.locate(&["systems", name, key], true);
                    cx.warning(
                        p,
                        format!("`{key}` is for `files` systems; system `{name}` is `{kind}`"),
                        format!("remove `{key}`"),
                    );
                }
            }
            continue;
        }
        check_files_system(cx, name, sys);
    }
    if let Some(store) = &cfg.store
        && env::has_inline_secret(store)
    {
        let p = cx.locate(&["store"], false);
        cx.error(
            p,
            format!("the store URL `{}` contains a password", env::redact(store)),
            "take it from the environment: `store: postgres://qiao:${QIAO_DB_PASSWORD}@host/qiao`",
        );
    }
    if let Some(retry) = &cfg.retry {
        for (i, r) in retry.iter().enumerate() {
            if let Err(e) = parse_duration(r) {
                let p = cx.locate(&["retry", &i.to_string()], false);
                cx.error(
                    p,
                    format!("default retry schedule: {e}"),
                    "e.g. `retry: [1m, 5m, 30m]`",
                );
            }
        }
    }
}

/// The environment variable suggested for system `name`'s password.
fn password_var(name: &str) -> String {
    let up: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("{up}_DB_PASSWORD")
}

/// `url` with its inline password replaced by `${var}`, when it is in the user-info part.
fn secret_free(url: &str, var: &str) -> Option<String> {
    let red = env::redact(url);
    (red != url).then(|| red.replacen(":***@", &format!(":${{{var}}}@"), 1))
}

fn example_url(kind: &str, name: &str) -> String {
    let var = password_var(name);
    match kind {
        "postgres" => format!("postgres://qiao:${{{var}}}@host:5432/{name}"),
        "mysql" => format!("mysql://qiao:${{{var}}}@host:3306/{name}"),
        _ => format!("sqlite://{name}.db"),
    }
}

fn check_url(cx: &mut Cx, name: &str, kind: &str, url: &crate::config::Spanned<String>) {
    let u = url.value.trim();
    if u.is_empty() {
        cx.error(
            at(url),
            format!("system `{name}` has an empty `url`"),
            format!("e.g. `url: {}`", example_url(kind, name)),
        );
        return;
    }
    // A URL that starts with a reference may come whole from the environment.
    if !u.starts_with("${") {
        let ok = schemes(kind).iter().any(|s| u.starts_with(s));
        if !ok {
            cx.error(
                at(url),
                format!(
                    "system `{name}` is `{kind}` but its url does not start with {}",
                    schemes(kind)
                        .iter()
                        .map(|s| format!("`{s}`"))
                        .collect::<Vec<_>>()
                        .join(" or ")
                ),
                format!(
                    "fix the url (e.g. `{}`) or the `kind`",
                    example_url(kind, name)
                ),
            );
        }
    }
    for var in env::references(u) {
        if std::env::var_os(&var).is_none() {
            cx.warning(
                at(url),
                format!("environment variable `{var}` used by system `{name}` is not set here"),
                format!("`export {var}=...` where qiao runs; `qiao run` will stop without it"),
            );
        }
    }
}

fn check_files_system(cx: &mut Cx, name: &str, sys: &crate::config::SystemConfig) {
    if sys.path.as_deref().is_none_or(|p| p.trim().is_empty()) {
        cx.error(
            at(&sys.kind),
            format!("`files` system `{name}` has no `path`"),
            "add `path: <folder>` (relative to the config file) where its files are read and written",
        );
    }
    match &sys.format {
        None => cx.error(
            at(&sys.kind),
            format!("`files` system `{name}` has no `format`"),
            "add `format: csv`, `format: jsonl` or `format: xml`",
        ),
        Some(f) if !FILE_FORMATS.contains(&f.value.as_str()) => cx.error(
            at(f),
            format!("system `{name}` has unknown file format `{}`", f.value),
            name_hint(&f.value, FILE_FORMATS.iter().copied(), "format"),
        ),
        Some(f) => {
            if f.value != "csv" && sys.delimiter.is_some() {
                let p = cx.locate(&["systems", name, "delimiter"], true);
                cx.warning(
                    p,
                    format!(
                        "`delimiter` only applies to csv; system `{name}` is `{}`",
                        f.value
                    ),
                    "remove `delimiter`",
                );
            }
        }
    }
    if let Some(enc) = &sys.encoding {
        let e = enc.value.to_ascii_lowercase();
        if !ENCODINGS.contains(&e.as_str()) {
            cx.error(
                at(enc),
                format!("system `{name}` has unknown encoding `{}`", enc.value),
                format!(
                    "{} (gb18030 also reads GBK and GB2312 files)",
                    name_hint(&e, ENCODINGS.iter().copied(), "encoding")
                ),
            );
        }
    }
}

pub(super) fn check_entities(cx: &mut Cx) {
    let cfg = cx.cfg;
    for (ename, ent) in &cfg.entities {
        if ent.fields.is_empty() {
            let p = cx.locate(&["entities", ename, "fields"], true);
            cx.error(
                p,
                format!("entity `{ename}` has no fields"),
                "list its fields under `fields:`, e.g. `code: {type: text(32), required: true}`",
            );
        }
        for (fname, f) in &ent.fields {
            match FieldType::parse(&f.ty.value) {
                Ok(t) => {
                    if let FieldType::List(inner) = &t
                        && !cfg.entities.contains_key(inner)
                    {
                        cx.error(
                            at(&f.ty),
                            format!(
                                "field `{fname}` of entity `{ename}` is a list of `{inner}`, which is not an entity"
                            ),
                            name_hint(inner, cfg.entities.keys().map(String::as_str), "entity"),
                        );
                    }
                    cx.types.insert((ename.clone(), fname.clone()), t);
                }
                Err(e) => {
                    let word: String =
                        f.ty.value
                            .trim()
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                    let hint = match super::did_you_mean(&word, TYPE_WORDS.iter().copied()) {
                        Some(m) => format!("did you mean `{m}`?"),
                        None => "types are text, text(N), integer, bool, decimal(P,S), date, datetime, enum[a,b], list<entity>".into(),
                    };
                    cx.error(
                        at(&f.ty),
                        format!("field `{fname}` of entity `{ename}`: {e}"),
                        hint,
                    )
                }
            }
        }
        if ent.key.is_empty() {
            let p = cx.locate(&["entities", ename, "key"], true);
            cx.error(
                p,
                format!("entity `{ename}` has an empty `key`"),
                "name the field(s) that identify a record, e.g. `key: [code]`",
            );
        }
        for k in &ent.key {
            if !ent.fields.contains_key(&k.value) {
                cx.error(
                    at(k),
                    format!(
                        "key field `{}` of entity `{ename}` is not one of its fields",
                        k.value
                    ),
                    name_hint(&k.value, ent.fields.keys().map(String::as_str), "field"),
                );
            } else if let Some(FieldType::List(_)) = cx.field_type(ename, &k.value) {
                cx.error(
                    at(k),
                    format!("key field `{}` of entity `{ename}` is a list", k.value),
                    "a key must be a single value such as text or integer",
                );
            }
        }
    }
}
