//! `--partition count:K/N` and `hash:K/N`, spelled as cargo-nextest spells them: which scenarios
//! the K-th of N CI machines plays, so that N machines together play each one exactly once.

use std::fmt;
use std::str::FromStr;

/// One shard of a run: `count:K/N` takes every N-th scenario of the sorted list, starting at the
/// K-th; `hash:K/N` takes those whose name hashes to K (a fixed FNV-1a, spread, the same on every
/// machine and every run), so that adding a scenario moves no other one between shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Partition {
    by: By,
    /// K, from 1.
    shard: u64,
    /// N, at least 1.
    total: u64,
}

/// How a [`Partition`] assigns scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum By {
    Count,
    Hash,
}

impl FromStr for Partition {
    type Err = String;

    fn from_str(text: &str) -> Result<Partition, String> {
        let usage = || format!("{text:?} is not count:K/N or hash:K/N (1 <= K <= N)");
        let (by, rest) = match text.split_once(':') {
            Some(("count", rest)) => (By::Count, rest),
            Some(("hash", rest)) => (By::Hash, rest),
            _ => return Err(usage()),
        };
        let number = |n: &str| {
            (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                .then(|| n.parse::<u64>().ok())
                .flatten()
        };
        let (shard, total) = rest
            .split_once('/')
            .and_then(|(k, n)| Some((number(k)?, number(n)?)))
            .ok_or_else(usage)?;
        if shard == 0 || shard > total {
            return Err(format!(
                "{text:?}: the shard K must be 1 to N ({total}), got {shard}"
            ));
        }
        Ok(Partition { by, shard, total })
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let by = match self.by {
            By::Count => "count",
            By::Hash => "hash",
        };
        write!(f, "{by}:{}/{}", self.shard, self.total)
    }
}

impl Partition {
    /// Whether this shard plays the scenario named `name`, the `index`-th (from 0) of the sorted
    /// list.
    pub(crate) fn takes(&self, index: usize, name: &str) -> bool {
        let bucket = match self.by {
            By::Count => index as u64 % self.total,
            By::Hash => spread(fnv1a(name.as_bytes())) % self.total,
        };
        bucket == self.shard - 1
    }

    /// The items of `sorted` this shard plays, named by `name`, in their order.
    pub(crate) fn select<T>(&self, sorted: Vec<T>, name: impl Fn(&T) -> String) -> Vec<T> {
        sorted
            .into_iter()
            .enumerate()
            .filter(|(i, item)| self.takes(*i, &name(item)))
            .map(|(_, item)| item)
            .collect()
    }
}

/// The high half of `hash` times 2^64 over the golden ratio (Fibonacci hashing): every bit of
/// `hash` moves the result. FNV-1a's low bits alone are poor: its lowest is the parity of the
/// names' bytes, so `hash:K/2` would put every name of one parity on one shard.
fn spread(hash: u64) -> u64 {
    hash.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32
}

/// 64-bit FNV-1a: fixed constants, unlike the standard library's randomly keyed hasher, so a name
/// lands in the same shard on every machine.
fn fnv1a(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("scenario-{i:02}")).collect()
    }

    /// Every shard of `by:K/N` for K in 1..=N: together they hold each name exactly once.
    fn check_covers(by: &str, total: u64, all: &[String]) {
        let mut seen: Vec<String> = Vec::new();
        for k in 1..=total {
            let p: Partition = format!("{by}:{k}/{total}").parse().unwrap();
            seen.extend(p.select(all.to_vec(), Clone::clone));
        }
        seen.sort();
        assert_eq!(seen, all, "{by}:K/{total}");
    }

    #[test]
    fn the_shards_together_take_every_scenario_exactly_once() {
        let all = names(47);
        for by in ["count", "hash"] {
            for total in [1, 2, 3, 4, 7, 50] {
                check_covers(by, total, &all);
            }
        }
    }

    #[test]
    fn count_takes_every_nth_from_the_kth() {
        let p: Partition = "count:2/3".parse().unwrap();
        let taken = p.select(names(8), Clone::clone);
        assert_eq!(taken, ["scenario-01", "scenario-04", "scenario-07"]);
    }

    #[test]
    fn hash_is_fixed_fnv1a_and_ignores_the_position() {
        // The published FNV-1a test vectors: the hash is the same on every machine.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
        let p: Partition = "hash:1/2".parse().unwrap();
        let name = "sync-timeout";
        assert_eq!(p.takes(0, name), p.takes(9, name));
        assert_eq!(
            p.takes(0, name),
            spread(fnv1a(name.as_bytes())).is_multiple_of(2)
        );
    }

    #[test]
    fn hash_shards_are_even_for_names_of_one_parity() {
        // Each name's bytes have the same parity: FNV-1a's lowest bit alone is the same for all.
        let all: Vec<String> = "acegikmoqsuw"
            .chars()
            .map(|c| format!("sync-{c}"))
            .collect();
        for total in [2, 4] {
            let sizes: Vec<usize> = (1..=total)
                .map(|k| {
                    let p: Partition = format!("hash:{k}/{total}").parse().unwrap();
                    p.select(all.clone(), Clone::clone).len()
                })
                .collect();
            assert_eq!(sizes, vec![12 / total; total], "hash:K/{total}");
        }
    }

    #[test]
    fn bad_values_are_refused_naming_them() {
        for bad in [
            "count:0/3",
            "count:4/3",
            "count:1/0",
            "count:1",
            "count:a/3",
            "count:-1/3",
            "count:+1/3",
            "slice:1/3",
            "1/3",
            "hash:",
            "",
        ] {
            let err = bad.parse::<Partition>().unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
        }
        for good in ["count:1/1", "hash:3/3", "count:10/12"] {
            assert_eq!(good.parse::<Partition>().unwrap().to_string(), good);
        }
    }
}
