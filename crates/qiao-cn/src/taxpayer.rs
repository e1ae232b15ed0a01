//! The `cn.taxpayer` rule pack: every dictionary field with `format: uscc` must hold a
//! valid unified social credit code. Legacy taxpayer ids (15, 17 or 20 characters) pass
//! with a warning. Values are checked as written: a mistyped character is reported with
//! the expected check character, never corrected silently.

use crate::uscc::{self, UsccError};
use qiao_core::config::{EntityDef, Message, Severity};
use qiao_core::rules::{RulePack, Violation};
use qiao_core::{Record, mask};

/// The pack's name in a flow's `rules:` list.
pub const NAME: &str = "cn.taxpayer";

/// Checks fields whose dictionary `format` is `uscc`.
pub struct TaxpayerPack;

fn violation(
    field: &str,
    code: &str,
    severity: Severity,
    zh: String,
    en: String,
    detail: String,
) -> Violation {
    Violation {
        code: code.to_string(),
        field: Some(field.to_string()),
        severity,
        owner: "sales".to_string(),
        message: Message { zh, en },
        detail,
    }
}

impl RulePack for TaxpayerPack {
    fn name(&self) -> &str {
        NAME
    }

    fn check(&self, entity: &str, def: &EntityDef, rec: &Record, out: &mut Vec<Violation>) {
        for (name, field) in &def.fields {
            if field.format.as_deref() != Some("uscc") {
                continue;
            }
            let value = rec.get(name);
            if value.is_blank() {
                continue; // required-ness is the generic pack's job
            }
            let text = value.to_string();
            let shown = if field.sensitive {
                mask(&text)
            } else {
                text.clone()
            };
            let detail = format!("{entity}.{name} = `{shown}`");
            let len = text.chars().count();
            let legacy = matches!(len, 15 | 17 | 20)
                && text
                    .chars()
                    .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase());
            if legacy {
                out.push(violation(
                    name,
                    "CN-TAXPAYER-LEGACY",
                    Severity::Warning,
                    format!("{name} 为{len}位旧版纳税人识别号，请核实是否已换发统一社会信用代码"),
                    format!("{name} is a legacy {len}-character taxpayer id; check whether it has been replaced by an 18-character credit code"),
                    detail,
                ));
                continue;
            }
            if let Err(e) = uscc::validate(&text) {
                let (code, zh) = match &e {
                    UsccError::Length(n) => (
                        "CN-TAXPAYER-LENGTH",
                        format!("{name} 长度为{n}位，统一社会信用代码应为18位"),
                    ),
                    UsccError::Character { position, found } => (
                        "CN-TAXPAYER-CHAR",
                        format!(
                            "{name} 第{position}位字符`{found}`不属于统一社会信用代码字符集（不含I、O、Z、S、V，字母须大写）"
                        ),
                    ),
                    UsccError::Check { expected, found } => (
                        "CN-TAXPAYER-CHECK",
                        format!(
                            "{name} 校验位为`{found}`，按前17位应为`{expected}`：有字符录入错误，请对照营业执照核实"
                        ),
                    ),
                };
                out.push(violation(
                    name,
                    code,
                    Severity::Error,
                    zh,
                    format!("{name} {e}"),
                    detail,
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity() -> EntityDef {
        let yaml = "key: [code]\nfields:\n  code: { type: text }\n  tax_id: { type: text(20), format: uscc, sensitive: true }\n";
        serde_saphyr::from_str(yaml).unwrap()
    }

    fn check(v: &str) -> Vec<Violation> {
        let mut out = Vec::new();
        TaxpayerPack.check(
            "customer",
            &entity(),
            &Record::new().with("code", "C1").with("tax_id", v),
            &mut out,
        );
        out
    }

    #[test]
    fn valid_code_passes_and_wrong_check_is_an_error_with_the_expected_char() {
        assert!(check("91110108551385082Q").is_empty());
        let v = check("91110108551385082R");
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].code, "CN-TAXPAYER-CHECK");
        assert_eq!(v[0].severity, Severity::Error);
        assert!(v[0].message.zh.contains("应为`Q`"), "{:?}", v[0].message);
        assert!(
            !v[0].detail.contains("91110108551385082R"),
            "sensitive value must be masked: {}",
            v[0].detail
        );
    }

    #[test]
    fn legacy_lengths_warn_and_junk_is_an_error() {
        let v = check("110108551385082");
        assert_eq!(
            (v[0].code.as_str(), v[0].severity),
            ("CN-TAXPAYER-LEGACY", Severity::Warning)
        );
        assert_eq!(
            check("9111010855138508").first().map(|v| v.code.clone()),
            Some("CN-TAXPAYER-LENGTH".into())
        );
        assert_eq!(
            check("9111010855138508IQ").first().map(|v| v.code.clone()),
            Some("CN-TAXPAYER-CHAR".into())
        );
    }
}
