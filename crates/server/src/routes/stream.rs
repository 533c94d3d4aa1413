//! `GET /api/v1/stream`: the tenant's live updates over WebSocket.
//!
//! Messages are JSON `{"seq","topic","type","data","ts"}` (see `switchboard_engine::stream_message`).
//! `?since=<seq>` first replays every stored message after `seq`, then continues live; the
//! session subscribes before reading the backlog and skips any `seq` already sent, so nothing is
//! missed and nothing comes twice. A `since` beyond the tenant's head (its largest stored `seq`)
//! is refused with 400: such a client would otherwise wait, in silence, for numbers the stream
//! has already given to other messages (e.g. it resumed against a different database). A client that falls too far behind (or does not take a
//! message within 10 s) is disconnected with close code 4008 and a reason naming the last
//! `seq` it was sent, to resume from; ingestion never waits for it.

use std::collections::HashSet;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::broadcast::{self, error::RecvError};

use switchboard_engine::{stream_message, StreamMessage};

use crate::app::AppState;
use crate::auth::{perm, Authorized, Principal, QueryCredential};
use crate::error::ApiError;
use crate::extract::Params;
use crate::metrics::SubscriberGuard;

/// Topics a client may ask for with `?topics=` (default: all): the topics messages are
/// published on today (`switchboard_core::event::topic_of`). `queues` (DESIGN.md) joins this
/// list, and only then is accepted, when messages are published on it.
pub const TOPICS: &[&str] = &["calls", "alerts", "agents"];
/// Close code for a disconnected slow consumer.
pub const CLOSE_SLOW: u16 = 4008;
/// Close code when the stream's credential is revoked or expires, or its user or tenant is
/// deactivated (the reason says which).
pub const CLOSE_UNAUTHORIZED: u16 = 4001;
/// How often an open stream re-checks its credential (in memory: no query).
const RECHECK_EVERY: Duration = Duration::from_secs(1);
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
const PING_EVERY: Duration = Duration::from_secs(20);
const CATCH_UP_PAGE: u64 = 1000;

/// Opens the stream. Credential: `Authorization: Bearer`, `X-API-Key`, or (for browsers, which
/// cannot set headers on a WebSocket) `?access_token=` or `?api_key=`; the stream closes with
/// code 4001 when the credential is revoked or expires, or its user or tenant is deactivated. `since` = last seq seen (at most the
/// tenant's latest seq, else 400); `topics` = comma-separated subset of `calls,alerts,agents`
/// (an unknown or not yet published topic is a 400).
#[utoipa::path(get, path = "/api/v1/stream", operation_id = "stream", tag = "stream",
    params(("since" = Option<i64>, Query,), ("topics" = Option<String>, Query,), ("api_key" = Option<String>, Query,), ("access_token" = Option<String>, Query,)),
    responses((status = 101, description = "WebSocket of {seq, topic, type, data, ts} messages"),
              (status = 400, description = "Bad parameter or not a WebSocket upgrade"), (status = 401, description = "Missing or invalid key")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn stream(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Result<Params, ApiError>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    // The credential first: an anonymous caller learns nothing from the query's checks.
    let query = p
        .as_ref()
        .map_or(QueryCredential::default(), |p| QueryCredential {
            api_key: p.get("api_key"),
            access_token: p.get("access_token"),
        });
    let auth =
        Authorized::<perm::StreamRead>::check(Principal::resolve(&s, &headers, query).await?)?.0;
    let p = p?;
    let since = p.parsed(
        "since",
        |v| v.parse::<i64>().ok().filter(|n| *n >= 0),
        "a non-negative integer",
    )?;
    let topics = parse_topics(p.get("topics"))?;
    let ws = ws.map_err(|e| ApiError::bad_request(format!("expected a WebSocket upgrade: {e}")))?;
    if let Some(since) = since {
        // The tenant row's head is written in the same transaction as the events.
        let head = s.store.tenant(auth.tenant_id).await?.last_seq;
        if since > head {
            return Err(ApiError::bad_param(
                "since",
                format!(
                    "{since} is beyond this tenant's latest message ({head}); resume with a seq \
                     you received, or omit `since` to start live"
                ),
            )
            .with("head", head));
        }
    }
    // Subscribe before the backlog is read: a message committed meanwhile is in one or both.
    let rx = s.engine.subscribe(auth.tenant_id);
    Ok(ws.on_upgrade(move |socket| session(socket, s, auth, since, topics, rx)))
}

/// The `topics` parameter: absent = every topic in [`TOPICS`]; else a comma-separated subset.
/// Errors: 400 naming `topics` for an unknown or not yet published topic.
fn parse_topics(param: Option<&str>) -> Result<HashSet<&'static str>, ApiError> {
    let Some(t) = param else {
        return Ok(TOPICS.iter().copied().collect());
    };
    t.split(',')
        .map(|x| {
            let x = x.trim();
            TOPICS.iter().copied().find(|k| *k == x).ok_or_else(|| {
                let why = if ["queues", "agents"].contains(&x) {
                    "is not published yet"
                } else {
                    "is unknown"
                };
                ApiError::bad_param(
                    "topics",
                    format!(
                        "topic `{x}` {why}; expected one or more of {}",
                        TOPICS.join(", ")
                    ),
                )
            })
        })
        .collect()
}

