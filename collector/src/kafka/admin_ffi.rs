//! Batched Kafka admin calls that rust-rdkafka does not wrap, over
//! `rdkafka::bindings` (librdkafka's C admin API).
//!
//! Three calls are needed to sample lag without one client per group:
//!
//! - `ListConsumerGroupOffsets`: committed offsets of a group, answered by the
//!   group's coordinator. librdkafka accepts one group per request, so we fire
//!   one request per group on a shared result queue and collect the results
//!   as they arrive: the requests run concurrently inside librdkafka.
//! - `ListOffsets`: end offsets (latest, with an isolation level so read
//!   committed consumers are measured against the last stable offset) and log
//!   start offsets; librdkafka fans the request out to the partition leaders.
//! - `DescribeConsumerGroups`: group state and member count, many groups per
//!   request.
//! - `ListConsumerGroups`: every group id of the cluster, for monitors that
//!   name groups by regular expression.
//!
//! # Safety contract
//!
//! Every function takes the native `rd_kafka_t` of a live rdkafka client
//! borrowed for the duration of the call. librdkafka copies request inputs,
//! so inputs are freed right after the call. Result memory belongs to the
//! result event and is copied into owned Rust values before the event is
//! destroyed. All handles are released by RAII guards, also on early return.
//! The calls block, so callers run them on a blocking thread.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr;
use std::time::{Duration, Instant};

use rdkafka::bindings as rd;
use rdkafka::client::Client;
use rdkafka::ClientContext;

/// Failure of a whole admin request (not of one partition in it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation} failed: {message}")]
pub struct AdminCallError {
    pub operation: &'static str,
    pub message: String,
}

impl AdminCallError {
    fn new(operation: &'static str, message: impl Into<String>) -> Self {
        AdminCallError {
            operation,
            message: message.into(),
        }
    }
}

/// Which end of the log `ListOffsets` should report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// Next offset to be written (high watermark or last stable offset).
    Latest,
    /// First offset still in the log.
    Earliest,
}

/// Isolation level of a `ListOffsets` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Latest = high watermark.
    ReadUncommitted,
    /// Latest = last stable offset.
    ReadCommitted,
}

/// One committed offset of a group; `offset` is `None` when nothing was
/// committed on that partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub topic: String,
    pub partition: i32,
    pub offset: Option<i64>,
}

/// State of one group as described by its coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group: String,
    pub state: String,
    pub members: u32,
    /// `Classic` or `Consumer` (KIP-848) protocol.
    pub protocol: String,
}

/// Committed offsets of each requested group, by group id.
pub type CommittedByGroup = HashMap<String, Result<Vec<CommittedOffset>, AdminCallError>>;

/// Offsets by (topic, partition), each possibly failed on its own.
pub type OffsetsByPartition = HashMap<(String, i32), Result<i64, String>>;

