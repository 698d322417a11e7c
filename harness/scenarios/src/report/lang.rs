//! The languages of the report pages: every label and sentence, in English and Korean, as
//! templates with named `{placeholders}` filled by [`fill`].

use std::str::FromStr;

/// A language of the report pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// English (the default).
    #[default]
    En,
    /// Korean, for the QA team.
    Ko,
}

impl Lang {
    /// Every language, in a fixed order.
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Ko];

    /// The language a locale such as `LANG=ko_KR.UTF-8` asks for: Korean for `ko…`, else
    /// English (also when unset).
    pub fn from_locale(locale: Option<&str>) -> Lang {
        match locale {
            Some(l) if l.to_ascii_lowercase().starts_with("ko") => Lang::Ko,
            _ => Lang::En,
        }
    }

    /// The BCP 47 tag of the page's `lang` attribute: `en` or `ko`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ko => "ko",
        }
    }

    /// Every label and sentence in this language.
    pub fn words(self) -> &'static Words {
        match self {
            Lang::En => &EN,
            Lang::Ko => &KO,
        }
    }
}

impl FromStr for Lang {
    type Err = String;

    fn from_str(text: &str) -> Result<Lang, String> {
        match text {
            "en" => Ok(Lang::En),
            "ko" => Ok(Lang::Ko),
            other => Err(format!("no language {other:?}: use en or ko")),
        }
    }
}

