//! Command-line arguments.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// qiao (桥) keeps CRM, ERP, finance systems and the tax platform in step.
#[derive(Parser, Debug)]
#[command(name = "qiao", version, about)]
pub struct Cli {
    /// The config file.
    #[arg(
        short,
        long,
        global = true,
        env = "QIAO_CONFIG",
        default_value = "qiao.yaml"
    )]
    pub config: PathBuf,
    /// More log output on stderr (or set QIAO_LOG, e.g. QIAO_LOG=debug).
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check a config file and report every error with file:line:column.
    Check {
        /// Config file (default: --config).
        file: Option<PathBuf>,
    },
    /// Run flows once: read what changed, deliver, report.
    Run {
        /// Flow names; none with --all runs every flow.
        flows: Vec<String>,
        /// Run every flow in config order.
        #[arg(long)]
        all: bool,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run flows on their triggers until stopped (SIGTERM or Ctrl-C).
    Serve,
    /// Show the last run of each flow, pending jobs and open exceptions.
    Status {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List, show, retry or ignore exceptions.
    Exceptions {
        /// What to do with exceptions.
        #[command(subcommand)]
        action: ExceptionsCmd,
    },
    /// Show what a flow makes of a sample record, field by field.
    Map {
        /// Flow name.
        flow: String,
        /// JSON file with one record (an object) or several (an array), in the source shape.
        #[arg(long)]
        sample: PathBuf,
    },
    /// Build a demo world (a CRM and an ERP with realistic faults), run its flows, and
    /// print what synced and what was rejected.
    Demo {
        /// Folder for the demo world.
        #[arg(long, default_value = "qiao-demo")]
        dir: PathBuf,
        /// Number of CRM customers.
        #[arg(long, default_value_t = 10_000)]
        customers: usize,
    },
}

/// Exception subcommands.
#[derive(Subcommand, Debug)]
pub enum ExceptionsCmd {
    /// List exceptions, newest first.
    List {
        /// Only this flow.
        #[arg(long)]
        flow: Option<String>,
        /// Only these states: open, retrying, resolved, ignored (default: open,retrying).
        #[arg(long, value_delimiter = ',')]
        state: Vec<String>,
        /// Only this owner role (sales, finance, it…).
        #[arg(long)]
        owner: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one exception with its record and history.
    Show {
        /// Exception id.
        id: i64,
    },
    /// Send an exception's record again (after fixing the data or the config).
    Retry {
        /// Exception ids.
        ids: Vec<i64>,
        /// Who retries (recorded in the history).
        #[arg(long, env = "USER", default_value = "cli")]
        by: String,
    },
    /// Drop an exception's record on purpose (recorded); changes held behind it go on.
    Ignore {
        /// Exception ids.
        ids: Vec<i64>,
        /// Why (recorded in the history).
        #[arg(long)]
        note: String,
        /// Who ignores it.
        #[arg(long, env = "USER", default_value = "cli")]
        by: String,
    },
}
