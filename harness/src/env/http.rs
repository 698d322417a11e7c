//! Serving HTTP mocks on 127.0.0.1 (or, in a mock's container, on every address): the env module
//! owns every socket the harness opens.

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