/// The labels and sentence templates of one language. A template's `{name}` is filled by
/// `fill`; both languages use the same names in each template.
#[derive(Debug)]
pub struct Words {
    /// The `<title>` of a scenario page: `{name}`.
    pub page_title: &'static str,
    /// The dates a scenario covers: `{start}`, `{until}`.
    pub covers: &'static str,
    /// The result when every step gave the error it expected.
    pub holds: &'static str,
    /// The result otherwise.
    pub fails: &'static str,
    /// The heading of the failures.
    pub why_not: &'static str,
    /// The heading of the timeline.
    pub timeline: &'static str,
    /// The timeline picture's title: `{name}`.
    pub timeline_title: &'static str,
    /// The timeline picture's description.
    pub timeline_desc: &'static str,
    /// The heading of the legend.
    pub legend: &'static str,
    /// Legend: plan periods.
    pub legend_plan: &'static str,
    /// Legend: usage bars and the quota line.
    pub legend_usage: &'static str,
    /// Legend: usage above the quota.
    pub legend_over: &'static str,
    /// Legend: invoices.
    pub legend_invoice: &'static str,
    /// Legend: a payment that succeeded.
    pub legend_paid: &'static str,
    /// Legend: a payment that failed.
    pub legend_failed: &'static str,
    /// Legend: expected errors.
    pub legend_error: &'static str,
    /// The heading of the invoices.
    pub invoices: &'static str,
    /// The heading of the payment attempts.
    pub payments: &'static str,
    /// The heading of the subscription states.
    pub states: &'static str,
    /// The heading of the expected errors.
    pub errors: &'static str,
    /// Shown when a section has nothing.
    pub none: &'static str,
    /// Lane label: plan periods.
    pub lane_plans: &'static str,
    /// Lane label: the subscription's state.
    pub lane_state: &'static str,
    /// Lane label: usage of `{metric}`.
    pub lane_usage: &'static str,
    /// Lane label: invoices.
    pub lane_invoices: &'static str,
    /// Lane label: payment attempts.
    pub lane_payments: &'static str,
    /// Lane label: expected errors.
    pub lane_errors: &'static str,
    /// A month on the axis: `{year}`, `{month}` (number), `{mon}` (English short name).
    pub month: &'static str,
    /// The today line.
    pub today: &'static str,
    /// A plan period's label: `{plan}`, `{fee}`.
    pub plan_label: &'static str,
    /// A plan period's tooltip: `{plan}`, `{from}`, `{until}`, `{fee}`.
    pub plan_tip: &'static str,
    /// The end of an open plan period.
    pub open: &'static str,
    /// Subscription state `active`.
    pub active: &'static str,
    /// Subscription state `past_due`.
    pub past_due: &'static str,
    /// Subscription state `cancelled`.
    pub cancelled: &'static str,
    /// A state's label: `{state}`, `{day}`.
    pub state_label: &'static str,
    /// A state's tooltip: `{state}`, `{from}`, `{until}`.
    pub state_tip: &'static str,
    /// The quota line's label: `{quota}`.
    pub quota_label: &'static str,
    /// The label of the day usage went over the quota: `{day}`.
    pub over_label: &'static str,
    /// A usage bar's tooltip: `{date}`, `{metric}`, `{day_used}`, `{used}`, `{quota}`.
    pub usage_tip: &'static str,
    /// The quota line's tooltip: `{plan}`, `{metric}`, `{included}`, `{days}`, `{month_days}`,
    /// `{quota}`.
    pub quota_tip: &'static str,
    /// An invoice's label: `{period}`, `{total}`.
    pub invoice_label: &'static str,
    /// An invoice's tooltip: `{period}`, `{status}`, `{subtotal}`, `{tax}`, `{total}`, `{day}`.
    pub invoice_tip: &'static str,
    /// A payment attempt's label: `{day}`, `{mark}`, `{outcome}`.
    pub payment_label: &'static str,
    /// A payment attempt's tooltip: `{date}`, `{attempt}`, `{period}`, `{amount}`, `{outcome}`,
    /// `{reason}`.
    pub payment_tip: &'static str,
    /// Payment outcome `succeeded`.
    pub succeeded: &'static str,
    /// Payment outcome `failed`.
    pub failed: &'static str,
    /// An expected error's label: `{day}`, `{code}`.
    pub error_label: &'static str,
    /// An expected error's tooltip: `{step}`, `{date}`, `{code}`.
    pub error_tip: &'static str,
    /// Invoice status `finalized`.
    pub finalized: &'static str,
    /// Invoice status `paid`.
    pub paid: &'static str,
    /// Invoice status `past_due`.
    pub invoice_past_due: &'static str,
    /// Invoice status `uncollectible`.
    pub uncollectible: &'static str,
    /// An invoice's heading: `{tenant}`, `{period}`, `{status}`.
    pub invoice_heading: &'static str,
    /// Column: the line.
    pub col_line: &'static str,
    /// Column: the rule in words.
    pub col_rule: &'static str,
    /// Column: the amount.
    pub col_amount: &'static str,
    /// Column: a tenant.
    pub col_tenant: &'static str,
    /// Column: a day.
    pub col_day: &'static str,
    /// Column: the invoice's month.
    pub col_invoice: &'static str,
    /// Column: the attempt number.
    pub col_attempt: &'static str,
    /// Column: the outcome.
    pub col_outcome: &'static str,
    /// Column: the failure's code.
    pub col_reason: &'static str,
    /// Column: a state.
    pub col_state: &'static str,
    /// Column: a step number.
    pub col_step: &'static str,
    /// Column: an error code.
    pub col_code: &'static str,
    /// Line kind `base`.
    pub base: &'static str,
    /// Line kind `overage`.
    pub overage: &'static str,
    /// The rule of a base line: `{plan}`, `{days}`, `{month_days}`, `{fee}`.
    pub base_rule: &'static str,
    /// The rule of an overage line: `{metric}`, `{used}`, `{blocks}`, `{block}`, `{quota}`,
    /// `{price}`.
    pub overage_rule: &'static str,
    /// The rule of an overage line in one block: same names as `overage_rule`.
    pub overage_rule_one: &'static str,
    /// Subtotal row.
    pub subtotal: &'static str,
    /// Tax row.
    pub tax: &'static str,
    /// Total row.
    pub total: &'static str,
    /// The index page's title.
    pub index_title: &'static str,
    /// The index page's summary: `{held}`, `{count}`.
    pub index_summary: &'static str,
    /// Column: the scenario.
    pub col_scenario: &'static str,
    /// Column: the result.
    pub col_result: &'static str,
    /// Column: the number of invoices.
    pub col_invoices: &'static str,
    /// Column: the totals.
    pub col_totals: &'static str,
    /// The result of a file that could not be read.
    pub invalid: &'static str,
    /// A contract's plan period label: `{base}`, `{fee}`.
    pub contract_plan_label: &'static str,
    /// A contract named in rules and tooltips: `{base}`.
    pub contract_name: &'static str,
    /// Lane label: contract steps.
    pub lane_contracts: &'static str,
    /// A contract step's label: `{day}`, `{base}`.
    pub contract_label: &'static str,
    /// A contract step's tooltip: `{step}`, `{date}`, `{base}`, `{terms}`.
    pub contract_tip: &'static str,
    /// Lane label: purge steps.
    pub lane_purges: &'static str,
    /// A purge step's label: `{day}`, `{rows}` (rows deleted).
    pub purge_label: &'static str,
    /// A purge step's tooltip: `{step}`, `{date}`, `{purged}`, `{rows}`, `{tables}`, `{told}`.
    pub purge_tip: &'static str,
    /// A contract's fee in its tooltip: `{fee}`.
    pub term_fee: &'static str,
    /// A contract's quota of one metric: `{metric}`, `{count}`.
    pub term_included: &'static str,
    /// A contract's overage price of one metric: `{metric}`, `{price}`, `{block}`.
    pub term_overage: &'static str,
    /// A contract's limit: `{limit}`, `{value}`.
    pub term_limit: &'static str,
    /// A contract's term end: `{date}`.
    pub term_ends: &'static str,
    /// The heading of the product lanes.
    pub products_heading: &'static str,
    /// A day's answered requests to a product: `{day}`, `{count}`.
    pub delivered_label: &'static str,
    /// Their tooltip: `{date}`, `{product}`, `{count}`, `{requests}`.
    pub delivered_tip: &'static str,
    /// A day's faults and failed requests: `{day}`, `{faults}`.
    pub fault_label: &'static str,
    /// Their tooltip: `{date}`, `{product}`, `{count}`, `{requests}`.
    pub fault_tip: &'static str,
    /// A request that got no answer.
    pub no_answer: &'static str,
    /// A repeated idempotency key, answered without applying it.
    pub replayed: &'static str,
    /// A drift step's label: `{day}`.
    pub drift_label: &'static str,
    /// A drift step's tooltip: `{step}`, `{date}`, `{product}`, `{tenant}`.
    pub drift_tip: &'static str,
    /// The end of a product that converged: `{repaired}`.
    pub converged_label: &'static str,
    /// The end of a product that did not: `{drift}`.
    pub not_converged_label: &'static str,
    /// Its tooltip: `{product}`, `{date}`, `{result}`, `{requests}`, `{faults}`, `{dead}`, `{repaired}`, `{drift}`.
    pub product_end_tip: &'static str,
    /// A product's outage: a band over its days: `{from}`, `{until}` (`10-10 09:00`).
    pub outage_label: &'static str,
    /// Its tooltip: `{product}`, `{from}`, `{until}`, `{length}`, `{fault}`.
    pub outage_tip: &'static str,
    /// When a product held the platform's data again after an outage: `{day}`, `{time}`.
    pub caught_up_label: &'static str,
    /// Its tooltip: `{product}`, `{at}`, `{rows}`, `{wait}`.
    pub caught_up_tip: &'static str,
    /// A product that converged.
    pub converged: &'static str,
    /// A product that did not.
    pub not_converged: &'static str,
    /// Legend: requests a product answered.
    pub legend_delivered: &'static str,
    /// Legend: faults and failed requests.
    pub legend_fault: &'static str,
    /// Legend: a product drifting from the platform.
    pub legend_drift: &'static str,
    /// Legend: the convergence result.
    pub legend_converged: &'static str,
    /// Legend: a contract step.
    pub legend_contract: &'static str,
    /// Legend: a product's outage.
    pub legend_outage: &'static str,
    /// Legend: when a product held the platform's data again after it.
    pub legend_caught_up: &'static str,
}

