//! Keep or drop a failed test's database: the keep cap (`HARNESS_KEEP_FAILED`) and the room a
//! local server's state folder must keep free, which also gates a new clone and a warm database.

/// Room kept free in a local server's state folder beyond the databases to come: for the WAL and
/// the temporary files of the tests running meanwhile. A server that cannot write its WAL
/// crashes.
pub(crate) const ROOM_RESERVE: u64 = 4 << 20;

/// Whether a folder with `free` bytes has room for `databases` more databases of `size` bytes
/// each, and [`ROOM_RESERVE`] besides. A failed test's database is kept only with room for one
/// more like it; a test's clone waits for room for one; a warm database is made only with room
/// for itself and the next test's clone.
pub(crate) fn has_room(free: u64, size: u64, databases: u64) -> bool {
    free >= size.saturating_mul(databases).saturating_add(ROOM_RESERVE)
}

/// Whether one more database can be kept for a failed test when the server keeps `kept` already
/// and the cap is `cap` (0 keeps none).
pub(crate) fn within_cap(kept: u32, cap: u32) -> bool {
    kept < cap
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;

    #[test]
    fn room_is_the_databases_and_the_reserve_to_the_byte() {
        assert!(has_room(9 * MB + ROOM_RESERVE, 9 * MB, 1));
        assert!(!has_room(9 * MB + ROOM_RESERVE - 1, 9 * MB, 1));
        assert!(has_room(18 * MB + ROOM_RESERVE, 9 * MB, 2));
        assert!(!has_room(18 * MB + ROOM_RESERVE - 1, 9 * MB, 2));
        assert!(has_room(ROOM_RESERVE, 9 * MB, 0), "the reserve alone");
        assert!(!has_room(ROOM_RESERVE - 1, 0, 1));
        assert!(
            !has_room(u64::MAX - 1, u64::MAX / 2 + 1, 2),
            "sizes past u64 are no room, not a wrap"
        );
    }

    #[test]
    fn the_cap_keeps_up_to_its_count_and_zero_keeps_none() {
        assert!(within_cap(0, 3));
        assert!(within_cap(2, 3));
        assert!(!within_cap(3, 3));
        assert!(!within_cap(4, 3));
        assert!(!within_cap(0, 0));
    }
}
