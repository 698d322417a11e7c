//! `ProductMock`: a stateful fake product that speaks the sync API: it applies each idempotency
//! key at most once, keeps a journal of every request, checks requests in strict mode, puts
//! faults on writes, goes down for outages of the platform's clock, and can drift from the
//! platform on purpose.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::api::{Entity, ProductState, SubscriptionDoc, TenantDoc, TenantState, UserDoc, Write};
use super::control::{Control, Remote};
use super::fault::{Fault, FaultPlan, Outage};

/// One request the mock received, and what it did with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductRequest {
    /// Its order of arrival, from 1.
    pub seq: u64,
    /// `PUT`, `DELETE` or `GET`.
    pub method: String,
    /// The path as sent.
    pub path: String,
    /// The path with its id as a placeholder (`/v1/tenants/{tenant}`), or the path itself.
    pub route: String,
    /// The `Idempotency-Key` header.
    pub idempotency_key: Option<String>,
    /// When the platform sent it, on its clock (the `Sync-Sent-At` header), if it said.
    #[serde(default)]
    pub sent_at: Option<DateTime<Utc>>,
    /// The JSON body, if any.
    pub body: Option<Value>,
    /// The fault put on it (an outage's included).
    pub fault: Option<Fault>,
    /// The status answered; `None` when no answer reached the client (timeout, reset).
    pub status: Option<u16>,
    /// Whether it changed the product's state.
    pub applied: bool,
    /// A repeated idempotency key: answered as the first time, not applied again.
    pub replay: bool,
}

/// How the server must answer a request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Reply {
    /// This status and JSON body, after this delay.
    Answer {
        status: u16,
        body: Value,
        after: Duration,
    },
    /// Hold the request this long, then answer `504` (the client gave up before).
    Hold(Duration),
    /// Reset the connection without an answer.
    Reset,
}

#[derive(Debug, Default)]
struct State {
    users: BTreeMap<i64, UserDoc>,
    tenants: BTreeMap<i64, TenantDoc>,
    /// By tenant id.
    subscriptions: BTreeMap<i64, SubscriptionDoc>,
    /// Times each idempotency key was applied, and the status first answered.
    keys: HashMap<String, (u32, u16)>,
    /// The body first sent with each key: a key sent again with another body is a violation.
    bodies: HashMap<String, Option<Value>>,
    journal: Vec<ProductRequest>,
    faults: FaultPlan,
    faults_applied: u64,
    /// Writes for these tenants are answered with this status, until cleared.
    rejected: BTreeMap<i64, u16>,
    violations: Vec<String>,
    strict: bool,
}

/// A fake product: hold it in an `Arc`, serve it with [`super::ProductServer`].
///
/// A mock is either held in this process ([`ProductMock::new`]) or a handle on a mock that a
/// [`super::ProductHost`] serves elsewhere, a container say ([`ProductMock::remote`]): every
/// method below does the same on both, the remote one through the host's control API.
#[derive(Debug)]
pub struct ProductMock {
    key: String,
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Local(Box<Local>),
    Remote(Remote),
}

/// A mock held in this process.
#[derive(Debug)]
struct Local {
    delay: Duration,
    hold: Mutex<Duration>,
    state: Mutex<State>,
}

impl Local {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ProductMock {
    /// A fault-free, lenient mock of the product `key`, held in this process.
    pub fn new(key: impl Into<String>) -> ProductMock {
        ProductMock {
            key: key.into(),
            inner: Inner::Local(Box::new(Local {
                delay: Duration::from_millis(5),
                hold: Mutex::new(Duration::from_secs(3)),
                state: Mutex::new(State::default()),
            })),
        }
    }

    /// A handle on the mock that a [`super::ProductHost`] serves at `url`
    /// (`http://HOST:PORT/ns/NAMESPACE`, the product's `sync_url`): each method is one blocking
    /// call to the host's control API under `url/_mock`.
    ///
    /// Call its methods from a thread that does not also serve the host: they block until the
    /// host answers (a container's host, or one on another runtime, is fine).
    ///
    /// # Panics
    /// The methods panic, naming the URL, when the host cannot be reached or answers with an
    /// error: the test cannot go on without its product.
    pub fn remote(key: impl Into<String>, url: impl Into<String>) -> ProductMock {
        ProductMock {
            key: key.into(),
            inner: Inner::Remote(Remote::new(url.into())),
        }
    }

