//! `qiao serve`: runs every flow with an interval or cron trigger until told to stop.
//! Each flow has its own task; a stop request lets running passes finish their batch.

use crate::plan::FlowPlan;
use crate::runner::{Observer, RunOptions, run_flow};
use crate::{EngineError, Result};
use chrono::{Local, Utc};
use qiao_core::config::{Config, Trigger};
use qiao_core::duration::parse_duration;
use qiao_store::Store;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// When a flow runs next.
pub enum Schedule {
    /// Every this long, measured from the end of the previous pass.
    Every(Duration),
    /// At the times of a cron expression (local time).
    Cron(Box<croner::Cron>),
}

impl Schedule {
    /// The schedule of a trigger; `None` for manual flows.
    pub fn of(flow: &str, trigger: &Trigger) -> Result<Option<Schedule>> {
        let bad = |e: String| EngineError::Config(format!("flow `{flow}` trigger: {e}"));
        Ok(match trigger {
            Trigger::Manual => None,
            Trigger::Interval(s) => Some(Schedule::Every(parse_duration(s).map_err(bad)?)),
            Trigger::Cron(s) => Some(Schedule::Cron(Box::new(
                croner::Cron::from_str(s).map_err(|e| bad(format!("cron `{s}`: {e}")))?,
            ))),
        })
    }

    /// How long to sleep before the next pass.
    pub fn wait(&self) -> Duration {
        match self {
            Schedule::Every(d) => *d,
            Schedule::Cron(c) => {
                let now = Local::now();
                match c.find_next_occurrence(&now, false) {
                    Ok(next) => (next - now).to_std().unwrap_or(Duration::from_secs(1)),
                    // No future occurrence (e.g. a date in the past): check again hourly.
                    Err(_) => Duration::from_secs(3600),
                }
            }
        }
    }
}

/// A line-per-event report of what `serve` does.
pub trait ServeLog: Send + Sync {
    /// One finished pass (or its error).
    fn pass(&self, flow: &str, result: &Result<crate::RunSummary>);
}

/// Runs the scheduled flows until `opts.stop` turns true. Returns when every flow task
/// has finished its current pass.
pub async fn serve(
    config: Arc<Config>,
    plans: Vec<Arc<FlowPlan>>,
    store: Arc<dyn Store>,
    opts: RunOptions,
    obs: Arc<dyn Observer>,
    log: Arc<dyn ServeLog>,
) -> Result<usize> {
    let mut tasks = Vec::new();
    for plan in plans {
        let Some(schedule) = Schedule::of(&plan.name, &plan.def.trigger)? else {
            continue;
        };
        let (config, store, opts, obs, log) = (
            config.clone(),
            store.clone(),
            opts.clone(),
            obs.clone(),
            log.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut stop = opts.stop.clone();
            loop {
                let result = run_flow(&config, plan.clone(), store.clone(), &opts, obs.clone()).await;
                log.pass(&plan.name, &result);
                let wait = schedule.wait();
                tracing::debug!(flow = %plan.name, next = %(Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default()), "sleeping");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => {}
                }
                if *stop.borrow() {
                    break;
                }
            }
        }));
    }
    let n = tasks.len();
    for t in tasks {
        // A task that panicked has already reported through the panic hook; the others
        // still finish.
        let _ = t.await;
    }
    Ok(n)
}
