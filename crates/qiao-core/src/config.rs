//! The config schema: systems, the data dictionary (entities), mappings, rule sets and
//! flows, as read from one YAML file. Names that a user can get wrong carry their
//! file position (`Spanned`) so `qiao check` can point at them.

use indexmap::IndexMap;
use serde::Deserialize;
pub use serde_saphyr::Spanned;

/// A whole qiao config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Schema version of the file; only 1 exists.
    #[serde(default = "one")]
    pub version: u32,
    /// Where qiao keeps its state: a SQLite file path (relative to the config file) or,
    /// later, a `postgres://` URL. Default `qiao.db` beside the config.
    #[serde(default)]
    pub store: Option<String>,
    /// External systems by name (`crm`, `erp`, `tax`…).
    #[serde(default)]
    pub systems: IndexMap<String, SystemConfig>,
    /// The canonical data dictionary: entities by name.
    #[serde(default)]
    pub entities: IndexMap<String, EntityDef>,
    /// Mappings between one system's shape of an entity and the canonical one.
    #[serde(default)]
    pub mappings: IndexMap<String, MappingDef>,
    /// Rule sets by name.
    #[serde(default)]
    pub rules: IndexMap<String, RuleSetDef>,
    /// Flows by name.
    #[serde(default)]
    pub flows: IndexMap<String, FlowDef>,
    /// Default retry schedule for delivery, e.g. `["1m", "5m", "5m"]`.
    #[serde(default)]
    pub retry: Option<Vec<String>>,
}

fn one() -> u32 {
    1
}

/// How to reach one external system.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemConfig {
    /// Connector kind: `postgres`, `mysql`, `sqlite`, `files`.
    pub kind: Spanned<String>,
    /// Connection URL for SQL kinds; may use `${ENV_VAR}` references, never an inline
    /// password.
    #[serde(default)]
    pub url: Option<Spanned<String>>,
    /// Folder for `files` systems (relative to the config file).
    #[serde(default)]
    pub path: Option<String>,
    /// File format for `files` systems: `csv`, `jsonl`, `xml`.
    #[serde(default)]
    pub format: Option<Spanned<String>>,
    /// Text encoding of files: `utf-8` (default) or `gb18030` (also reads GBK/GB2312).
    #[serde(default)]
    pub encoding: Option<Spanned<String>>,
    /// CSV delimiter, default `,`.
    #[serde(default)]
    pub delimiter: Option<char>,
    /// XML element that holds one record (for `xml`), e.g. `customer`.
    #[serde(default)]
    pub record_element: Option<String>,
}

/// One canonical entity of the data dictionary.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityDef {
    /// The key fields, in order.
    pub key: Vec<Spanned<String>>,
    /// Field name → definition, in display order.
    pub fields: IndexMap<String, FieldDef>,
    /// Free text for people.
    #[serde(default)]
    pub description: Option<String>,
}

/// One field of a canonical entity.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldDef {
    /// Type: `text`, `text(100)`, `integer`, `bool`, `decimal(18,2)`, `date`, `datetime`,
    /// `enum[a,b,c]`, `list<entity>` (nested records such as invoice lines).
    #[serde(rename = "type")]
    pub ty: Spanned<String>,
    /// Must be present and non-blank.
    #[serde(default)]
    pub required: bool,
    /// Personal or secret data: masked in output and logs.
    #[serde(default)]
    pub sensitive: bool,
    /// Free text for people, e.g. the Chinese field name.
    #[serde(default)]
    pub label: Option<String>,
    /// A named format that a rule pack checks, e.g. `uscc` (unified social credit code,
    /// checked by the `cn.taxpayer` pack).
    #[serde(default)]
    pub format: Option<String>,
}

