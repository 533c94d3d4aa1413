//! # switchboard-core
//!
//! The contact-center domain of Switchboard, pure and synchronous: identifiers, timestamps,
//! call events (as sent by telephony and as made by the engine), the call state machine, the
//! per-queue business-rule settings and the queue metric definitions.
//!
//! Nothing in this crate does I/O; the engine (`switchboard-engine`) drives it and the store
//! (`switchboard-store`) persists what it produces.

pub mod access;
pub mod api;
pub mod call;
pub mod event;
pub mod ids;
pub mod metrics;
pub mod queue;
pub mod routing;
pub mod telemetry;
pub mod time;
pub mod wire;

pub use access::{Role, Scope, ScopeSet, UnknownName};
pub use api::{BatchItem, BatchResponse, Problem};
pub use call::{Call, CallFlag, CallStatus, Flags, TransitionError};
pub use event::{
    CallType, EndReason, EventKind, EventParseError, IncomingEvent, TransferTarget, MAX_BATCH,
};
pub use ids::{AgentId, ExternalCallId, IdError, QueueId, TenantId};
pub use queue::{Clock, QueueSettings, SettingsError};
pub use time::{format_rfc3339, parse_rfc3339, parse_rfc3339_checked, TimeError, TimestampMs};
