//! The platform's billing rules as pure functions over plain data: no database, no clock.
//!
//! [`invoice`] is the reference: the monthly close stores what it returns, and a backend repo can
//! call it to get the expected invoice for its own billing code. The rules, with worked examples,
//! are in [`rules`].

mod invoice;
pub mod rules;
#[cfg(test)]
mod tests;

pub use invoice::{Invoice, InvoiceInput, Line, LineKind, PlanPeriod, Usage, invoice};
