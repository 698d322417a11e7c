//! `cargo xtask contract apply` on a QA database the harness did not create: refused until it is
//! marked, a dry run that writes nothing, an application shown table by table and audited, and a
//! second one on the same day refused with nothing written.

use std::path::Path;
use std::process::Output;

use billing_harness::TestEnv;
use sqlx::Connection;

mod qa;

use qa::{fingerprint, text};

fn state_dir(name: &str) -> std::path::PathBuf {
    qa::state_dir("contract", name)
}

fn cli(state: &Path, url: &str, args: &[&str]) -> Output {
    qa::cli(state, url, &[], args)
}

#[tokio::test]
async fn a_contract_file_is_refused_unmarked_shown_on_a_dry_run_then_applied_once_with_an_audit_row()
 {
    let env = TestEnv::start().await;
    let qa = format!("qa_contract_{}", std::process::id());
    sqlx::query(&format!("create database {qa}"))
        .execute(env.pool())
        .await
        .unwrap();
    let url = format!("{}/{qa}", env.url().rsplit_once('/').unwrap().0);
    let state = state_dir("apply");
    let work = std::env::temp_dir().join(format!("bh-contract-file-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let file = work.join("acme.toml");
    std::fs::write(
        &file,
        "tenant = \"acme-analytics\"\nstarts_on = \"2026-12-01\"\nplan = \"pro\"\n\
         base_fee = \"1500000\"\nincluded = { api_calls = 5000000 }\n\
         overage = { api_calls = { block = 1000, price = \"200\" } }\nlimits = { seats = 200 }\n\
         spec = { cpu = 16 }\n",
    )
    .unwrap();
    let file_arg = file.display().to_string();
    let apply = [
        "contract",
        "apply",
        file_arg.as_str(),
        "--database-url",
        url.as_str(),
    ];
    let dry = [&apply[..], &["--dry-run"]].concat();

    let refused = cli(&state, &url, &apply);
    let unmarked = fingerprint(&url).await;
    let marked = cli(
        &state,
        &url,
        &["db", "mark", "--env", "qa", "--database-url", &url],
    );
    assert!(marked.status.success(), "{}", text(&marked));
    {
        let qa_env = TestEnv::builder()
            .start_at(
                billing_harness::calendar::Calendar::platform()
                    .start_of_day("2026-11-10".parse().unwrap()),
            )
            .attach(&url)
            .await
            .unwrap();
        qa_env
            .build()
            .tenant()
            .plan("pro")
            .name("acme-analytics")
            .create()
            .await
            .unwrap();
    }
    let before = fingerprint(&url).await;
    let dry_run = cli(&state, &url, &dry);
    let after_dry = fingerprint(&url).await;
    let applied = cli(&state, &url, &apply);
    let after = fingerprint(&url).await;
    let again = cli(&state, &url, &apply);
    let after_again = fingerprint(&url).await;
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let audit: (String, String, serde_json::Value) =
        sqlx::query_as("select file, file_hash, rows from contract_applications")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    let spec: serde_json::Value = sqlx::query_scalar("select spec from tenants")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    sqlx::query(&format!("drop database {qa} with (force)"))
        .execute(env.pool())
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(&state);
    let _ = std::fs::remove_dir_all(&work);

    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(text(&refused).contains("cargo xtask db mark --env qa"));
    assert!(
        !unmarked.contains("== tenants"),
        "a refused apply changes nothing"
    );

    assert_eq!(dry_run.status.code(), Some(0), "{}", text(&dry_run));
    let shown = String::from_utf8_lossy(&dry_run.stdout);
    for table in [
        "== plans (1 row)",
        "== plan_metrics",
        "== plan_limits",
        "== contracts (2 rows)",
        "== contract_details",
        "== billings (2 rows)",
        "== billing_details",
        "== subscriptions (1 row)",
        "== tenants (1 row)",
        "== sync_outbox",
    ] {
        assert!(shown.contains(table), "{table} in:\n{shown}");
    }
    assert!(shown.contains("nothing written"), "{shown}");
    assert_eq!(after_dry, before, "a dry run writes nothing");

    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    assert!(text(&applied).contains("audit row"));
    assert_ne!(after, before);
    assert_eq!(audit.0, file_arg);
    assert_eq!(audit.1.len(), 64, "a sha256 in hex");
    assert!(audit.2.get("plans").is_some() && audit.2.get("contracts").is_some());
    assert_eq!(spec["cpu"], 16);

    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(
        text(&again).contains("plan_change_limit"),
        "{}",
        text(&again)
    );
    assert_eq!(after_again, after, "a refused contract writes nothing");
}

#[test]
fn a_bad_contract_file_exits_2_with_line_and_column() {
    // Not the state folder's name: under a small /dev/shm the state goes to $TMPDIR too.
    let work = std::env::temp_dir().join(format!("bh-contract-file-bad-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let file = work.join("bad.toml");
    std::fs::write(
        &file,
        "tenant = \"acme\"\nstarts_on = \"2026-12-01\"\noverage = { api_calls = { block = 0, price = \"10\" } }\n",
    )
    .unwrap();
    let state = state_dir("bad");
    let out = cli(
        &state,
        "postgres://nobody@127.0.0.1:1/none",
        &[
            "contract",
            "apply",
            &file.display().to_string(),
            "--database-url",
            "postgres://nobody@127.0.0.1:1/none",
        ],
    );
    let _ = std::fs::remove_dir_all(&work);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.toml:3:"), "{stderr}");
    assert!(
        stderr.contains("block of api_calls must be at least 1"),
        "{stderr}"
    );
}
