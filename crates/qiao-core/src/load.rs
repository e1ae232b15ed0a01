//! Loading a config file: YAML syntax, schema (unknown keys, wrong types) and the
//! semantic checks of [`crate::check`], all reported as positioned [`Diagnostic`]s.
//!
//! Loading goes in three passes so that one run reports every mistake, not just the first:
//! 1. the text is read into a generic YAML tree that keeps every node's position;
//! 2. that tree is walked against the schema of [`crate::config`], collecting every
//!    unknown key and unknown kind name with a did-you-mean hint (serde stops at the
//!    first, the walk does not);
//! 3. the text is deserialized into [`Config`]; a remaining serde error (wrong type,
//!    missing key) is reported with its position, otherwise the semantic checks run.

use crate::check::{self, keys};
use crate::config::Config;
use serde_saphyr::{Error as YamlError, Location};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::{Path, PathBuf};

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// The config cannot be used.
    Error,
    /// The config works, but something looks wrong.
    Warning,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Error => "error",
            Level::Warning => "warning",
        })
    }
}

/// One finding about a config file, with its position and, when there is one, the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Level,
    /// The config file name as given by the caller.
    pub file: String,
    /// 1-based line (0 when the position is unknown).
    pub line: u32,
    /// 1-based column in characters (0 when unknown).
    pub column: u32,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// An error at `line:column` of `file`.
    pub fn error(file: &str, line: u32, column: u32, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Level::Error,
            file: file.to_string(),
            line,
            column,
            message: message.into(),
            hint: None,
        }
    }

    /// A warning at `line:column` of `file`.
    pub fn warning(file: &str, line: u32, column: u32, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Level::Warning,
            ..Diagnostic::error(file, line, column, message)
        }
    }

    /// An error at a YAML location.
    pub fn error_at(file: &str, loc: Location, message: impl Into<String>) -> Self {
        let (line, column) = pos(loc);
        Diagnostic::error(file, line, column, message)
    }

    /// A warning at a YAML location.
    pub fn warning_at(file: &str, loc: Location, message: impl Into<String>) -> Self {
        let (line, column) = pos(loc);
        Diagnostic::warning(file, line, column, message)
    }

    /// The same diagnostic with a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Level::Error
    }
}

/// Line and column of a YAML location as `u32` (0 when unknown).
pub(crate) fn pos(loc: Location) -> (u32, u32) {
    (
        u32::try_from(loc.line()).unwrap_or(u32::MAX),
        u32::try_from(loc.column()).unwrap_or(u32::MAX),
    )
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        } else {
            write!(f, "{}: ", self.file)?;
        }
        write!(f, "{}: {}", self.severity, self.message)?;
        if let Some(h) = &self.hint {
            write!(f, "\n    hint: {h}")?;
        }
        Ok(())
    }
}

/// All findings of one load, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Number of errors.
    pub fn error_count(&self) -> usize {
        self.0.iter().filter(|d| d.is_error()).count()
    }

    /// Number of warnings.
    pub fn warning_count(&self) -> usize {
        self.0.len() - self.error_count()
    }

    /// True when at least one finding is an error.
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }

    /// Like `Display`, plus the offending source line and a caret under the column, the
    /// way rustc shows it; `text` is the config file's text.
    pub fn render(&self, text: &str) -> String {
        let lines: Vec<&str> = text.lines().collect();
        let mut out = String::new();
        for d in &self.0 {
            out.push_str(&format!("{}:", d.severity));
            let (head, hint) = match d.hint {
                Some(ref h) => (d.message.as_str(), Some(h.as_str())),
                None => (d.message.as_str(), None),
            };
            out.push_str(&format!(" {head}\n"));
            let num = d.line.to_string();
            let pad = " ".repeat(num.len());
            if d.line > 0 {
                out.push_str(&format!("{pad}--> {}:{}:{}\n", d.file, d.line, d.column));
            } else {
                out.push_str(&format!("{pad}--> {}\n", d.file));
            }
            if let Some(src) = lines.get((d.line as usize).wrapping_sub(1)) {
                let caret_at = (d.column as usize).saturating_sub(1);
                let lead: String = src
                    .chars()
                    .take(caret_at)
                    .map(|c| match c {
                        '\t' => "\t",
                        c if is_wide(c) => "  ",
                        _ => " ",
                    })
                    .collect();
                out.push_str(&format!("{pad} |\n{num} | {src}\n{pad} | {lead}^\n"));
            }
            if let Some(h) = hint {
                out.push_str(&format!("{pad} = hint: {h}\n"));
            }
            out.push('\n');
        }
        out.push_str(&self.summary());
        out
    }

    /// `2 errors, 1 warning` (or `no problems found`).
    pub fn summary(&self) -> String {
        let (e, w) = (self.error_count(), self.warning_count());
        let plural = |n: usize, word: &str| {
            if n == 1 {
                format!("1 {word}")
            } else {
                format!("{n} {word}s")
            }
        };
        match (e, w) {
            (0, 0) => "no problems found".to_string(),
            (e, 0) => plural(e, "error"),
            (0, w) => plural(w, "warning"),
            (e, w) => format!("{}, {}", plural(e, "error"), plural(w, "warning")),
        }
    }
}

