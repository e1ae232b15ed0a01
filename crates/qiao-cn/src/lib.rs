//! qiao-cn: the China domain pack. For now the unified social credit code (GB 32100) and
//! the `cn.taxpayer` rule pack; the invoice model, tax arithmetic and effective-dated
//! policy parameters come with the tax issue.

pub mod taxpayer;
pub mod uscc;

use std::sync::Arc;

/// Registers this crate's rule packs so flows can name them in `rules:`. Call once at
/// start-up; registering again replaces them.
pub fn register() {
    qiao_core::rules::register_pack(Arc::new(taxpayer::TaxpayerPack));
}
