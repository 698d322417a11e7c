//! Work spread over worker threads, results handed back in the items' order: what lets
//! `scenario run --jobs N`, `--driver` and `pact export` play scenarios side by side and still
//! print them as one after another would.
//!
//! Each worker has a current-thread runtime of its own, so a scenario's futures (its test
//! environment, its product mocks) never need to move between threads; the database broker
//! serves every runtime.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use tokio::runtime::Runtime;

/// `--jobs` when it is not given: the cores this process may use, as
/// [`std::thread::available_parallelism`] says (1 when it cannot tell).
pub(crate) fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// Runs `work` on every item, at most `jobs` at a time, each worker thread with its own runtime.
/// `each` sees every result on the calling thread in the items' order, as soon as it and every
/// one before it are done (so printing there keeps a run's order and each item's text whole).
/// Returns the results in the items' order.
///
/// # Errors
/// The operating system refused a worker's runtime (out of threads or file descriptors).
pub(crate) fn ordered<T, R>(
    items: &[T],
    jobs: usize,
    work: impl Fn(&Runtime, &T) -> R + Sync,
    mut each: impl FnMut(&R),
) -> anyhow::Result<Vec<R>>
where
    T: Sync,
    R: Send,
{
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel::<(usize, R)>();
    let workers = jobs.clamp(1, items.len().max(1));
    std::thread::scope(|scope| {
        let mut started = Vec::with_capacity(workers);
        for _ in 0..workers {
            let tx = tx.clone();
            let (next, work) = (&next, &work);
            started.push(scope.spawn(move || -> anyhow::Result<()> {
                let runtime = crate::runtime()?;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else {
                        return Ok(());
                    };
                    if tx.send((i, work(&runtime, item))).is_err() {
                        return Ok(());
                    }
                }
            }));
        }
        drop(tx);
        let mut waiting = BTreeMap::new();
        let mut done = Vec::with_capacity(items.len());
        for (i, result) in rx {
            waiting.insert(i, result);
            while let Some(result) = waiting.remove(&done.len()) {
                each(&result);
                done.push(result);
            }
        }
        for worker in started {
            worker
                .join()
                .map_err(|_| anyhow::anyhow!("a worker thread panicked"))??;
        }
        anyhow::ensure!(
            done.len() == items.len(),
            "{} of {} items were not played",
            items.len() - done.len(),
            items.len()
        );
        Ok(done)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn results_come_back_in_the_items_order_whatever_finishes_first() {
        let items: Vec<u64> = (0..12).collect();
        let mut seen = Vec::new();
        // Early items sleep longest, so they finish last.
        let results = ordered(
            &items,
            4,
            |_, &i| {
                std::thread::sleep(Duration::from_millis((12 - i) * 3));
                i * 10
            },
            |&r| seen.push(r),
        )
        .unwrap();
        let expected: Vec<u64> = items.iter().map(|i| i * 10).collect();
        assert_eq!(results, expected);
        assert_eq!(seen, expected, "each sees them in order too");
    }

    #[test]
    fn one_job_and_no_items_work() {
        assert_eq!(
            ordered(&[1, 2, 3], 1, |_, &i| i + 1, |_| {}).unwrap(),
            [2, 3, 4]
        );
        assert!(
            ordered(&[] as &[u8], 8, |_, &i| i, |_| {})
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn items_run_at_once_up_to_jobs() {
        let running = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        ordered(
            &[0; 8],
            3,
            |_, _| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                running.fetch_sub(1, Ordering::SeqCst);
            },
            |_| {},
        )
        .unwrap();
        assert_eq!(most.load(Ordering::SeqCst), 3);
    }
}