/// Fetches the committed offsets of every group in `groups`, concurrently.
pub fn list_consumer_group_offsets<C: ClientContext>(
    client: &Client<C>,
    groups: &[String],
    timeout: Duration,
) -> CommittedByGroup {
    const OP: &str = "ListConsumerGroupOffsets";
    let mut results: CommittedByGroup = HashMap::with_capacity(groups.len());
    if groups.is_empty() {
        return results;
    }
    let rk = client.native_ptr();
    // SAFETY: `rk` is the live handle of `client`, borrowed for this call.
    let queue = unsafe { Queue::new(rk) };
    let options = match unsafe {
        AdminOptions::new(
            rk,
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS,
            timeout,
        )
    } {
        Ok(options) => options,
        Err(message) => {
            for group in groups {
                results.insert(group.clone(), Err(AdminCallError::new(OP, message.clone())));
            }
            return results;
        }
    };
    let mut in_flight = 0usize;
    for (index, group) in groups.iter().enumerate() {
        let Ok(c_group) = CString::new(group.as_str()) else {
            results.insert(
                group.clone(),
                Err(AdminCallError::new(OP, "group id contains NUL")),
            );
            continue;
        };
        // SAFETY: the request object and the options are copied by librdkafka
        // during the call, so both can be released afterwards. The opaque is a
        // plain index, never dereferenced.
        unsafe {
            rd::rd_kafka_AdminOptions_set_opaque(options.ptr, index as *mut c_void);
            let mut request =
                rd::rd_kafka_ListConsumerGroupOffsets_new(c_group.as_ptr(), ptr::null());
            rd::rd_kafka_ListConsumerGroupOffsets(rk, &mut request, 1, options.ptr, queue.ptr);
            rd::rd_kafka_ListConsumerGroupOffsets_destroy(request);
        }
        in_flight += 1;
    }

    let deadline = Instant::now() + timeout + Duration::from_secs(1);
    while in_flight > 0 {
        // SAFETY: the queue outlives the event; the event is destroyed by its guard.
        let Some(event) = (unsafe { queue.poll_until(deadline) }) else {
            break;
        };
        in_flight -= 1;
        let index = unsafe { rd::rd_kafka_event_opaque(event.ptr) } as usize;
        let Some(group) = groups.get(index) else {
            continue;
        };
        if let Some(message) = unsafe { event.error() } {
            results.insert(group.clone(), Err(AdminCallError::new(OP, message)));
            continue;
        }
        // SAFETY: the event is a ListConsumerGroupOffsets result; the arrays and
        // lists it points to live as long as the event.
        let result = unsafe { rd::rd_kafka_event_ListConsumerGroupOffsets_result(event.ptr) };
        if result.is_null() {
            results.insert(
                group.clone(),
                Err(AdminCallError::new(OP, "unexpected event type")),
            );
            continue;
        }
        let mut count = 0usize;
        let group_results =
            unsafe { rd::rd_kafka_ListConsumerGroupOffsets_result_groups(result, &mut count) };
        for i in 0..count {
            let group_result = unsafe { *group_results.add(i) };
            let error = unsafe { rd::rd_kafka_group_result_error(group_result) };
            if !error.is_null() {
                let message = unsafe { c_str(rd::rd_kafka_error_string(error)) };
                results.insert(group.clone(), Err(AdminCallError::new(OP, message)));
                continue;
            }
            let list = unsafe { rd::rd_kafka_group_result_partitions(group_result) };
            let offsets = unsafe { partitions_of(list) }
                .into_iter()
                .map(|(topic, partition, offset, _err)| CommittedOffset {
                    topic,
                    partition,
                    offset: (offset >= 0).then_some(offset),
                })
                .collect();
            results.insert(group.clone(), Ok(offsets));
        }
    }
    for group in groups {
        results.entry(group.clone()).or_insert_with(|| {
            Err(AdminCallError::new(
                OP,
                format!("no answer within {timeout:?}"),
            ))
        });
    }
    results
}

/// Partitions per ListOffsets request. librdkafka's handling of one request
/// grows faster than linearly with its size (3.5 s of CPU for 15,000
/// partitions in one request); chunks of this size keep it linear, and the
/// chunks run concurrently.
const LIST_OFFSETS_CHUNK: usize = 100;

