//! The shipped example config loads with no errors and no warnings.

use qiao_core::load::{load, parse_str};
use std::path::Path;

fn example_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/crm-erp.yaml")
}

#[test]
fn example_loads_clean() {
    let text = std::fs::read_to_string(example_path()).unwrap();
    let (config, diags) = parse_str(&text, "crm-erp.yaml");
    assert!(diags.is_empty(), "{}", diags.render(&text));
    let config = config.unwrap();
    assert_eq!(config.entities.len(), 3);
    assert_eq!(config.flows.len(), 2);
}

#[test]
fn example_loads_from_disk_with_hash() {
    let loaded = load(&example_path()).unwrap_or_else(|d| panic!("{d}"));
    assert!(loaded.warnings.is_empty());
    assert_eq!(loaded.hash.len(), 64);
    assert_eq!(loaded.hash, qiao_core::load::sha256_hex(&loaded.text));
    assert!(loaded.dir.ends_with("examples"));
    assert!(loaded.config.systems.contains_key("crm"));
}
