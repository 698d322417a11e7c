//! Serving HTTP mocks on 127.0.0.1: the env module owns every socket the harness opens.

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