/// Lists the `spec` offset of every partition in `partitions`: chunked
/// requests fired together on one queue (librdkafka splits each per
/// partition leader). A failed chunk marks its partitions as failed.
pub fn list_offsets<C: ClientContext>(
    client: &Client<C>,
    partitions: &[(String, i32)],
    spec: OffsetSpec,
    isolation: Isolation,
    timeout: Duration,
) -> Result<OffsetsByPartition, AdminCallError> {
    const OP: &str = "ListOffsets";
    let mut offsets = HashMap::with_capacity(partitions.len());
    if partitions.is_empty() {
        return Ok(offsets);
    }
    let rk = client.native_ptr();
    let spec_value = match spec {
        OffsetSpec::Latest => rd::rd_kafka_OffsetSpec_t::RD_KAFKA_OFFSET_SPEC_LATEST as i64,
        OffsetSpec::Earliest => rd::rd_kafka_OffsetSpec_t::RD_KAFKA_OFFSET_SPEC_EARLIEST as i64,
    };
    let chunks: Vec<&[(String, i32)]> = partitions.chunks(LIST_OFFSETS_CHUNK).collect();
    // SAFETY: see the module's safety contract.
    unsafe {
        let queue = Queue::new(rk);
        let options = AdminOptions::new(
            rk,
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_LISTOFFSETS,
            timeout,
        )
        .map_err(|m| AdminCallError::new(OP, m))?;
        let level = match isolation {
            Isolation::ReadUncommitted => {
                rd::rd_kafka_IsolationLevel_t::RD_KAFKA_ISOLATION_LEVEL_READ_UNCOMMITTED
            }
            Isolation::ReadCommitted => {
                rd::rd_kafka_IsolationLevel_t::RD_KAFKA_ISOLATION_LEVEL_READ_COMMITTED
            }
        };
        let error = rd::rd_kafka_AdminOptions_set_isolation_level(options.ptr, level);
        if !error.is_null() {
            let message = c_str(rd::rd_kafka_error_string(error));
            rd::rd_kafka_error_destroy(error);
            return Err(AdminCallError::new(OP, message));
        }
        for (index, chunk) in chunks.iter().enumerate() {
            let list = PartitionList::new(chunk.len());
            for (topic, partition) in chunk.iter() {
                let Ok(c_topic) = CString::new(topic.as_str()) else {
                    continue;
                };
                let element =
                    rd::rd_kafka_topic_partition_list_add(list.ptr, c_topic.as_ptr(), *partition);
                (*element).offset = spec_value;
            }
            // Options (with the opaque) and the list are copied by the call.
            rd::rd_kafka_AdminOptions_set_opaque(options.ptr, index as *mut c_void);
            rd::rd_kafka_ListOffsets(rk, list.ptr, options.ptr, queue.ptr);
        }
        let deadline = Instant::now() + timeout + Duration::from_secs(1);
        let mut answered = vec![false; chunks.len()];
        for _ in 0..chunks.len() {
            let Some(event) = queue.poll_until(deadline) else {
                break;
            };
            let index = rd::rd_kafka_event_opaque(event.ptr) as usize;
            let Some(chunk) = chunks.get(index) else {
                continue;
            };
            answered[index] = true;
            let failure = match event.error() {
                Some(message) => Some(message),
                None if rd::rd_kafka_event_ListOffsets_result(event.ptr).is_null() => {
                    Some("unexpected event type".to_string())
                }
                None => None,
            };
            if let Some(message) = failure {
                for key in chunk.iter() {
                    offsets.insert(key.clone(), Err(format!("{OP}: {message}")));
                }
                continue;
            }
            let result = rd::rd_kafka_event_ListOffsets_result(event.ptr);
            let mut count = 0usize;
            let infos = rd::rd_kafka_ListOffsets_result_infos(result, &mut count);
            for i in 0..count {
                let element = rd::rd_kafka_ListOffsetsResultInfo_topic_partition(*infos.add(i));
                if element.is_null() {
                    continue;
                }
                let (topic, partition, offset, err) = read_partition(&*element);
                let value = match err {
                    Some(message) => Err(message),
                    None => Ok(offset),
                };
                offsets.insert((topic, partition), value);
            }
        }
        if answered.iter().all(|a| !a) {
            return Err(AdminCallError::new(
                OP,
                format!("no answer within {timeout:?}"),
            ));
        }
        for (index, chunk) in chunks.iter().enumerate() {
            if !answered[index] {
                for key in chunk.iter() {
                    offsets.insert(
                        key.clone(),
                        Err(format!("{OP}: no answer within {timeout:?}")),
                    );
                }
            }
        }
    }
    Ok(offsets)
}

