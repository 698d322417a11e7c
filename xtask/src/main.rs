//! `cargo xtask`: the workspace's commands for people and CI (databases, diagnosis, benchmarks).

fn main() -> std::process::ExitCode {
    xtask::xtask_main()
}
