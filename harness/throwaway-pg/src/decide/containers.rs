//! Which containers a state folder's reaper removes, decided from what the engine lists and the
//! age of each one's heartbeat alone: the rules of `container.rs` (which then removes them).
//!
//! Every container the harness starts carries the random id of its state folder's container
//! instance (`billing-harness.instance`), and the one that owns it renews a heartbeat in that
//! folder while it lives. A reaper removes only containers of its own instance whose heartbeat is
//! missing or older than [`GRACE`]: never one of another instance (another state folder, another
//! CI job on the same engine), never one without the label, whatever process ids say.

/// A container lives while its heartbeat is at most this old (seconds); its owner renews it
/// every second.
pub(crate) const GRACE: i64 = 30;

/// A container of the harness as the reaper sees it.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    /// Its id.
    pub(crate) id: String,
    /// Its `billing-harness.instance` label, empty when it has none.
    pub(crate) instance: String,
    /// Seconds since its heartbeat was renewed; `None` when it has none.
    pub(crate) heartbeat_age: Option<i64>,
}

/// The ids among `seen` that the reaper of instance `own` removes: its own containers whose
/// heartbeat is missing or older than `grace` seconds.
pub(crate) fn doomed(seen: &[Seen], own: &str, grace: i64) -> Vec<String> {
    seen.iter()
        .filter(|c| !own.is_empty() && c.instance == own)
        .filter(|c| c.heartbeat_age.is_none_or(|age| age > grace))
        .map(|c| c.id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: &str = "0123456789abcdef0123456789abcdef";
    const OTHER: &str = "fedcba9876543210fedcba9876543210";

    fn seen(id: &str, instance: &str, heartbeat_age: Option<i64>) -> Seen {
        Seen {
            id: id.into(),
            instance: instance.into(),
            heartbeat_age,
        }
    }

    #[test]
    fn an_own_container_lives_while_its_heartbeat_is_within_the_grace() {
        let cases = [
            (Some(0), false),
            (Some(GRACE - 1), false),
            // Exactly the grace: still alive (the grace must have passed).
            (Some(GRACE), false),
            (Some(GRACE + 1), true),
            (Some(10 * GRACE), true),
            // Renewed "in the future" (a clock set back): alive.
            (Some(-5), false),
            // No heartbeat at all: its owner is gone.
            (None, true),
        ];
        for (age, reaped) in cases {
            let got = doomed(&[seen("aaaa", OWN, age)], OWN, GRACE);
            assert_eq!(!got.is_empty(), reaped, "heartbeat age {age:?}");
        }
    }

    #[test]
    fn another_instance_or_no_label_is_never_reaped() {
        let listed = [
            seen("other-stale", OTHER, Some(GRACE + 1)),
            seen("other-none", OTHER, None),
            seen("unlabelled", "", None),
            seen("prefix", &OWN[..16], None),
            seen("ours", OWN, None),
        ];
        assert_eq!(doomed(&listed, OWN, GRACE), ["ours"]);
        // A reaper that knows no instance of its own reaps nothing, not the unlabelled ones.
        assert!(doomed(&listed, "", GRACE).is_empty());
    }
}
