//! One broker connection: TCP (optionally TLS), ApiVersions, SASL, then
//! pipelined requests.
//!
//! A writer task sends the encoded frames in order; a reader task reads the
//! response frames and hands each to the caller waiting on its correlation id
//! (a oneshot channel). Many requests can be in flight at once (capped per
//! connection); each has its own timeout. The first IO error, EOF or request
//! timeout marks the connection broken and fails every request still waiting,
//! so the owner ([`crate::cluster`]) drops it and the next call reconnects:
//! this is what makes a broker restart a handful of failed calls rather than a
//! stuck or crashed client.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, RequestHeader, ResponseHeader, SaslAuthenticateRequest,
    SaslHandshakeRequest,
};
use kafka_protocol::protocol::{
    Decodable, Encodable, HeaderVersion, Request, StrBytes, VersionRange,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::{SaslMechanism, WireConfig};
use crate::error::{codes, error_name, WireError};
use crate::sasl;
use crate::tls;

/// Requests in flight on one connection at most; more wait for a slot.
pub(crate) const MAX_IN_FLIGHT: usize = 32;
/// A response frame larger than this is refused as garbage (a TLS listener
/// spoken to in plaintext answers with bytes that read as a huge size).
const MAX_FRAME: usize = 256 * 1024 * 1024;

type Pending = Arc<Mutex<HashMap<i32, oneshot::Sender<Bytes>>>>;

/// The broken-state shared by the connection and its two tasks.
#[derive(Default)]
struct State {
    broken: AtomicBool,
    reason: Mutex<Option<String>>,
}

impl State {
    fn mark_broken(&self, reason: String, pending: &Pending) {
        if let Ok(mut r) = self.reason.lock() {
            if r.is_none() {
                *r = Some(reason);
            }
        }
        self.broken.store(true, Ordering::SeqCst);
        // Dropping the senders fails every waiting request.
        if let Ok(mut p) = pending.lock() {
            p.clear();
        }
    }
    fn reason(&self) -> String {
        self.reason
            .lock()
            .ok()
            .and_then(|r| r.clone())
            .unwrap_or_else(|| "connection closed".to_string())
    }
}

/// A connected, authenticated broker connection.
pub(crate) struct Connection {
    addr: String,
    client_id: StrBytes,
    request_timeout: Duration,
    tx: mpsc::Sender<Bytes>,
    pending: Pending,
    state: Arc<State>,
    next_id: AtomicI32,
    slots: Semaphore,
    /// The broker's supported version range per API key, from ApiVersions.
    versions: HashMap<i16, VersionRange>,
    tasks: [JoinHandle<()>; 2],
}

impl Drop for Connection {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// The API's name as Kafka spells it (`OffsetFetch`).
pub(crate) fn api_name(key: i16) -> String {
    ApiKey::try_from(key).map_or_else(|_| format!("api {key}"), |k| format!("{k:?}"))
}

impl Connection {
    /// Connects to `addr` (`host:port`), negotiates versions and authenticates,
    /// all before `deadline`.
    pub(crate) async fn connect(
        addr: &str,
        config: &WireConfig,
        deadline: Instant,
    ) -> Result<Arc<Connection>, WireError> {
        let connect_err = |message: String| WireError::Connect {
            broker: addr.to_string(),
            message,
        };
        let tcp = tokio::time::timeout_at(deadline, TcpStream::connect(addr))
            .await
            .map_err(|_| connect_err("connect timed out".to_string()))?
            .map_err(|e| connect_err(e.to_string()))?;
        // Nagle would delay the small pipelined requests.
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn Stream> = match &config.tls {
            None => Box::new(tcp),
            Some(tls_config) => {
                let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
                let name = tls::server_name(host).map_err(connect_err)?;
                let connector = tokio_rustls::TlsConnector::from(tls_config.clone());
                let tls = tokio::time::timeout_at(deadline, connector.connect(name, tcp))
                    .await
                    .map_err(|_| connect_err("tls handshake timed out".to_string()))?
                    .map_err(|e| connect_err(format!("tls handshake failed: {e}")))?;
                Box::new(tls)
            }
        };
        let mut conn = Connection::start(addr, config, stream);
        conn.versions = conn.api_versions(deadline).await?;
        if let Some(sasl) = &config.sasl {
            conn.authenticate(sasl.mechanism, &sasl.username, &sasl.password, deadline)
                .await?;
        }
        Ok(Arc::new(conn))
    }

    fn start(addr: &str, config: &WireConfig, stream: Box<dyn Stream>) -> Connection {
        let (read_half, write_half) = tokio::io::split(stream);
        let (tx, rx) = mpsc::channel::<Bytes>(MAX_IN_FLIGHT);
        let pending: Pending = Arc::default();
        let state: Arc<State> = Arc::default();
        let writer = tokio::spawn(write_loop(write_half, rx, state.clone(), pending.clone()));
        let reader = tokio::spawn(read_loop(read_half, state.clone(), pending.clone()));
        Connection {
            addr: addr.to_string(),
            client_id: StrBytes::from_string(config.client_id.clone()),
            request_timeout: config.request_timeout,
            tx,
            pending,
            state,
            next_id: AtomicI32::new(1),
            slots: Semaphore::new(MAX_IN_FLIGHT),
            versions: HashMap::new(),
            tasks: [writer, reader],
        }
    }

    /// The broker address this connection goes to.
    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    /// False once an IO error, EOF or timeout happened: the owner must reconnect.
    pub(crate) fn is_usable(&self) -> bool {
        !self.state.broken.load(Ordering::SeqCst)
    }

    /// The highest version of `R` both sides support within `min..=cap`.
    pub(crate) fn version<R: Request>(&self, min: i16, cap: i16) -> Result<i16, WireError> {
        let ours = VersionRange {
            min: min.max(R::VERSIONS.min),
            max: cap.min(R::VERSIONS.max),
        };
        let api = api_name(R::KEY);
        let Some(theirs) = self.versions.get(&R::KEY) else {
            return Err(WireError::Unsupported {
                broker: self.addr.clone(),
                api,
                message: "the broker does not offer this api".to_string(),
            });
        };
        let both = ours.intersect(theirs);
        if both.is_empty() {
            return Err(WireError::Unsupported {
                broker: self.addr.clone(),
                api,
                message: format!("broker versions {theirs}, client versions {ours}"),
            });
        }
        Ok(both.max)
    }

    /// Whether the broker offers `key` at all.
    pub(crate) fn supports(&self, key: ApiKey) -> bool {
        self.versions.contains_key(&(key as i16))
    }

    /// Sends `request` at `version` and waits for its response, at most the
    /// request timeout and never past `deadline`.
    pub(crate) async fn send<R: Request>(
        &self,
        request: &R,
        version: i16,
        deadline: Instant,
    ) -> Result<R::Response, WireError> {
        let api = || api_name(R::KEY);
        let started = Instant::now();
        let full = started + self.request_timeout;
        let until = full.min(deadline);
        let timeout_err = || WireError::Timeout {
            broker: self.addr.clone(),
            api: api(),
            timeout: until.saturating_duration_since(started),
        };
        let io_err = |message: String| WireError::Io {
            broker: self.addr.clone(),
            api: api(),
            message,
        };
        let protocol_err = |message: String| WireError::Protocol {
            broker: self.addr.clone(),
            api: api(),
            message,
        };
        if !self.is_usable() {
            return Err(io_err(self.state.reason()));
        }
        let correlation_id = self.next_id.fetch_add(1, Ordering::Relaxed) & i32::MAX;
        let frame = encode_frame(request, version, correlation_id, &self.client_id)
            .map_err(|e| protocol_err(format!("cannot encode request v{version}: {e}")))?;

        let _slot = tokio::time::timeout_at(until, self.slots.acquire())
            .await
            .map_err(|_| timeout_err())?
            .map_err(|_| io_err("connection closed".to_string()))?;
        let (reply_tx, reply_rx) = oneshot::channel();
        if let Ok(mut p) = self.pending.lock() {
            p.insert(correlation_id, reply_tx);
        }
        // A request sent on a connection that broke meanwhile must not wait for the timeout.
        if !self.is_usable() {
            self.forget(correlation_id);
            return Err(io_err(self.state.reason()));
        }
        if self.tx.send(frame).await.is_err() {
            self.forget(correlation_id);
            return Err(io_err(self.state.reason()));
        }
        let mut body = match tokio::time::timeout_at(until, reply_rx).await {
            Ok(Ok(body)) => body,
            Ok(Err(_)) => return Err(io_err(self.state.reason())),
            Err(_) => {
                self.forget(correlation_id);
                if until >= full {
                    // A full request timeout without an answer: treat the connection as dead.
                    self.state.mark_broken(
                        format!("no response to {} within {:?}", api(), self.request_timeout),
                        &self.pending,
                    );
                }
                return Err(timeout_err());
            }
        };
        let header = ResponseHeader::decode(&mut body, R::Response::header_version(version))
            .map_err(|e| protocol_err(format!("response header: {e}")))?;
        if header.correlation_id != correlation_id {
            return Err(protocol_err(format!(
                "correlation id {} does not match {correlation_id}",
                header.correlation_id
            )));
        }
        R::Response::decode(&mut body, version)
            .map_err(|e| protocol_err(format!("cannot decode response v{version}: {e}")))
    }

    fn forget(&self, correlation_id: i32) {
        if let Ok(mut p) = self.pending.lock() {
            p.remove(&correlation_id);
        }
    }

    /// ApiVersions v3 (v0 for brokers older than 2.4): the supported version ranges.
    async fn api_versions(
        &self,
        deadline: Instant,
    ) -> Result<HashMap<i16, VersionRange>, WireError> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("lagwatch-kafka-wire"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let mut response = self.send(&request, 3, deadline).await;
        let unsupported = match &response {
            Ok(r) => r.error_code == codes::UNSUPPORTED_VERSION,
            Err(WireError::Protocol { .. }) => true,
            Err(_) => false,
        };
        if unsupported {
            response = self.send(&ApiVersionsRequest::default(), 0, deadline).await;
        }
        let response = response?;
        if response.error_code != codes::NONE {
            return Err(WireError::kafka(
                &self.addr,
                "ApiVersions",
                response.error_code,
                "",
            ));
        }
        Ok(response
            .api_keys
            .iter()
            .map(|k| {
                (
                    k.api_key,
                    VersionRange {
                        min: k.min_version,
                        max: k.max_version,
                    },
                )
            })
            .collect())
    }

    /// SaslHandshake v1 then SaslAuthenticate round trips (KIP-152).
    async fn authenticate(
        &self,
        mechanism: SaslMechanism,
        username: &str,
        password: &str,
        deadline: Instant,
    ) -> Result<(), WireError> {
        let auth_err = |message: String| WireError::Auth {
            broker: self.addr.clone(),
            message,
        };
        let handshake_v = self.version::<SaslHandshakeRequest>(1, 1)?;
        let handshake = SaslHandshakeRequest::default()
            .with_mechanism(StrBytes::from_static_str(mechanism.name()));
        let response = self.send(&handshake, handshake_v, deadline).await?;
        if response.error_code != codes::NONE {
            let offered: Vec<&str> = response.mechanisms.iter().map(|m| m.as_str()).collect();
            return Err(auth_err(format!(
                "{} for mechanism {}; the broker offers [{}]",
                error_name(response.error_code),
                mechanism.name(),
                offered.join(", ")
            )));
        }
        let auth_v = self.version::<SaslAuthenticateRequest>(0, 2)?;
        let round = |bytes: Vec<u8>| async move {
            let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(bytes));
            let response = self.send(&request, auth_v, deadline).await?;
            if response.error_code != codes::NONE {
                return Err(auth_err(format!(
                    "{}: {}",
                    error_name(response.error_code),
                    response.error_message.as_ref().map_or("", |m| m.as_str())
                )));
            }
            Ok(response.auth_bytes)
        };
        match mechanism {
            SaslMechanism::Plain => {
                round(sasl::plain_message(username, password)).await?;
            }
            SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
                let nonce = sasl::ScramClient::random_nonce().map_err(auth_err)?;
                let mut scram = sasl::ScramClient::new(mechanism, username, password, nonce);
                let server_first = round(scram.client_first()).await?;
                let client_final = scram.client_final(&server_first).map_err(auth_err)?;
                let server_final = round(client_final).await?;
                scram.verify_server_final(&server_final).map_err(auth_err)?;
            }
        }
        Ok(())
    }
}

