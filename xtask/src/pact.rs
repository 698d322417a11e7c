//! `cargo xtask pact export`: the interactions the product mocks observed while the bundled
//! scenarios ran, written as one Pact V4 file per product for the product teams to verify their
//! own server against.
//!
//! [`pact`] turns a product's journal into the file's JSON without I/O; [`run`] plays the
//! scenarios and writes the files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use billing_harness::products::ProductRequest;
use billing_harness::products::api::{IDEMPOTENCY_KEY, ProductState, VERSION};
use serde_json::{Map, Value, json};

/// The consumer of every pact: the platform, which sends the writes.
const CONSUMER: &str = "platform";

/// `cargo xtask pact ...`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Run scenarios (default: all) and write what each product mock received as a Pact V4
    /// file, DIR/platform-PRODUCT.json.
    Export {
        /// Where to write the files (default: target/pacts of the workspace).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Scenario names (as `scenario list` shows them) or paths to scenario files.
        #[arg(value_name = "SCENARIO", conflicts_with = "all")]
        targets: Vec<String>,
        /// Every scenario under scenarios/ (the default without SCENARIO).
        #[arg(long)]
        all: bool,
        /// Play this many scenarios at once (default: the number of cores); the files are the
        /// same whatever it is.
        #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
        jobs: Option<u16>,
    },
}

/// `target/pacts` of the workspace.
fn default_out() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/pacts")
}

/// Runs one `pact` command.
pub(crate) fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Export {
            out, targets, jobs, ..
        } => export(
            &out.unwrap_or_else(default_out),
            &targets,
            crate::scenario::jobs_or_default(jobs),
        ),
    }
}

/// What the mocks of one product observed over every scenario played.
#[derive(Debug, Default)]
struct Observed {
    requests: Vec<ProductRequest>,
    /// The product's state at the end of a scenario where it held something: the example body
    /// of the read-back.
    state: Option<ProductState>,
}

/// What one scenario's mocks observed: each product's key, journal and final state.
type Mocks = Vec<(String, Vec<ProductRequest>, ProductState)>;

/// Plays one scenario (on its own database and mocks) and delivers what is still queued, so that
/// the journals are complete; returns its name and what each of its mocks observed.
async fn observe(
    scenario: &billing_scenarios::Scenario,
    path: &Path,
) -> anyhow::Result<(String, Mocks)> {
    let name = crate::scenario::stem(path);
    let (env, outcome) = crate::scenario::play_on(scenario).await?;
    anyhow::ensure!(
        outcome.holds,
        "scenario {name} does not hold, so its interactions are no contract: {}",
        outcome.failures.join("; ")
    );
    let convergence = env.converge().await?;
    anyhow::ensure!(
        convergence.is_converged(),
        "the products of scenario {name} did not converge:\n{convergence}"
    );
    let mocks = env
        .products()
        .await?
        .iter()
        .map(|mock| (mock.key().to_owned(), mock.journal(), mock.read_state()))
        .collect();
    Ok((name, mocks))
}

