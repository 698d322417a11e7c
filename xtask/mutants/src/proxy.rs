//! A PostgreSQL wire-protocol proxy that the tests of SQL mutants connect through: it passes
//! every byte on, but rewrites the query text of each Parse and simple Query message by the
//! current [`Rewrite`], and can record the queries it saw. So a SQL mutant runs against the tests
//! as built once, without a rebuild.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::rewrite::Rewrite;

/// The request codes of startup packets that the server answers with one byte, after which the
/// client sends another startup packet: SSLRequest and GSSENCRequest.
const NEGOTIATIONS: [u32; 2] = [80_877_103, 80_877_104];

/// What the proxy does to the queries passing through.
#[derive(Debug, Default)]
struct State {
    /// The rewrite of the mutant under test.
    rewrite: Option<Rewrite>,
    /// How many queries it rewrote.
    hits: u64,
    /// Every distinct query text seen, while recording.
    seen: Option<BTreeSet<String>>,
}

/// The proxy: listening on a free port of 127.0.0.1 until dropped.
pub(crate) struct Proxy {
    /// Where clients connect.
    addr: SocketAddr,
    /// Shared with the connections.
    state: Arc<Mutex<State>>,
    /// The accepting task.
    task: JoinHandle<()>,
}

impl Proxy {
    /// Listens on 127.0.0.1 and forwards each connection to `upstream` (`host:port`).
    ///
    /// # Errors
    /// No port could be bound.
    pub(crate) async fn start(upstream: String) -> anyhow::Result<Proxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .context("binding the SQL proxy's port")?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let state = Arc::clone(&shared);
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&upstream).await {
                        let _ = client.set_nodelay(true);
                        let _ = server.set_nodelay(true);
                        relay(client, server, state).await;
                    }
                });
            }
        });
        Ok(Proxy { addr, state, task })
    }

    /// The port clients connect to.
    pub(crate) fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Rewrites queries by `rewrite` from now on (none: passes them on), counting from zero.
    pub(crate) fn set(&self, rewrite: Option<Rewrite>) {
        let mut state = self.lock();
        state.rewrite = rewrite;
        state.hits = 0;
    }

    /// How many queries were rewritten since the last [`Proxy::set`].
    pub(crate) fn hits(&self) -> u64 {
        self.lock().hits
    }

    /// Starts recording the queries seen, forgetting earlier ones.
    pub(crate) fn record(&self) {
        self.lock().seen = Some(BTreeSet::new());
    }

    /// Stops recording and returns what was seen.
    pub(crate) fn recorded(&self) -> BTreeSet<String> {
        self.lock().seen.take().unwrap_or_default()
    }

    /// The shared state (a connection task that panicked left nothing half-written in it).
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Relays one connection both ways until either side closes.
async fn relay(client: TcpStream, server: TcpStream, state: Arc<Mutex<State>>) {
    let (client_read, mut client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = async {
        let mut to = BufWriter::new(server_write);
        let _ = forward(BufReader::new(client_read), &mut to, &state).await;
        let _ = to.shutdown().await;
    };
    let down = async {
        let mut server_read = server_read;
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    };
    tokio::join!(up, down);
}

/// Copies the client's messages to the server, rewriting query texts; writes go out whenever
/// nothing more is waiting to be read, so a pipeline of messages leaves in one write.
async fn forward(
    mut from: BufReader<impl AsyncRead + Unpin>,
    to: &mut (impl AsyncWrite + Unpin),
    state: &Mutex<State>,
) -> std::io::Result<()> {
    // Startup packets: a length and a body, no type byte.
    loop {
        let len = from.read_u32().await?;
        let mut body = vec![0; (len as usize).saturating_sub(4)];
        from.read_exact(&mut body).await?;
        to.write_u32(len).await?;
        to.write_all(&body).await?;
        // The server answers a negotiation before the client says more.
        to.flush().await?;
        let code = body
            .get(..4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
        if !code.is_some_and(|c| NEGOTIATIONS.contains(&c)) {
            break;
        }
    }
    loop {
        let kind = from.read_u8().await?;
        let len = from.read_u32().await?;
        let mut body = vec![0; (len as usize).saturating_sub(4)];
        from.read_exact(&mut body).await?;
        let body = match kind {
            b'P' | b'Q' => rewritten(kind, body, state),
            _ => body,
        };
        let len = u32::try_from(body.len() + 4).map_err(std::io::Error::other)?;
        to.write_u8(kind).await?;
        to.write_u32(len).await?;
        to.write_all(&body).await?;
        if from.buffer().is_empty() {
            to.flush().await?;
        }
    }
}

/// A Parse (`name\0query\0...`) or Query (`query\0`) body with its query rewritten.
fn rewritten(kind: u8, body: Vec<u8>, state: &Mutex<State>) -> Vec<u8> {
    let start = if kind == b'P' {
        match body.iter().position(|&b| b == 0) {
            Some(at) => at + 1,
            None => return body,
        }
    } else {
        0
    };
    let Some(len) = body[start..].iter().position(|&b| b == 0) else {
        return body;
    };
    let Ok(query) = std::str::from_utf8(&body[start..start + len]) else {
        return body;
    };
    let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(seen) = &mut state.seen {
        seen.insert(query.to_owned());
    }
    let Some(new) = state.rewrite.as_ref().and_then(|r| r.apply(query)) else {
        return body;
    };
    state.hits += 1;
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(&body[..start]);
    out.extend_from_slice(new.as_bytes());
    out.extend_from_slice(&body[start + len..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rewrite;
    use crate::schema::Schema;
    use crate::sql;

    /// The rewrite of the first mutant (`<` to `<=`) of a one-query file.
    fn flip() -> Rewrite {
        let source =
            "fn f() {\n    sqlx::query(\"select id from billings where starts_on < $1\");\n}\n";
        let schema = Schema::parse("create table billings (id bigint, starts_on date);");
        let mutant = sql::mutants(source, &schema)
            .into_iter()
            .find(|m| m.description.starts_with("replace < with <="))
            .unwrap();
        rewrite::rewrite(
            source,
            rewrite::literal_of(source, &mutant).unwrap(),
            &mutant,
            &[],
        )
        .unwrap()
    }

    #[test]
    fn parse_and_query_messages_carry_the_rewritten_text_and_the_rest_unchanged() {
        let state = Mutex::new(State {
            rewrite: Some(flip()),
            seen: Some(BTreeSet::new()),
            ..State::default()
        });
        let parse =
            b"s1\0select id from billings where starts_on < $1\0\0\x01\0\0\x04\x3a".to_vec();
        assert_eq!(
            rewritten(b'P', parse, &state),
            b"s1\0select id from billings where starts_on <= $1\0\0\x01\0\0\x04\x3a".to_vec()
        );
        let query = b"select id from billings where starts_on < $1\0".to_vec();
        assert_eq!(
            rewritten(b'Q', query, &state),
            b"select id from billings where starts_on <= $1\0".to_vec()
        );
        let other = b"\0select 1\0\0\0".to_vec();
        assert_eq!(rewritten(b'P', other.clone(), &state), other);
        let state = state.into_inner().unwrap();
        assert_eq!(state.hits, 2);
        assert_eq!(
            state.seen.unwrap().into_iter().collect::<Vec<_>>(),
            ["select 1", "select id from billings where starts_on < $1"]
        );
    }

    #[tokio::test]
    async fn a_connection_is_relayed_with_its_startup_negotiation_and_rewritten_queries() {
        let upstream = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let upstream_addr = upstream.local_addr().unwrap();
        let proxy = Proxy::start(upstream_addr.to_string()).await.unwrap();
        proxy.set(Some(flip()));
        let mut client = TcpStream::connect(("127.0.0.1", proxy.port()))
            .await
            .unwrap();
        let (mut server, _) = upstream.accept().await.unwrap();
        // SSLRequest, answered `N`, then the startup message and a query.
        client.write_u32(8).await.unwrap();
        client.write_u32(NEGOTIATIONS[0]).await.unwrap();
        assert_eq!(server.read_u32().await.unwrap(), 8);
        assert_eq!(server.read_u32().await.unwrap(), NEGOTIATIONS[0]);
        server.write_u8(b'N').await.unwrap();
        assert_eq!(client.read_u8().await.unwrap(), b'N');
        let startup = b"\0\x03\0\0user\0bh\0\0";
        client.write_u32(4 + startup.len() as u32).await.unwrap();
        client.write_all(startup).await.unwrap();
        let query = b"select id from billings where starts_on < $1\0";
        client.write_u8(b'Q').await.unwrap();
        client.write_u32(4 + query.len() as u32).await.unwrap();
        client.write_all(query).await.unwrap();
        let mut got = vec![0; 4 + startup.len()];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(&got[4..], startup);
        assert_eq!(server.read_u8().await.unwrap(), b'Q');
        let len = server.read_u32().await.unwrap() as usize;
        let mut body = vec![0; len - 4];
        server.read_exact(&mut body).await.unwrap();
        assert_eq!(body, b"select id from billings where starts_on <= $1\0");
        assert_eq!(proxy.hits(), 1);
    }
}