type Tx = futures_util::stream::SplitSink<WebSocket, Message>;

/// Sends one message; false when the client did not take it within [`SEND_TIMEOUT`] or is gone.
async fn send(tx: &mut Tx, m: &StreamMessage) -> bool {
    let msg = Message::Text(m.json.clone().into());
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, tx.send(msg)).await,
        Ok(Ok(()))
    )
}

enum End {
    Closed,
    Slow(i64),
    Shutdown,
    Unauthorized(String),
    Error,
}

async fn session(
    socket: WebSocket,
    s: AppState,
    auth: Principal,
    since: Option<i64>,
    topics: HashSet<&'static str>,
    mut rx: broadcast::Receiver<std::sync::Arc<StreamMessage>>,
) {
    let _counted = SubscriberGuard::new();
    let tenant = auth.tenant_id;
    let (mut tx, mut incoming) = socket.split();
    let mut last = since.unwrap_or(i64::MIN);
    let end = 'run: {
        if let Some(mut after) = since {
            loop {
                let page = match s.store.events_since(tenant, after, CATCH_UP_PAGE).await {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::error!(error = %e, "stream catch-up failed");
                        break 'run End::Error;
                    }
                };
                for e in &page {
                    let m = stream_message(e);
                    if topics.contains(m.topic) && !send(&mut tx, &m).await {
                        break 'run End::Slow(last);
                    }
                    last = m.seq;
                    after = m.seq;
                }
                if (page.len() as u64) < CATCH_UP_PAGE {
                    break;
                }
            }
        }
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        let mut recheck = tokio::time::interval(RECHECK_EVERY);
        recheck.tick().await;
        loop {
            tokio::select! {
                _ = s.shutdown.cancelled() => break 'run End::Shutdown,
                m = rx.recv() => match m {
                    Ok(m) => {
                        if m.seq <= last { continue; }
                        if topics.contains(m.topic) && !send(&mut tx, &m).await {
                            break 'run End::Slow(last);
                        }
                        last = m.seq;
                    }
                    Err(RecvError::Lagged(_)) => break 'run End::Slow(last),
                    Err(RecvError::Closed) => break 'run End::Shutdown,
                },
                c = incoming.next() => match c {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break 'run End::Closed,
                    Some(Ok(_)) => {}
                },
                _ = recheck.tick() => {
                    if let Err(e) = auth.still_valid(&s).await {
                        if e.status == axum::http::StatusCode::UNAUTHORIZED {
                            break 'run End::Unauthorized(e.detail);
                        }
                    }
                }
                _ = ping.tick() => {
                    if tokio::time::timeout(SEND_TIMEOUT, tx.send(Message::Ping(Default::default()))).await.is_err() {
                        break 'run End::Slow(last);
                    }
                }
            }
        }
    };
    let frame = match end {
        End::Closed => None,
        End::Slow(last) => Some(CloseFrame {
            code: CLOSE_SLOW,
            reason: format!("slow consumer; resume with since={}", last.max(0)).into(),
        }),
        End::Shutdown => Some(CloseFrame {
            code: 1001,
            reason: "server shutting down".into(),
        }),
        End::Unauthorized(why) => Some(CloseFrame {
            code: CLOSE_UNAUTHORIZED,
            reason: why.chars().take(120).collect::<String>().into(),
        }),
        End::Error => Some(CloseFrame {
            code: 1011,
            reason: "internal error".into(),
        }),
    };
    if let Some(f) = frame {
        let _ =
            tokio::time::timeout(Duration::from_secs(1), tx.send(Message::Close(Some(f)))).await;
    }
}
