//! What the reaper drops, decided from the list of the harness's databases and the server's
//! clock alone: the rules of `reaper.rs` (which then checks each one's lock and drops it).

use std::collections::BTreeMap;

use crate::admin::{KEPT_COMMENT, Kind};
use crate::template::Stamp;

/// An unused template is dropped when no process began to use it for this long (seconds)...
pub(crate) const IDLE: i64 = 3600;
/// ... or for this long when a newer template of its lineage exists.
pub(crate) const SUPERSEDED: i64 = 60;

/// A database of the harness as the reaper sees it.
#[derive(Debug, Clone)]
pub(crate) struct Listed {
    pub(crate) name: String,
    pub(crate) is_template: bool,
    pub(crate) comment: String,
}

/// One thing to drop, if its lock says it is free.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reap {
    /// A clone of a process that may be gone: dropped if `PROCESS(token)` is free.
    Orphan { name: String, token: u32 },
    /// A template whose build may have crashed: dropped if nobody holds `SETUP` and it is still
    /// not sealed.
    HalfBuilt { name: String },
    /// A stale template and its warm databases: dropped if `TEMPLATE(hash)` is free.
    Stale {
        name: String,
        hash: String,
        warm: Vec<String>,
    },
    /// Warm databases whose template is gone: dropped if `TEMPLATE(hash)` is free.
    Stray { hash: String, warm: Vec<String> },
}