/// How one system's shape of an entity maps to the canonical entity and back.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingDef {
    /// The system this mapping belongs to.
    pub system: Spanned<String>,
    /// The canonical entity.
    pub entity: Spanned<String>,
    /// The object in the system: a table name, or a file name pattern for `files`.
    pub object: String,
    /// The system-side key columns (default: the columns that the entity key maps from).
    #[serde(default)]
    pub key: Option<Vec<String>>,
    /// For incremental reads: the column that grows on every change (e.g. `updated_at`).
    #[serde(default)]
    pub cursor: Option<String>,
    /// Canonical field → how it is made from the system's fields (and back).
    pub fields: IndexMap<Spanned<String>, FieldMap>,
    /// Mapping version, bumped by whoever edits it (also versioned in the store).
    #[serde(default)]
    pub version: Option<u32>,
}

/// How one canonical field relates to system fields.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldMap {
    /// The system field, or several system fields joined (`join`) into this one.
    #[serde(default)]
    pub from: Option<FromSpec>,
    /// Separator when `from` lists several fields (concat inbound, split outbound).
    #[serde(default)]
    pub join: Option<String>,
    /// Take one part of the system field split by `sep` (inbound); outbound, parts of the
    /// same system field are joined again in index order.
    #[serde(default)]
    pub part: Option<PartSpec>,
    /// Value map: canonical value → system value. Inbound it is read in reverse.
    #[serde(default)]
    pub values: Option<IndexMap<String, String>>,
    /// Converters applied inbound in order; outbound their inverses in reverse order.
    #[serde(default)]
    pub convert: Vec<Spanned<Converter>>,
    /// Value used when the source value is blank.
    #[serde(default)]
    pub default: Option<serde_json::Value>,
    /// Expression computing the canonical value (inbound); sees `src` (system record).
    #[serde(default)]
    pub expr: Option<Spanned<String>>,
    /// Expression computing the system value (outbound); sees `rec` (canonical record).
    #[serde(default)]
    pub expr_out: Option<Spanned<String>>,
    /// Translate the value through the crosswalk: it is a key of `entity` in this mapping's
    /// system, and becomes the golden id (inbound) or the target system's id (outbound).
    #[serde(default)]
    pub lookup: Option<String>,
}

/// One system field name, or several.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum FromSpec {
    /// A single system field.
    One(Spanned<String>),
    /// Several system fields, joined by `join`.
    Many(Vec<Spanned<String>>),
}

/// One part of a split system field.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartSpec {
    /// Separator.
    pub sep: String,
    /// Zero-based index of the part.
    pub index: usize,
}

/// A declarative value converter. Written in YAML as a bare name (`trim`) or a one-key map
/// (`{max_chars: {max: 100, policy: truncate}}`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Converter {
    /// Remove leading and trailing white space (including U+3000).
    Trim,
    /// Upper-case.
    Upper,
    /// Lower-case.
    Lower,
    /// Full-width ASCII forms and the ideographic space → half-width.
    Halfwidth,
    /// Remove every listed character, e.g. `"*#"`.
    Strip(String),
    /// At most `max` characters (not bytes); `policy: reject | truncate`.
    MaxChars {
        /// Limit in characters.
        max: usize,
        /// What to do with a longer value.
        #[serde(default)]
        policy: LengthPolicy,
    },
    /// Exact decimal with this many decimals, zero-padded (`100` → `100.00`), half-up.
    Scale(u32),
    /// Multiply inbound by this factor (e.g. fen → yuan: `0.01`); outbound divide.
    Unit(rust_decimal::Decimal),
    /// Parse a date inbound with this strftime format; outbound format it.
    Date(String),
    /// Parse a date-time inbound with `format` in zone `tz` (IANA, e.g. `Asia/Shanghai`);
    /// outbound format it in that zone.
    Datetime {
        /// strftime format.
        format: String,
        /// IANA zone name used when the text has no offset.
        #[serde(default)]
        tz: Option<String>,
    },
    /// Parse text as an exact decimal.
    Decimal,
    /// Parse text as an integer.
    Integer,
    /// Make a text value (e.g. from a number column).
    Text,
}

/// What a too-long value does.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LengthPolicy {
    /// The record becomes a validation exception.
    #[default]
    Reject,
    /// Cut to the limit (in characters) and report a warning.
    Truncate,
}