    /// The URL of a remote mock's namespace; `None` for a mock held in this process.
    pub fn remote_url(&self) -> Option<&str> {
        match &self.inner {
            Inner::Local(_) => None,
            Inner::Remote(r) => Some(r.url()),
        }
    }

    /// The product's key in the catalog.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Strict mode: every request outside the API, without an idempotency key, with a body that
    /// does not parse, about a tenant the product does not know, or reusing a key with another
    /// body is a violation that fails `TestEnv::assert_converged` (billing-harness). Lenient mode (the
    /// default) answers such requests the same way (`4xx`) and records them, without failing.
    pub fn set_strict(&self, strict: bool) {
        match &self.inner {
            Inner::Local(l) => l.state().strict = strict,
            Inner::Remote(r) => r.call(&Control::SetStrict { strict }),
        }
    }

    /// Whether the mock is strict.
    pub fn is_strict(&self) -> bool {
        match &self.inner {
            Inner::Local(l) => l.state().strict,
            Inner::Remote(r) => r.call(&Control::IsStrict),
        }
    }

    /// How long a `timeout` fault holds a request: set it past the client's limit (the harness
    /// sets it from the dispatcher's timeout).
    pub fn set_hold(&self, hold: Duration) {
        match &self.inner {
            Inner::Local(l) => *l.hold.lock().unwrap_or_else(PoisonError::into_inner) = hold,
            Inner::Remote(r) => r.call(&Control::SetHold {
                millis: u64::try_from(hold.as_millis()).unwrap_or(u64::MAX),
            }),
        }
    }

    /// Puts `fault` on the next `times` writes, after the faults already scripted.
    pub fn fail_next(&self, fault: Fault, times: u32) {
        match &self.inner {
            Inner::Local(l) => l.state().faults.script(fault, times),
            Inner::Remote(r) => r.call(&Control::FailNext { fault, times }),
        }
    }

    /// Puts a fault drawn from [`Fault::ALL`] on each unscripted write with probability `rate`
    /// (0 to 1), from a stream seeded by `seed`.
    pub fn fault_rate(&self, rate: f64, seed: u64) {
        match &self.inner {
            Inner::Local(l) => l.state().faults.draw(rate, seed),
            Inner::Remote(r) => r.call(&Control::FaultRate { rate, seed }),
        }
    }

    /// Takes the product down for `outage`: every request the platform sends within its window
    /// of the platform's clock (writes and read-backs, by their `Sync-Sent-At`) fails with its
    /// fault, and nothing is applied; scripted and drawn faults wait until it is over. Outages
    /// add up.
    pub fn outage(&self, outage: Outage) {
        match &self.inner {
            Inner::Local(l) => l.state().faults.outage(outage),
            Inner::Remote(r) => r.call(&Control::Outage { outage }),
        }
    }

    /// Ends every fault: the scripted ones not used yet, the drawn ones and the outages (a
    /// rejected tenant stays rejected: [`ProductMock::accept_tenant`]).
    pub fn clear_faults(&self) {
        match &self.inner {
            Inner::Local(l) => l.state().faults.clear(),
            Inner::Remote(r) => r.call(&Control::ClearFaults),
        }
    }

    /// Answers every write about `tenant` (its tenant and subscription) with `status` until
    /// [`ProductMock::accept_tenant`]: a product that rejects one tenant's data, for poison rows.
    pub fn reject_tenant(&self, tenant: i64, status: u16) {
        match &self.inner {
            Inner::Local(l) => {
                l.state().rejected.insert(tenant, status);
            }
            Inner::Remote(r) => r.call(&Control::RejectTenant { tenant, status }),
        }
    }

    /// Stops rejecting `tenant`'s writes.
    pub fn accept_tenant(&self, tenant: i64) {
        match &self.inner {
            Inner::Local(l) => {
                l.state().rejected.remove(&tenant);
            }
            Inner::Remote(r) => r.call(&Control::AcceptTenant { tenant }),
        }
    }