/// Describes `groups` (state, members, protocol) in one request.
pub fn describe_consumer_groups<C: ClientContext>(
    client: &Client<C>,
    groups: &[String],
    timeout: Duration,
) -> Result<HashMap<String, Result<GroupDescription, String>>, AdminCallError> {
    const OP: &str = "DescribeConsumerGroups";
    let mut descriptions = HashMap::with_capacity(groups.len());
    if groups.is_empty() {
        return Ok(descriptions);
    }
    let rk = client.native_ptr();
    let c_groups: Vec<CString> = groups
        .iter()
        .filter_map(|g| CString::new(g.as_str()).ok())
        .collect();
    let mut pointers: Vec<*const c_char> = c_groups.iter().map(|g| g.as_ptr()).collect();
    // SAFETY: see the module's safety contract; `pointers` and `c_groups`
    // outlive the call, which copies them.
    unsafe {
        let queue = Queue::new(rk);
        let options = AdminOptions::new(
            rk,
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS,
            timeout,
        )
        .map_err(|m| AdminCallError::new(OP, m))?;
        let chunks: Vec<&mut [*const c_char]> = pointers.chunks_mut(DESCRIBE_CHUNK).collect();
        let chunk_count = chunks.len();
        for (index, chunk) in chunks.into_iter().enumerate() {
            rd::rd_kafka_AdminOptions_set_opaque(options.ptr, index as *mut c_void);
            rd::rd_kafka_DescribeConsumerGroups(
                rk,
                chunk.as_mut_ptr(),
                chunk.len(),
                options.ptr,
                queue.ptr,
            );
        }
        let deadline = Instant::now() + timeout + Duration::from_secs(1);
        let mut failures = Vec::new();
        for _ in 0..chunk_count {
            let Some(event) = queue.poll_until(deadline) else {
                failures.push(format!("no answer within {timeout:?}"));
                break;
            };
            if let Some(message) = event.error() {
                failures.push(message);
                continue;
            }
            let result = rd::rd_kafka_event_DescribeConsumerGroups_result(event.ptr);
            if result.is_null() {
                failures.push("unexpected event type".into());
                continue;
            }
            collect_descriptions(result, &mut descriptions);
        }
        if descriptions.is_empty() {
            if let Some(message) = failures.into_iter().next() {
                return Err(AdminCallError::new(OP, message));
            }
        } else if let Some(message) = failures.into_iter().next() {
            for group in groups {
                descriptions
                    .entry(group.clone())
                    .or_insert_with(|| Err(format!("{OP}: {message}")));
            }
        }
    }
    Ok(descriptions)
}

/// Groups per DescribeConsumerGroups request; chunks run concurrently.
const DESCRIBE_CHUNK: usize = 100;

/// Copies the descriptions of one DescribeConsumerGroups result.
///
/// # Safety
/// `result` must be a valid DescribeConsumerGroups result of a live event.
unsafe fn collect_descriptions(
    result: *const rd::rd_kafka_DescribeConsumerGroups_result_t,
    descriptions: &mut HashMap<String, Result<GroupDescription, String>>,
) {
    // SAFETY: guaranteed by the caller; the arrays live as long as the event.
    unsafe {
        let mut count = 0usize;
        let items = rd::rd_kafka_DescribeConsumerGroups_result_groups(result, &mut count);
        for i in 0..count {
            let description = *items.add(i);
            let group = c_str(rd::rd_kafka_ConsumerGroupDescription_group_id(description));
            let error = rd::rd_kafka_ConsumerGroupDescription_error(description);
            if !error.is_null() {
                descriptions.insert(group, Err(c_str(rd::rd_kafka_error_string(error))));
                continue;
            }
            let state = c_str(rd::rd_kafka_consumer_group_state_name(
                rd::rd_kafka_ConsumerGroupDescription_state(description),
            ));
            let protocol = c_str(rd::rd_kafka_consumer_group_type_name(
                rd::rd_kafka_ConsumerGroupDescription_type(description),
            ));
            let members = rd::rd_kafka_ConsumerGroupDescription_member_count(description);
            descriptions.insert(
                group.clone(),
                Ok(GroupDescription {
                    group,
                    state,
                    members: u32::try_from(members).unwrap_or(u32::MAX),
                    protocol,
                }),
            );
        }
    }
}

/// One group as listed by its coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    pub group: String,
    /// The group's state as the describe call names it (`Stable`, `Empty`,
    /// ...); `None` where the broker's ListGroups version does not report
    /// states.
    pub state: Option<String>,
}

