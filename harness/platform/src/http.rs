//! Serving HTTP mocks on 127.0.0.1 (or, in a mock's container, on every address): the env module
//! owns every socket the harness opens.

use std::io::{Read, Write as _};
use std::time::Duration;

use tokio::sync::oneshot;

/// A router served on a free port of 127.0.0.1 by the current runtime; stops when dropped.
#[derive(Debug)]
pub(crate) struct Served {
    url: String,
    _stop: oneshot::Sender<()>,
}

impl Served {
    /// `http://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }
}

/// Binds 127.0.0.1:0 and serves `router` on the current tokio runtime.
///
/// # Errors
/// The port could not be bound.
pub(crate) async fn serve(router: axum::Router) -> std::io::Result<Served> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    Ok(Served { url, _stop: stop })
}

/// A way for a handler of [`serve_resettable`] to reset its own connection: a product mock's
/// `reset` and `reply_lost` faults.
#[derive(Debug, Clone)]
pub(crate) struct ResetConnection(std::sync::Arc<tokio::sync::Notify>);

impl ResetConnection {
    /// Resets the connection (RST, no answer); the handler's answer is never sent.
    pub(crate) fn reset(&self) {
        self.0.notify_one();
    }
}

/// Like [`serve`], but each connection's handlers get a [`ResetConnection`] extension that drops
/// the connection on the spot, with a TCP reset.
///
/// # Errors
/// The port could not be bound.
pub(crate) async fn serve_resettable(router: axum::Router) -> std::io::Result<Served> {
    serve_resettable_on(std::net::SocketAddr::from(([127, 0, 0, 1], 0)), router).await
}

/// [`serve_resettable`] on `addr` (`0.0.0.0:8080` in a container).
///
/// # Errors
/// The address could not be bound.
pub(crate) async fn serve_resettable_on(
    addr: std::net::SocketAddr,
    router: axum::Router,
) -> std::io::Result<Served> {
    use hyper_util::rt::TokioIo;
    use hyper_util::service::TowerToHyperService;

    let listener = tokio::net::TcpListener::bind(addr).await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop, mut stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                _ = &mut stopped => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => continue,
                },
            };
            // Closing with a zero linger sends RST: the client sees a reset, not a clean close.
            let _ = stream.set_zero_linger();
            let _ = stream.set_nodelay(true);
            let notify = std::sync::Arc::new(tokio::sync::Notify::new());
            let service = router
                .clone()
                .layer(axum::Extension(ResetConnection(notify.clone())));
            tokio::spawn(async move {
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
                tokio::select! {
                    _ = connection => {}
                    () = notify.notified() => {}
                }
            });
        }
    });
    Ok(Served { url, _stop: stop })
}

/// `POST url+path` with a JSON body over a fresh blocking connection (for a product mock's
/// control API, whose callers are synchronous) (`Connection: close`): the status and
/// the body of the answer.
pub(crate) fn post_blocking(url: &str, path: &str, body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
    let bad_url = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{url} is not http://HOST:PORT[/PATH]"),
        )
    };
    let rest = url.strip_prefix("http://").ok_or_else(bad_url)?;
    let (authority, prefix) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if authority.is_empty() {
        return Err(bad_url());
    }
    let mut stream = std::net::TcpStream::connect(authority)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    stream.set_write_timeout(Some(Duration::from_secs(60)))?;
    let _ = stream.set_nodelay(true);
    let head = format!(
        "POST {prefix}{path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    parse_answer(&answer)
}

/// Splits an HTTP/1.1 answer read to its end into status and body (by `Content-Length` when the
/// head gives one, else the rest).
fn parse_answer(answer: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
    let unreadable =
        |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_owned());
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| unreadable("no end of the head"))?;
    let head = std::str::from_utf8(&answer[..split]).map_err(|_| unreadable("head not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| unreadable("no status line"))?;
    let mut body = answer[split + 4..].to_vec();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(unreadable("a chunked answer"));
        }
        if name.eq_ignore_ascii_case("content-length")
            && let Ok(n) = value.trim().parse::<usize>()
        {
            body.truncate(n);
        }
    }
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_split_into_status_and_body() {
        let answer =
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 4\r\n\r\ntrue";
        assert_eq!(parse_answer(answer).unwrap(), (200, b"true".to_vec()));
        assert!(parse_answer(b"HTTP/1.1 200 OK\r\n").is_err());
        let refused = post_blocking("ftp://x", "/_mock", b"").unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::InvalidInput);
    }
}
