//! `cargo billing-harness`: the QA commands (databases, scenarios, contracts, the clock, purges,
//! product mocks) in an adopter's repository, installed with `cargo install --path xtask`.

fn main() -> std::process::ExitCode {
    xtask::qa_main()
}
