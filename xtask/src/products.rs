//! `cargo xtask products`: product mocks for a person to poke with `curl`, served where
//! `HARNESS_PRODUCTS` says, exactly as the tests get them.

use std::net::SocketAddr;
use std::process::ExitCode;

use billing_harness::env::{Config, ProductsChoice, product_mock_container};
use billing_harness::products::ProductHost;
use clap::Subcommand;

/// The `products` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Serve product mocks, one per namespace (`URL/ns/NAME/v1/...`, control calls at
    /// `URL/ns/NAME/_mock`), until interrupted: in this process, or in the product-mock container
    /// with HARNESS_PRODUCTS=container. Prints the base URL on the first line.
    Up(crate::format::Output),
}

pub(crate) fn run(command: Command) -> anyhow::Result<ExitCode> {
    let Command::Up(output) = command;
    crate::runtime()?.block_on(async {
        let config = Config::from_env()?;
        let mut ctrl_c = crate::listen_for_ctrl_c()?;
        match config.products {
            ProductsChoice::InProcess => {
                let host = ProductHost::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
                let url = host.url();
                output.emit(&serde_json::json!({ "url": url }), |_| format!("{url}\n"))?;
                eprintln!("product mocks served in this process; Ctrl-C stops them");
                ctrl_c.recv().await;
            }
            ProductsChoice::Container => {
                let container =
                    product_mock_container(config.product_mock_image.as_deref(), &config.state_dir)
                        .await?;
                let url = &container.url;
                let up = serde_json::json!({"url": url, "container": container.id});
                output.emit(&up, |_| format!("{url}\n"))?;
                eprintln!(
                    "product mocks served by container {} (started in {:.1} s); it is removed when this command ends",
                    &container.id[..12.min(container.id.len())],
                    container.started_in.as_secs_f64()
                );
                ctrl_c.recv().await;
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
