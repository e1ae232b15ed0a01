//! Opens the connector a system's config names: one match arm per kind.

use crate::{EngineError, Result};
use async_trait::async_trait;
use qiao_connectors::{ConnectorError, Sink, SinkError, Source, files, sql};
use qiao_core::config::{Config, MappingDef, SystemConfig};
use qiao_core::env::expand;
use qiao_core::{Change, Key};
use std::path::Path;

/// Where a system's connector reads and writes, resolved against the config's folder.
pub struct Endpoint<'a> {
    /// System name.
    pub name: &'a str,
    /// System config.
    pub system: &'a SystemConfig,
    /// The mapping (object, keys, cursor).
    pub mapping: &'a MappingDef,
    /// System-side key columns.
    pub key_columns: Vec<String>,
}

impl<'a> Endpoint<'a> {
    /// Finds the system of `mapping_name`.
    pub fn of(config: &'a Config, mapping_name: &str, key_columns: Vec<String>) -> Result<Self> {
        let mapping = config
            .mappings
            .get(mapping_name)
            .ok_or_else(|| EngineError::Config(format!("unknown mapping `{mapping_name}`")))?;
        let name = mapping.system.value.as_str();
        let system = config.systems.get(name).ok_or_else(|| {
            EngineError::Config(format!(
                "mapping `{mapping_name}` names system `{name}`, which is not under `systems:`"
            ))
        })?;
        Ok(Endpoint {
            name,
            system,
            mapping,
            key_columns,
        })
    }

    fn url(&self, base: &Path) -> Result<String> {
        let raw =
            self.system.url.as_ref().ok_or_else(|| {
                EngineError::Config(format!("system `{}` needs a `url`", self.name))
            })?;
        let url = expand(&raw.value)
            .map_err(|e| EngineError::Config(format!("system `{}` url: {e}", self.name)))?;
        Ok(resolve_sqlite(&url, base))
    }

    fn kind(&self) -> &str {
        self.system.kind.value.as_str()
    }

    fn file_options(
        &self,
        base: &Path,
        checkpoint: Option<String>,
        batch: usize,
    ) -> Result<files::FileOptions> {
        let sys = self.system;
        let bad = |what: &str| EngineError::Config(format!("system `{}`: {what}", self.name));
        let dir = sys
            .path
            .as_ref()
            .ok_or_else(|| bad("files systems need a `path` (folder)"))?;
        let format = sys
            .format
            .as_ref()
            .map(|f| f.value.as_str())
            .unwrap_or("csv");
        let format = files::Format::parse(format).map_err(|e| bad(&e.to_string()))?;
        let encoding = sys
            .encoding
            .as_ref()
            .map(|f| f.value.as_str())
            .unwrap_or("utf-8");
        let encoding = files::Encoding::parse(encoding).map_err(|e| bad(&e.to_string()))?;
        let delimiter = u8::try_from(sys.delimiter.unwrap_or(','))
            .map_err(|_| bad("`delimiter` must be one ASCII character"))?;
        Ok(files::FileOptions {
            system: self.name.to_string(),
            dir: base.join(dir),
            object: self.mapping.object.clone(),
            format,
            encoding,
            delimiter,
            record_element: sys.record_element.clone(),
            key_columns: self.key_columns.clone(),
            batch_size: batch,
            checkpoint,
        })
    }

    /// Opens this endpoint as a source positioned after `checkpoint`.
    pub async fn source(
        &self,
        base: &Path,
        checkpoint: Option<String>,
        batch: usize,
    ) -> Result<Box<dyn Source>> {
        let res = match self.kind() {
            "files" => files::open_source(self.file_options(base, checkpoint, batch)?).await,
            kind => {
                let kind = sql_kind(self.name, kind)?;
                sql::open_source(sql::SourceOptions {
                    system: self.name.to_string(),
                    kind,
                    url: self.url(base)?,
                    table: self.mapping.object.clone(),
                    key_columns: self.key_columns.clone(),
                    cursor: self.mapping.cursor.clone(),
                    checkpoint,
                    batch_size: batch,
                })
                .await
            }
        };
        res.map_err(|e| EngineError::Connector {
            flow: String::new(),
            message: format!("source `{}`: {e}", self.name),
        })
    }

    /// Opens this endpoint as a sink.
    pub async fn sink(&self, base: &Path) -> Result<Box<dyn Sink>> {
        let res = match self.kind() {
            "files" => files::open_sink(self.file_options(base, None, 0)?).await,
            kind => {
                let kind = sql_kind(self.name, kind)?;
                sql::open_sink(sql::SinkOptions {
                    system: self.name.to_string(),
                    kind,
                    url: self.url(base)?,
                    table: self.mapping.object.clone(),
                    key_columns: self.key_columns.clone(),
                })
                .await
            }
        };
        match res {
            Ok(sink) => Ok(sink),
            // A target that is down must not stop the pass: delivery then fails like any
            // write, so the retry schedule and its exception apply.
            Err(ConnectorError::Transport(e)) => Ok(Box::new(DownSink {
                message: format!("target `{}` unreachable: {e}", self.name),
            })),
            Err(e) => Err(EngineError::Connector {
                flow: String::new(),
                message: format!("target `{}`: {e}", self.name),
            }),
        }
    }
}

fn sql_kind(system: &str, kind: &str) -> Result<sql::SqlKind> {
    sql::SqlKind::parse(kind).ok_or_else(|| {
        EngineError::Config(format!(
            "system `{system}`: kind `{kind}` is not known; use postgres, mysql, sqlite or files"
        ))
    })
}

/// A relative SQLite path in a URL is read relative to the config file's folder, so a
/// config works from any working directory.
pub fn resolve_sqlite(url: &str, base: &Path) -> String {
    let Some(rest) = url.strip_prefix("sqlite://") else {
        return url.to_string();
    };
    if rest.starts_with('/') || rest.starts_with(":memory:") {
        return url.to_string();
    }
    format!("sqlite://{}", base.join(rest).display())
}

/// The sink of a target that could not be reached when the pass started: every write is a
/// transport failure carrying the reason.
struct DownSink {
    message: String,
}

#[async_trait]
impl Sink for DownSink {
    async fn write(&mut self, _changes: &[Change]) -> std::result::Result<(), SinkError> {
        Err(SinkError::Transport(self.message.clone()))
    }
    async fn keys(&mut self) -> std::result::Result<Vec<Key>, ConnectorError> {
        Err(ConnectorError::Transport(self.message.clone()))
    }
}