/// Every consumer group of the cluster with its state (one ListGroups
/// request per broker), sorted by name, and the errors of brokers that did
/// not answer.
pub fn list_consumer_groups<C: ClientContext>(
    client: &Client<C>,
    timeout: Duration,
) -> Result<(Vec<GroupListing>, Vec<String>), AdminCallError> {
    const OP: &str = "ListConsumerGroups";
    let rk = client.native_ptr();
    let mut groups = Vec::new();
    let mut errors = Vec::new();
    // SAFETY: see the module's safety contract.
    unsafe {
        let queue = Queue::new(rk);
        let options = AdminOptions::new(
            rk,
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS,
            timeout,
        )
        .map_err(|m| AdminCallError::new(OP, m))?;
        rd::rd_kafka_ListConsumerGroups(rk, options.ptr, queue.ptr);
        let deadline = Instant::now() + timeout + Duration::from_secs(1);
        let event = queue
            .poll_until(deadline)
            .ok_or_else(|| AdminCallError::new(OP, format!("no answer within {timeout:?}")))?;
        if let Some(message) = event.error() {
            return Err(AdminCallError::new(OP, message));
        }
        let result = rd::rd_kafka_event_ListConsumerGroups_result(event.ptr);
        if result.is_null() {
            return Err(AdminCallError::new(OP, "unexpected event type"));
        }
        let mut count = 0usize;
        let listings = rd::rd_kafka_ListConsumerGroups_result_valid(result, &mut count);
        for i in 0..count {
            let listing = *listings.add(i);
            let state = rd::rd_kafka_ConsumerGroupListing_state(listing);
            groups.push(GroupListing {
                group: c_str(rd::rd_kafka_ConsumerGroupListing_group_id(listing)),
                state: (state
                    != rd::rd_kafka_consumer_group_state_t::RD_KAFKA_CONSUMER_GROUP_STATE_UNKNOWN)
                    .then(|| c_str(rd::rd_kafka_consumer_group_state_name(state))),
            });
        }
        let mut error_count = 0usize;
        let failures = rd::rd_kafka_ListConsumerGroups_result_errors(result, &mut error_count);
        for i in 0..error_count {
            errors.push(c_str(rd::rd_kafka_error_string(*failures.add(i))));
        }
    }
    groups.sort_by(|a, b| a.group.cmp(&b.group));
    Ok((groups, errors))
}

/// Number of events waiting on a consumer-type client's queue (its main
/// queue is forwarded there): errors and logs to serve. rust-rdkafka's
/// `poll(0)` returns `None` after serving a log event, so the count, not
/// `None`, tells when the queue is drained. 0 when the client has no
/// consumer queue.
pub fn queued_events<C: ClientContext>(client: &Client<C>) -> usize {
    // SAFETY: the client is alive for the call; the queue handle returned
    // by rd_kafka_queue_get_consumer is a new reference, released once.
    unsafe {
        let queue = rd::rd_kafka_queue_get_consumer(client.native_ptr());
        if queue.is_null() {
            return 0;
        }
        let length = rd::rd_kafka_queue_length(queue);
        rd::rd_kafka_queue_destroy(queue);
        length
    }
}

/// Copies the elements of a librdkafka partition list into owned values.
///
/// # Safety
/// `list` must be null or point to a valid partition list.
unsafe fn partitions_of(
    list: *const rd::rd_kafka_topic_partition_list_t,
) -> Vec<(String, i32, i64, Option<String>)> {
    if list.is_null() {
        return Vec::new();
    }
    // SAFETY: guaranteed by the caller.
    let list = unsafe { &*list };
    let count = usize::try_from(list.cnt).unwrap_or(0);
    (0..count)
        // SAFETY: `elems` holds `cnt` initialised elements.
        .map(|i| unsafe { read_partition(&*list.elems.add(i)) })
        .collect()
}

/// Reads one partition element: topic, partition, offset, error text.
///
/// # Safety
/// `element.topic` must be a valid C string.
unsafe fn read_partition(
    element: &rd::rd_kafka_topic_partition_t,
) -> (String, i32, i64, Option<String>) {
    // SAFETY: guaranteed by the caller.
    let topic = unsafe { c_str(element.topic) };
    let error = (element.err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR)
        // SAFETY: rd_kafka_err2str returns a static string for every code.
        .then(|| unsafe { c_str(rd::rd_kafka_err2str(element.err)) });
    (topic, element.partition, element.offset, error)
}

/// Copies a C string, tolerating null and invalid UTF-8.
///
/// # Safety
/// `ptr` must be null or a valid NUL-terminated string.
unsafe fn c_str(ptr: *const c_char) -> String {
    if ptr.is_null() {
        return String::new();
    }
    // SAFETY: guaranteed by the caller.
    unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned()
}