    /// Changes the product's own copy of `tenant` behind the platform's back, as a product's
    /// operator might: the subscription's plan becomes `drifted` if it has one, else the tenant's
    /// name gets ` (drifted)`. Returns what changed, `None` when the product has no such tenant.
    pub fn drift(&self, tenant: i64) -> Option<String> {
        let l = match &self.inner {
            Inner::Local(l) => l,
            Inner::Remote(r) => return r.call(&Control::Drift { tenant }),
        };
        let mut s = l.state();
        if let Some(sub) = s.subscriptions.get_mut(&tenant) {
            let was = std::mem::replace(&mut sub.plan, "drifted".into());
            return Some(format!(
                "subscription of tenant {tenant}: plan {was} -> drifted"
            ));
        }
        let t = s.tenants.get_mut(&tenant)?;
        t.name.push_str(" (drifted)");
        Some(format!("tenant {tenant}: name -> {}", t.name))
    }

    /// Edits the product's state directly (any drift a test needs). On a remote mock the state
    /// is read, edited here and written back: make no writes to the product meanwhile.
    pub fn edit(&self, edit: impl FnOnce(&mut ProductState)) {
        match &self.inner {
            Inner::Local(l) => {
                let mut s = l.state();
                let mut state = snapshot(&s);
                edit(&mut state);
                replace(&mut s, state);
            }
            Inner::Remote(r) => {
                let mut state = self.read_state();
                edit(&mut state);
                r.call::<()>(&Control::ReplaceState { state });
            }
        }
    }

    /// What the product holds now.
    pub fn read_state(&self) -> ProductState {
        match &self.inner {
            Inner::Local(l) => snapshot(&l.state()),
            Inner::Remote(r) => r.call(&Control::ReadState),
        }
    }

    /// One tenant and its subscription, if the product has it.
    pub fn tenant(&self, tenant: i64) -> Option<TenantState> {
        let l = match &self.inner {
            Inner::Local(l) => l,
            Inner::Remote(r) => return r.call(&Control::Tenant { tenant }),
        };
        let s = l.state();
        Some(TenantState {
            tenant: s.tenants.get(&tenant)?.clone(),
            subscription: s.subscriptions.get(&tenant).cloned(),
        })
    }

    /// Every request received, in order.
    pub fn journal(&self) -> Vec<ProductRequest> {
        match &self.inner {
            Inner::Local(l) => l.state().journal.clone(),
            Inner::Remote(r) => r.call(&Control::Journal),
        }
    }

    /// How many requests were received.
    pub fn requests(&self) -> usize {
        match &self.inner {
            Inner::Local(l) => l.state().journal.len(),
            Inner::Remote(r) => r.call(&Control::Requests),
        }
    }

    /// How many faults were put on requests: writes, and read-backs in an outage.
    pub fn faults_applied(&self) -> u64 {
        match &self.inner {
            Inner::Local(l) => l.state().faults_applied,
            Inner::Remote(r) => r.call(&Control::FaultsApplied),
        }
    }

    /// What strict mode objects to, in order (recorded in lenient mode too).
    pub fn violations(&self) -> Vec<String> {
        match &self.inner {
            Inner::Local(l) => l.state().violations.clone(),
            Inner::Remote(r) => r.call(&Control::Violations),
        }
    }

    /// Idempotency keys applied more than once: always empty unless the mock is broken, which a
    /// test asserts rather than assumes.
    pub fn applied_twice(&self) -> Vec<String> {
        let l = match &self.inner {
            Inner::Local(l) => l,
            Inner::Remote(r) => return r.call(&Control::AppliedTwice),
        };
        let mut twice: Vec<String> = l
            .state()
            .keys
            .iter()
            .filter(|(_, (n, _))| *n > 1)
            .map(|(k, _)| k.clone())
            .collect();
        twice.sort();
        twice
    }

    /// Replaces everything the product holds with `state` (the control API's `replace_state`).
    pub(crate) fn replace_state(&self, state: ProductState) {
        match &self.inner {
            Inner::Local(l) => replace(&mut l.state(), state),
            Inner::Remote(r) => r.call(&Control::ReplaceState { state }),
        }
    }

