//! A raw websocket client for the GraphQL endpoint: frames in, frames out.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async_with_config,
    tungstenite::{Message, client::IntoClientRequest, http::HeaderValue},
};

use crate::helpers::TestApp;

/// How long a test waits for a frame.
const PATIENCE: Duration = Duration::from_secs(30);

/// One websocket connection.
pub struct Ws {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    /// Connects to `/graphql` asking for `protocol`, with extra upgrade headers.
    pub async fn connect_with(app: &TestApp, protocol: &str, headers: &[(&str, &str)]) -> Self {
        let mut request = app.ws_url().into_client_request().expect("ws request");
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_str(protocol).expect("protocol header"),
        );
        for (name, value) in headers {
            request.headers_mut().insert(
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                    .expect("header name"),
                HeaderValue::from_str(value).expect("header value"),
            );
        }
        let (socket, response) = connect_async_with_config(request, None, true)
            .await
            .expect("websocket connects");
        assert_eq!(
            response
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok()),
            Some(protocol),
            "the server speaks the protocol asked for"
        );
        Self { socket }
    }

    /// Connects with `graphql-transport-ws`.
    pub async fn connect(app: &TestApp) -> Self {
        Self::connect_with(app, "graphql-transport-ws", &[]).await
    }

    /// Connects and initialises with `key`; asserts the ack.
    pub async fn ready(app: &TestApp, key: &str) -> Self {
        let mut ws = Self::connect(app).await;
        ws.send(json!({"type": "connection_init", "payload": {"X-API-Key": key}}))
            .await;
        let ack = ws.recv().await;
        assert_eq!(ack["type"], "connection_ack", "{ack}");
        ws
    }

    /// Sends a JSON frame.
    pub async fn send(&mut self, frame: Value) {
        self.send_text(&frame.to_string()).await;
    }

    /// Sends a text frame as is.
    pub async fn send_text(&mut self, text: &str) {
        self.socket
            .send(Message::text(text.to_owned()))
            .await
            .expect("frame sent");
    }

    /// The next JSON frame; panics on a close or a timeout.
    pub async fn recv(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(PATIENCE, self.socket.next())
                .await
                .expect("a frame in time")
                .expect("the socket is open")
                .expect("a valid frame");
            match message {
                Message::Text(text) => {
                    return serde_json::from_str(text.as_str()).expect("JSON frame");
                }
                Message::Close(frame) => panic!("closed: {frame:?}"),
                _ => {}
            }
        }
    }

    /// Waits for the server to close; returns the close code and reason.
    pub async fn closed(&mut self) -> (u16, String) {
        loop {
            let message = tokio::time::timeout(PATIENCE, self.socket.next())
                .await
                .expect("a close in time");
            match message {
                Some(Ok(Message::Close(Some(frame)))) => {
                    return (u16::from(frame.code), frame.reason.as_str().to_owned());
                }
                Some(Ok(Message::Close(None))) | None => return (1005, String::new()),
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("socket error instead of a close frame: {e}"),
            }
        }
    }

    /// Starts operation `id`.
    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({"id": id, "type": "subscribe",
            "payload": {"query": query, "variables": variables}}))
            .await;
    }

    /// The `next` payloads of operation `id` until its `complete`.
    pub async fn until_complete(&mut self, id: &str) -> Vec<Value> {
        let mut payloads = Vec::new();
        loop {
            let frame = self.recv().await;
            match frame["type"].as_str() {
                Some("next") if frame["id"] == id => payloads.push(frame["payload"].clone()),
                Some("complete") if frame["id"] == id => return payloads,
                Some("error") if frame["id"] == id => panic!("operation refused: {frame}"),
                _ => {}
            }
        }
    }

    /// The underlying socket, for tests that send what this client would not.
    pub fn into_inner(self) -> WebSocketStream<MaybeTlsStream<TcpStream>> {
        self.socket
    }

    /// Closes the connection from the client side.
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}