/// A named set of rules for one entity.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSetDef {
    /// The canonical entity the rules check.
    pub entity: Spanned<String>,
    /// The rules.
    pub rules: Vec<RuleDef>,
}

/// One validation rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDef {
    /// Stable code, e.g. `CUST-PHONE-001`.
    pub code: String,
    /// The field checked (none for cross-field `expr` rules).
    #[serde(default)]
    pub field: Option<Spanned<String>>,
    /// What is checked.
    pub check: Spanned<Check>,
    /// `error` blocks the record; `warning` lets it pass and is reported.
    #[serde(default)]
    pub severity: Severity,
    /// The role that fixes a violation: `sales`, `finance`, `it`…
    #[serde(default = "default_owner")]
    pub owner: String,
    /// Messages for people, Chinese and English.
    #[serde(default)]
    pub message: Option<Message>,
}

fn default_owner() -> String {
    "it".to_string()
}

/// A message in Chinese and English.
#[derive(Debug, Clone, Deserialize, PartialEq, serde::Serialize)]
pub struct Message {
    /// Chinese.
    pub zh: String,
    /// English.
    pub en: String,
}

/// The kinds of check a rule can make.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Check {
    /// Present and non-blank.
    Required,
    /// Value has this dictionary type (e.g. `decimal(18,2)`).
    Type(String),
    /// At most this many characters.
    MaxChars(usize),
    /// Text matches this regular expression.
    Pattern(String),
    /// Value is one of these.
    Enum(Vec<String>),
    /// Number within [min, max] (either may be absent).
    Range {
        /// Lowest allowed.
        #[serde(default)]
        min: Option<rust_decimal::Decimal>,
        /// Highest allowed.
        #[serde(default)]
        max: Option<rust_decimal::Decimal>,
    },
    /// Cross-field expression over `rec` that must be true.
    Expr(String),
}

/// How bad a rule violation is.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Blocks the record.
    #[default]
    Error,
    /// Passes and is reported.
    Warning,
}

/// A flow: from one system's entity to another's.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowDef {
    /// The source mapping name.
    pub from: Spanned<String>,
    /// The target mapping name.
    pub to: Spanned<String>,
    /// When it runs: `manual` (default), `{interval: 30s}`, `{cron: "0 */5 * * * *"}`.
    #[serde(default)]
    pub trigger: Trigger,
    /// Expression over the canonical record `rec`; records for which it is false are
    /// skipped (counted, not lost).
    #[serde(default)]
    pub filter: Option<Spanned<String>>,
    /// Rule sets applied to the canonical record, besides the dictionary's own checks.
    #[serde(default)]
    pub rules: Vec<Spanned<String>>,
    /// Detect rows deleted at a polled source by comparing key sets: `none` (default) or
    /// `key_scan`.
    #[serde(default)]
    pub deletes: DeleteDetection,
    /// Records per job (batch). Default 2,000.
    #[serde(default)]
    pub batch_size: Option<usize>,
    /// Retry schedule for this flow, e.g. `["1m", "5m", "5m"]`.
    #[serde(default)]
    pub retry: Option<Vec<String>>,
    /// In two-way sync: do not send back changes that qiao itself wrote.
    #[serde(default)]
    pub echo_suppression: bool,
    /// Owner role of transport exceptions for this flow (default `it`).
    #[serde(default)]
    pub owner: Option<String>,
}

/// When a flow runs.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// Only by `qiao run`.
    #[default]
    Manual,
    /// Every duration, e.g. `30s`, `5m`.
    Interval(String),
    /// A cron expression (with seconds), e.g. `0 */5 * * * *`.
    Cron(String),
}

/// How deletes at a polled source are found.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DeleteDetection {
    /// Deletes are not detected.
    #[default]
    None,
    /// Compare source and target key sets after each pass; keys only in the target are
    /// deleted there.
    KeyScan,
}

impl FromSpec {
    /// The system field names.
    pub fn names(&self) -> Vec<&str> {
        match self {
            FromSpec::One(s) => vec![s.value.as_str()],
            FromSpec::Many(v) => v.iter().map(|s| s.value.as_str()).collect(),
        }
    }
}
