//! env (being written)
