//! Keep or drop a failed test's database: the keep cap (`HARNESS_KEEP_FAILED`) and the room a
//! local server's state folder must keep free, which also gates a new clone and a warm database;
//! and whose a kept database is, read from the comment that marks it.

use crate::admin::KEPT_COMMENT;

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

/// The comment that marks a database kept for `reason` by the operating-system user `user`
/// (`name (uid N)`, or `uid N`): `billing-harness: kept by alice (uid 1000): failed test t`.
pub(crate) fn kept_comment(user: &str, reason: &str) -> String {
    format!("{KEPT_COMMENT} by {user}: {reason}")
}

/// What the comment of a kept database says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeptMark {
    /// The user who kept it, as [`kept_comment`] wrote it; `None` from a harness that did not
    /// record it.
    pub(crate) user: Option<String>,
    /// That user's uid.
    pub(crate) uid: Option<u32>,
    /// Why it was kept.
    pub(crate) reason: String,
}

impl KeptMark {
    /// Reads the comment of a kept database; `None` for any other comment.
    pub(crate) fn parse(comment: &str) -> Option<KeptMark> {
        let rest = comment.strip_prefix(KEPT_COMMENT)?;
        if let Some((user, reason)) = rest.strip_prefix(" by ").and_then(|r| r.split_once(": ")) {
            // Neither a user name nor `uid N` holds a `:` (it separates /etc/passwd's fields).
            let uid = user
                .strip_suffix(')')
                .and_then(|u| u.rsplit_once("(uid "))
                .map(|(_, uid)| uid)
                .or_else(|| user.strip_prefix("uid "))
                .and_then(|uid| uid.parse().ok());
            return Some(KeptMark {
                user: Some(user.to_owned()),
                uid,
                reason: reason.to_owned(),
            });
        }
        Some(KeptMark {
            user: None,
            uid: None,
            reason: rest.trim_start_matches(':').trim().to_owned(),
        })
    }
}

/// Whether `db clean` (or `drop_kept`) run by the user `uid` drops a kept database marked so:
/// its own only, unless `all_users`; one whose user is unknown (kept by an older harness) only
/// with `all_users`, as it may be anyone's.
pub(crate) fn drops_kept(mark: &KeptMark, uid: u32, all_users: bool) -> bool {
    all_users || mark.uid == Some(uid)
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

    #[test]
    fn a_kept_mark_names_its_user_and_reason() {
        let mark = |c: &str| KeptMark::parse(c).unwrap();
        let alice = mark(&kept_comment("alice (uid 1000)", "failed test t: x"));
        assert_eq!(
            alice,
            KeptMark {
                user: Some("alice (uid 1000)".into()),
                uid: Some(1000),
                reason: "failed test t: x".into()
            }
        );
        assert_eq!(mark(&kept_comment("uid 7", "r")).uid, Some(7));
        let old = mark("billing-harness: kept: failed test t");
        assert_eq!((old.uid, old.reason.as_str()), (None, "failed test t"));
        assert_eq!(KeptMark::parse("billing-harness template used=1"), None);
    }

    #[test]
    fn db_clean_drops_its_users_kept_databases_and_all_with_all_users() {
        let of = |uid| KeptMark {
            user: None,
            uid,
            reason: String::new(),
        };
        assert!(drops_kept(&of(Some(1000)), 1000, false));
        assert!(!drops_kept(&of(Some(1001)), 1000, false));
        assert!(
            !drops_kept(&of(None), 1000, false),
            "unknown: maybe another's"
        );
        assert!(drops_kept(&of(Some(1001)), 1000, true));
        assert!(drops_kept(&of(None), 1000, true));
    }
}
