//! Property tests through the real interfaces: damaged files through the extraction child,
//! and arbitrary frames over the websocket. Whatever arrives, the answer is an answer — a
//! failed source, an error message, a close code — never a crash or a hang.

use std::time::Duration;

use companin::{
    config::IngestionSettings,
    ingest::isolated::{Isolation, Request},
};
use futures::{SinkExt, StreamExt};
use proptest::{prelude::*, test_runner::TestRunner};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::{helpers::TestApp, ws_support::Ws};

/// A valid one-page PDF with `flips` bytes changed and `cut` bytes dropped from its end.
fn damaged_pdfs() -> impl Strategy<Value = Vec<u8>> {
    let pdf = companin::services::sandbox::samples::pdf("Damaged files fail alone");
    let len = pdf.len();
    (
        proptest::collection::vec((0..len, any::<u8>()), 0..12),
        0..len / 2,
    )
        .prop_map(move |(flips, cut)| {
            let mut damaged = pdf.clone();
            for (at, byte) in flips {
                damaged[at] = byte;
            }
            damaged.truncate(len - cut);
            damaged
        })
}

#[test]
fn damaged_pdfs_and_arbitrary_files_end_with_an_answer_from_the_extraction_child() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let isolation = Isolation::from_settings(&IngestionSettings {
        extract_program: Some(env!("CARGO_BIN_EXE_companin").into()),
        extract_timeout_seconds: 20,
        ..IngestionSettings::default()
    })
    .expect("isolation");
    let files = prop_oneof![
        damaged_pdfs().prop_map(|bytes| ("damaged.pdf", bytes)),
        proptest::collection::vec(any::<u8>(), 0..4096).prop_map(|bytes| ("any.bin", bytes)),
        proptest::collection::vec(any::<u8>(), 0..4096).prop_map(|bytes| ("any.json", bytes)),
    ];
    let mut runner = TestRunner::new(ProptestConfig::with_cases(48));
    runner
        .run(&files, |(name, bytes)| {
            let request = Request {
                file_name: Some(name.to_owned()),
                title: name.to_owned(),
                ..Request::default()
            };
            let answered = runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(30), isolation.extract(&request, bytes))
                    .await
            });
            // The outer result is the server's own (the child could not be started).
            prop_assert!(matches!(answered, Ok(Ok(_))), "{answered:?}");
            Ok(())
        })
        .expect("every file is answered");
}

/// Frames a client might send: pieces of the protocol's messages, shuffled.
fn frames() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("{"),
        Just("}"),
        Just("\"type\":"),
        Just("\"subscribe\""),
        Just("\"connection_init\""),
        Just("\"ping\""),
        Just("\"complete\""),
        Just("\"id\":\"1\""),
        Just("\"payload\":"),
        Just("{\"query\":\"{ viewer { scopes } }\"}"),
        Just("{\"query\":\"mutation { sendMessage }\"}"),
        Just("null"),
        Just("[]"),
        Just(","),
        Just("\"\\u0000\""),
        Just("1e999"),
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

#[test]
fn arbitrary_websocket_frames_are_answered_or_closed_and_the_server_goes_on() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let app = runtime.block_on(TestApp::spawn());
    let mut runner = TestRunner::new(ProptestConfig::with_cases(40));
    runner
        .run(&proptest::collection::vec(frames(), 1..4), |sent| {
            runtime.block_on(async {
                let mut socket = Ws::ready(&app, &app.key).await.into_inner();
                // A frame may close the socket: later sends may then fail, which is fine.
                for frame in &sent {
                    let _ = socket.send(Message::text(frame.clone())).await;
                }
                // Whatever came of them, a ping on the same socket is answered, or the
                // socket was closed with a protocol code.
                let _ = socket
                    .send(Message::text(json!({"type": "ping"}).to_string()))
                    .await;
                let outcome = tokio::time::timeout(Duration::from_secs(10), async {
                    while let Some(message) = socket.next().await {
                        match message {
                            Ok(Message::Text(text)) if text.contains("\"pong\"") => {
                                return Ok(());
                            }
                            Ok(Message::Close(frame)) => {
                                return match frame.map(|f| u16::from(f.code)) {
                                    Some(4400 | 4401 | 4409 | 4429) => Ok(()),
                                    other => Err(format!("closed with {other:?}")),
                                };
                            }
                            Ok(_) => {}
                            Err(e) => return Err(e.to_string()),
                        }
                    }
                    Err("the socket ended without a close".to_owned())
                })
                .await;
                let _ = socket.close(None).await;
                match outcome {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => prop_assert!(false, "{sent:?}: {e}"),
                    Err(_) => prop_assert!(false, "{sent:?}: no answer"),
                }
                Ok(())
            })
        })
        .expect("every frame is answered");
    // And the server still serves.
    runtime.block_on(async {
        let mut ws = Ws::ready(&app, &app.key).await;
        ws.subscribe("last", "{ viewer { scopes } }", json!({}))
            .await;
        assert_eq!(ws.until_complete("last").await.len(), 1);
    });
}
