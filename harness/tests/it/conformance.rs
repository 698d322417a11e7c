//! `scenario::run_with`: scenarios through a driver and through the reference in one run, every
//! result compared, each difference named with its invoice, line, values and rule.

use std::path::{Path, PathBuf};

use billing_harness::TestEnv;
use billing_harness::model::ContractTerms;
use billing_harness::payments::TestCard;
use billing_scenarios::driver::{DriverError, ReadBack, Session};
use billing_scenarios::{
    Driver, OrgDef, Reference, ReferenceSession, Scenario, TenantDef, Verdict, run_with,
};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

fn bundled(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scenarios")
        .join(name)
}

/// The reference with one planted bug. It does no purge (the trait's default).
#[derive(Clone, Copy)]
enum Bug {
    /// The first invoice's first line, and so its subtotal and total, bill one unit more.
    OffByOne,
    /// Invoices read back newest first: not a bug, the comparison pairs them by key.
    InvoicesReversed,
    /// The last payment attempt is not read back.
    LastPaymentLost,
    /// Cancelling fails as an implementation would when its database is gone.
    CancelFails,
}

struct Planted(Bug);

struct PlantedSession(ReferenceSession<TestEnv>, Bug);

impl Driver for Planted {
    type Session = PlantedSession;

    fn name(&self) -> &str {
        match self.0 {
            Bug::OffByOne => "off-by-one",
            _ => "planted",
        }
    }

    async fn start(&self, scenario: &Scenario) -> Result<PlantedSession, DriverError> {
        let bug = self.0;
        Reference
            .start(scenario)
            .await
            .map(|s| PlantedSession(s, bug))
    }
}

impl Session for PlantedSession {
    async fn create_org(&mut self, org: &OrgDef) -> Result<(), DriverError> {
        self.0.create_org(org).await
    }
    async fn create_user(&mut self, org: &str, email: &str) -> Result<(), DriverError> {
        self.0.create_user(org, email).await
    }
    async fn create_tenant(&mut self, tenant: &TenantDef, org: &str) -> Result<(), DriverError> {
        self.0.create_tenant(tenant, org).await
    }
    async fn register_card(&mut self, org: &str, card: TestCard) -> Result<(), DriverError> {
        self.0.register_card(org, card).await
    }
    async fn subscribe(&mut self, tenant: &str, plan: &str) -> Result<(), DriverError> {
        self.0.subscribe(tenant, plan).await
    }
    async fn change_plan(&mut self, tenant: &str, plan: &str) -> Result<(), DriverError> {
        self.0.change_plan(tenant, plan).await
    }
    async fn cancel(&mut self, tenant: &str) -> Result<(), DriverError> {
        if let Bug::CancelFails = self.1 {
            return Err(DriverError::failed(std::io::Error::other(
                "connection refused",
            )));
        }
        self.0.cancel(tenant).await
    }
    async fn apply_contract(
        &mut self,
        tenant: &str,
        terms: &ContractTerms,
    ) -> Result<(), DriverError> {
        self.0.apply_contract(tenant, terms).await
    }
    async fn record_usage(
        &mut self,
        tenant: &str,
        metric: &str,
        quantity: i64,
        day: NaiveDate,
    ) -> Result<(), DriverError> {
        self.0.record_usage(tenant, metric, quantity, day).await
    }
    async fn advance_to(&mut self, at: DateTime<Utc>) -> Result<(), DriverError> {
        self.0.advance_to(at).await
    }
    async fn read_back(&mut self) -> Result<ReadBack, DriverError> {
        let mut back = self.0.read_back().await?;
        match self.1 {
            Bug::OffByOne => {
                if let Some(invoice) = back.invoices.first_mut() {
                    invoice.lines[0].amount += Decimal::ONE;
                    invoice.subtotal += Decimal::ONE;
                    invoice.total += Decimal::ONE;
                }
            }
            Bug::InvoicesReversed => back.invoices.reverse(),
            Bug::LastPaymentLost => drop(back.payments.pop()),
            Bug::CancelFails => {}
        }
        Ok(back)
    }
}

#[tokio::test]
async fn the_reference_conforms_to_itself() {
    let report = run_with(&Reference, &[bundled("full-month.toml")])
        .await
        .unwrap();
    assert_eq!(report.counts(), (1, 0, 0), "{}", report.to_text());
    assert!(report.conforms());
}