/// Owned result queue.
struct Queue {
    ptr: *mut rd::rd_kafka_queue_t,
}

impl Queue {
    /// # Safety
    /// `rk` must be a live client handle that outlives the queue.
    unsafe fn new(rk: *mut rd::rd_kafka_t) -> Self {
        // SAFETY: guaranteed by the caller.
        Queue {
            ptr: unsafe { rd::rd_kafka_queue_new(rk) },
        }
    }

    /// Waits for the next event until `deadline`.
    ///
    /// # Safety
    /// The queue must still be valid (it is, while `self` lives).
    unsafe fn poll_until(&self, deadline: Instant) -> Option<Event> {
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return None;
            }
            let wait = c_int::try_from(remaining.as_millis().min(1000)).unwrap_or(1000);
            // SAFETY: the queue is valid.
            let event = unsafe { rd::rd_kafka_queue_poll(self.ptr, wait) };
            if !event.is_null() {
                return Some(Event { ptr: event });
            }
        }
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        // SAFETY: created by rd_kafka_queue_new, destroyed once.
        unsafe { rd::rd_kafka_queue_destroy(self.ptr) }
    }
}

/// Owned result event.
struct Event {
    ptr: *mut rd::rd_kafka_event_t,
}

impl Event {
    /// The request-level error of the event, if any.
    ///
    /// # Safety
    /// The event must be valid (it is, while `self` lives).
    unsafe fn error(&self) -> Option<String> {
        // SAFETY: the event is valid.
        unsafe {
            if rd::rd_kafka_event_error(self.ptr)
                == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
            {
                None
            } else {
                Some(c_str(rd::rd_kafka_event_error_string(self.ptr)))
            }
        }
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        // SAFETY: returned by rd_kafka_queue_poll, destroyed once.
        unsafe { rd::rd_kafka_event_destroy(self.ptr) }
    }
}

/// Owned admin options with a request timeout.
struct AdminOptions {
    ptr: *mut rd::rd_kafka_AdminOptions_t,
}

impl AdminOptions {
    /// # Safety
    /// `rk` must be a live client handle.
    unsafe fn new(
        rk: *mut rd::rd_kafka_t,
        operation: rd::rd_kafka_admin_op_t,
        timeout: Duration,
    ) -> Result<Self, String> {
        // SAFETY: guaranteed by the caller.
        let ptr = unsafe { rd::rd_kafka_AdminOptions_new(rk, operation) };
        if ptr.is_null() {
            return Err("cannot create admin options".into());
        }
        let options = AdminOptions { ptr };
        let mut errstr = [0 as c_char; 256];
        let timeout_ms = c_int::try_from(timeout.as_millis()).unwrap_or(c_int::MAX);
        // SAFETY: `errstr` is a writable buffer of the given size.
        let code = unsafe {
            rd::rd_kafka_AdminOptions_set_request_timeout(
                options.ptr,
                timeout_ms,
                errstr.as_mut_ptr(),
                errstr.len(),
            )
        };
        if code != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            // SAFETY: librdkafka NUL-terminates errstr.
            return Err(unsafe { c_str(errstr.as_ptr()) });
        }
        Ok(options)
    }
}

impl Drop for AdminOptions {
    fn drop(&mut self) {
        // SAFETY: created by rd_kafka_AdminOptions_new, destroyed once.
        unsafe { rd::rd_kafka_AdminOptions_destroy(self.ptr) }
    }
}

/// Owned partition list used as a request input.
struct PartitionList {
    ptr: *mut rd::rd_kafka_topic_partition_list_t,
}

impl PartitionList {
    fn new(capacity: usize) -> Self {
        let capacity = c_int::try_from(capacity).unwrap_or(c_int::MAX);
        // SAFETY: plain allocation.
        PartitionList {
            ptr: unsafe { rd::rd_kafka_topic_partition_list_new(capacity) },
        }
    }
}

impl Drop for PartitionList {
    fn drop(&mut self) {
        // SAFETY: created by rd_kafka_topic_partition_list_new, destroyed once.
        unsafe { rd::rd_kafka_topic_partition_list_destroy(self.ptr) }
    }
}
