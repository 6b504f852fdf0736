//! A TCP proxy that injects network faults between a client under test and
//! a real service (Kafka, SMTP, ClickHouse, a webhook receiver).
//!
//! Real services fail in ways a stopped process does not show: a
//! connection reset in the middle of a response, a peer that accepts and
//! then never answers, a slow network. The proxy forwards bytes both ways
//! and, on request, does one of those to every connection, open or new:
//!
//! ```ignore
//! let proxy = FaultProxy::start(upstream_addr).await?;     // 127.0.0.1:<free>
//! client_connects_to(proxy.addr());
//! proxy.set(Fault::ResetMidResponse { after_bytes: 7 });   // next replies cut, RST
//! proxy.set(Fault::Blackhole);                             // swallow everything
//! proxy.set(Fault::Delay(Duration::from_secs(2)));         // hold every chunk
//! proxy.set(Fault::Refuse);                                // RST on accept / next data
//! proxy.reset_all();                                       // RST every open connection now
//! proxy.set(Fault::Pass);                                  // healthy again
//! ```
//!
//! The fault is read for every chunk, so a change applies at once to open
//! connections too. A reset is a real TCP RST (zero linger), what a client
//! sees when a peer crashes or a middlebox drops state. Runs on the tokio
//! runtime of the test that starts it; dropping the proxy closes the
//! listener and every connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does to the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    /// Forward everything (the default).
    #[default]
    Pass,
    /// Forward, holding every chunk this long first (both directions).
    Delay(Duration),
    /// Accept and read, forward nothing, answer nothing: a hung peer.
    Blackhole,
    /// Reset new connections on accept and open ones on their next data.
    Refuse,
    /// Forward requests; forward only the first `after_bytes` bytes of the
    /// next chunk the server sends, then reset the connection.
    ResetMidResponse { after_bytes: usize },
}

struct Shared {
    fault: Mutex<Fault>,
    /// Bumped by [`FaultProxy::reset_all`]; every connection watches it.
    resets_requested: watch::Sender<u64>,
    accepted: AtomicU64,
    open: AtomicUsize,
    resets: AtomicU64,
}

impl Shared {
    fn fault(&self) -> Fault {
        self.fault.lock().map(|f| *f).unwrap_or_default()
    }
}

/// A running proxy (see the module docs).
pub struct FaultProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    shared: Arc<Shared>,
    acceptor: JoinHandle<()>,
}

impl FaultProxy {
    /// A proxy on a free loopback port forwarding to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<FaultProxy> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), upstream).await
    }

    /// A proxy listening on `listen` (e.g. a port chosen before a server
    /// that must advertise it starts) forwarding to `upstream`.
    pub async fn start_on(listen: SocketAddr, upstream: SocketAddr) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let (resets_requested, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            fault: Mutex::new(Fault::Pass),
            resets_requested,
            accepted: AtomicU64::new(0),
            open: AtomicUsize::new(0),
            resets: AtomicU64::new(0),
        });
        let acceptor = tokio::spawn(accept_loop(listener, upstream, Arc::clone(&shared)));
        Ok(FaultProxy {
            addr,
            upstream,
            shared,
            acceptor,
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// Changes the fault; applies to the next chunk of every connection.
    pub fn set(&self, fault: Fault) {
        if let Ok(mut current) = self.shared.fault.lock() {
            *current = fault;
        }
    }

    pub fn fault(&self) -> Fault {
        self.shared.fault()
    }

    /// Resets (RST) every open connection now, whatever the fault.
    pub fn reset_all(&self) {
        self.shared.resets_requested.send_modify(|n| *n += 1);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::Relaxed)
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.shared.open.load(Ordering::Relaxed)
    }

    /// Connections the proxy reset so far (by a fault or `reset_all`).
    pub fn resets(&self) -> u64 {
        self.shared.resets.load(Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.acceptor.abort();
        self.reset_all();
    }
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, shared: Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        shared.accepted.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            shared.open.fetch_add(1, Ordering::Relaxed);
            serve(client, upstream, &shared).await;
            shared.open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// Closes `stream` with a TCP RST.
fn reset(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_zero_linger();
    drop(stream);
    shared.resets.fetch_add(1, Ordering::Relaxed);
}

/// What to do with the connection after a chunk.
enum Next {
    Continue,
    Reset,
    Close,
}

/// Forwards one chunk read from one side to `to`, as the fault says.
async fn forward(shared: &Shared, chunk: &[u8], to: &mut TcpStream, from_server: bool) -> Next {
    match shared.fault() {
        Fault::Pass => {}
        Fault::Delay(delay) => tokio::time::sleep(delay).await,
        Fault::Blackhole => return Next::Continue,
        Fault::Refuse => return Next::Reset,
        Fault::ResetMidResponse { after_bytes } if from_server => {
            let cut = after_bytes.min(chunk.len());
            let _ = to.write_all(&chunk[..cut]).await;
            let _ = to.flush().await;
            return Next::Reset;
        }
        Fault::ResetMidResponse { .. } => {}
    }
    match to.write_all(chunk).await {
        Ok(()) => Next::Continue,
        Err(_) => Next::Close,
    }
}

async fn serve(client: TcpStream, upstream: SocketAddr, shared: &Shared) {
    let mut resets = shared.resets_requested.subscribe();
    resets.mark_unchanged();
    if shared.fault() == Fault::Refuse {
        reset(client, shared);
        return;
    }
    let mut server = match TcpStream::connect(upstream).await {
        Ok(server) => server,
        Err(_) => {
            reset(client, shared);
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let mut client = client;
    let mut from_client = vec![0u8; 64 * 1024];
    let mut from_server = vec![0u8; 64 * 1024];
    loop {
        let next = tokio::select! {
            _ = resets.changed() => Next::Reset,
            read = client.read(&mut from_client) => match read {
                Ok(0) | Err(_) => Next::Close,
                Ok(n) => forward(shared, &from_client[..n], &mut server, false).await,
            },
            read = server.read(&mut from_server) => match read {
                Ok(0) | Err(_) => Next::Close,
                Ok(n) => forward(shared, &from_server[..n], &mut client, true).await,
            },
        };
        match next {
            Next::Continue => {}
            Next::Close => return,
            Next::Reset => {
                reset(client, shared);
                let _ = server.set_zero_linger();
                return;
            }
        }
    }
}
