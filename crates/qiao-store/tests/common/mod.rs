//! Helpers shared by the store tests.
#![allow(dead_code)]

use qiao_core::{Change, Record};
use qiao_store::{ExceptionKind, NewException, NewJob, SqliteStore};
use std::path::PathBuf;

/// A store in a fresh temp directory (kept alive by the returned guard).
pub async fn file_store() -> (SqliteStore, tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.db");
    let store = SqliteStore::open(&path).await.expect("open store");
    (store, dir, path)
}

/// An upsert of `key` with a version field.
pub fn ch(key: &str, version: i64) -> Change {
    Change::upsert(key, Record::new().with("id", key).with("v", version))
}

/// A job of `changes` under `key`.
pub fn job(key: &str, changes: Vec<Change>) -> NewJob {
    NewJob {
        idempotency_key: key.to_string(),
        changes,
    }
}

/// A delivery (transport) exception over `changes`, blocking their keys.
pub fn transport(flow: &str, changes: Vec<Change>) -> NewException {
    NewException {
        flow: flow.to_string(),
        kind: ExceptionKind::Transport,
        owner: "it".to_string(),
        key: None,
        message: format!("target kept failing ({} records held)", changes.len()),
        details: serde_json::json!({ "error": "connection refused" }),
        changes,
        blocks_keys: true,
    }
}

/// A validation exception for one change; `blocks` as the engine chooses.
pub fn validation(flow: &str, change: Change, owner: &str, blocks: bool) -> NewException {
    NewException {
        flow: flow.to_string(),
        kind: ExceptionKind::Validation,
        owner: owner.to_string(),
        key: Some(change.key.clone()),
        message: format!("key {}: tax id is missing", change.key),
        details: serde_json::json!({ "rule": "cn.tax.uscc", "zh": "纳税人识别号缺失" }),
        changes: vec![change],
        blocks_keys: blocks,
    }
}

/// The `v` field of each change, with its key.
pub fn versions(changes: &[Change]) -> Vec<(String, i64)> {
    changes
        .iter()
        .map(|c| {
            let v = match c.record.get("v") {
                qiao_core::Value::Int(i) => *i,
                other => panic!("no version in {other:?}"),
            };
            (c.key.clone(), v)
        })
        .collect()
}