    /// Handles one request of the sync API, sent at `sent_at` on the platform's clock: what the
    /// server answers. A remote mock is served by its host, not here: it answers `502`.
    pub(crate) fn handle(&self, request: Incoming<'_>) -> Reply {
        match &self.inner {
            Inner::Local(l) => l.handle(request),
            Inner::Remote(r) => Reply::Answer {
                status: 502,
                body: serde_json::json!({ "error": format!("this mock is served at {}", r.url()) }),
                after: Duration::ZERO,
            },
        }
    }
}

/// One request of the sync API as the server received it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Incoming<'a> {
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    /// The `Idempotency-Key` header.
    pub(crate) key: Option<&'a str>,
    /// The `Sync-Sent-At` header, when it parses.
    pub(crate) sent_at: Option<DateTime<Utc>>,
    pub(crate) body: &'a [u8],
}

impl Local {
    /// Handles one request: what the server answers.
    fn handle(&self, request: Incoming<'_>) -> Reply {
        let Incoming {
            method,
            path,
            key,
            sent_at,
            body,
        } = request;
        let mut s = self.state();
        let seq = s.journal.len() as u64 + 1;
        let body_json: Option<Value> = if body.is_empty() {
            None
        } else {
            serde_json::from_slice(body).ok()
        };
        let mut entry = ProductRequest {
            seq,
            method: method.to_owned(),
            path: path.to_owned(),
            route: path.to_owned(),
            idempotency_key: key.map(str::to_owned),
            sent_at,
            body: body_json.clone(),
            fault: None,
            status: None,
            applied: false,
            replay: false,
        };
        let hold = *self.hold.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(fault) = s.faults.down(sent_at) {
            // Down: nothing is looked at, checked or applied.
            if let Some(write) = Write::parse(method, path, body_json.clone()) {
                entry.route = write.route().to_owned();
            }
            return fail(&mut s, entry, fault, hold);
        }
        if method == "GET" {
            let answer = read_back(&s, path);
            entry.status = Some(answer.0);
            s.journal.push(entry);
            return Reply::Answer {
                status: answer.0,
                body: answer.1,
                after: Duration::ZERO,
            };
        }
        let Some(write) = Write::parse(method, path, body_json) else {
            violation(
                &mut s,
                format!("{method} {path} is not a call of the sync API"),
            );
            return refuse(&mut s, entry, 404, "no such call");
        };
        entry.route = write.route().to_owned();
        let Some(key) = key.map(str::to_owned) else {
            violation(
                &mut s,
                format!("{method} {path} came without an Idempotency-Key"),
            );
            return refuse(&mut s, entry, 400, "Idempotency-Key is required");
        };
        let tenant = match write.entity {
            Entity::User => None,
            Entity::Tenant | Entity::Subscription => Some(write.path_id),
        };
        if let Some(&status) = tenant.and_then(|t| s.rejected.get(&t)) {
            return refuse(&mut s, entry, status, "this tenant's writes are rejected");
        }
        let fault = s.faults.next();
        if let Some(fault) = fault.filter(|f| f.fails()) {
            return fail(&mut s, entry, fault, hold);
        }
        entry.fault = fault;
        if fault.is_some() {
            s.faults_applied += 1;
        }
        let (status, body) = apply(&mut s, &write, &key, entry.clone());
        match fault {
            Some(Fault::ReplyLost) => {
                if let Some(last) = s.journal.last_mut() {
                    last.status = None;
                }
                Reply::Reset
            }
            Some(Fault::Duplicate) => {
                let mut again = entry;
                again.seq = s.journal.len() as u64 + 1;
                again.fault = None;
                apply(&mut s, &write, &key, again);
                Reply::Answer {
                    status,
                    body,
                    after: Duration::ZERO,
                }
            }
            Some(Fault::Delay) => Reply::Answer {
                status,
                body,
                after: self.delay.max(Duration::from_millis(20)),
            },
            _ => Reply::Answer {
                status,
                body,
                after: Duration::ZERO,
            },
        }
    }
}

fn snapshot(s: &State) -> ProductState {
    ProductState {
        users: s.users.values().cloned().collect(),
        tenants: s.tenants.values().cloned().collect(),
        subscriptions: s.subscriptions.values().cloned().collect(),
    }
}

