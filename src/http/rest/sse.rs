//! Replies as `text/event-stream`, resumable: every event of a reply carries `id:`, its
//! position in the reply, and a client re-attaching with `Last-Event-ID` gets only what
//! follows. A comment line every 15 s keeps proxies from closing a quiet stream.
//!
//! A position counts the reply's text, not its events, so it means the same whether the reply
//! is followed live, replayed by the broker or read back from storage (which replays the text
//! as one piece): `reply_started` is `0`, a `reply_delta` is the number of bytes of text up to
//! its end, `reply_citations` that length + 1 and the reply's end (`reply_completed` or
//! `reply_failed`) that length + 2. A message that is not a reply (`message_posted`,
//! `conversation_status_changed`) carries no id.

use std::{convert::Infallible, time::Duration};

use axum::{
    http::{HeaderMap, header::ACCEPT},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use futures::{StreamExt, stream};

use crate::{
    error::{AppError, AppResult},
    services::replies::{EventStream, ReplyEvent as DomainEvent},
    views::conversations::ReplyEvent,
};

/// How often a quiet stream sends a comment line (proxies close idle connections).
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(15);

/// Whether the client asked for `text/event-stream`.
pub fn accepts_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("text/event-stream"))
}

/// The position a client re-attaches after (`Last-Event-ID`), if it sent one.
pub fn last_event_id(headers: &HeaderMap) -> AppResult<Option<u64>> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    let value = value.to_str().unwrap_or_default().trim();
    if value.is_empty() {
        // The specification's way of resetting: start again.
        return Ok(None);
    }
    value.parse().map(Some).map_err(|_| {
        AppError::bad_input(
            "last_event_id",
            "must be the id of an event this stream sent (a whole number)",
        )
    })
}

/// Reply events after position `after` (all of them when `None`) as server-sent events,
/// then `done`.
pub fn event_stream(events: EventStream, after: Option<u64>) -> Response {
    let mut resume = Resume::after(after);
    let events = events
        .filter_map(move |event| std::future::ready(resume.next(event)))
        .map(|(id, event)| {
            let event = ReplyEvent::from(event);
            let sse = Event::default()
                .event(event.name())
                .data(event.to_json().to_string());
            Ok::<_, Infallible>(match id {
                Some(id) => sse.id(id.to_string()),
                None => sse,
            })
        })
        .chain(stream::once(async {
            Ok(Event::default().event("done").data("{}"))
        }));
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(HEARTBEAT))
        .into_response()
}

/// Gives each event its position and drops what a client re-attaching after `after` has.
struct Resume {
    after: Option<u64>,
    /// Bytes of text the stream has carried so far.
    text: u64,
}

impl Resume {
    fn after(after: Option<u64>) -> Self {
        Self { after, text: 0 }
    }

    /// The event with its position, trimmed to what follows `after`; `None` when the client
    /// has all of it.
    fn next(&mut self, mut event: DomainEvent) -> Option<(Option<u64>, DomainEvent)> {
        let id = match &mut event {
            DomainEvent::Started { .. } => 0,
            DomainEvent::Delta { delta, .. } => {
                let start = self.text;
                self.text += delta.len() as u64;
                if let Some(after) = self.after
                    && after > start
                    && after < self.text
                {
                    // The client has the piece's beginning: send the rest, from a character
                    // boundary.
                    let mut cut = usize::try_from(after - start).unwrap_or(delta.len());
                    while !delta.is_char_boundary(cut) {
                        cut += 1;
                    }
                    delta.drain(..cut);
                }
                self.text
            }
            DomainEvent::Citations { .. } => self.text + 1,
            DomainEvent::Completed { .. } | DomainEvent::Failed { .. } => self.text + 2,
            DomainEvent::Posted { .. } | DomainEvent::StateChanged { .. } => {
                return Some((None, event));
            }
        };
        match self.after {
            Some(after) if id <= after => None,
            _ => Some((Some(id), event)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(index: u32, text: &str) -> DomainEvent {
        DomainEvent::Delta {
            conversation_id: "conv_1".into(),
            message_id: "msg_1".into(),
            index,
            delta: text.into(),
        }
    }

    fn reply(pieces: &[&str]) -> Vec<DomainEvent> {
        let mut events = vec![DomainEvent::Started {
            conversation_id: "conv_1".into(),
            message_id: "msg_1".into(),
            reply_to: None,
        }];
        events.extend(
            pieces
                .iter()
                .enumerate()
                .map(|(i, p)| delta(u32::try_from(i).expect("few"), p)),
        );
        events.push(DomainEvent::Citations {
            conversation_id: "conv_1".into(),
            message_id: "msg_1".into(),
            citations: vec![],
        });
        events
    }

    /// The ids and texts `events` give after `after`.
    fn resumed(events: Vec<DomainEvent>, after: Option<u64>) -> Vec<(Option<u64>, String)> {
        let mut resume = Resume::after(after);
        events
            .into_iter()
            .filter_map(|e| resume.next(e))
            .map(|(id, e)| match e {
                DomainEvent::Delta { delta, .. } => (id, delta),
                DomainEvent::Started { .. } => (id, "started".into()),
                _ => (id, "citations".into()),
            })
            .collect()
    }

    #[test]
    fn positions_count_the_text_so_a_live_stream_and_a_stored_replay_agree() {
        let live = resumed(reply(&["Olá, ", "ação ", "feita."]), None);
        assert_eq!(
            live,
            vec![
                (Some(0), "started".into()),
                (Some(6), "Olá, ".into()),
                (Some(13), "ação ".into()),
                (Some(19), "feita.".into()),
                (Some(20), "citations".into()),
            ]
        );
        // Seen up to the second piece, the reply then read back as one piece: the rest only.
        let stored = resumed(reply(&["Olá, ação feita."]), Some(13));
        assert_eq!(
            stored,
            vec![(Some(19), "feita.".into()), (Some(20), "citations".into())]
        );
        // A position inside a character starts at the next boundary, never splits it.
        let inside = resumed(reply(&["Olá, ação feita."]), Some(8));
        assert_eq!(inside[0], (Some(19), "ão feita.".into()));
        // Everything seen: nothing is sent again.
        assert!(resumed(reply(&["Olá"]), Some(5)).is_empty());
    }
}