/// English.
pub(crate) const EN: Words = Words {
    page_title: "{name}: scenario report",
    covers: "From {start} to {until}. The scenario",
    holds: "holds",
    fails: "does not hold",
    why_not: "Why it does not hold",
    timeline: "Timeline",
    timeline_title: "Timeline of {name}",
    timeline_desc: "One column per day; for each tenant its plan periods, subscription state, usage against the prorated quota, invoices, payment attempts, expected errors and contracts; then for each product its requests, faults, drift and convergence.",
    legend: "How to read the timeline",
    legend_plan: "plan period, labelled with plan and monthly fee",
    legend_usage: "usage so far in the plan period, and the prorated quota (dashed line)",
    legend_over: "usage above the quota: overage",
    legend_invoice: "invoice, at its close, labelled with its total",
    legend_paid: "payment attempt that succeeded",
    legend_failed: "payment attempt that failed",
    legend_error: "step refused with its expected error code",
    invoices: "Invoices",
    payments: "Payment attempts",
    states: "Subscription states",
    errors: "Expected errors",
    none: "None.",
    lane_plans: "plan",
    lane_state: "state",
    lane_usage: "usage: {metric}",
    lane_invoices: "invoices",
    lane_payments: "payments",
    lane_errors: "errors",
    month: "{mon} {year}",
    today: "today",
    plan_label: "{plan} · {fee}/month",
    plan_tip: "{plan} from {from} until {until}; base fee {fee} a month",
    open: "open",
    active: "active",
    past_due: "past due",
    cancelled: "cancelled",
    state_label: "{state} {day}",
    state_tip: "{state} from {from} until {until}",
    quota_label: "quota {quota}",
    over_label: "over quota {day}",
    usage_tip: "{date}: {day_used} {metric} used this day, {used} so far in the period; prorated quota {quota}",
    quota_tip: "{plan}: {included} {metric} a month × {days} of {month_days} days = prorated quota {quota}",
    invoice_label: "{period} {total}",
    invoice_tip: "invoice {period}, closed on {day} ({status}): subtotal {subtotal}, tax {tax}, total {total}",
    payment_label: "{day} {mark} {outcome}",
    payment_tip: "{date}: attempt {attempt} for invoice {period}, {amount}, {outcome}{reason}",
    succeeded: "paid",
    failed: "failed",
    error_label: "{day} {code}",
    error_tip: "step {step} on {date} was refused as expected: {code}",
    finalized: "finalized",
    paid: "paid",
    invoice_past_due: "past due",
    uncollectible: "uncollectible",
    invoice_heading: "{tenant}, {period} ({status})",
    col_line: "line",
    col_rule: "rule",
    col_amount: "amount",
    col_tenant: "tenant",
    col_day: "day",
    col_invoice: "invoice",
    col_attempt: "attempt",
    col_outcome: "outcome",
    col_reason: "reason",
    col_state: "state",
    col_step: "step",
    col_code: "code",
    base: "base fee",
    overage: "overage",
    base_rule: "{plan}, {days} of {month_days} days of {fee}",
    overage_rule: "{metric}: {used} used, {blocks} blocks of {block} over the prorated quota of {quota}, at {price} a block",
    overage_rule_one: "{metric}: {used} used, {blocks} block of {block} over the prorated quota of {quota}, at {price} a block",
    subtotal: "subtotal",
    tax: "tax",
    total: "total",
    index_title: "Scenario run",
    index_summary: "{held} of {count} scenarios hold.",
    col_scenario: "scenario",
    col_result: "result",
    col_invoices: "invoices",
    col_totals: "invoice totals",
    invalid: "invalid file",
    contract_plan_label: "contract over {base} · {fee}/month",
    contract_name: "contract over {base}",
    lane_contracts: "contracts",
    contract_label: "{day} contract over {base}",
    contract_tip: "step {step} on {date}: contract over {base}; {terms}",
    lane_purges: "purges",
    purge_label: "{day} purged · {rows} rows",
    purge_tip: "step {step} on {date}: {purged}; {rows} rows deleted ({tables}); products told: {told}",
    term_fee: "base fee {fee} a month",
    term_included: "{count} {metric} included",
    term_overage: "{price} per {block} {metric} over",
    term_limit: "{limit} {value}",
    term_ends: "ends on {date}",
    products_heading: "products",
    delivered_label: "{day} ✓ {count}",
    delivered_tip: "{date}: {count} request(s) to {product} answered 2xx: {requests}",
    fault_label: "{day} ✗ {faults}",
    fault_tip: "{date}: {count} request(s) to {product} with a fault or no 2xx answer: {requests}",
    no_answer: "no answer",
    replayed: "replay",
    drift_label: "{day} drift",
    drift_tip: "step {step} on {date}: {product}'s copy of {tenant} changed behind the platform's back",
    converged_label: "converged · {repaired} repaired",
    not_converged_label: "not converged · {drift} differ",
    product_end_tip: "{product} at {date}: {result}; {requests} requests, {faults} faults applied, {dead} dead letters; repaired: {repaired}; still differs: {drift}",
    outage_label: "down {from} → {until}",
    outage_tip: "{product} was down from {from} until {until} ({length}): every request in between failed with {fault}",
    caught_up_label: "{day} caught up {time}",
    caught_up_tip: "{product} held the platform's data again from {at}; the rows that waited longest ({rows}) waited {wait}",
    converged: "converged",
    not_converged: "not converged",
    legend_delivered: "requests a product answered (2xx), with their number",
    legend_fault: "faults put on requests, and requests without a 2xx answer",
    legend_drift: "a product changed behind the platform's back",
    legend_converged: "the product's convergence at the end, with its repairs",
    legend_contract: "contract signed (a custom plan over a catalog plan)",
    legend_outage: "a product down: every request in the window fails",
    legend_caught_up: "when the product held the platform's data again",
};

