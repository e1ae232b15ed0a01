//! qiao-connectors: sources and sinks, one module per kind of system.
//!
//! A source yields batches of [`Change`]s in source order, each with the checkpoint that
//! resumes after it; the engine commits that checkpoint together with the jobs the batch
//! produced, then calls [`Source::committed`]. A sink applies a batch idempotently
//! (upsert / delete by key), so a batch delivered twice after a crash changes nothing.

use async_trait::async_trait;
use qiao_core::{Change, Key};

/// One batch read from a source.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// The changes, in source order.
    pub changes: Vec<Change>,
    /// The position to resume from after this batch (opaque to the engine, JSON text).
    pub checkpoint: Option<String>,
}

/// Errors a connector reports. Each message names the system, the object and the place
/// (file:line, table, column) and says how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// The system could not be reached or answered with a temporary failure: retry later.
    #[error("{0}")]
    Transport(String),
    /// The configuration cannot work (unknown table, bad URL, missing column).
    #[error("{0}")]
    Config(String),
    /// A whole input (file) is malformed; it was moved aside with its reason.
    #[error("{0}")]
    BadInput(String),
}

/// Why a sink did not apply a batch.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Temporary: the target is down, timed out, or refused the connection. The same batch
    /// may succeed later.
    #[error("{0}")]
    Transport(String),
    /// Permanent for this batch (a constraint or type error) but the failing record is not
    /// known: the engine retries record by record to find it.
    #[error("{0}")]
    Batch(String),
    /// Permanent for the record at this index in the batch.
    #[error("record {index}: {message}")]
    Record {
        /// Index in the batch.
        index: usize,
        /// What the target said, with the fix if known.
        message: String,
    },
}

/// A place changes come from.
#[async_trait]
pub trait Source: Send {
    /// Reads the next batch after the current position; `None` when caught up.
    async fn next_batch(&mut self) -> Result<Option<Batch>, ConnectorError>;
    /// Called after the engine durably committed `checkpoint` (a file source moves a
    /// finished file to `done/` here).
    async fn committed(&mut self, checkpoint: &str) -> Result<(), ConnectorError> {
        let _ = checkpoint;
        Ok(())
    }
    /// Every key currently at the source, for delete detection by key scan.
    async fn keys(&mut self) -> Result<Vec<Key>, ConnectorError>;
}

/// A place changes go to.
#[async_trait]
pub trait Sink: Send {
    /// Applies the batch: upserts and deletes by the system-side key, idempotently.
    async fn write(&mut self, changes: &[Change]) -> Result<(), SinkError>;
    /// Every key currently at the target, for delete detection by key scan.
    async fn keys(&mut self) -> Result<Vec<Key>, ConnectorError>;
}

pub mod files;
pub mod sql;
