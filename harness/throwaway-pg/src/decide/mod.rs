//! The throwaway database's decisions, as pure functions of what the I/O around them found: keep
//! or drop a failed test's database ([`keep`]), what the reaper drops ([`reap`]), which
//! containers a state folder's reaper removes ([`containers`]), which backend `auto` picks
//! ([`backend`]), how a template is cloned ([`clone`]). Nothing here touches a server, a file or
//! the environment, so each rule is tested at its boundaries without one (and `cargo xtask
//! mutants` mutates this folder alone, with these tests).

pub(crate) mod backend;
pub(crate) mod clone;
pub(crate) mod containers;
pub(crate) mod keep;
pub(crate) mod reap;