/// Korean.
pub(crate) const KO: Words = Words {
    page_title: "{name}: 시나리오 보고서",
    covers: "{start}부터 {until}까지. 시나리오 결과:",
    holds: "통과",
    fails: "실패",
    why_not: "실패 이유",
    timeline: "타임라인",
    timeline_title: "{name} 타임라인",
    timeline_desc: "하루에 한 칸씩, 테넌트마다 요금제 기간, 구독 상태, 일할 한도 대비 사용량, 청구서, 결제 시도, 예상된 오류, 계약을, 그리고 제품마다 요청, 장애, 불일치, 수렴 결과를 보여 줍니다.",
    legend: "타임라인 읽는 법",
    legend_plan: "요금제 기간 (요금제와 월 기본료)",
    legend_usage: "요금제 기간 누적 사용량과 일할 한도 (점선)",
    legend_over: "한도를 넘은 사용량: 초과 사용",
    legend_invoice: "월 마감 때 만든 청구서와 합계",
    legend_paid: "성공한 결제 시도",
    legend_failed: "실패한 결제 시도",
    legend_error: "예상한 오류 코드로 거부된 단계",
    invoices: "청구서",
    payments: "결제 시도",
    states: "구독 상태",
    errors: "예상된 오류",
    none: "없음.",
    lane_plans: "요금제",
    lane_state: "상태",
    lane_usage: "사용량: {metric}",
    lane_invoices: "청구서",
    lane_payments: "결제",
    lane_errors: "오류",
    month: "{year}년 {month}월",
    today: "오늘",
    plan_label: "{plan} · 월 {fee}",
    plan_tip: "{plan}: {from}부터 {until}까지, 월 기본료 {fee}",
    open: "계속",
    active: "활성",
    past_due: "연체",
    cancelled: "해지",
    state_label: "{state} {day}",
    state_tip: "{state}: {from}부터 {until}까지",
    quota_label: "한도 {quota}",
    over_label: "한도 초과 {day}",
    usage_tip: "{date}: 당일 {metric} {day_used}, 기간 누적 {used}, 일할 한도 {quota}",
    quota_tip: "{plan}: 월 {metric} {included} × {month_days}일 중 {days}일 = 일할 한도 {quota}",
    invoice_label: "{period} {total}",
    invoice_tip: "{period} 청구서, {day} 마감 ({status}): 소계 {subtotal}, 세금 {tax}, 합계 {total}",
    payment_label: "{day} {mark} {outcome}",
    payment_tip: "{date}: {period} 청구서 {attempt}차 시도, {amount}, {outcome}{reason}",
    succeeded: "성공",
    failed: "실패",
    error_label: "{day} {code}",
    error_tip: "{date} {step}단계가 예상대로 거부됨: {code}",
    finalized: "확정",
    paid: "결제 완료",
    invoice_past_due: "연체",
    uncollectible: "회수 불능",
    invoice_heading: "{tenant}, {period} ({status})",
    col_line: "항목",
    col_rule: "계산",
    col_amount: "금액",
    col_tenant: "테넌트",
    col_day: "날짜",
    col_invoice: "청구서",
    col_attempt: "시도",
    col_outcome: "결과",
    col_reason: "사유",
    col_state: "상태",
    col_step: "단계",
    col_code: "코드",
    base: "기본료",
    overage: "초과 사용료",
    base_rule: "{plan}, {month_days}일 중 {days}일, 월 {fee}",
    overage_rule: "{metric}: {used} 사용, 일할 한도 {quota} 초과분 {block} 단위 {blocks}블록, 블록당 {price}",
    overage_rule_one: "{metric}: {used} 사용, 일할 한도 {quota} 초과분 {block} 단위 {blocks}블록, 블록당 {price}",
    subtotal: "소계",
    tax: "세금",
    total: "합계",
    index_title: "시나리오 실행 결과",
    index_summary: "시나리오 {count}개 중 {held}개 통과.",
    col_scenario: "시나리오",
    col_result: "결과",
    col_invoices: "청구서 수",
    col_totals: "청구서 합계",
    invalid: "잘못된 파일",
    contract_plan_label: "{base} 기반 계약 · 월 {fee}",
    contract_name: "{base} 기반 계약",
    lane_contracts: "계약",
    contract_label: "{day} {base} 기반 계약",
    contract_tip: "{date} 단계 {step}: {base} 기반 계약; {terms}",
    lane_purges: "삭제",
    purge_label: "{day} 삭제 · {rows}행",
    purge_tip: "{date} 단계 {step}: {purged}; {rows}행 삭제 ({tables}); 제품에 알림: {told}",
    term_fee: "월 기본료 {fee}",
    term_included: "{metric} {count} 포함",
    term_overage: "{metric} 초과 {block}당 {price}",
    term_limit: "{limit} {value}",
    term_ends: "{date}에 종료",
    products_heading: "제품",
    delivered_label: "{day} ✓ {count}",
    delivered_tip: "{date}: {product}에 보낸 요청 {count}건 2xx 응답: {requests}",
    fault_label: "{day} ✗ {faults}",
    fault_tip: "{date}: {product}에 보낸 요청 중 장애 또는 2xx 아닌 응답 {count}건: {requests}",
    no_answer: "응답 없음",
    replayed: "재전송",
    drift_label: "{day} 불일치",
    drift_tip: "{date} 단계 {step}: {product}가 플랫폼 모르게 {tenant}의 사본을 바꿈",
    converged_label: "수렴 · 복구 {repaired}건",
    not_converged_label: "수렴 안 됨 · 불일치 {drift}건",
    product_end_tip: "{date}의 {product}: {result}; 요청 {requests}건, 적용된 장애 {faults}건, 포기한 전송 {dead}건; 복구: {repaired}; 남은 불일치: {drift}",
    outage_label: "중단 {from} → {until}",
    outage_tip: "{product} 중단: {from}부터 {until}까지 ({length}), 그 사이 모든 요청이 {fault}로 실패",
    caught_up_label: "{day} {time} 따라잡음",
    caught_up_tip: "{product}는 {at}부터 다시 플랫폼의 데이터를 가짐; 가장 오래 기다린 전송 {rows}건은 {wait} 기다림",
    converged: "수렴",
    not_converged: "수렴 안 됨",
    legend_delivered: "제품이 응답한(2xx) 요청과 그 수",
    legend_fault: "요청에 건 장애와 2xx 응답을 못 받은 요청",
    legend_drift: "플랫폼 모르게 바뀐 제품",
    legend_converged: "마지막의 제품 수렴 결과와 복구",
    legend_contract: "계약 체결(카탈로그 요금제 기반 맞춤 요금제)",
    legend_outage: "제품 중단: 그 시간의 모든 요청이 실패",
    legend_caught_up: "제품이 다시 플랫폼의 데이터를 갖게 된 때",
};

