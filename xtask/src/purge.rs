//! `purge`: a user, an organization or a scenario run out of a marked QA database, planned and
//! shown table by table first, in one transaction with an audit row; `--dry-run` writes nothing.

use std::process::ExitCode;

use billing_harness::env::Database;
use billing_harness::model::OrgId;
use billing_harness::purge::{self, PurgeTarget};

/// The options of `cargo xtask purge`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["email", "org", "run"])))]
pub(crate) struct PurgeOpts {
    /// The user's e-mail address: the user, and the organization's tenants and billing when they
    /// are its last owner, and the organization when they are its last member.
    #[arg(long, value_name = "EMAIL", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    email: Option<String>,
    /// The organization's id: the organization and everything of it.
    #[arg(long, value_name = "ID", value_parser = clap::value_parser!(i64).range(1..))]
    org: Option<i64>,
    /// A scenario run's id (`scenario seed` prints it): every row the run recorded as it wrote
    /// and everything below it (its organizations and all of theirs, the catalog rows it added
    /// that nothing else uses). A row it recorded that hangs below another organization (a job
    /// of its clock billed someone else's subscription) stays that organization's.
    #[arg(long, value_name = "ID")]
    run: Option<String>,
    /// The database, as postgres://USER:PASSWORD@HOST:PORT/DATABASE (marked with `db mark`);
    /// default: HARNESS_DATABASE_URL, then DATABASE_URL.
    #[arg(long, value_name = "URL", value_parser = crate::db::database_url, env = "HARNESS_DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// Show the plan and write nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    output: crate::format::Output,
}

/// Runs `purge`.
pub(crate) fn run(opts: PurgeOpts) -> anyhow::Result<ExitCode> {
    let target = match (&opts.email, opts.org, &opts.run) {
        (Some(email), _, _) => PurgeTarget::Email(email.clone()),
        (_, Some(org), _) => PurgeTarget::Org(OrgId(org)),
        (_, _, Some(run)) => PurgeTarget::Run(run.clone()),
        _ => anyhow::bail!("say what to purge: --email, --org or --run"),
    };
    crate::runtime()?.block_on(async {
        // An unmarked database is refused here, and every statement of the purge checks the
        // marker again in its transaction (the schema's harness_guard trigger).
        let db = Database::builder().attach(&opts.database_url).await?;
        let marked = db.marked_for().unwrap_or("marked");
        let at = crate::db::harness_now(db.pool()).await?;
        if opts.dry_run {
            let plan = purge::plan(db.pool(), &target).await?;
            let shown = serde_json::json!({"dry_run": true, "database": marked, "plan": plan});
            opts.output.emit(&shown, |_| {
                format!(
                    "{}dry run: nothing written to the {marked} database\n",
                    plan.render()
                )
            })?;
            return Ok(ExitCode::SUCCESS);
        }
        let report = purge::purge(db.pool(), &target, at).await?;
        let shown = serde_json::json!({"dry_run": false, "database": marked, "report": report});
        opts.output.emit(&shown, |_| {
            format!(
                "{}purged from the {marked} database: {} row(s) in {} table(s), {} deletion(s) queued for products (audit row {})\n",
                report.plan.render(),
                report.plan.rows.values().sum::<u64>(),
                report.plan.rows.len(),
                report.plan.notices.len(),
                report.audit_id
            )
        })?;
        Ok(ExitCode::SUCCESS)
    })
}