/// Chinese, Japanese and Korean characters and full-width forms take two terminal
/// columns; the caret under a position after them must move by two.
fn is_wide(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x115F | 0x2E80..=0x303E | 0x3041..=0x33FF | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF | 0xA000..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 | 0x20000..=0x3FFFD)
}

impl std::ops::Deref for Diagnostics {
    type Target = Vec<Diagnostic>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "{d}")?;
        }
        f.write_str(&self.summary())
    }
}

impl std::error::Error for Diagnostics {}

/// A config that loaded and passed every check.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The parsed config.
    pub config: Config,
    /// The file it came from.
    pub path: PathBuf,
    /// The file's folder: relative paths in the config (store, `files` systems) start here.
    pub dir: PathBuf,
    /// The file's text as read.
    pub text: String,
    /// SHA-256 of `text` in lower-case hex: identifies the config version.
    pub hash: String,
    /// Warnings found while loading (errors make loading fail instead).
    pub warnings: Vec<Diagnostic>,
}

/// Reads, parses and checks the config file at `path`. Fails with every error found;
/// warnings alone do not make it fail.
pub fn load(path: &Path) -> Result<LoadedConfig, Diagnostics> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| {
        Diagnostics(vec![
            Diagnostic::error(&file, 0, 0, format!("cannot read the config file: {e}"))
                .with_hint("check the path and that the file is readable by this user"),
        ])
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let (line, column) = line_col_of_byte(e.as_bytes(), e.utf8_error().valid_up_to());
        Diagnostics(vec![
            Diagnostic::error(&file, line, column, "the config file is not valid UTF-8")
                .with_hint("save it as UTF-8 (not GBK/GB18030); most editors offer this under \"Save with encoding\""),
        ])
    })?;
    let (config, diags) = parse_str(&text, &file);
    match config {
        Some(config) if !diags.has_errors() => {
            let dir = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            Ok(LoadedConfig {
                config,
                path: path.to_path_buf(),
                dir,
                hash: sha256_hex(&text),
                text,
                warnings: diags.0,
            })
        }
        _ => Err(diags),
    }
}

/// Parses and checks config `text`; `file_name` is used in diagnostics. Warnings are
/// dropped: use [`parse_str`] to see them.
pub fn load_str(text: &str, file_name: &str) -> Result<Config, Diagnostics> {
    match parse_str(text, file_name) {
        (Some(config), diags) if !diags.has_errors() => Ok(config),
        (_, diags) => Err(diags),
    }
}

/// Parses and checks config `text`, returning the config when it could be read at all
/// and every finding (errors and warnings), sorted by position. The config is `Some`
/// even with semantic errors, so tools can still show what was understood.
pub fn parse_str(text: &str, file_name: &str) -> (Option<Config>, Diagnostics) {
    let mut diags = Vec::new();
    let tree = match serde_saphyr::from_str_with_options::<keys::Node>(text, yaml_options()) {
        Ok(tree) => tree,
        Err(e) => {
            let mut d = yaml_error(&e, file_name, None);
            if d.message.contains("tab") {
                point_at_tab_indent(&mut d, text);
            }
            diags.push(d);
            return (None, Diagnostics(diags));
        }
    };
    if tree.is_empty() {
        diags.push(
            Diagnostic::warning(file_name, 1, 1, "the config file is empty").with_hint(
                "start with `systems:`, `entities:`, `mappings:` and `flows:`; see examples/crm-erp.yaml",
            ),
        );
    }
    keys::walk_config(&tree, file_name, &mut diags);
    let config = if tree.is_empty() {
        serde_saphyr::from_str_with_options::<Config>("{}", yaml_options())
    } else {
        serde_saphyr::from_str_with_options::<Config>(text, yaml_options())
    };
    let config = match config {
        Ok(c) => Some(c),
        Err(e) => {
            let d = yaml_error(&e, file_name, Some(&tree));
            // The walk already reported unknown keys and names, with better context.
            let dup = diags
                .iter()
                .any(|x| x.line == d.line && x.column == d.column);
            if !dup {
                diags.push(d);
            }
            None
        }
    };
    if let Some(c) = &config {
        diags.extend(check::check_with_tree(c, file_name, Some(text), Some(tree)));
    }
    diags.sort_by_key(|d| (d.line, d.column));
    diags.dedup();
    (config, Diagnostics(diags))
}

/// The parser notices a tab where it stops scanning, often a line early; the mistake is
/// the tab in the indentation, so point there.
fn point_at_tab_indent(d: &mut Diagnostic, text: &str) {
    for (i, line) in text.lines().enumerate() {
        let indent: String = line.chars().take_while(|c| c.is_whitespace()).collect();
        if let Some(col) = indent.chars().position(|c| c == '\t') {
            d.line = u32::try_from(i + 1).unwrap_or(u32::MAX);
            d.column = u32::try_from(col + 1).unwrap_or(u32::MAX);
            d.message = "a tab is used for indentation".into();
            d.hint = Some("YAML indents with spaces only; replace the tab with spaces".into());
            return;
        }
    }
}

