//! SeaORM entities: one model serves SQLite and PostgreSQL. Instants are `i64` epoch
//! milliseconds (UTC); durations are `i64` milliseconds; JSON payloads are text.

pub mod agent;
pub mod alert;
pub mod api_key;
pub mod audit;
pub mod call;
pub mod call_event;
pub mod campaign;
pub mod campaign_link;
pub mod cdr;
pub mod destination;
pub mod phone_number;
pub mod queue;
pub mod queue_member;
pub mod queue_stat;
pub mod refresh_token;
pub mod route_reservation;
pub mod tenant;
pub mod user;
pub mod writer_probe;
