//! A recording TCP proxy between poolwatch and PostgreSQL, to count round trips on the wire.
//!
//! Every chunk of bytes is recorded with its direction before it is forwarded, so the record
//! is in causal order: a server answer is always recorded after the client bytes it answers.
//! A *flight* is a maximal run of bytes in one direction; one request/answer round trip is one
//! client flight followed by one server flight. The PostgreSQL messages of each flight are
//! decoded by their type byte (`B E S` = Bind, Execute, Sync).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Which way bytes went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Client to server (frontend messages).
    ToServer,
    /// Server to client (backend messages).
    ToClient,
}

type Record = Arc<Mutex<Vec<(Dir, Vec<u8>)>>>;

/// A proxy for one connection to `127.0.0.1:upstream`; stopped when dropped.
pub struct Proxy {
    port: u16,
    record: Record,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free port of 127.0.0.1 and relays its first connection to `upstream`.
    pub async fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy bind");
        let port = listener.local_addr().expect("proxy address").port();
        let record = Record::default();
        let rec = Arc::clone(&record);
        let task = tokio::spawn(async move {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let server = TcpStream::connect(("127.0.0.1", upstream))
                .await
                .expect("proxy upstream connect");
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            tokio::join!(
                pump(client_read, server_write, Dir::ToServer, rec.clone()),
                pump(server_read, client_write, Dir::ToClient, rec),
            );
        });
        Proxy { port, record, task }
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The flights recorded so far, with their decoded message types.
    pub fn flights(&self) -> Vec<Flight> {
        flights(&self.record.lock().expect("proxy record"))
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, dir: Dir, record: Record) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        record
            .lock()
            .expect("proxy record")
            .push((dir, buf[..n].to_vec()));
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// A maximal run of bytes in one direction and the messages that completed in it.
#[derive(Debug, Clone)]
pub struct Flight {
    /// Which way it went.
    pub dir: Dir,
    /// Message types, e.g. `["B", "E", "S"]`; the untyped start-up message is `startup`.
    pub messages: Vec<String>,
    /// Bytes in the flight.
    pub bytes: usize,
}

impl Flight {
    /// The message types joined by spaces: `B E S`.
    pub fn shape(&self) -> String {
        self.messages.join(" ")
    }
}

/// Splits a recording into flights and decodes the messages of each direction's stream.
fn flights(record: &[(Dir, Vec<u8>)]) -> Vec<Flight> {
    let mut out: Vec<Flight> = Vec::new();
    // Bytes not yet decoded per direction, and whether the client's untyped start-up message
    // (length first, no type byte) is still to come.
    let mut pending: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut startup_due = true;
    for (dir, bytes) in record {
        if out.last().is_none_or(|f| f.dir != *dir) {
            out.push(Flight {
                dir: *dir,
                messages: Vec::new(),
                bytes: 0,
            });
        }
        let flight = out.last_mut().expect("a flight");
        flight.bytes += bytes.len();
        let buf = &mut pending[*dir as usize];
        buf.extend_from_slice(bytes);
        loop {
            let untyped = *dir == Dir::ToServer && startup_due;
            let header = if untyped { 4 } else { 5 };
            if buf.len() < header {
                break;
            }
            let len_at = if untyped { 0 } else { 1 };
            let len = u32::from_be_bytes(buf[len_at..len_at + 4].try_into().expect("4 bytes"));
            let total = len_at + len as usize;
            if buf.len() < total {
                break;
            }
            flight.messages.push(if untyped {
                startup_due = false;
                "startup".to_string()
            } else {
                (buf[0] as char).to_string()
            });
            buf.drain(..total);
        }
    }
    out
}

/// How many client flights of each shape, and the shapes of the server flights answering them.
pub fn shapes(flights: &[Flight]) -> BTreeMap<(String, String), usize> {
    let mut counts = BTreeMap::new();
    for (i, f) in flights.iter().enumerate() {
        if f.dir != Dir::ToServer {
            continue;
        }
        let answer = flights
            .get(i + 1)
            .map_or_else(|| "(none)".to_string(), Flight::shape);
        *counts.entry((f.shape(), answer)).or_insert(0) += 1;
    }
    counts
}
