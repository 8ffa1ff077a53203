//! GraphQL over websocket at `/graphql` and `/graphql/ws`: the `graphql-transport-ws`
//! protocol to the letter (close codes 4400, 4401, 4403, 4406, 4408, 4409, 4429), and the
//! legacy `graphql-ws` (subscriptions-transport-ws) protocol.
//!
//! async-graphql's own handler closes with other codes (3008 on the init timeout, 1002 on a
//! bad message) and does not refuse duplicate ids, so the protocol loop is written here over
//! `Schema::execute_stream`.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    time::{Duration, Instant},
};

use async_graphql::{Request as GqlRequest, Value as GqlValue};
use axum::{
    Extension,
    extract::{
        ConnectInfo, State,
        ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade},
    },
    http::{HeaderMap, HeaderName, HeaderValue},
    response::Response,
};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::{sync::mpsc, task::AbortHandle};
use tracing::Instrument;

use super::{
    governance::{Served, record},
    graphql::{describe, with_codes},
    ws_credential::{RECHECK_EVERY, Standing},
};
use crate::{
    auth::Principal, domain::request_log::Transport, error::AppError, graphql::CompaninSchema,
    state::AppState,
};

/// The `graphql-ws` library's protocol.
pub const TRANSPORT_WS: &str = "graphql-transport-ws";
/// The legacy subscriptions-transport-ws protocol.
pub const LEGACY_WS: &str = "graphql-ws";
/// Seconds between server pings (`ping`, or `ka` on the legacy protocol).
const KEEPALIVE: Duration = Duration::from_secs(30);
/// Messages queued per connection before subscription tasks wait for the socket.
const OUTBOX: usize = 256;
/// Initial read and write buffer of a socket, in bytes (they grow for large messages), so
/// idle subscriptions stay cheap.
const SOCKET_BUFFER: usize = 8 * 1024;
/// Most frames written at once.
const BATCH: usize = 64;
/// Longest close reason: a close frame's payload is at most 125 bytes, two for the code.
const MAX_REASON: usize = 123;
/// How long the server waits for the client's close after its own.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Upgrades to a websocket speaking the protocol the client asks for
/// (`graphql-transport-ws` when it names none).
pub async fn upgrade(
    State(state): State<AppState>,
    Extension(schema): Extension<CompaninSchema>,
    headers: HeaderMap,
    connect_info: Option<Extension<ConnectInfo<SocketAddr>>>,
    ws: WebSocketUpgrade,
) -> Response {
    let peer = connect_info.map(|Extension(ConnectInfo(address))| address.ip());
    let asked_for_any = ws.requested_protocols().next().is_some();
    let ws = ws
        .protocols([TRANSPORT_WS, LEGACY_WS])
        .read_buffer_size(SOCKET_BUFFER)
        .write_buffer_size(SOCKET_BUFFER)
        .max_message_size(state.settings.http.max_request_bytes);
    let protocol = match ws.selected_protocol().and_then(|v| v.to_str().ok()) {
        Some(LEGACY_WS) => Some(Protocol::Legacy),
        Some(_) => Some(Protocol::TransportWs),
        None if asked_for_any => None,
        None => Some(Protocol::TransportWs),
    };
    // The connection outlives the upgrade request; its operations are traced under it.
    let span =
        tracing::info_span!(target: super::trace::TARGET, "websocket", otel.name = "websocket");
    ws.on_upgrade(move |mut socket| {
        async move {
            let _open = state.metrics.websocket_opened();
            let Some(protocol) = protocol else {
                close(&mut socket, 4406, "Subprotocol not acceptable").await;
                return;
            };
            let (outbox, inbox) = mpsc::channel(OUTBOX);
            Connection {
                state,
                schema,
                upgrade_headers: headers,
                peer,
                protocol,
                initialised: false,
                standing: None,
                subscriptions: HashMap::new(),
                generation: 0,
                outbox,
            }
            .run(socket, inbox)
            .await;
        }
        .instrument(span)
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    TransportWs,
    Legacy,
}

impl Protocol {
    /// The message types a client may send.
    fn accepts(self, kind: &str) -> bool {
        match self {
            Self::TransportWs => matches!(
                kind,
                "connection_init" | "ping" | "pong" | "subscribe" | "complete"
            ),
            Self::Legacy => matches!(
                kind,
                "connection_init" | "start" | "stop" | "connection_terminate"
            ),
        }
    }

    fn next(self) -> &'static str {
        match self {
            Self::TransportWs => "next",
            Self::Legacy => "data",
        }
    }
}

/// A message from the client, in either protocol (its type checked against the protocol
/// first).
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    ConnectionInit {
        #[serde(default)]
        payload: Option<Value>,
    },
    Ping {
        #[serde(default)]
        payload: Option<Value>,
    },
    Pong {},
    #[serde(alias = "start")]
    Subscribe {
        id: String,
        payload: Box<GqlRequest>,
    },
    #[serde(alias = "stop")]
    Complete {
        id: String,
    },
    ConnectionTerminate {},
}

