//! `harness-product-mock`: the product mocks as a server of their own, the entrypoint of the
//! product-mock image. It serves a [`ProductHost`] (one mock per namespace, with the control API)
//! on `0.0.0.0:8080`, prints `product mock listening on ADDRESS` once it accepts connections, and
//! exits cleanly on SIGTERM or SIGINT.
//!
//! `--port N` (or `HARNESS_PRODUCT_MOCK_PORT`) chooses the port.

use std::net::SocketAddr;
use std::process::ExitCode;

use billing_platform::products::ProductHost;
use tokio::signal::unix::{SignalKind, signal};

fn main() -> ExitCode {
    let port = match port(std::env::args().skip(1).collect()) {
        Ok(port) => port,
        Err(why) => {
            eprintln!("harness-product-mock: {why}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("harness-product-mock: could not start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(port))
}

async fn serve(port: u16) -> ExitCode {
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(term), Ok(int)) => (term, int),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("harness-product-mock: could not handle signals: {e}");
            return ExitCode::FAILURE;
        }
    };
    let host = match ProductHost::bind(SocketAddr::from(([0, 0, 0, 0], port))).await {
        Ok(host) => host,
        Err(e) => {
            eprintln!("harness-product-mock: could not listen on port {port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let address = host.url().trim_start_matches("http://").to_owned();
    println!("product mock listening on {address}");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    println!("product mock stopping ({} namespaces)", host.namespaces());
    ExitCode::SUCCESS
}

/// The port from `--port N`, else `HARNESS_PRODUCT_MOCK_PORT`, else 8080.
fn port(args: Vec<String>) -> Result<u16, String> {
    let parse = |v: &str| {
        v.parse::<u16>()
            .map_err(|_| format!("{v:?} is not a port number"))
    };
    match args.as_slice() {
        [] => match std::env::var("HARNESS_PRODUCT_MOCK_PORT") {
            Ok(v) if !v.trim().is_empty() => parse(v.trim()),
            _ => Ok(8080),
        },
        [flag, v] if flag == "--port" => parse(v),
        _ => Err("usage: harness-product-mock [--port N]".into()),
    }
}
