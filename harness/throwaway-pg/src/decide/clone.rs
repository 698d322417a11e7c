//! How `CREATE DATABASE ... TEMPLATE` copies a template on this server: `FILE_COPY`, `WAL_LOG`,
//! or no `STRATEGY` clause on a server older than PostgreSQL 15, which has none.
//!
//! `FILE_COPY` copies the template's files and forces a checkpoint before and after. With fsync
//! off (the throwaway servers: `local` and `container`) a checkpoint writes to the page cache
//! only and the copy is the fastest there is. With fsync on (a server given by URL, a CI service
//! container) every checkpoint waits for the disk, and parallel tests' clones queue behind each
//! other's checkpoints; `WAL_LOG` copies block by block through the WAL and forces none.

use crate::config::CloneStrategy;

/// The first server version (`server_version_num`) with `CREATE DATABASE ... STRATEGY`.
pub(crate) const STRATEGY_SINCE: i32 = 150_000;

/// The strategy for a server of `version` whose `fsync` setting is `fsync`: the one `wanted`
/// names (`HARNESS_CLONE_STRATEGY`), else `FILE_COPY` with fsync off and `WAL_LOG` with fsync on;
/// `None` (no clause) before PostgreSQL 15, whatever is wanted.
pub(crate) fn strategy(
    wanted: Option<CloneStrategy>,
    version: i32,
    fsync: bool,
) -> Option<CloneStrategy> {
    if version < STRATEGY_SINCE {
        return None;
    }
    Some(wanted.unwrap_or(if fsync {
        CloneStrategy::WalLog
    } else {
        CloneStrategy::FileCopy
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use CloneStrategy::{FileCopy, WalLog};

    #[test]
    fn fsync_decides_unless_a_strategy_is_wanted() {
        for (wanted, fsync, chosen) in [
            (None, false, FileCopy),
            (None, true, WalLog),
            (Some(FileCopy), true, FileCopy),
            (Some(WalLog), false, WalLog),
            (Some(FileCopy), false, FileCopy),
            (Some(WalLog), true, WalLog),
        ] {
            assert_eq!(
                strategy(wanted, 150_000, fsync),
                Some(chosen),
                "{wanted:?} fsync={fsync}"
            );
        }
    }

    #[test]
    fn a_server_older_than_15_gets_no_clause_even_when_one_is_wanted() {
        for wanted in [None, Some(FileCopy), Some(WalLog)] {
            for fsync in [false, true] {
                assert_eq!(strategy(wanted, 149_999, fsync), None);
                assert_eq!(strategy(wanted, 140_011, fsync), None);
            }
        }
        assert!(strategy(None, 150_000, false).is_some());
        assert!(strategy(None, 170_002, true).is_some());
    }
}
