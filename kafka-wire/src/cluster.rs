//! The client's view of the cluster: one connection slot per broker address
//! (connected lazily, reconnected when broken), the broker and leader map from
//! the last Metadata answer (with the bootstrap list as fallback), the
//! coordinator per group and the group types seen by ListGroups.
//!
//! Reachability is logged here and only on a change: `broker unreachable`
//! once when connecting to a broker starts failing, `broker reachable again`
//! once when it works again; never per request.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::WireConfig;
use crate::connection::Connection;
use crate::error::WireError;
use crate::requests::metadata::{self, Metadata};

/// How long a Metadata answer serves for leader lookups before it is refreshed.
const METADATA_MAX_AGE: Duration = Duration::from_secs(30);

#[derive(Default)]
struct Slot {
    conn: Option<Arc<Connection>>,
    /// Connecting failed last time (logged once, until it works again).
    down: bool,
}

pub(crate) struct Cluster {
    pub(crate) config: WireConfig,
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Slot>>>>,
    /// Node id -> `host:port`, from the last Metadata answer.
    brokers: Mutex<BTreeMap<i32, String>>,
    metadata: Mutex<Option<(Instant, Arc<Metadata>)>>,
    /// Group -> coordinator `host:port`.
    coordinators: Mutex<HashMap<String, String>>,
    /// Group -> type (`classic`, `consumer`, ...) from the last ListGroups v5+.
    group_types: Mutex<HashMap<String, String>>,
}

/// `host:port`, with brackets for IPv6 hosts.
pub(crate) fn address(host: &str, port: i32) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

impl Cluster {
    pub(crate) fn new(config: WireConfig) -> Self {
        Cluster {
            config,
            slots: Mutex::default(),
            brokers: Mutex::default(),
            metadata: Mutex::default(),
            coordinators: Mutex::default(),
            group_types: Mutex::default(),
        }
    }

    /// The deadline of one public call: retries stay within one request timeout.
    pub(crate) fn deadline(&self) -> Instant {
        Instant::now() + self.config.request_timeout
    }

    fn slot(&self, addr: &str) -> Option<Arc<tokio::sync::Mutex<Slot>>> {
        let mut slots = self.slots.lock().ok()?;
        Some(slots.entry(addr.to_string()).or_default().clone())
    }

    /// A usable connection to `addr`, connecting (once, for all concurrent callers) if needed.
    pub(crate) async fn connection(
        &self,
        addr: &str,
        deadline: Instant,
    ) -> Result<Arc<Connection>, WireError> {
        let slot = self.slot(addr).ok_or_else(|| WireError::Connect {
            broker: addr.to_string(),
            message: "connection table unavailable".to_string(),
        })?;
        let mut slot = tokio::time::timeout_at(deadline, slot.lock())
            .await
            .map_err(|_| WireError::Connect {
                broker: addr.to_string(),
                message: "timed out waiting for a connection attempt in progress".to_string(),
            })?;
        if let Some(conn) = &slot.conn {
            if conn.is_usable() {
                return Ok(conn.clone());
            }
            tracing::debug!(broker = %addr, "connection broken, reconnecting");
            slot.conn = None;
        }
        let connect_deadline = deadline.min(Instant::now() + self.config.request_timeout);
        match Connection::connect(addr, &self.config, connect_deadline).await {
            Ok(conn) => {
                if slot.down {
                    tracing::info!(broker = %addr, "broker reachable again");
                    slot.down = false;
                }
                slot.conn = Some(conn.clone());
                Ok(conn)
            }
            Err(e) => {
                if !slot.down {
                    tracing::warn!(broker = %addr, error = %e, "broker unreachable");
                    slot.down = true;
                }
                Err(e)
            }
        }
    }

    /// Known broker addresses (from metadata) followed by the bootstrap list, deduplicated.
    fn candidates(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .brokers
            .lock()
            .map(|b| b.values().cloned().collect())
            .unwrap_or_default();
        for b in &self.config.bootstrap {
            if !out.contains(b) {
                out.push(b.clone());
            }
        }
        out
    }

    /// A connection to any broker: an open one if there is one, else the first
    /// candidate that accepts a connection.
    pub(crate) async fn any_connection(
        &self,
        deadline: Instant,
    ) -> Result<Arc<Connection>, WireError> {
        let candidates = self.candidates();
        let slots: Vec<_> = candidates.iter().filter_map(|a| self.slot(a)).collect();
        for slot in slots {
            if let Ok(slot) = slot.try_lock() {
                if let Some(conn) = slot.conn.as_ref().filter(|c| c.is_usable()) {
                    return Ok(conn.clone());
                }
            }
        }
        let mut last = None;
        for addr in &candidates {
            if Instant::now() >= deadline {
                break;
            }
            match self.connection(addr, deadline).await {
                Ok(conn) => return Ok(conn),
                Err(e) => last = Some(e),
            }
        }
        Err(WireError::NoBroker {
            tried: candidates.join(","),
            last: last.map_or_else(|| "deadline passed".to_string(), |e| e.to_string()),
        })
    }

    /// Fresh cluster metadata (all topics) from any broker; updates the broker map.
    pub(crate) async fn refresh_metadata(
        &self,
        deadline: Instant,
    ) -> Result<Arc<Metadata>, WireError> {
        let mut last = None;
        // A broker that just broke is skipped on the next try (its connection is marked broken).
        for _ in 0..3 {
            let conn = self.any_connection(deadline).await?;
            match metadata::fetch(&conn, deadline).await {
                Ok(md) => {
                    let md = Arc::new(md);
                    if let Ok(mut b) = self.brokers.lock() {
                        b.clone_from(&md.brokers);
                    }
                    if let Ok(mut m) = self.metadata.lock() {
                        *m = Some((Instant::now(), md.clone()));
                    }
                    return Ok(md);
                }
                Err(e) if e.is_transport() && Instant::now() < deadline => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| WireError::NoBroker {
            tried: self.candidates().join(","),
            last: "metadata unavailable".to_string(),
        }))
    }

    /// The last metadata if recent enough, else fresh metadata.
    pub(crate) async fn metadata(&self, deadline: Instant) -> Result<Arc<Metadata>, WireError> {
        let cached = self.metadata.lock().ok().and_then(|m| {
            m.as_ref()
                .filter(|(at, _)| at.elapsed() < METADATA_MAX_AGE)
                .map(|(_, md)| md.clone())
        });
        match cached {
            Some(md) => Ok(md),
            None => self.refresh_metadata(deadline).await,
        }
    }

    /// Forgets the cached metadata (after leader errors).
    pub(crate) fn invalidate_metadata(&self) {
        if let Ok(mut m) = self.metadata.lock() {
            *m = None;
        }
    }

    pub(crate) fn cached_coordinator(&self, group: &str) -> Option<String> {
        self.coordinators.lock().ok()?.get(group).cloned()
    }

    pub(crate) fn set_coordinator(&self, group: &str, addr: String) {
        if let Ok(mut c) = self.coordinators.lock() {
            c.insert(group.to_string(), addr);
        }
    }

    pub(crate) fn invalidate_coordinator(&self, group: &str) {
        if let Ok(mut c) = self.coordinators.lock() {
            c.remove(group);
        }
    }

    /// Replaces the group types with those of a complete ListGroups answer.
    pub(crate) fn set_group_types(&self, types: HashMap<String, String>) {
        if let Ok(mut t) = self.group_types.lock() {
            *t = types;
        }
    }

    pub(crate) fn group_type(&self, group: &str) -> Option<String> {
        self.group_types.lock().ok()?.get(group).cloned()
    }
}
