//! Crosswalk lookups for mappings, answered from the store. Mapping runs on a blocking
//! thread (see `runner`), so it may wait on the async store through the runtime handle.

use qiao_core::mapping::Lookup;
use qiao_store::Store;
use std::sync::Arc;
use tokio::runtime::Handle;

/// A `Lookup` backed by the store's crosswalk. Use only from a blocking thread
/// (`spawn_blocking`): it blocks on the runtime.
pub struct StoreLookup {
    store: Arc<dyn Store>,
    handle: Handle,
}

impl StoreLookup {
    /// A lookup on `store`, driven by the current runtime.
    pub fn new(store: Arc<dyn Store>) -> Self {
        StoreLookup {
            store,
            handle: Handle::current(),
        }
    }
}

impl Lookup for StoreLookup {
    fn to_golden(&self, system: &str, entity: &str, local_id: &str) -> Option<String> {
        // A store error reads as "no entry": the mapping then reports the missing link
        // with the ids, which is the message a user can act on.
        self.handle
            .block_on(self.store.crosswalk_get(system, entity, local_id))
            .ok()
            .flatten()
    }

    fn to_local(&self, system: &str, entity: &str, golden_id: &str) -> Option<String> {
        self.handle
            .block_on(self.store.crosswalk_local(system, entity, golden_id))
            .ok()
            .flatten()
    }
}
