//! qiao-engine: the flow runtime. A flow pass reads a source from its committed
//! checkpoint, maps and validates each change, commits jobs and exceptions together with
//! the new checkpoint (transactional outbox), and delivers jobs to the sink in order with
//! the retry schedule. `serve` runs flows on their triggers until stopped.

pub mod connect;
pub mod deliver;
pub mod exceptions;
pub mod lease;
pub mod lookup;
pub mod pipeline;
pub mod plan;
pub mod runner;
pub mod serve;

pub use plan::FlowPlan;
pub use runner::{Observer, RunOptions, RunSummary, SilentObserver, run_flow};

/// Errors of the engine, each naming the flow and what to do.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The config cannot run as written.
    #[error("{0}")]
    Config(String),
    /// A connector failed in a way that stops the pass.
    #[error("flow `{flow}`: {message}")]
    Connector {
        /// Flow name.
        flow: String,
        /// What failed.
        message: String,
    },
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] qiao_store::StoreError),
    /// Another process runs this flow now.
    #[error(
        "flow `{0}` is running in another qiao process; wait for it or stop it (its lease expires by itself if it died)"
    )]
    Busy(String),
}

/// Result alias.
pub type Result<T> = std::result::Result<T, EngineError>;