fn replace(s: &mut State, state: ProductState) {
    s.users = state.users.into_iter().map(|u| (u.id, u)).collect();
    s.tenants = state.tenants.into_iter().map(|t| (t.id, t)).collect();
    s.subscriptions = state
        .subscriptions
        .into_iter()
        .map(|x| (x.tenant_id, x))
        .collect();
}

fn violation(s: &mut State, what: String) {
    s.violations.push(what);
}

/// Fails the request with `fault`, one of [`Fault::FAILING`], applying nothing: a `5xx`, a
/// request held for `hold` (past the client's limit), or a reset connection.
fn fail(s: &mut State, mut entry: ProductRequest, fault: Fault, hold: Duration) -> Reply {
    entry.fault = Some(fault);
    s.faults_applied += 1;
    match fault {
        Fault::Status500 => refuse(s, entry, 500, "injected fault"),
        Fault::Status503 => refuse(s, entry, 503, "injected fault"),
        Fault::Timeout => {
            s.journal.push(entry);
            Reply::Hold(hold)
        }
        _ => {
            s.journal.push(entry);
            Reply::Reset
        }
    }
}

fn refuse(s: &mut State, mut entry: ProductRequest, status: u16, why: &str) -> Reply {
    entry.status = Some(status);
    s.journal.push(entry);
    Reply::Answer {
        status,
        body: serde_json::json!({ "error": why }),
        after: Duration::ZERO,
    }
}

fn read_back(s: &State, path: &str) -> (u16, Value) {
    if path == "/v1/state" {
        return (
            200,
            serde_json::to_value(snapshot(s)).unwrap_or(Value::Null),
        );
    }
    let tenant = path
        .strip_prefix("/v1/tenants/")
        .and_then(|id| id.parse::<i64>().ok());
    match tenant.and_then(|t| Some((s.tenants.get(&t)?, t))) {
        Some((doc, t)) => (
            200,
            serde_json::to_value(TenantState {
                tenant: doc.clone(),
                subscription: s.subscriptions.get(&t).cloned(),
            })
            .unwrap_or(Value::Null),
        ),
        None => (404, serde_json::json!({ "error": "no such tenant" })),
    }
}

/// Applies `write` under `key` once; a key seen before is answered as the first time.
fn apply(s: &mut State, write: &Write, key: &str, mut entry: ProductRequest) -> (u16, Value) {
    if let Some(first) = s.bodies.get(key)
        && *first != write.body
    {
        violation(
            s,
            format!(
                "Idempotency-Key {key} came again with another body ({})",
                write.path()
            ),
        );
    }
    if let Some(&(_, status)) = s.keys.get(key) {
        entry.replay = true;
        entry.status = Some(status);
        s.journal.push(entry);
        return (
            status,
            serde_json::json!({ "applied": false, "replay": true }),
        );
    }
    let result = mutate(s, write);
    let status = match &result {
        Ok(()) => 200,
        Err(why) => {
            violation(s, format!("{} {}: {why}", write.method(), write.path()));
            422
        }
    };
    s.bodies.insert(key.to_owned(), write.body.clone());
    if status == 200 {
        s.keys.entry(key.to_owned()).or_insert((0, status)).0 += 1;
    }
    entry.status = Some(status);
    entry.applied = status == 200;
    s.journal.push(entry);
    match result {
        Ok(()) => (200, serde_json::json!({ "applied": true })),
        Err(why) => (422, serde_json::json!({ "error": why })),
    }
}

fn parse<T: serde::de::DeserializeOwned>(write: &Write) -> Result<T, String> {
    let body = write.body.clone().ok_or("a PUT needs a JSON body")?;
    serde_json::from_value(body).map_err(|e| format!("the body does not parse: {e}"))
}

