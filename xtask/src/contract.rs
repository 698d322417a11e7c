//! `contract apply`: a sales contract from a file onto a marked QA database, shown table by table
//! before it is written, in one transaction, with an audit row; `--dry-run` writes nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use billing_harness::env::{Database, rows_written};
use billing_harness::model::TenantId;
use billing_harness::platform::{Platform, apply_contract};
use billing_scenarios::parse_contract_file;
use sha2::{Digest, Sha256};

/// `cargo xtask contract ...`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Apply a contract file to a marked QA database: shows every row it writes or changes,
    /// per table, then writes them in one transaction with an audit row.
    Apply {
        /// The contract file (TOML: tenant slug, starts_on and the terms).
        file: PathBuf,
        /// The database, as postgres://USER:PASSWORD@HOST:PORT/DATABASE (marked with `db mark`);
        /// default: HARNESS_DATABASE_URL, then DATABASE_URL.
        #[arg(long, value_name = "URL", value_parser = crate::db::database_url, env = "HARNESS_DATABASE_URL", hide_env_values = true)]
        database_url: String,
        /// Show the rows and write nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        output: crate::format::Output,
    },
}

/// Runs one `contract` command.
pub(crate) fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Apply {
            file,
            database_url,
            dry_run,
            output,
        } => apply(&file, &database_url, dry_run, output),
    }
}

fn apply(
    file: &Path,
    url: &str,
    dry_run: bool,
    output: crate::format::Output,
) -> anyhow::Result<ExitCode> {
    let shown = file.display().to_string();
    let source = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("cannot read the contract file {shown}: {e}"))?;
    let contract = match parse_contract_file(&shown, &source) {
        Ok(c) => c,
        Err(e) => {
            eprint!("{}", e.render());
            return Ok(ExitCode::from(2));
        }
    };
    crate::runtime()?.block_on(async {
        // An unmarked database is refused here, and every statement of the application checks
        // the marker again in its transaction (the schema's harness_guard trigger).
        let db = Database::builder().attach(url).await?;
        let platform = Platform::new(db.pool().clone());
        let calendar = platform.settings().await?.calendar;
        let mut tx = db.pool().begin().await?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "select id from tenants where slug = $1 and status <> 'deleted' order by id",
        )
        .bind(&contract.tenant)
        .fetch_all(&mut *tx)
        .await?;
        let tenant = match ids.as_slice() {
            [id] => *id,
            [] => anyhow::bail!("no live tenant has the slug {:?}", contract.tenant),
            _ => anyhow::bail!(
                "{} tenants of different products have the slug {:?}",
                ids.len(),
                contract.tenant
            ),
        };
        let at = calendar.start_of_day(contract.starts_on);
        let applied = match apply_contract(&mut tx, TenantId(tenant), &contract.terms, at).await {
            Ok(applied) => applied,
            Err(e) => {
                let code = e.code();
                eprintln!(
                    "error: the contract cannot apply ({code}): {}",
                    crate::errors::inline(&anyhow::Error::new(e))
                );
                return Ok(ExitCode::FAILURE);
            }
        };
        let rows = rows_written(&mut tx).await?;
        let mut result = serde_json::json!({
            "dry_run": dry_run,
            "plan": applied.plan.to_string(),
            "tenant": contract.tenant,
            "starts_on": contract.starts_on.to_string(),
            "rows": rows,
        });
        if dry_run {
            tx.rollback().await?;
            output.emit(&result, |_| {
                format!(
                    "{}dry run: contract {} for tenant {} from {} not applied; nothing written\n",
                    tables(&rows),
                    applied.plan,
                    contract.tenant,
                    contract.starts_on
                )
            })?;
            return Ok(ExitCode::SUCCESS);
        }
        let hash = format!("{:x}", Sha256::digest(source.as_bytes()));
        let audit: i64 = sqlx::query_scalar(
            "insert into contract_applications (applied_at, file, file_hash, tenant_id, plan_id, rows) \
             values ($1, $2, $3, $4, $5, $6) returning id",
        )
        .bind(billing_harness::clock::wall_now())
        .bind(&shown)
        .bind(&hash)
        .bind(tenant)
        .bind(applied.plan_id)
        .bind(serde_json::to_value(&rows)?)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        result["audit_id"] = audit.into();
        result["file_sha256"] = hash.clone().into();
        output.emit(&result, |_| {
            format!(
                "{}applied contract {} for tenant {} from {} (audit row {audit}, file sha256 {hash})\n",
                tables(&rows),
                applied.plan,
                contract.tenant,
                contract.starts_on
            )
        })?;
        Ok(ExitCode::SUCCESS)
    })
}

/// The rows as one text table per database table: columns in order, a row per line.
fn tables(rows: &BTreeMap<String, Vec<serde_json::Value>>) -> String {
    let mut out = String::new();
    for (table, rows) in rows {
        let mut columns: Vec<String> = Vec::new();
        for row in rows {
            for key in row.as_object().into_iter().flat_map(|o| o.keys()) {
                if !columns.contains(key) {
                    columns.push(key.clone());
                }
            }
        }
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|row| {
                columns
                    .iter()
                    .map(|c| match &row[c] {
                        serde_json::Value::String(s) => s.clone(),
                        serde_json::Value::Null => "-".into(),
                        v => v.to_string(),
                    })
                    .collect()
            })
            .collect();
        let widths: Vec<usize> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                cells
                    .iter()
                    .map(|r| r[i].chars().count())
                    .chain([c.chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |values: &[String]| {
            let padded: Vec<String> = values
                .iter()
                .zip(&widths)
                .map(|(v, w)| format!("{v:<w$}"))
                .collect();
            format!("  {}\n", padded.join("  ").trim_end())
        };
        let n = rows.len();
        out.push_str(&format!(
            "== {table} ({n} row{})\n",
            if n == 1 { "" } else { "s" }
        ));
        out.push_str(&line(&columns));
        for row in &cells {
            out.push_str(&line(row));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_print_as_aligned_tables() {
        let rows = BTreeMap::from([(
            "plans".to_owned(),
            vec![
                serde_json::json!({"id": 7, "key": "pro~acme~2026-12-01", "organization_id": null}),
                serde_json::json!({"id": 12, "key": "x", "organization_id": 3}),
            ],
        )]);
        assert_eq!(
            tables(&rows),
            "== plans (2 rows)\n  id  key                  organization_id\n  7   pro~acme~2026-12-01  -\n  12  x                    3\n"
        );
    }
}
