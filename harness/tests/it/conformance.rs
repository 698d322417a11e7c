//! `scenario::run_with`: scenarios through a driver and through the reference in one run, every
//! result compared, each difference named with its invoice, line, values and rule.

use std::path::{Path, PathBuf};

use billing_harness::TestEnv;
use billing_harness::model::ContractTerms;
use billing_harness::payments::TestCard;
use billing_harness::scenario::driver::{DriverError, ReadBack, Session};
use billing_harness::scenario::{
    Driver, OrgDef, Reference, ReferenceSession, Scenario, TenantDef, Verdict, run_with,
};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

fn bundled(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(name)
}

/// The reference with one planted bug: the first invoice's first line, and so its subtotal and
/// total, bill one unit more than it wrote. It does no purge (the trait's default).
struct OffByOne;

struct OffByOneSession(ReferenceSession<TestEnv>);

impl Driver for OffByOne {
    type Session = OffByOneSession;

    fn name(&self) -> &str {
        "off-by-one"
    }

    async fn start(&self, scenario: &Scenario) -> Result<OffByOneSession, DriverError> {
        Reference.start(scenario).await.map(OffByOneSession)
    }
}

impl Session for OffByOneSession {
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
        if let Some(invoice) = back.invoices.first_mut() {
            invoice.lines[0].amount += Decimal::ONE;
            invoice.subtotal += Decimal::ONE;
            invoice.total += Decimal::ONE;
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
    let report = run_with(&OffByOne, &[bundled("full-month.toml")])
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
    let report = run_with(&OffByOne, &[bundled("purge-a-member-who-leaves.toml")])
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
    let shown = format!("{err:?}");
    assert!(shown.contains("bad.toml"), "{shown}");
}
