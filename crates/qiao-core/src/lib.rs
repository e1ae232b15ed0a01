//! qiao-core: the pure logic of qiao — record model, data dictionary, config, mapping and
//! rule engines. Nothing in this crate does I/O except reading the config file it is given.

pub mod record;

pub use mapping::mask;
pub use record::{Change, Key, Op, Record, Value};
pub mod check;
pub mod config;
pub mod duration;
pub mod env;
pub mod expr;
pub mod load;
pub mod mapping;
pub mod rules;
pub mod types;
