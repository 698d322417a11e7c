//! The connection budget: the connections a server can give tests, shared by every process that
//! uses it.
//!
//! The server's `max_connections`, less its reserved connections and a spare for people and
//! tools, is the budget. Each connection of it is a `SLOT(i)` advisory lock: a test database holds
//! one per connection of its pools (`HARNESS_POOL_SIZE` for the harness's pool, plus what the test
//! declares for its own with `app_pool`), and a process one per connection of its own (the control
//! and background connections). A process that finds too few free waits, up to two minutes.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::PgConnection;

use super::EnvError;
use super::admin::LOCK_SLOT;

/// Connections left out of the budget: for `psql`, database tools and other clients.
const SPARE: i32 = 10;

/// How long a test waits for room.
const WAIT: Duration = Duration::from_secs(120);

/// The budget of one server, as this process sees it.
#[derive(Debug)]
pub(crate) struct Budget {
    /// Connections tests may hold on the server, all processes together.
    size: u32,
    /// The slots this process holds.
    held: Mutex<HashSet<u32>>,
}

impl Budget {
    /// The budget of a server with these settings.
    pub(crate) fn new(max_connections: i32, reserved: i32) -> Budget {
        Budget {
            size: u32::try_from(max_connections - reserved - SPARE)
                .unwrap_or(0)
                .max(1),
            held: Mutex::new(HashSet::new()),
        }
    }

    /// Takes `wanted` slots, waiting up to two minutes for them to be free at once. Slots are
    /// taken all or none (a process never sits on part of what it needs while waiting for the
    /// rest, so two waiting processes cannot block each other).
    pub(crate) async fn take(
        &self,
        control: &tokio::sync::Mutex<PgConnection>,
        wanted: u32,
    ) -> Result<Vec<u32>, EnvError> {
        let refused = |seconds| EnvError::Budget {
            seconds,
            wanted,
            budget: self.size,
        };
        if wanted > self.size {
            return Err(refused(0));
        }
        let start = Instant::now();
        loop {
            let held: Vec<i32> = self.held().iter().map(|&s| s as i32).collect();
            let offset = rand::random::<u32>() % self.size;
            // `offset 0` keeps the planner from evaluating the lock call before the filter; the
            // limit stops the scan, so exactly the slots returned are locked.
            let taken: Vec<i32> = {
                let mut control = control.lock().await;
                sqlx::query_scalar(
                    "select coalesce(array_agg(s), '{}') from ( \
                       select s from (select ((g + $3) % $2)::int as s \
                                      from generate_series(0, $2 - 1) g \
                                      where not ((g + $3) % $2)::int = any($4) offset 0) t \
                       where pg_try_advisory_lock($1, t.s) limit $5) taken",
                )
                .bind(LOCK_SLOT)
                .bind(self.size as i32)
                .bind(offset as i32)
                .bind(&held)
                .bind(i64::from(wanted))
                .fetch_one(&mut *control)
                .await
                .map_err(EnvError::db("take connection slots"))?
            };
            let taken: Vec<u32> = taken.into_iter().map(|s| s as u32).collect();
            if taken.len() == wanted as usize {
                self.held().extend(taken.iter().copied());
                return Ok(taken);
            }
            unlock(control, &taken).await;
            if start.elapsed() > WAIT {
                return Err(refused(WAIT.as_secs()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Frees slots this process took.
    pub(crate) async fn give_back(
        &self,
        control: &tokio::sync::Mutex<PgConnection>,
        slots: &[u32],
    ) {
        unlock(control, slots).await;
        let mut held = self.held();
        for slot in slots {
            held.remove(slot);
        }
    }

    /// The slots this process holds, for a control connection opened anew to take again.
    pub(crate) fn held_slots(&self) -> Vec<u32> {
        self.held().iter().copied().collect()
    }

    /// The slots this process holds. A panic elsewhere cannot leave the set half-changed (each
    /// use is one insert, remove or read), so a poisoned lock is still good to use.
    fn held(&self) -> std::sync::MutexGuard<'_, HashSet<u32>> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Releases the slot locks `slots` on the control connection. A failure leaves them to the end
/// of the process, whose connection's locks the server releases.
async fn unlock(control: &tokio::sync::Mutex<PgConnection>, slots: &[u32]) {
    if slots.is_empty() {
        return;
    }
    let slots: Vec<i32> = slots.iter().map(|&s| s as i32).collect();
    let mut control = control.lock().await;
    let _ = sqlx::query("select pg_advisory_unlock($1, s) from unnest($2::int[]) s")
        .bind(LOCK_SLOT)
        .bind(&slots)
        .execute(&mut *control)
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_leaves_the_reserved_connections_and_a_spare() {
        assert_eq!(Budget::new(200, 3).size, 187);
        assert_eq!(Budget::new(5, 3).size, 1, "never empty");
    }
}
