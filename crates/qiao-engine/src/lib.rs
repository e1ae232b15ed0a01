//! qiao-engine