/// `pact export [--out DIR] [SCENARIO...|--all] [--jobs N]`: plays `jobs` scenarios at once, and
/// merges what they observed in the scenarios' order.
fn export(out: &Path, targets: &[String], jobs: usize) -> anyhow::Result<ExitCode> {
    let paths = if targets.is_empty() {
        crate::scenario::files()?
    } else {
        targets
            .iter()
            .map(|t| crate::scenario::resolve(t))
            .collect::<anyhow::Result<Vec<_>>>()?
    };
    let mut scenarios = Vec::with_capacity(paths.len());
    for path in &paths {
        match crate::scenario::load(path) {
            Ok(s) => scenarios.push(s),
            Err(code) => return Ok(code),
        }
    }
    let pairs: Vec<(&billing_scenarios::Scenario, &PathBuf)> =
        scenarios.iter().zip(&paths).collect();
    let played = crate::parallel::ordered(
        &pairs,
        jobs,
        |runtime, (scenario, path)| runtime.block_on(observe(scenario, path)),
        |result| {
            if let Ok((name, _)) = result {
                eprintln!("played {name}");
            }
        },
    )?;
    let mut observed: BTreeMap<String, Observed> = BTreeMap::new();
    let mut names = Vec::with_capacity(scenarios.len());
    for result in played {
        let (name, mocks) = result?;
        for (key, journal, state) in mocks {
            let seen = observed.entry(key).or_default();
            seen.requests.extend(journal);
            if seen.state.is_none() && !state.users.is_empty() {
                seen.state = Some(state);
            }
        }
        names.push(name);
    }
    for (product, seen) in &observed {
        let file = out.join(format!("{CONSUMER}-{product}.json"));
        let document = pact(product, &seen.requests, seen.state.as_ref(), &names);
        let interactions = document["interactions"]
            .as_array()
            .map_or(&[][..], Vec::as_slice);
        if interactions.iter().all(|i| i["request"]["method"] == "GET") {
            println!("{product}: no writes observed, no file written");
            continue;
        }
        let interactions = interactions.len();
        std::fs::create_dir_all(out).with_context(|| format!("create {}", out.display()))?;
        let mut text = serde_json::to_string_pretty(&document)?;
        text.push('\n');
        std::fs::write(&file, text).with_context(|| format!("write {}", file.display()))?;
        println!(
            "wrote {} ({interactions} interactions from {} requests)",
            file.display(),
            seen.requests.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The Pact V4 document of what `provider` received from the platform: one interaction per
/// method, route and body shape (the first request of each, so ids, names and dates are examples
/// matched by type), of the requests answered `2xx` without a fault or a replay. Read-backs
/// (`GET`) get `state`, cut to one element per list, as their example answer.
///
/// Interactions are sorted by route, method and shape: the same journals give the same file.
pub(crate) fn pact(
    provider: &str,
    requests: &[ProductRequest],
    state: Option<&ProductState>,
    scenarios: &[String],
) -> Value {
    let mut chosen: BTreeMap<(String, String, String), &ProductRequest> = BTreeMap::new();
    for request in requests {
        let answered = request.status.is_some_and(|s| (200..300).contains(&s));
        if !answered || request.fault.is_some() || request.replay {
            continue;
        }
        let shape = request.body.as_ref().map(shape).unwrap_or(Value::Null);
        chosen
            .entry((
                request.route.clone(),
                request.method.clone(),
                shape.to_string(),
            ))
            .or_insert(request);
    }
    // The first shape of a route is its plain description; later ones say how they differ.
    let mut first_shape: BTreeMap<(&str, &str), BTreeMap<String, String>> = BTreeMap::new();
    let mut interactions = Vec::with_capacity(chosen.len());
    for ((route, method, _), request) in &chosen {
        let leaves = request.body.as_ref().map(leaf_types).unwrap_or_default();
        let base = first_shape
            .entry((route.as_str(), method.as_str()))
            .or_insert_with(|| leaves.clone());
        let mut description = format!("{method} {route}: {}", purpose(method, route));
        let differs = differences(base, &leaves);
        if !differs.is_empty() {
            description.push_str(&format!(" ({differs})"));
        }
        interactions.push(interaction(description, request, state));
    }
    json!({
        "consumer": { "name": CONSUMER },
        "provider": { "name": provider },
        "interactions": interactions,
        "metadata": {
            "pactSpecification": { "version": "4.0" },
            "billing-harness": {
                "syncApi": VERSION,
                "scenarios": scenarios,
            },
        },
    })
}

/// One `Synchronous/HTTP` interaction from an observed request.
fn interaction(
    description: String,
    request: &ProductRequest,
    state: Option<&ProductState>,
) -> Value {
    let mut req = Map::new();
    req.insert("method".into(), json!(request.method));
    req.insert("path".into(), json!(request.path));
    let mut headers = Map::new();
    let mut rules = Map::new();
    if request.route != request.path {
        rules.insert(
            "path".into(),
            and(json!({ "match": "regex", "regex": path_regex(&request.route) })),
        );
    }
    if let Some(key) = &request.idempotency_key {
        headers.insert(IDEMPOTENCY_KEY.into(), json!([key]));
        rules.insert(
            "header".into(),
            json!({ IDEMPOTENCY_KEY: and(json!({ "match": "regex", "regex": "^[0-9]+$" })) }),
        );
    }
    if let Some(body) = &request.body {
        headers.insert("Content-Type".into(), json!(["application/json"]));
        req.insert("body".into(), json_body(body.clone()));
        let by_type: Map<String, Value> = leaf_types(body)
            .into_keys()
            .map(|path| (path, and(json!({ "match": "type" }))))
            .collect();
        if !by_type.is_empty() {
            rules.insert("body".into(), Value::Object(by_type));
        }
    }
    if !headers.is_empty() {
        req.insert("headers".into(), Value::Object(headers));
    }
    if !rules.is_empty() {
        req.insert("matchingRules".into(), Value::Object(rules));
    }
    let mut response = Map::new();
    response.insert("status".into(), json!(request.status));
    response.insert(
        "headers".into(),
        json!({ "Content-Type": ["application/json"] }),
    );
    if request.method == "GET" {
        if let (Some(state), true) = (state, request.route == format!("/{VERSION}/state")) {
            response.insert("body".into(), json_body(example_state(state)));
            let lists = ["users", "tenants", "subscriptions"]
                .map(|l| (format!("$.{l}"), and(json!({ "match": "type", "min": 0 }))));
            response.insert(
                "matchingRules".into(),
                json!({ "body": Map::from_iter(lists) }),
            );
        }
    } else if request.applied {
        response.insert("body".into(), json_body(json!({ "applied": true })));
    }
    json!({
        "type": "Synchronous/HTTP",
        "description": description,
        "pending": false,
        "request": req,
        "response": response,
    })
}

/// A V4 JSON body.
fn json_body(content: Value) -> Value {
    json!({ "content": content, "contentType": "application/json", "encoded": false })
}

/// A matcher list combined with AND, as V4 writes every rule.
fn and(matcher: Value) -> Value {
    json!({ "combine": "AND", "matchers": [matcher] })
}

/// What a route is for, in the words of the sync API's table.
fn purpose(method: &str, route: &str) -> &'static str {
    match (method, route.rsplit('/').next().unwrap_or_default()) {
        ("PUT", "{user}") => "create or replace a user",
        ("DELETE", "{user}") => "forget a user",
        ("PUT", "{tenant}") => "create or replace a tenant",
        ("DELETE", "{tenant}") => "delete a tenant and its subscription",
        ("PUT", "subscription") => "set a tenant's subscription",
        ("DELETE", "subscription") => "remove a tenant's subscription",
        ("GET", "state") => "read back everything the product holds",
        ("GET", _) => "read back",
        _ => "a call of the sync API",
    }
}

/// `/v1/tenants/{tenant}/subscription` as `^/v1/tenants/[0-9]+/subscription$`.
fn path_regex(route: &str) -> String {
    let parts: Vec<&str> = route
        .split('/')
        .map(|p| {
            if p.starts_with('{') && p.ends_with('}') {
                "[0-9]+"
            } else {
                p
            }
        })
        .collect();
    format!("^{}$", parts.join("/"))
}

/// A body with every leaf replaced by its JSON type: two bodies of one shape give one value.
fn shape(body: &Value) -> Value {
    match body {
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().take(1).map(shape).collect()),
        leaf => json!(type_name(leaf)),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every leaf of a body (an empty object or array counts as one) by its JSONPath, `$.spec.cpu`,
/// with its type.
fn leaf_types(body: &Value) -> BTreeMap<String, String> {
    fn walk(path: String, value: &Value, out: &mut BTreeMap<String, String>) {
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (k, v) in map {
                    walk(format!("{path}.{k}"), v, out);
                }
            }
            Value::Array(items) if !items.is_empty() => {
                walk(format!("{path}[*]"), &items[0], out);
            }
            leaf => {
                out.insert(path, type_name(leaf).to_owned());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("$".to_owned(), body, &mut out);
    out
}

/// How a body's leaves differ from the first shape of its route: `cancelled_on: string, no
/// limits.seats`.
fn differences(base: &BTreeMap<String, String>, leaves: &BTreeMap<String, String>) -> String {
    let mut out = Vec::new();
    for (path, kind) in leaves {
        if base.get(path) != Some(kind) {
            out.push(format!("{}: {kind}", path.trim_start_matches("$.")));
        }
    }
    for path in base.keys() {
        if !leaves.contains_key(path) {
            out.push(format!("no {}", path.trim_start_matches("$.")));
        }
    }
    out.join(", ")
}

/// The read-back's example: at most one user, tenant and subscription.
fn example_state(state: &ProductState) -> Value {
    let cut = ProductState {
        users: state.users.iter().take(1).cloned().collect(),
        tenants: state.tenants.iter().take(1).cloned().collect(),
        subscriptions: state.subscriptions.iter().take(1).cloned().collect(),
    };
    serde_json::to_value(cut).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use billing_harness::products::Fault;

    fn request(
        seq: u64,
        method: &str,
        path: &str,
        route: &str,
        body: Option<Value>,
    ) -> ProductRequest {
        ProductRequest {
            seq,
            method: method.into(),
            path: path.into(),
            route: route.into(),
            idempotency_key: (method != "GET").then(|| seq.to_string()),
            sent_at: None,
            body,
            fault: None,
            status: Some(200),
            applied: method != "GET",
            replay: false,
        }
    }

    fn subscription(tenant: i64, plan: &str, cancelled_on: Option<&str>) -> ProductRequest {
        let path = format!("/v1/tenants/{tenant}/subscription");
        let body = json!({
            "id": tenant * 10, "tenant_id": tenant, "plan": plan, "status": "active",
            "started_on": "2026-10-10", "cancelled_on": cancelled_on, "limits": { "seats": 10 },
        });
        request(
            tenant as u64,
            "PUT",
            &path,
            "/v1/tenants/{tenant}/subscription",
            Some(body),
        )
    }

    #[test]
    fn one_interaction_per_route_method_and_shape_with_v4_fields() {
        let mut faulted = subscription(9, "pro", None);
        faulted.fault = Some(Fault::Status500);
        faulted.status = Some(500);
        faulted.body = Some(json!({ "other": "shape" }));
        let mut replay = subscription(8, "pro", None);
        replay.replay = true;
        replay.body = Some(json!({ "replayed": true }));
        let journal = vec![
            subscription(1, "pro", None),
            subscription(2, "business", None),
            subscription(3, "pro", Some("2026-11-01")),
            faulted,
            replay,
            request(4, "DELETE", "/v1/users/5", "/v1/users/{user}", None),
            request(5, "GET", "/v1/state", "/v1/state", None),
        ];
        let state = ProductState::default();
        let pact = pact("analytics", &journal, Some(&state), &["s".to_owned()]);
        assert_eq!(pact["consumer"]["name"], "platform");
        assert_eq!(pact["provider"]["name"], "analytics");
        assert_eq!(pact["metadata"]["pactSpecification"]["version"], "4.0");
        let interactions = pact["interactions"].as_array().unwrap();
        let described: Vec<&str> = interactions
            .iter()
            .map(|i| i["description"].as_str().unwrap())
            .collect();
        assert_eq!(
            described,
            [
                "GET /v1/state: read back everything the product holds",
                "PUT /v1/tenants/{tenant}/subscription: set a tenant's subscription",
                "PUT /v1/tenants/{tenant}/subscription: set a tenant's subscription (cancelled_on: string)",
                "DELETE /v1/users/{user}: forget a user",
            ],
            "a plan is a value, not a shape; a fault or a replay is no contract"
        );
        let put = &interactions[1];
        assert_eq!(put["type"], "Synchronous/HTTP");
        assert_eq!(put["request"]["method"], "PUT");
        assert_eq!(put["request"]["path"], "/v1/tenants/1/subscription");
        assert_eq!(put["request"]["headers"]["Idempotency-Key"], json!(["1"]));
        assert_eq!(
            put["request"]["headers"]["Content-Type"],
            json!(["application/json"])
        );
        assert_eq!(put["request"]["body"]["contentType"], "application/json");
        assert_eq!(put["request"]["body"]["content"]["tenant_id"], 1);
        let rules = &put["request"]["matchingRules"];
        assert_eq!(
            rules["path"]["matchers"][0]["regex"],
            "^/v1/tenants/[0-9]+/subscription$"
        );
        assert_eq!(rules["body"]["$.id"]["matchers"][0]["match"], "type");
        assert_eq!(rules["body"]["$.limits.seats"]["combine"], "AND");
        assert_eq!(
            rules["header"]["Idempotency-Key"]["matchers"][0]["match"],
            "regex"
        );
        assert_eq!(put["response"]["status"], 200);
        assert_eq!(
            put["response"]["body"]["content"],
            json!({ "applied": true })
        );
        let delete = &interactions[3];
        assert!(delete["request"].get("body").is_none());
        assert_eq!(
            delete["request"]["headers"],
            json!({ "Idempotency-Key": ["4"] })
        );
        let get = &interactions[0];
        assert_eq!(
            get["response"]["body"]["content"],
            json!({ "users": [], "tenants": [], "subscriptions": [] })
        );
        assert!(get["request"].get("headers").is_none());
        assert_eq!(
            pact,
            super::pact("analytics", &journal, Some(&state), &["s".to_owned()]),
            "deterministic"
        );
    }

    #[test]
    fn shapes_and_paths() {
        assert_eq!(path_regex("/v1/users/{user}"), "^/v1/users/[0-9]+$");
        assert_eq!(path_regex("/v1/state"), "^/v1/state$");
        let a = json!({ "id": 1, "spec": { "cpu": 2 }, "tags": ["x"], "none": null });
        let b = json!({ "id": 7, "spec": { "cpu": 4 }, "tags": ["y", "z"], "none": null });
        assert_eq!(shape(&a), shape(&b));
        assert_ne!(shape(&a), shape(&json!({ "id": "1" })));
        assert_eq!(
            leaf_types(&a).into_keys().collect::<Vec<_>>(),
            ["$.id", "$.none", "$.spec.cpu", "$.tags[*]"]
        );
        let base = leaf_types(&a);
        let other = leaf_types(&json!({ "id": 1, "spec": {}, "tags": ["x"], "none": "n" }));
        assert_eq!(
            differences(&base, &other),
            "none: string, spec: object, no spec.cpu"
        );
    }
}