/// What a subscription task sends to the connection. `generation` tells an operation from
/// an earlier one that used the same id.
enum Outgoing {
    /// A message of the operation.
    Frame {
        id: String,
        generation: u64,
        frame: String,
    },
    /// The operation ended: forget its id, then send `last`.
    End {
        id: String,
        generation: u64,
        last: String,
    },
}

/// What the connection does after a client message.
enum Flow {
    Continue,
    Close(u16, String),
}

struct Connection {
    state: AppState,
    schema: CompaninSchema,
    upgrade_headers: HeaderMap,
    peer: Option<IpAddr>,
    protocol: Protocol,
    initialised: bool,
    /// The credential and what it last proved, once initialised.
    standing: Option<Standing>,
    subscriptions: HashMap<String, (u64, AbortHandle)>,
    generation: u64,
    outbox: mpsc::Sender<Outgoing>,
}

impl Connection {
    async fn run(mut self, mut socket: WebSocket, mut inbox: mpsc::Receiver<Outgoing>) {
        let init_timeout = tokio::time::sleep(Duration::from_secs(
            self.state.settings.http.ws_init_timeout_seconds,
        ));
        tokio::pin!(init_timeout);
        let mut keepalive = tokio::time::interval(KEEPALIVE);
        keepalive.reset();
        let mut recheck = tokio::time::interval(RECHECK_EVERY);
        recheck.reset();
        // A visitor's token ends the socket when it expires.
        let expiry = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(expiry);
        let mut expires = false;
        let closing = loop {
            tokio::select! {
                () = self.state.shutdown.cancelled() => {
                    break Some((1001, "Server shutting down".to_owned()));
                }
                () = &mut init_timeout, if !self.initialised => {
                    break Some((4408, "Connection initialisation timeout".to_owned()));
                }
                () = &mut expiry, if expires => {
                    break Some((4403, "Forbidden: the token has expired".to_owned()));
                }
                _ = recheck.tick(), if self.standing.is_some() => {
                    if let Some(standing) = self.standing.as_mut()
                        && let Err(reason) = standing.recheck(&self.state, true).await
                    {
                        break Some((4403, reason));
                    }
                }
                incoming = socket.recv() => match incoming {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break None,
                    Some(Ok(Message::Text(text))) => {
                        match self.handle(&mut socket, text.as_str()).await {
                            Flow::Continue => {}
                            Flow::Close(code, reason) => break Some((code, reason)),
                        }
                        if !expires
                            && let Some(at) = self.standing.as_ref().and_then(Standing::expires)
                        {
                            expiry.as_mut().reset(at);
                            expires = true;
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        break Some((4400, "Binary messages are not part of the protocol".to_owned()));
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                },
                Some(outgoing) = inbox.recv() => {
                    if !self.write_queued(&mut socket, outgoing, &mut inbox).await {
                        break None;
                    }
                }
                _ = keepalive.tick(), if self.standing.is_some() => {
                    let frame = match self.protocol {
                        Protocol::TransportWs => json!({"type": "ping"}),
                        Protocol::Legacy => json!({"type": "ka"}),
                    };
                    if socket.send(Message::Text(frame.to_string().into())).await.is_err() {
                        break None;
                    }
                }
            }
        };
        for (_, (_, task)) in self.subscriptions.drain() {
            task.abort();
        }
        if let Some((code, reason)) = closing {
            close(&mut socket, code, &reason).await;
        }
    }

    /// Writes `first` and everything already queued behind it (up to [`BATCH`]) in one
    /// flush; `false` when the socket is gone.
    async fn write_queued(
        &mut self,
        socket: &mut WebSocket,
        first: Outgoing,
        inbox: &mut mpsc::Receiver<Outgoing>,
    ) -> bool {
        let mut queued = 0;
        let mut next = Some(first);
        while let Some(outgoing) = next.take() {
            if let Some(frame) = self.deliverable(outgoing) {
                if socket.feed(Message::Text(frame.into())).await.is_err() {
                    break;
                }
                queued += 1;
            }
            if queued < BATCH {
                next = inbox.try_recv().ok();
            }
        }
        queued == 0 || socket.flush().await.is_ok()
    }

    /// The frame to send for `outgoing`, unless it belongs to an operation that was
    /// completed (or replaced) meanwhile.
    fn deliverable(&mut self, outgoing: Outgoing) -> Option<String> {
        let current = |subscriptions: &HashMap<String, (u64, AbortHandle)>, id: &str, g: u64| {
            subscriptions
                .get(id)
                .is_some_and(|(current, _)| *current == g)
        };
        match outgoing {
            Outgoing::Frame {
                id,
                generation,
                frame,
            } => current(&self.subscriptions, &id, generation).then_some(frame),
            Outgoing::End {
                id,
                generation,
                last,
            } => {
                if !current(&self.subscriptions, &id, generation) {
                    return None;
                }
                self.subscriptions.remove(&id);
                Some(last)
            }
        }
    }

    async fn handle(&mut self, socket: &mut WebSocket, text: &str) -> Flow {
        #[derive(Deserialize)]
        struct Kind {
            #[serde(rename = "type")]
            kind: String,
        }
        let kind = match serde_json::from_str::<Kind>(text) {
            Ok(k) => k.kind,
            Err(_) => return invalid("not a JSON object with a `type`"),
        };
        if !self.protocol.accepts(&kind) {
            return invalid(&format!("unknown message type `{kind}`"));
        }
        let message: ClientMessage = match serde_json::from_str(text) {
            Ok(message) => message,
            Err(e) => return invalid(&e.to_string()),
        };
        match message {
            ClientMessage::ConnectionInit { payload } => match payload {
                None | Some(Value::Null | Value::Object(_)) => self.init(socket, payload).await,
                Some(_) => invalid("the connection_init payload must be an object"),
            },
            ClientMessage::Ping { payload } => {
                let mut pong = json!({"type": "pong"});
                match payload {
                    None | Some(Value::Null) => {}
                    Some(Value::Object(fields)) => pong["payload"] = Value::Object(fields),
                    Some(_) => return invalid("the ping payload must be an object"),
                }
                send(socket, pong).await
            }
            ClientMessage::Pong {} => Flow::Continue,
            ClientMessage::Subscribe { id, payload } => self.subscribe(socket, id, *payload).await,
            ClientMessage::Complete { id } => {
                if let Some((_, task)) = self.subscriptions.remove(&id) {
                    task.abort();
                }
                Flow::Continue
            }
            ClientMessage::ConnectionTerminate {} => Flow::Close(1000, "Normal Closure".into()),
        }
    }

    /// Authenticates from the init payload (`X-API-Key`, `X-API-Secret`, `Authorization`),
    /// falling back to the upgrade request's headers.
    async fn init(&mut self, socket: &mut WebSocket, payload: Option<Value>) -> Flow {
        if self.initialised {
            return Flow::Close(4429, "Too many initialisation requests".into());
        }
        self.initialised = true;
        let mut headers = self.upgrade_headers.clone();
        if let Some(Value::Object(fields)) = payload {
            for (name, value) in fields {
                let (Ok(name), Some(Ok(value))) = (
                    HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()),
                    value.as_str().map(HeaderValue::from_str),
                ) else {
                    continue;
                };
                headers.insert(name, value);
            }
        }
        let established = Standing::establish(
            &self.state,
            headers,
            self.upgrade_headers.clone(),
            self.peer,
        )
        .await;
        match established {
            Ok(standing) => {
                self.standing = Some(standing);
                send(socket, json!({"type": "connection_ack"})).await
            }
            Err(e @ AppError::Internal(_)) => {
                e.log();
                Flow::Close(4500, "Internal server error".into())
            }
            Err(e) => {
                if self.protocol == Protocol::Legacy {
                    let refusal =
                        json!({"type": "connection_error", "payload": {"message": e.message()}});
                    let _ = send(socket, refusal).await;
                }
                Flow::Close(4403, format!("Forbidden: {}", e.message()))
            }
        }
    }

    async fn subscribe(&mut self, socket: &mut WebSocket, id: String, request: GqlRequest) -> Flow {
        let Some(standing) = self.standing.as_mut() else {
            return Flow::Close(4401, "Unauthorized".into());
        };
        // The credential may have been revoked or expired since the socket opened.
        let principal = match standing.recheck(&self.state, false).await {
            Ok(principal) => principal.clone(),
            Err(reason) => return Flow::Close(4403, reason),
        };
        if id.is_empty() {
            return invalid("the operation id must not be empty");
        }
        if let Some((_, earlier)) = self.subscriptions.get(&id) {
            if self.protocol == Protocol::TransportWs {
                return Flow::Close(4409, format!("Subscriber for {id} already exists"));
            }
            // subscriptions-transport-ws replaces an operation started again under its id.
            earlier.abort();
        }
        if let Some(refusal) = self.admit(&principal, &request).await {
            let payload = match self.protocol {
                Protocol::TransportWs => json!([refusal]),
                Protocol::Legacy => refusal,
            };
            return send(
                socket,
                json!({"id": id, "type": "error", "payload": payload}),
            )
            .await;
        }
        self.generation += 1;
        let generation = self.generation;
        let described = super::graphql::describe(&request);
        let loader = crate::graphql::loaders::for_request(&self.state, &principal);
        let responses = self
            .schema
            .execute_stream(request.data(principal).data(loader));
        let operation = tracing::info_span!(
            target: super::trace::TARGET,
            "graphql operation",
            otel.name = format!("{} {}", described.kind.unwrap_or("invalid"), described.name),
            graphql.operation.type = described.kind.unwrap_or("invalid"),
            graphql.operation.name = described.name,
        );
        let task = tokio::spawn(
            forward(
                responses,
                self.outbox.clone(),
                self.protocol.next(),
                id.clone(),
                generation,
            )
            .instrument(operation),
        );
        self.subscriptions
            .insert(id, (generation, task.abort_handle()));
        Flow::Continue
    }
}

/// Sends an operation's responses as `next` frames (`data` for the legacy protocol), then
/// `complete`; a request error in the first response ends it with `error`.
async fn forward(
    responses: impl futures::Stream<Item = async_graphql::Response>,
    outbox: mpsc::Sender<Outgoing>,
    next: &'static str,
    id: String,
    generation: u64,
) {
    let mut responses = std::pin::pin!(responses);
    let mut first = true;
    let mut last = json!({"id": id, "type": "complete"});
    while let Some(response) = responses.next().await {
        let response = with_codes(response);
        if first && is_request_error(&response) {
            last = json!({"id": id, "type": "error", "payload": response.errors});
            break;
        }
        first = false;
        let frame = json!({"id": id, "type": next, "payload": response});
        let frame = Outgoing::Frame {
            id: id.clone(),
            generation,
            frame: frame.to_string(),
        };
        if outbox.send(frame).await.is_err() {
            return;
        }
    }
    let _ = outbox
        .send(Outgoing::End {
            id,
            generation,
            last: last.to_string(),
        })
        .await;
}

impl Connection {
    /// Counts the operation against the organization's rate limit and logs it; the error to
    /// send instead of running it when it is refused.
    async fn admit(&self, principal: &Principal, request: &GqlRequest) -> Option<Value> {
        let (started, at) = (Instant::now(), chrono::Utc::now());
        let mut decision = self.state.rate_limits.admit(principal.billed_org()).await;
        // Each root field that starts work is a request of its own (a subscribe may carry
        // a mutation document): the rest is charged as a whole or refused.
        let cost = crate::graphql::cost::cost(request);
        if cost > 1 && matches!(decision, Ok(Some(ref d)) if d.allowed) {
            decision = self
                .state
                .rate_limits
                .charge(principal.billed_org(), cost - 1)
                .await;
        }
        let refusal = match &decision {
            Ok(Some(d)) if !d.allowed => Some(AppError::RateLimited {
                retry_after: d.reset_after,
            }),
            Ok(_) => None,
            Err(_) => Some(AppError::Internal(anyhow::anyhow!(
                "rate limit check failed"
            ))),
        };
        let status = refusal.as_ref().map_or(200, |e| e.status().as_u16());
        let served = Served {
            principal,
            transport: Transport::Ws,
            method: "WS".into(),
            route: "/graphql".into(),
            operation: Some(describe(request)),
            status,
            started,
            at,
            rate_limited: matches!(decision, Ok(Some(d)) if !d.allowed),
            request_id: None,
        };
        record(&self.state, served).await;
        refusal.map(|e| {
            let error = async_graphql::Error::from(e).into_server_error(Default::default());
            serde_json::to_value(error).unwrap_or_else(|_| json!({"message": "refused"}))
        })
    }
}

/// Closes with 4400, naming what was wrong.
fn invalid(detail: &str) -> Flow {
    Flow::Close(4400, format!("Invalid message received: {detail}"))
}

/// An error before execution (parse, validation, limits): it has no data and no path.
fn is_request_error(response: &async_graphql::Response) -> bool {
    response.data == GqlValue::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty())
}

async fn send(socket: &mut WebSocket, message: Value) -> Flow {
    match socket.send(Message::Text(message.to_string().into())).await {
        Ok(()) => Flow::Continue,
        Err(_) => Flow::Close(1011, "could not write to the socket".into()),
    }
}

/// Sends a close frame (the reason cut to fit one) and waits briefly for the client's, so
/// the client reads the code rather than a reset connection.
async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let mut end = reason.len().min(MAX_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let frame = CloseFrame {
        code,
        reason: reason[..end].to_owned().into(),
    };
    if socket.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while let Some(Ok(message)) = socket.recv().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}
