//! Per-tenant broadcast of committed events (DESIGN.md "Live push"). Publishing never waits:
//! a subscriber that falls more than [`CAPACITY`] messages behind sees `Lagged` and is
//! disconnected by the stream handler; ingestion is never slowed.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde_json::{json, Value};
use switchboard_core::TenantId;
use tokio::sync::broadcast;

use switchboard_core::event::topic_of;
use switchboard_core::format_rfc3339;
use switchboard_store::EventRecord;

/// Messages buffered per tenant for slow subscribers.
pub const CAPACITY: usize = 8192;

/// One stream message: `{seq, topic, type, data, ts}` serialised once for all subscribers.
#[derive(Debug)]
pub struct StreamMessage {
    /// The event's sequence number in the tenant's stream.
    pub seq: i64,
    /// `calls`, `alerts` or `agents`.
    pub topic: &'static str,
    /// The whole message as JSON text.
    pub json: String,
}

/// Builds the stream message for a stored event. The live path and the catch-up path (`since`)
/// both use this, so a resumed client sees exactly what a live one saw.
///
/// Shape: `{"seq", "topic": "calls"|"alerts"|"agents", "type", "ts": RFC 3339, "data"}`:
/// for call events `data` is `{"call_id", "call_uuid", "event_id"?, "status", ...payload}`;
/// for agent events (`agent_status_changed`) it is the payload alone (`agent_id`, `status`,
/// `previous`, `reason`, `active_calls`).
pub fn stream_message(e: &EventRecord) -> StreamMessage {
    let topic = topic_of(&e.event_type);
    let mut data = serde_json::from_str::<Value>(&e.data).unwrap_or_else(|_| json!({}));
    if let Some(m) = data.as_object_mut().filter(|_| topic != "agents") {
        m.insert("call_id".into(), json!(e.external_call_id));
        m.insert("call_uuid".into(), json!(e.call_id));
        if let Some(id) = &e.event_id {
            m.insert("event_id".into(), json!(id));
        }
        m.insert("status".into(), json!(e.status_after));
    }
    let json = json!({
        "seq": e.seq,
        "topic": topic,
        "type": e.event_type,
        "ts": format_rfc3339(e.ts),
        "data": data,
    })
    .to_string();
    StreamMessage {
        seq: e.seq,
        topic,
        json,
    }
}

/// The registry of tenant channels.
#[derive(Clone, Default)]
pub struct Bus {
    channels: Arc<RwLock<HashMap<TenantId, broadcast::Sender<Arc<StreamMessage>>>>>,
}

impl Bus {
    /// A receiver of the tenant's messages published from now on.
    pub fn subscribe(&self, tenant: TenantId) -> broadcast::Receiver<Arc<StreamMessage>> {
        if let Some(tx) = self.channels.read().expect("bus lock").get(&tenant) {
            return tx.subscribe();
        }
        self.channels
            .write()
            .expect("bus lock")
            .entry(tenant)
            .or_insert_with(|| broadcast::channel(CAPACITY).0)
            .subscribe()
    }

    /// Publishes committed events; serialises only when someone listens.
    pub fn publish(&self, tenant: TenantId, events: &[EventRecord]) {
        let channels = self.channels.read().expect("bus lock");
        let Some(tx) = channels.get(&tenant) else {
            return;
        };
        if tx.receiver_count() == 0 {
            return;
        }
        for e in events {
            let _ = tx.send(Arc::new(stream_message(e)));
        }
    }
}