/// How config files are read: YAML 1.2 booleans only (`true`/`false`), so that a column
/// named `n`, `y`, `on` or `no` stays text instead of silently becoming a boolean; the
/// default limits on depth, size and alias expansion stay on.
pub fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! { strict_booleans: true }
}

/// SHA-256 of `text` as lower-case hex.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn line_col_of_byte(bytes: &[u8], at: usize) -> (u32, u32) {
    let before = &bytes[..at.min(bytes.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |p| p + 1);
    let col = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(col).unwrap_or(u32::MAX),
    )
}

/// Strips the alias and snippet wrappers serde-saphyr puts around the error that matters.
fn inner(mut e: &YamlError) -> &YamlError {
    loop {
        match e {
            YamlError::AliasError { error, .. } | YamlError::WithSnippet { error, .. } => e = error,
            other => return other,
        }
    }
}

/// Turns a serde-saphyr error into a diagnostic readable by people who do not know serde.
fn yaml_error(e: &YamlError, file: &str, tree: Option<&keys::Node>) -> Diagnostic {
    let loc = e.location();
    let (line, column) = loc.map(pos).unwrap_or((0, 0));
    let mut path = tree.and_then(|t| t.path_at(line, column));
    if let YamlError::SerdeMissingField { .. } = inner(e) {
        // The position is that of the map's first key; the key is missing from its parent.
        path = path.and_then(|p| p.rsplit_once('.').map(|(parent, _)| parent.to_string()));
    }
    let place = path.map(|p| format!(" (in `{p}`)")).unwrap_or_default();
    let (message, hint) = match inner(e) {
        YamlError::SerdeUnknownField {
            field, expected, ..
        } => (
            format!("unknown key `{field}`{place}"),
            Some(keys::suggest(field, expected)),
        ),
        YamlError::SerdeUnknownVariant {
            variant, expected, ..
        } => (
            format!("unknown value `{variant}`{place}"),
            Some(keys::suggest(variant, expected)),
        ),
        YamlError::SerdeMissingField { field, .. } => (
            format!("missing key `{field}`{place}"),
            Some(format!("add `{field}: …` here")),
        ),
        YamlError::SerdeInvalidType {
            unexpected,
            expected,
            ..
        } => (
            format!("expected {expected}, found {unexpected}{place}"),
            Some(type_hint(expected)),
        ),
        YamlError::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } => (
            format!("invalid value {unexpected}, expected {expected}{place}"),
            None,
        ),
        YamlError::Unexpected { expected, .. } => (
            format!("expected {expected}{place}"),
            Some(type_hint(expected)),
        ),
        YamlError::DuplicateMappingKey { key, .. } => (
            match key {
                Some(k) => format!("key `{k}` appears twice{place}"),
                None => format!("a key appears twice{place}"),
            },
            Some("remove or rename one of them; YAML keys must be unique in their block".into()),
        ),
        YamlError::InvalidBooleanStrict { .. } => (
            format!("expected `true` or `false`{place}"),
            Some("write `true` or `false`; yes/no/on/off are not booleans in qiao configs".into()),
        ),
        YamlError::Eof { .. } => (
            "the file ends in the middle of a value".to_string(),
            Some("check for an unclosed quote, `[` or `{`".into()),
        ),
        other if format!("{other}").contains("untagged enum FromSpec") => (
            format!("`from` must be a column name or a list of column names{place}"),
            Some("write `from: cust_no` or `from: [first_name, last_name]`".into()),
        ),
        other => {
            use serde_saphyr::MessageFormatter as _;
            let text = serde_saphyr::DefaultMessageFormatter.format_message(other);
            // The formatter's text may hold control characters taken from the input.
            let clean: String = text.chars().filter(|c| !c.is_control()).collect();
            (
                format!("{clean}{place}"),
                Some("check indentation (spaces, not tabs), colons after keys and matching quotes/brackets".into()),
            )
        }
    };
    let mut d = Diagnostic::error(file, line, column, message);
    d.hint = hint;
    d
}

fn type_hint(expected: &str) -> String {
    if expected.contains("sequence") {
        "write a list: `[a, b]` or one `- item` per line".into()
    } else if expected.contains("struct") || expected.contains("map") {
        "write a block of `key: value` lines (indented) or `{key: value}`".into()
    } else if expected.contains("string") {
        "write text here; quote it if it looks like a number or yes/no".into()
    } else if expected.contains("integer") || expected.contains("u32") || expected.contains("usize")
    {
        "write a whole number here, without quotes".into()
    } else if expected.contains("bool") {
        "write `true` or `false`".into()
    } else {
        format!("write {expected} here")
    }
}
