//! Shared helpers for engine tests: real services, unique names, running flows.
#![allow(dead_code)]

use qiao_core::config::Config;
use qiao_engine::{FlowPlan, RunOptions, RunSummary, SilentObserver, run_flow};
use qiao_store::SqliteStore;
use qiao_store::Store;
use std::path::Path;
use std::sync::Arc;

pub const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
pub const MARIA_URL: &str = "mysql://root@127.0.0.1:3306/test";

/// True when the service answers; otherwise prints a loud skip line, or panics when
/// QIAO_REQUIRE_SERVICES=1 (CI).
pub async fn service(name: &str, url: &str) -> bool {
    let ok = match name {
        "postgres" => sqlx::PgPool::connect(url)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        _ => sqlx::MySqlPool::connect(url)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
    };
    match ok {
        Ok(()) => true,
        Err(e) => {
            if std::env::var("QIAO_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!(
                    "{name} at {url} is required (QIAO_REQUIRE_SERVICES=1) but not reachable: {e}"
                );
            }
            eprintln!("SKIPPED: {name} not reachable at {url}: {e}");
            false
        }
    }
}

/// A name unique to this test run.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}_{}", std::process::id(), rand::random::<u32>())
}

pub fn config(yaml: &str) -> Config {
    match qiao_core::load::load_str(yaml, "test.yaml") {
        Ok(c) => c,
        Err(d) => panic!("test config does not load:\n{d}"),
    }
}

pub async fn store(dir: &Path) -> Arc<dyn Store> {
    Arc::new(
        SqliteStore::open(&dir.join("qiao.db"))
            .await
            .expect("open store"),
    )
}

pub async fn run(config: &Config, store: &Arc<dyn Store>, dir: &Path, flow: &str) -> RunSummary {
    let plan = Arc::new(FlowPlan::build(config, flow).expect("plan"));
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let opts = RunOptions {
        base_dir: dir.to_path_buf(),
        stop: rx,
        owner: "test".into(),
    };
    run_flow(config, plan, store.clone(), &opts, Arc::new(SilentObserver))
        .await
        .expect("run flow")
}