#[tokio::test]
async fn two_invoices_of_one_tenant_and_period_are_each_compared_with_their_own() {
    // acme-dollars cancels its USD subscription and subscribes in KRW on the 20th: two
    // October invoices, paired in order, not both with the first.
    let report = run_with(&Reference, &[bundled("plan-change-across-currencies.toml")])
        .await
        .unwrap();
    assert_eq!(report.counts(), (1, 0, 0), "{}", report.to_text());
}

#[tokio::test]
async fn a_driver_that_bills_a_line_wrong_gets_the_invoice_line_values_and_rule() {
    let report = run_with(&Planted(Bug::OffByOne), &[bundled("full-month.toml")])
        .await
        .unwrap();
    let scenario = &report.scenarios[0];
    assert_eq!(scenario.verdict, Verdict::Differs);
    assert!(!report.conforms());
    let text = report.to_text();
    assert!(
        text.contains(
            "invoice acme-analytics 2026-09, line 1 (base pro): amount: expected 99000, got 99001\n    \
             rule: the base fee is prorated: fee × days used / days in the month, rounded down to \
             the currency's unit"
        ),
        "{text}"
    );
    // Its own expectation of 99000 does not hold either, with the place in the file.
    assert!(
        scenario
            .failures
            .iter()
            .any(|f| f.contains("full-month.toml:") && f.contains("99000")),
        "{:?}",
        scenario.failures
    );
    assert!(
        text.ends_with("off-by-one: 0 conform, 1 differ, 0 not supported, of 1 scenarios\n"),
        "{text}"
    );
}

#[tokio::test]
async fn a_scenario_needing_what_a_driver_lacks_is_reported_not_supported() {
    let report = run_with(
        &Planted(Bug::OffByOne),
        &[bundled("purge-a-member-who-leaves.toml")],
    )
    .await
    .unwrap();
    assert_eq!(
        report.scenarios[0].verdict,
        Verdict::Unsupported {
            what: "purge".to_owned()
        }
    );
    assert!(report.conforms(), "not supported is not a difference");
    // `scenario run --driver --format json` prints this document.
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["driver"], "off-by-one");
    assert_eq!(json["scenarios"][0]["verdict"], "unsupported");
    assert_eq!(json["scenarios"][0]["what"], "purge");
    assert!(
        report
            .to_text()
            .contains("not supported (off-by-one has no purge)")
    );
}

#[tokio::test]
async fn a_file_that_is_not_a_scenario_is_an_error_naming_it() {
    let dir = std::env::temp_dir().join(format!("bh-conformance-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "version = 1\nname = 3\n").unwrap();
    let err = run_with(&Reference, &[&bad]).await.unwrap_err();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        matches!(&err, billing_scenarios::RunError::Invalid(e) if format!("{e:?}").contains("bad.toml")),
        "{err:?}"
    );
}

#[tokio::test]
async fn results_pair_by_what_they_are_not_by_the_order_they_were_read() {
    let report = run_with(
        &Planted(Bug::InvoicesReversed),
        &[
            bundled("plan-change-across-currencies.toml"),
            bundled("declined-dunning.toml"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(report.counts(), (2, 0, 0), "{}", report.to_text());
}

#[tokio::test]
async fn a_result_on_one_side_only_is_a_difference_with_none_on_the_other() {
    let report = run_with(
        &Planted(Bug::LastPaymentLost),
        &[bundled("declined-dunning.toml")],
    )
    .await
    .unwrap();
    let text = report.to_text();
    assert!(
        text.contains(
            "  payment acme-analytics 2026-11 attempt 4: present: expected failed on 2026-12-08 \
             (23100), got none\n    rule: month M is charged on the charge day"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn a_driver_that_fails_ends_the_run_naming_the_scenario_and_the_driver() {
    let err = run_with(
        &Planted(Bug::CancelFails),
        &[bundled("cancel-mid-month.toml")],
    )
    .await
    .unwrap_err();
    let mut shown = err.to_string();
    let mut cause = std::error::Error::source(&err);
    while let Some(c) = cause {
        shown.push_str(&format!(": {c}"));
        cause = c.source();
    }
    assert!(
        shown.contains("cancel-mid-month.toml through planted failed")
            && shown.contains("connection refused"),
        "{shown}"
    );
}