/// `template` with each `{name}` replaced by its value from `values`; an unknown name stays.
pub(crate) fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match values.iter().find(|(n, _)| *n == name) {
                    Some((_, value)) => out.push_str(value),
                    None => out.push_str(&rest[open..open + close + 2]),
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The `{names}` a template uses, in order.
#[cfg(test)]
fn placeholders(template: &str) -> Vec<&str> {
    template
        .split('{')
        .skip(1)
        .filter_map(|part| part.split_once('}').map(|(name, _)| name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_replaces_names_and_keeps_unknown_ones() {
        assert_eq!(
            fill("{plan}, {days} of {x}", &[("plan", "pro"), ("days", "22")]),
            "pro, 22 of {x}"
        );
        assert_eq!(fill("no {brace", &[]), "no {brace");
    }

    /// Each template of Korean uses the names its English one does (the axis's month names
    /// its parts differently), read from the `Debug` text of both.
    #[test]
    fn both_languages_fill_the_same_placeholders() {
        let fields = |w: &Words| -> Vec<(String, Vec<String>)> {
            format!("{w:#?}")
                .lines()
                .filter_map(|line| line.trim().split_once(": "))
                .map(|(name, value)| {
                    let mut names: Vec<String> =
                        placeholders(value).into_iter().map(str::to_owned).collect();
                    names.sort();
                    (name.to_owned(), names)
                })
                .collect()
        };
        let (en, ko) = (fields(&EN), fields(&KO));
        assert_eq!(en.len(), ko.len());
        assert!(en.len() > 80, "{}", en.len());
        for ((name, en), (_, ko)) in en.iter().zip(&ko) {
            if name != "month" {
                assert_eq!(en, ko, "{name}");
            }
        }
    }

    #[test]
    fn locale_picks_korean_only_for_ko() {
        assert_eq!(Lang::from_locale(Some("ko_KR.UTF-8")), Lang::Ko);
        assert_eq!(Lang::from_locale(Some("en_US.UTF-8")), Lang::En);
        assert_eq!(Lang::from_locale(Some("C")), Lang::En);
        assert_eq!(Lang::from_locale(None), Lang::En);
        assert_eq!("ko".parse::<Lang>(), Ok(Lang::Ko));
        assert!("fr".parse::<Lang>().is_err());
    }
}
