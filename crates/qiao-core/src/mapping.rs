//! mapping (being written)
