//! The integration suite lives in `it/`; this crate has no library code of its own.