fn mutate(s: &mut State, write: &Write) -> Result<(), String> {
    let id = write.path_id;
    match (write.entity, write.delete) {
        (Entity::User, false) => {
            let doc: UserDoc = parse(write)?;
            check_id(doc.id, id)?;
            s.users.insert(id, doc);
        }
        (Entity::User, true) => {
            s.users.remove(&id);
        }
        (Entity::Tenant, false) => {
            let doc: TenantDoc = parse(write)?;
            check_id(doc.id, id)?;
            s.tenants.insert(id, doc);
        }
        (Entity::Tenant, true) => {
            s.tenants.remove(&id);
            s.subscriptions.remove(&id);
        }
        (Entity::Subscription, false) => {
            let doc: SubscriptionDoc = parse(write)?;
            check_id(doc.tenant_id, id)?;
            if !s.tenants.contains_key(&id) {
                return Err(format!(
                    "subscription for tenant {id}, which the product does not have"
                ));
            }
            s.subscriptions.insert(id, doc);
        }
        (Entity::Subscription, true) => {
            s.subscriptions.remove(&id);
        }
    }
    Ok(())
}

fn check_id(body: i64, path: i64) -> Result<(), String> {
    if body == path {
        Ok(())
    } else {
        Err(format!("the body's id {body} is not the path's {path}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(
        method: &'a str,
        path: &'a str,
        key: Option<&'a str>,
        body: &'a [u8],
    ) -> Incoming<'a> {
        Incoming {
            method,
            path,
            key,
            sent_at: None,
            body,
        }
    }

    fn put_tenant_at(m: &ProductMock, id: i64, key: &str, at: Option<DateTime<Utc>>) -> Reply {
        let body = serde_json::json!({"id": id, "organization_id": 1, "name": "t", "slug": "t",
                                      "spec": {}, "status": "active"})
        .to_string();
        let path = format!("/v1/tenants/{id}");
        m.handle(Incoming {
            sent_at: at,
            ..request("PUT", &path, Some(key), body.as_bytes())
        })
    }

    fn put_tenant(m: &ProductMock, id: i64, key: &str) -> Reply {
        put_tenant_at(m, id, key, None)
    }

    fn status(r: &Reply) -> Option<u16> {
        match r {
            Reply::Answer { status, .. } => Some(*status),
            _ => None,
        }
    }

    #[test]
    fn a_key_is_applied_once_and_replayed_after() {
        let m = ProductMock::new("p");
        assert_eq!(status(&put_tenant(&m, 1, "k1")), Some(200));
        m.drift(1);
        assert_eq!(status(&put_tenant(&m, 1, "k1")), Some(200));
        assert!(
            m.read_state().tenants[0].name.ends_with("(drifted)"),
            "the replay did not apply again"
        );
        let j = m.journal();
        assert_eq!((j[0].applied, j[0].replay), (true, false));
        assert_eq!((j[1].applied, j[1].replay), (false, true));
        assert!(m.applied_twice().is_empty());
    }

    #[test]
    fn faults_apply_or_not_as_named() {
        let m = ProductMock::new("p");
        m.fail_next(Fault::Status503, 1);
        m.fail_next(Fault::Reset, 1);
        m.fail_next(Fault::ReplyLost, 1);
        assert_eq!(status(&put_tenant(&m, 1, "a")), Some(503));
        assert_eq!(put_tenant(&m, 1, "b"), Reply::Reset);
        assert!(m.read_state().tenants.is_empty(), "neither applied");
        assert_eq!(put_tenant(&m, 1, "c"), Reply::Reset);
        assert_eq!(m.read_state().tenants.len(), 1, "reply_lost applied");
        m.fail_next(Fault::Duplicate, 1);
        assert_eq!(status(&put_tenant(&m, 2, "d")), Some(200));
        let j = m.journal();
        assert_eq!(j.len(), 5);
        assert!(
            j[4].replay && !j[4].applied,
            "the duplicate is replayed, not applied"
        );
        assert_eq!(m.faults_applied(), 4);
    }

    #[test]
    fn requests_are_numbered_in_arrival_and_a_duplicate_takes_the_next_number() {
        let m = ProductMock::new("p");
        put_tenant(&m, 1, "a");
        m.fail_next(Fault::Duplicate, 1);
        put_tenant(&m, 2, "b");
        m.handle(request("GET", "/v1/state", None, b""));
        let seqs: Vec<u64> = m.journal().iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [1, 2, 3, 4]);
        assert_eq!(m.requests(), 4);
    }

    #[test]
    fn a_delay_answers_late_and_a_timeout_holds_past_the_limit() {
        let m = ProductMock::new("p");
        m.set_hold(Duration::from_millis(1500));
        m.fail_next(Fault::Delay, 1);
        m.fail_next(Fault::Timeout, 1);
        m.fail_next(Fault::Status500, 1);
        match put_tenant(&m, 1, "a") {
            Reply::Answer { status, after, .. } => {
                assert_eq!(status, 200);
                assert!(after >= Duration::from_millis(20), "{after:?}");
            }
            other => panic!("a delay answers: {other:?}"),
        }
        assert_eq!(
            put_tenant(&m, 2, "b"),
            Reply::Hold(Duration::from_millis(1500))
        );
        assert_eq!(status(&put_tenant(&m, 3, "c")), Some(500));
        let applied: Vec<bool> = m.journal().iter().map(|r| r.applied).collect();
        assert_eq!(
            applied,
            [true, false, false],
            "a delay applies, the others do not"
        );
        assert_eq!(m.faults_applied(), 3);
    }

    #[test]
    fn reads_answer_the_state_or_the_tenant() {
        let m = ProductMock::new("p");
        put_tenant(&m, 1, "a");
        let get = |path: &str| m.handle(request("GET", path, None, b""));
        let Reply::Answer {
            status: code, body, ..
        } = get("/v1/state")
        else {
            panic!("a read answers");
        };
        assert_eq!(
            (code, &body["tenants"][0]["id"]),
            (200, &serde_json::json!(1))
        );
        let Reply::Answer {
            status: code, body, ..
        } = get("/v1/tenants/1")
        else {
            panic!("a read answers");
        };
        assert_eq!((code, &body["tenant"]["id"]), (200, &serde_json::json!(1)));
        assert_eq!(status(&get("/v1/tenants/2")), Some(404));
        assert_eq!(status(&get("/v1/tenants/x")), Some(404));
    }

    #[test]
    fn a_mock_is_held_here_or_served_at_a_url_under_its_key() {
        let local = ProductMock::new("crm");
        assert_eq!((local.key(), local.remote_url()), ("crm", None));
        let remote = ProductMock::remote("analytics", "http://127.0.0.1:9/ns/t1/");
        assert_eq!(
            (remote.key(), remote.remote_url()),
            ("analytics", Some("http://127.0.0.1:9/ns/t1"))
        );
    }

    #[test]
    fn strict_mode_is_off_until_set() {
        let m = ProductMock::new("p");
        assert!(!m.is_strict());
        m.set_strict(true);
        assert!(m.is_strict());
        m.set_strict(false);
        assert!(!m.is_strict());
    }

    #[test]
    fn a_rate_of_one_puts_a_fault_on_every_write() {
        let m = ProductMock::new("p");
        m.fault_rate(1.0, 3);
        for (n, key) in ["a", "b", "c"].into_iter().enumerate() {
            put_tenant(&m, n as i64 + 1, key);
        }
        assert!(m.journal().iter().all(|r| r.fault.is_some()));
        assert_eq!(m.faults_applied(), 3);
    }

    #[test]
    fn a_rejected_tenants_writes_get_its_status_until_accepted() {
        let m = ProductMock::new("p");
        m.reject_tenant(1, 409);
        assert_eq!(status(&put_tenant(&m, 1, "a")), Some(409));
        assert_eq!(status(&put_tenant(&m, 2, "b")), Some(200), "only tenant 1");
        assert!(m.tenant(1).is_none(), "not applied");
        m.accept_tenant(1);
        assert_eq!(status(&put_tenant(&m, 1, "c")), Some(200));
        assert_eq!(m.tenant(1).map(|t| t.tenant.id), Some(1));
        assert!(m.tenant(3).is_none());
    }

    #[test]
    fn an_edit_replaces_what_the_product_holds() {
        let m = ProductMock::new("p");
        put_tenant(&m, 1, "a");
        m.edit(|state| {
            state.tenants[0].name = "edited".into();
            let mut other = state.tenants[0].clone();
            other.id = 2;
            state.tenants.push(other);
        });
        let state = m.read_state();
        let names: Vec<(i64, &str)> = state
            .tenants
            .iter()
            .map(|t| (t.id, t.name.as_str()))
            .collect();
        assert_eq!(names, [(1, "edited"), (2, "edited")]);
        m.replace_state(ProductState::default());
        assert!(m.read_state().tenants.is_empty());
    }

    #[test]
    fn a_key_again_with_another_body_or_an_id_off_its_path_is_a_violation() {
        let m = ProductMock::new("p");
        put_tenant(&m, 1, "a");
        put_tenant(&m, 1, "a");
        assert!(m.violations().is_empty(), "the same body again is a replay");
        put_tenant(&m, 2, "a");
        assert_eq!(m.violations().len(), 1, "{:?}", m.violations());
        let body = serde_json::json!({"id": 7, "organization_id": 1, "name": "t", "slug": "t",
                                      "spec": {}, "status": "active"});
        let body = body.to_string();
        let reply = m.handle(request("PUT", "/v1/tenants/8", Some("b"), body.as_bytes()));
        assert_eq!(status(&reply), Some(422));
        assert!(m.tenant(8).is_none() && m.tenant(7).is_none());
        assert_eq!(m.violations().len(), 2, "{:?}", m.violations());
    }

    #[test]
    fn strict_checks_are_recorded() {
        let m = ProductMock::new("p");
        m.set_strict(true);
        let sub = serde_json::json!({"id": 9, "tenant_id": 3, "plan": "pro", "status": "active",
                                     "started_on": "2026-11-01", "cancelled_on": null, "limits": {}});
        let sub = sub.to_string();
        assert_eq!(
            status(&m.handle(request(
                "PUT",
                "/v1/tenants/3/subscription",
                Some("s"),
                sub.as_bytes()
            ))),
            Some(422)
        );
        assert_eq!(
            status(&m.handle(request("POST", "/v1/tenants", Some("x"), b""))),
            Some(404)
        );
        assert_eq!(status(&put_tenant_without_key(&m)), Some(400));
        assert_eq!(m.violations().len(), 3, "{:?}", m.violations());
    }

    fn put_tenant_without_key(m: &ProductMock) -> Reply {
        m.handle(request("DELETE", "/v1/tenants/1", None, b""))
    }

    #[test]
    fn an_outage_fails_writes_and_read_backs_in_its_window_and_applies_nothing() {
        let m = ProductMock::new("p");
        m.set_hold(Duration::from_millis(1));
        let from = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        let until = from + chrono::TimeDelta::hours(2);
        m.outage(Outage::new(from, until, Fault::Status503).unwrap());
        m.fail_next(Fault::Reset, 1);
        assert_eq!(status(&put_tenant_at(&m, 1, "a", Some(from))), Some(503));
        let read = m.handle(Incoming {
            sent_at: Some(until - chrono::TimeDelta::seconds(1)),
            ..request("GET", "/v1/state", None, b"")
        });
        assert_eq!(status(&read), Some(503), "a read-back fails too");
        assert!(m.read_state().tenants.is_empty(), "nothing applied");
        assert_eq!(
            put_tenant_at(&m, 1, "a", Some(until)),
            Reply::Reset,
            "back at until: the scripted fault waited for it"
        );
        assert_eq!(status(&put_tenant_at(&m, 1, "a", Some(until))), Some(200));
        assert_eq!(
            status(&put_tenant(&m, 2, "b")),
            Some(200),
            "a request that does not say when it was sent is in no outage"
        );
        let j = m.journal();
        assert_eq!(
            j.iter()
                .map(|r| (r.route.as_str(), r.fault, r.sent_at.is_some()))
                .collect::<Vec<_>>(),
            [
                ("/v1/tenants/{tenant}", Some(Fault::Status503), true),
                ("/v1/state", Some(Fault::Status503), true),
                ("/v1/tenants/{tenant}", Some(Fault::Reset), true),
                ("/v1/tenants/{tenant}", None, true),
                ("/v1/tenants/{tenant}", None, false),
            ]
        );
        assert_eq!(m.faults_applied(), 3);
        let later = until + chrono::TimeDelta::hours(1);
        m.outage(Outage::new(until, later, Fault::Timeout).unwrap());
        assert_eq!(
            put_tenant_at(&m, 3, "c", Some(until)),
            Reply::Hold(Duration::from_millis(1))
        );
        m.clear_faults();
        assert_eq!(
            status(&put_tenant_at(&m, 3, "c", Some(until))),
            Some(200),
            "cleared"
        );
    }
}
