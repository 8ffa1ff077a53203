//! `companin chat`: talks to a running server over `graphql-transport-ws` and prints the
//! reply's tokens as they arrive.

use std::io::Write;

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async_with_config,
    tungstenite::{Message, client::IntoClientRequest, http::HeaderValue},
};

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

const CREATE_SESSION: &str = "mutation($input: CreateSessionInput!) { \
    createSession(input: $input) { id } }";
const CHAT: &str = "subscription($input: SendMessageInput!) { chat(input: $input) { \
    __typename \
    ... on ReplyDelta { delta } \
    ... on ReplyCitations { citations { sourceId title } } \
    ... on ReplyFailed { error } } }";

/// What to chat with.
#[derive(Debug, Clone)]
pub struct ChatOptions {
    /// `ws://host:port/graphql` (or `wss://…`).
    pub url: String,
    /// An API key (`cmp_…`).
    pub key: String,
    /// An API secret, for keys issued with one.
    pub secret: Option<String>,
    /// The assistant (`asst_…`).
    pub assistant: String,
    /// The visitor's id in the customer's system.
    pub external_user_id: Option<String>,
    /// Send this one message and exit instead of reading lines from stdin.
    pub message: Option<String>,
}

/// Connects, opens a session, then sends each line (or the one message) and prints the
/// reply as it streams.
pub async fn run(options: ChatOptions) -> anyhow::Result<()> {
    crate::tls::install_crypto_provider();
    let mut socket = connect(&options).await?;
    let session = request(
        &mut socket,
        "session",
        CREATE_SESSION,
        json!({"input": {
            "assistantId": options.assistant,
            "channel": "cli",
            "externalUserId": options.external_user_id,
        }}),
        |_| {},
    )
    .await?;
    let session_id = session["createSession"]["id"]
        .as_str()
        .context("the server did not return a session id")?
        .to_owned();
    let mut out = std::io::stdout();
    if let Some(message) = &options.message {
        return say(&mut socket, &session_id, message, &mut out).await;
    }
    eprintln!("session {session_id}: type a message, end with Ctrl-D");
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        say(&mut socket, &session_id, &line, &mut out).await?;
    }
    let _ = socket.close(None).await;
    Ok(())
}

async fn connect(options: &ChatOptions) -> anyhow::Result<Socket> {
    let mut request = options
        .url
        .as_str()
        .into_client_request()
        .with_context(|| format!("invalid websocket URL {}", options.url))?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (mut socket, _) = connect_async_with_config(request, None, true)
        .await
        .with_context(|| format!("connecting to {}", options.url))?;
    let mut payload = json!({"X-API-Key": options.key});
    if let Some(secret) = &options.secret {
        payload["X-API-Secret"] = json!(secret);
    }
    send(
        &mut socket,
        json!({"type": "connection_init", "payload": payload}),
    )
    .await?;
    match receive(&mut socket).await? {
        m if m["type"] == "connection_ack" => Ok(socket),
        other => bail!("the server did not accept the connection: {other}"),
    }
}

/// Sends a message and prints the reply's text as it arrives, then its sources.
async fn say(
    socket: &mut Socket,
    session_id: &str,
    message: &str,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut failure = None;
    request(
        socket,
        "chat",
        CHAT,
        json!({"input": {"sessionId": session_id, "message": message}}),
        |event| {
            let event = &event["chat"];
            match event["__typename"].as_str() {
                Some("ReplyDelta") => {
                    let _ = write!(out, "{}", event["delta"].as_str().unwrap_or_default());
                    let _ = out.flush();
                }
                Some("ReplyCitations") => {
                    for c in event["citations"].as_array().into_iter().flatten() {
                        let _ = write!(
                            out,
                            "\n  source: {} ({})",
                            c["title"].as_str().unwrap_or_default(),
                            c["sourceId"].as_str().unwrap_or_default()
                        );
                    }
                }
                Some("ReplyFailed") => failure = event["error"].as_str().map(str::to_owned),
                _ => {}
            }
        },
    )
    .await?;
    writeln!(out)?;
    match failure {
        Some(error) => bail!("the reply failed: {error}"),
        None => Ok(()),
    }
}

/// Runs one operation with id `id`, handing each result's data to `on_data`; returns the
/// last data.
async fn request(
    socket: &mut Socket,
    id: &str,
    query: &str,
    variables: Value,
    mut on_data: impl FnMut(&Value),
) -> anyhow::Result<Value> {
    send(
        socket,
        json!({"id": id, "type": "subscribe", "payload": {"query": query, "variables": variables}}),
    )
    .await?;
    let mut last = Value::Null;
    loop {
        let message = receive(socket).await?;
        match message["type"].as_str() {
            Some("next") if message["id"] == id => {
                if let Some(errors) = message["payload"]["errors"].as_array() {
                    let first = errors.first().and_then(|e| e["message"].as_str());
                    bail!("{}", first.unwrap_or("the server answered with an error"));
                }
                on_data(&message["payload"]["data"]);
                last = message["payload"]["data"].clone();
            }
            Some("error") if message["id"] == id => {
                bail!("the server refused the operation: {}", message["payload"])
            }
            Some("complete") if message["id"] == id => return Ok(last),
            Some("ping") => send(socket, json!({"type": "pong"})).await?,
            _ => {}
        }
    }
}

async fn send(socket: &mut Socket, message: Value) -> anyhow::Result<()> {
    socket
        .send(Message::text(message.to_string()))
        .await
        .context("sending to the server")
}

async fn receive(socket: &mut Socket) -> anyhow::Result<Value> {
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => {
                return serde_json::from_str(text.as_str()).context("the server sent invalid JSON");
            }
            Some(Ok(Message::Close(frame))) => {
                let reason = frame.map_or_else(String::new, |f| format!("{} {}", f.code, f.reason));
                bail!("the server closed the connection: {reason}")
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e).context("reading from the server"),
            None => bail!("the server closed the connection"),
        }
    }
}
