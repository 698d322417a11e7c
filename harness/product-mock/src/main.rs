//! `harness-product-mock`: the product mocks as a server of their own, the entrypoint of the
//! product-mock image. It serves a [`ProductHost`] (one mock per namespace, with the control API,
//! which has no authentication) on `127.0.0.1:8080`, prints `product mock listening on ADDRESS`
//! once it accepts connections, and exits cleanly on SIGTERM or SIGINT.
//!
//! `--port N` (or `HARNESS_PRODUCT_MOCK_PORT`) chooses the port, `--host ADDRESS` (or
//! `HARNESS_PRODUCT_MOCK_HOST`) the address: the image says `--host 0.0.0.0`, since inside a
//! container the engine's port forwarding arrives on the container's own interface, and the
//! harness publishes that port on the machine's 127.0.0.1 only.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use billing_platform::products::ProductHost;
use tokio::signal::unix::{SignalKind, signal};

fn main() -> ExitCode {
    let address = match address(std::env::args().skip(1).collect(), |var| {
        std::env::var(var).ok()
    }) {
        Ok(address) => address,
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
    runtime.block_on(serve(address))
}

async fn serve(address: SocketAddr) -> ExitCode {
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
    let host = match ProductHost::bind(address).await {
        Ok(host) => host,
        Err(e) => {
            eprintln!("harness-product-mock: could not listen on {address}: {e}");
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

/// Where to listen: `--host ADDRESS` and `--port N` (in any order), else
/// `HARNESS_PRODUCT_MOCK_HOST` and `HARNESS_PRODUCT_MOCK_PORT` as `var` reads them, else
/// 127.0.0.1 and 8080.
fn address(args: Vec<String>, var: impl Fn(&str) -> Option<String>) -> Result<SocketAddr, String> {
    const USAGE: &str = "usage: harness-product-mock [--host ADDRESS] [--port N]";
    let given = |name: &str| {
        var(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let mut host = given("HARNESS_PRODUCT_MOCK_HOST");
    let mut port = given("HARNESS_PRODUCT_MOCK_PORT");
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        let slot = match flag.as_str() {
            "--host" => &mut host,
            "--port" => &mut port,
            _ => return Err(USAGE.into()),
        };
        *slot = Some(args.next().ok_or(USAGE)?);
    }
    let host = match host {
        Some(h) => h
            .parse::<IpAddr>()
            .map_err(|_| format!("{h:?} is not an IP address"))?,
        None => IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| format!("{p:?} is not a port number"))?,
        None => 8080,
    };
    Ok(SocketAddr::new(host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str], vars: &[(&str, &str)]) -> Result<String, String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        address(args.iter().map(|a| (*a).to_owned()).collect(), |name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
        .map(|a| a.to_string())
    }

    #[test]
    fn it_listens_on_the_loopback_unless_told_otherwise() {
        assert_eq!(parse(&[], &[]).unwrap(), "127.0.0.1:8080");
        assert_eq!(parse(&["--port", "9"], &[]).unwrap(), "127.0.0.1:9");
        assert_eq!(
            parse(&["--port", "9", "--host", "0.0.0.0"], &[]).unwrap(),
            "0.0.0.0:9"
        );
        assert_eq!(
            parse(&[], &[("HARNESS_PRODUCT_MOCK_HOST", "0.0.0.0")]).unwrap(),
            "0.0.0.0:8080"
        );
        assert_eq!(
            parse(
                &["--host", "127.0.0.1"],
                &[("HARNESS_PRODUCT_MOCK_HOST", "0.0.0.0")]
            )
            .unwrap(),
            "127.0.0.1:8080"
        );
    }

    #[test]
    fn bad_arguments_are_refused_with_the_usage_or_the_value() {
        assert!(parse(&["--port"], &[]).unwrap_err().starts_with("usage: "));
        assert!(
            parse(&["--bind", "x"], &[])
                .unwrap_err()
                .starts_with("usage: ")
        );
        assert_eq!(
            parse(&["--host", "localhost"], &[]).unwrap_err(),
            "\"localhost\" is not an IP address"
        );
        assert_eq!(
            parse(&[], &[("HARNESS_PRODUCT_MOCK_PORT", "http")]).unwrap_err(),
            "\"http\" is not a port number"
        );
    }
}