/// What to reap among `listed`, for the process of `own_token`, at the server's `now` (seconds).
pub(crate) fn plan(listed: &[Listed], own_token: u32, now: i64) -> Vec<Reap> {
    let mut templates: BTreeMap<String, (&Listed, Stamp)> = BTreeMap::new();
    let mut warm: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut reaps = Vec::new();
    for db in listed {
        match Kind::of(&db.name) {
            Some(Kind::Clone { token, .. })
                if token != own_token && !db.comment.starts_with(KEPT_COMMENT) =>
            {
                reaps.push(Reap::Orphan {
                    name: db.name.clone(),
                    token,
                });
            }
            Some(Kind::Template { .. }) if !db.is_template => reaps.push(Reap::HalfBuilt {
                name: db.name.clone(),
            }),
            Some(Kind::Template { hash }) => {
                templates.insert(hash, (db, Stamp::parse(&db.comment)));
            }
            Some(Kind::Warm { hash }) => warm.entry(hash).or_default().push(db.name.clone()),
            Some(Kind::Clone { .. }) | None => {}
        }
    }
    for (hash, (db, stamp)) in &templates {
        let idle = now - stamp.used;
        let superseded = !stamp.lineage.is_empty()
            && templates
                .values()
                .any(|(_, other)| other.lineage == stamp.lineage && other.used > stamp.used);
        if idle > IDLE || (superseded && idle > SUPERSEDED) {
            reaps.push(Reap::Stale {
                name: db.name.clone(),
                hash: hash.clone(),
                warm: warm.remove(hash).unwrap_or_default(),
            });
        } else {
            warm.remove(hash);
        }
    }
    reaps.extend(
        warm.into_iter()
            .map(|(hash, warm)| Reap::Stray { hash, warm }),
    );
    reaps
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: u32 = 0x2a;
    const NOW: i64 = 1_780_000_000;

    fn db(name: &str, is_template: bool, comment: &str) -> Listed {
        Listed {
            name: name.into(),
            is_template,
            comment: comment.into(),
        }
    }

    fn template(hash: &str, used_ago: i64, lineage: &str) -> Listed {
        db(
            &format!("bh_tpl_{hash}"),
            true,
            &format!(
                "billing-harness template used={} lineage={lineage}",
                NOW - used_ago
            ),
        )
    }

    fn names(reaps: &[Reap]) -> Vec<String> {
        reaps
            .iter()
            .map(|r| match r {
                Reap::Orphan { name, .. } | Reap::HalfBuilt { name } => name.clone(),
                Reap::Stale { name, warm, .. } => format!("{name} +{}", warm.len()),
                Reap::Stray { hash, warm } => format!("stray {hash} +{}", warm.len()),
            })
            .collect()
    }

    #[test]
    fn clones_of_other_processes_are_candidates_unless_kept() {
        let listed = [
            db("bh_aaaaaaaaaaaa_0000002a_1", false, ""),
            db("bh_aaaaaaaaaaaa_0000002b_1", false, ""),
            db(
                "bh_aaaaaaaaaaaa_0000002c_1",
                false,
                "billing-harness: kept: failed test t",
            ),
            db("postgres_like_bh", false, ""),
        ];
        assert_eq!(
            plan(&listed, OWN, NOW),
            vec![Reap::Orphan {
                name: "bh_aaaaaaaaaaaa_0000002b_1".into(),
                token: 0x2b
            }]
        );
    }

    /// A template survives the gaps between the processes of a run: it goes only once stale.
    #[test]
    fn templates_go_when_idle_for_an_hour_or_superseded_for_a_minute() {
        let cases: [(&[Listed], &[&str]); 9] = [
            // Used a second ago, the only one of its lineage: stays.
            (&[template("aaaaaaaaaaaa", 1, "1 init")], &[]),
            // Unused for exactly the hour: stays (the hour must have passed).
            (&[template("aaaaaaaaaaaa", IDLE, "1 init")], &[]),
            // Not used for an hour: goes.
            (
                &[template("aaaaaaaaaaaa", IDLE + 1, "1 init")],
                &["bh_tpl_aaaaaaaaaaaa +0"],
            ),
            // Superseded (a newer one of its lineage) but used 30 s ago: stays, a concurrent run
            // may be on the older migrations.
            (
                &[
                    template("aaaaaaaaaaaa", 30, "1 init"),
                    template("bbbbbbbbbbbb", 1, "1 init"),
                ],
                &[],
            ),
            // Superseded and idle for exactly the minute: stays; a second more: goes.
            (
                &[
                    template("aaaaaaaaaaaa", SUPERSEDED, "1 init"),
                    template("bbbbbbbbbbbb", 1, "1 init"),
                ],
                &[],
            ),
            (
                &[
                    template("aaaaaaaaaaaa", SUPERSEDED + 1, "1 init"),
                    template("bbbbbbbbbbbb", 1, "1 init"),
                ],
                &["bh_tpl_aaaaaaaaaaaa +0"],
            ),
            // Superseded and idle for two minutes: goes, the newer one stays.
            (
                &[
                    template("aaaaaaaaaaaa", 120, "1 init"),
                    template("bbbbbbbbbbbb", 1, "1 init"),
                ],
                &["bh_tpl_aaaaaaaaaaaa +0"],
            ),
            // Another lineage does not supersede.
            (
                &[
                    template("aaaaaaaaaaaa", 120, "1 init"),
                    template("bbbbbbbbbbbb", 1, "1 other"),
                ],
                &[],
            ),
            // An older harness's template (no stamp) counts as never used.
            (
                &[db("bh_tpl_cccccccccccc", true, "")],
                &["bh_tpl_cccccccccccc +0"],
            ),
        ];
        for (listed, expected) in cases {
            assert_eq!(names(&plan(listed, OWN, NOW)), expected, "{listed:?}");
        }
    }

    #[test]
    fn warm_databases_go_with_their_template_or_when_it_is_gone() {
        let listed = [
            template("aaaaaaaaaaaa", IDLE + 1, "1 init"),
            db("bh_pool_aaaaaaaaaaaa_0000002a_1", false, ""),
            db("bh_pool_aaaaaaaaaaaa_0000002b_2", false, ""),
            template("bbbbbbbbbbbb", 1, "1 other"),
            db("bh_pool_bbbbbbbbbbbb_0000002a_1", false, ""),
            db("bh_pool_cccccccccccc_0000002a_1", false, ""),
            db("bh_tpl_dddddddddddd", false, ""),
        ];
        assert_eq!(
            names(&plan(&listed, OWN, NOW)),
            vec![
                "bh_tpl_dddddddddddd",
                "bh_tpl_aaaaaaaaaaaa +2",
                "stray cccccccccccc +1"
            ]
        );
    }
}