/// Size-prefixed request frame: header (v1 or v2) and body.
fn encode_frame<R: Request>(
    request: &R,
    version: i16,
    correlation_id: i32,
    client_id: &StrBytes,
) -> Result<Bytes, String> {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(client_id.clone()));
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    header
        .encode(&mut buf, R::header_version(version))
        .map_err(|e| e.to_string())?;
    request
        .encode(&mut buf, version)
        .map_err(|e| e.to_string())?;
    let size = i32::try_from(buf.len() - 4).map_err(|_| "request too large".to_string())?;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf.freeze())
}

async fn write_loop(
    mut out: tokio::io::WriteHalf<Box<dyn Stream>>,
    mut rx: mpsc::Receiver<Bytes>,
    state: Arc<State>,
    pending: Pending,
) {
    while let Some(frame) = rx.recv().await {
        let mut result = out.write_all(&frame).await;
        // Write whatever else is queued before flushing once (TLS buffers).
        while result.is_ok() {
            match rx.try_recv() {
                Ok(next) => result = out.write_all(&next).await,
                Err(_) => break,
            }
        }
        if result.is_ok() {
            result = out.flush().await;
        }
        if let Err(e) = result {
            state.mark_broken(format!("write failed: {e}"), &pending);
            return;
        }
    }
}

async fn read_loop(
    mut input: tokio::io::ReadHalf<Box<dyn Stream>>,
    state: Arc<State>,
    pending: Pending,
) {
    let reason = loop {
        let size = match input.read_i32().await {
            Ok(size) => size,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                break "connection closed by the broker".to_string()
            }
            Err(e) => break format!("read failed: {e}"),
        };
        let Ok(size) = usize::try_from(size) else {
            break format!("invalid response size {size}");
        };
        if !(4..=MAX_FRAME).contains(&size) {
            break format!(
                "invalid response size {size} (is the listener's security.protocol right?)"
            );
        }
        let mut frame = BytesMut::zeroed(size);
        if let Err(e) = input.read_exact(&mut frame).await {
            break format!("read failed: {e}");
        }
        let frame = frame.freeze();
        let correlation_id = (&frame[..4]).get_i32();
        let waiter = pending
            .lock()
            .ok()
            .and_then(|mut p| p.remove(&correlation_id));
        // No waiter: the request timed out meanwhile; its late answer is dropped.
        if let Some(waiter) = waiter {
            let _ = waiter.send(frame);
        }
    };
    state.mark_broken(reason, &pending);
}
