//! The task that generates one reply: it streams the chat model's text to the broker, saves
//! it as it grows, and completes the stored message with citations, usage and latency. It
//! runs on its own, so a reply is finished and stored even when every client went away.

use std::{sync::Arc, time::Duration};

use entity::message::{self, Status};
use futures::{
    StreamExt,
    future::{BoxFuture, OptionFuture},
};
use sea_orm::DbErr;
use tokio::{
    task::JoinHandle,
    time::{Instant, MissedTickBehavior},
};
use tokio_util::sync::CancellationToken;

use super::{
    grounding::{Gate, Grounding, Verdict},
    prompt::cited_positions,
};
use crate::{
    auth::Tenant,
    domain::{
        ids::MessageId,
        reply_failure::{ReplyFailure, ReplyFailureCode},
    },
    models::{ChatChunk, ChatModel, ChatRequest, ExtractiveChat, Faithfulness, ModelError},
    repo::{self, conversations::Finish},
    runtime::replies::{Citation, ReplyBroker, ReplyEvent, ReplyPermit},
    services::retrieval::Hit,
    state::AppState,
};

/// A streaming reply writes at least this often, so others can tell it is alive.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// The model name of a reply that quotes a strongly matching Q&A answer.
pub const QA_MATCH_MODEL: &str = "qa-match";

/// What a reply is generated from, prepared inside the reply's task (retrieval, history,
/// prompt) so that nothing is lost when the sender goes away.
pub struct Prepared {
    /// What the chat model is asked.
    pub request: ChatRequest,
    /// The passages retrieved, best first.
    pub passages: Vec<Hit>,
    /// A strongly matching Q&A answer, given verbatim instead of generating (its source is
    /// `passages[0]`).
    pub verbatim: Option<String>,
}

/// Everything a reply needs.
pub(crate) struct ReplyJob {
    /// The organization's handle for the reply's work ([`Work::Replies`](crate::auth::Work::Replies)).
    pub work: Tenant,
    /// The reply's message, stored `PENDING`.
    pub reply: message::Model,
    /// Prepares the prompt; an error fails the reply with its message.
    pub prepare: BoxFuture<'static, Result<Prepared, ReplyFailure>>,
    /// When the visitor's message arrived.
    pub received: Instant,
    /// The organization's slot for one reply generating, given back when the reply ends.
    pub permit: ReplyPermit,
}

/// How the generation loop ended.
enum Outcome {
    Done {
        /// (prompt, completion) tokens, when the model counted them.
        usage: Option<(u32, u32)>,
        cited: Vec<String>,
        grounding: Grounding,
        /// The model whose text was kept, when not the one that was asked.
        answered_by: Option<String>,
    },
    Cancelled,
    Failed(ReplyFailure),
}

/// Generates the reply and returns the stored message when it has ended. `ReplyStarted` was
/// published before (so a subscriber attaching right after the send finds the reply live).
pub(crate) async fn run(
    state: AppState,
    job: ReplyJob,
    cancel: CancellationToken,
) -> Option<Arc<message::Model>> {
    let broker = state.replies.broker().clone();
    let conversation_id = job.reply.conversation_id.clone();
    let message_id = job.reply.id.clone();
    // The slot is held until the reply has ended.
    let ReplyJob {
        work,
        reply: _,
        prepare,
        received,
        permit: _permit,
    } = job;
    let prepared = tokio::select! {
        biased;
        () = cancel.cancelled() => Err(None),
        prepared = prepare => prepared.map_err(Some),
    };
    let job = match prepared {
        Ok(prepared) => Ready {
            work,
            prepared,
            received,
        },
        Err(reason) => {
            let outcome = match reason {
                None => Outcome::Cancelled,
                Some(error) => Outcome::Failed(error),
            };
            let out = Emitter::new(broker.clone(), &conversation_id, &message_id, received);
            let model = state.models.chat.id().to_owned();
            return conclude(&state, &work, &[], out, outcome, model).await;
        }
    };
    let model = if job.prepared.verbatim.is_some() {
        QA_MATCH_MODEL.to_owned()
    } else {
        state.models.chat.id().to_owned()
    };
    let mut out = Emitter::new(broker, &conversation_id, &message_id, job.received);
    let outcome = match &job.prepared.verbatim {
        Some(answer) => quote(answer, &job.prepared.passages, &mut out).await,
        None => generate(&state, &job, &cancel, &mut out).await,
    };
    conclude(
        &state,
        &job.work,
        &job.prepared.passages,
        out,
        outcome,
        model,
    )
    .await
}

/// Gives a strongly matching Q&A answer verbatim, citing its source (the first passage).
async fn quote(answer: &str, passages: &[Hit], out: &mut Emitter) -> Outcome {
    out.emit(answer.to_owned()).await;
    Outcome::Done {
        usage: Some((0, 0)),
        cited: passages
            .first()
            .map(|h| vec![h.source.id.clone()])
            .unwrap_or_default(),
        grounding: Grounding::Quoted,
        answered_by: None,
    }
}

/// A reply with its prompt prepared.
struct Ready {
    work: Tenant,
    prepared: Prepared,
    received: Instant,
}

/// Stores how the reply ended and publishes its last events.
async fn conclude(
    state: &AppState,
    work: &Tenant,
    passages: &[Hit],
    out: Emitter,
    outcome: Outcome,
    model: String,
) -> Option<Arc<message::Model>> {
    let Emitter {
        broker,
        conversation_id,
        message_id,
        received,
        text,
        index,
        first_token_ms,
    } = out;
    let answered_by = match &outcome {
        Outcome::Done {
            answered_by: Some(other),
            ..
        } => other.clone(),
        _ => model,
    };
    let (status, citations, usage, error, grounding) = ending(outcome, passages, &text);
    let finish = Finish {
        status,
        content: text,
        model: answered_by,
        prompt_tokens: usage.map(|u| u.0 as i32),
        completion_tokens: usage.map(|u| u.1 as i32).or(Some(index as i32)),
        first_token_ms,
        latency_ms: elapsed_ms(received),
        citations: serde_json::to_value(&citations).unwrap_or_default(),
        error: error.clone(),
        grounding: grounding.map(Grounding::as_str),
    };
    let stored = store_end(state, work, &conversation_id, &message_id, finish).await;
    publish_end(
        &*broker,
        conversation_id,
        message_id,
        stored.as_ref(),
        error,
    )
    .await;
    stored
}

/// The status, citations, token usage and error an outcome is stored with.
fn ending(outcome: Outcome, passages: &[Hit], text: &str) -> Ending {
    match outcome {
        Outcome::Done {
            usage,
            cited,
            grounding,
            answered_by: _,
        } => (
            Status::Complete,
            // A quoting answerer names what it quotes: citing nothing, it found nothing.
            citations(passages, text, &cited, grounding == Grounding::Quoted),
            usage,
            None,
            Some(grounding),
        ),
        Outcome::Cancelled => (
            Status::Cancelled,
            citations(passages, text, &[], false),
            None,
            None,
            None,
        ),
        Outcome::Failed(error) => (Status::Failed, Vec::new(), None, Some(error), None),
    }
}

/// What [`ending`] gives: status, citations, (prompt, completion) tokens, error, grounding.
type Ending = (
    Status,
    Vec<Citation>,
    Option<(u32, u32)>,
    Option<ReplyFailure>,
    Option<Grounding>,
);

/// Publishes the reply's last events: its citations and `Completed`, or `Failed`.
async fn publish_end(
    broker: &dyn ReplyBroker,
    conversation_id: String,
    message_id: String,
    stored: Option<&Arc<message::Model>>,
    error: Option<ReplyFailure>,
) {
    let terminal = match (stored, error) {
        (Some(stored), _) if stored.status == Status::Failed => ReplyEvent::Failed {
            conversation_id: conversation_id.clone(),
            message_id: message_id.clone(),
            failure: ReplyFailure::from_stored(
                stored.error_code.as_deref(),
                stored.error.as_deref(),
            ),
        },
        (Some(stored), _) => {
            broker
                .publish(ReplyEvent::Citations {
                    conversation_id: conversation_id.clone(),
                    message_id: message_id.clone(),
                    citations: crate::runtime::replies::citations_of(stored),
                })
                .await;
            ReplyEvent::Completed {
                message: Arc::clone(stored),
            }
        }
        (None, error) => ReplyEvent::Failed {
            conversation_id,
            message_id,
            failure: error.unwrap_or_else(|| {
                ReplyFailure::new(
                    ReplyFailureCode::Internal,
                    "the reply could not be stored; try again",
                )
            }),
        },
    };
    broker.publish(terminal).await;
}

/// Writes the reply's end and reads back what is stored: a reply cancelled elsewhere keeps
/// the state written there. `None` when the end could not be stored (the reply is then
/// reported failed, whatever was generated).
async fn store_end(
    state: &AppState,
    work: &Tenant,
    conversation_id: &str,
    message_id: &str,
    finish: Finish,
) -> Option<Arc<message::Model>> {
    let stored_end = repo::conversations::finish(&state.db, work, message_id, finish).await;
    if let Err(e) = &stored_end {
        tracing::error!(message = %message_id, error = %e, "could not store the end of a reply");
    }
    let id = MessageId::from_db(message_id.to_owned());
    let stored = match repo::conversations::find_message(&state.db, work, &id).await {
        Ok(Some(stored)) => Some(Arc::new(stored)),
        Ok(None) => None,
        Err(e) => {
            tracing::error!(message = %message_id, error = %e, "could not read a finished reply");
            None
        }
    };
    let _ = repo::conversations::touch(&state.db, work, conversation_id).await;
    stored
        .filter(|m| stored_end.is_ok() && !matches!(m.status, Status::Pending | Status::Streaming))
}

/// Publishes the text as it comes and keeps the whole.
struct Emitter {
    broker: Arc<dyn ReplyBroker>,
    conversation_id: String,
    message_id: String,
    received: Instant,
    text: String,
    index: u32,
    first_token_ms: Option<i32>,
}

impl Emitter {
    fn new(
        broker: Arc<dyn ReplyBroker>,
        conversation_id: &str,
        message_id: &str,
        received: Instant,
    ) -> Self {
        Self {
            broker,
            conversation_id: conversation_id.to_owned(),
            message_id: message_id.to_owned(),
            received,
            text: String::new(),
            index: 0,
            first_token_ms: None,
        }
    }

    async fn emit(&mut self, piece: String) {
        if piece.is_empty() {
            return;
        }
        if self.first_token_ms.is_none() {
            self.first_token_ms = Some(elapsed_ms(self.received));
        }
        self.text.push_str(&piece);
        self.broker
            .publish(ReplyEvent::Delta {
                conversation_id: self.conversation_id.clone(),
                message_id: self.message_id.clone(),
                index: self.index,
                delta: piece,
            })
            .await;
        self.index += 1;
    }
}

/// Streams the chat model's reply into `out`, saving progress as it grows, until the model
/// completes, fails, or the reply is cancelled (here, or in the database by another replica).
async fn generate(
    state: &AppState,
    job: &Ready,
    cancel: &CancellationToken,
    out: &mut Emitter,
) -> Outcome {
    let opened = tokio::select! {
        biased;
        () = cancel.cancelled() => return Outcome::Cancelled,
        opened = state.models.chat.stream(job.prepared.request.clone()) => opened,
    };
    let mut stream = match opened {
        Ok(stream) => stream,
        Err(e) => return Outcome::Failed(model_failed(&e)),
    };
    let faithfulness = state.models.chat.faithfulness();
    let mut gate = (faithfulness == Faithfulness::Checked)
        .then(|| Gate::new(job.prepared.passages.iter().map(|h| h.text.as_str())));
    let mut flush = tokio::time::interval(Duration::from_millis(
        state.settings.replies.reply_flush_ms.max(10),
    ));
    flush.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let (mut saved_len, mut last_write) = (0usize, Instant::now());
    // At most one save in flight, off the generation's path: tokens never wait on the
    // database.
    let mut saving: Option<JoinHandle<Result<bool, DbErr>>> = None;
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => return Outcome::Cancelled,
            chunk = stream.next() => match chunk {
                Some(Ok(ChatChunk::Delta(piece))) => match gate.as_mut().map(|g| g.push(&piece)) {
                    None => out.emit(piece).await,
                    Some(Verdict::Pass(cleared)) => out.emit(cleared).await,
                    Some(Verdict::Stop(cleared)) => {
                        out.emit(cleared).await;
                        // Dropping the stream stops the model.
                        drop(stream);
                        return unsupported(job, gate.as_ref().is_some_and(Gate::passed_any), out)
                            .await;
                    }
                },
                Some(Ok(ChatChunk::Done(done))) => {
                    let grounding = match gate.as_mut().map(Gate::finish) {
                        None if faithfulness == Faithfulness::Quotes => Grounding::Quoted,
                        None => Grounding::Unchecked,
                        Some(Verdict::Pass(cleared)) => {
                            out.emit(cleared).await;
                            Grounding::Supported
                        }
                        Some(Verdict::Stop(cleared)) => {
                            out.emit(cleared).await;
                            let passed = gate.as_ref().is_some_and(Gate::passed_any);
                            return unsupported(job, passed, out).await;
                        }
                    };
                    return Outcome::Done {
                        usage: Some((done.prompt_tokens, done.completion_tokens)),
                        cited: done.citations,
                        grounding,
                        answered_by: None,
                    };
                }
                Some(Err(e)) => return Outcome::Failed(model_failed(&e)),
                None => return Outcome::Failed(ReplyFailure::new(
                    ReplyFailureCode::ModelUnavailable,
                    "the assistant's model stopped before finishing the reply; try again",
                )),
            },
            Some(saved) = OptionFuture::from(saving.as_mut()), if saving.is_some() => {
                saving = None;
                match saved {
                    // Cancelled elsewhere (another replica): stop here.
                    Ok(Ok(false)) => return Outcome::Cancelled,
                    Ok(Ok(true)) => {}
                    Ok(Err(e)) => tracing::warn!(
                        message = %out.message_id, error = %e, "could not save reply progress"
                    ),
                    Err(e) => tracing::warn!(
                        message = %out.message_id, error = %e, "the reply progress writer failed"
                    ),
                }
            }
            _ = flush.tick(), if saving.is_none() => {
                if out.text.len() == saved_len && last_write.elapsed() < HEARTBEAT {
                    continue;
                }
                saving = Some(save_progress(state, &job.work, out));
                (saved_len, last_write) = (out.text.len(), Instant::now());
            }
        }
    }
}

/// What the reply's readers are told when the chat model fails: a sentence they can act on.
/// The provider's address and answer go to the logs only.
fn model_failed(e: &ModelError) -> ReplyFailure {
    tracing::warn!(error = %e, "the chat model failed a reply");
    let (code, message) = match e {
        ModelError::RateLimited(_) => (
            ReplyFailureCode::ModelBusy,
            "the assistant's model is busy; try again in a moment",
        ),
        ModelError::Invalid(_) => (
            ReplyFailureCode::ModelRejected,
            "the message could not be answered as asked; try a shorter message or conversation",
        ),
        ModelError::Unavailable(_) => (
            ReplyFailureCode::ModelUnavailable,
            "the assistant's model could not answer; try again later",
        ),
    };
    ReplyFailure::new(code, message)
}

/// A generated reply met a sentence its passages do not support: it ends with the supported
/// sentences before it, or, when there were none, is replaced by a quote of the passages.
async fn unsupported(job: &Ready, passed_any: bool, out: &mut Emitter) -> Outcome {
    if passed_any {
        return Outcome::Done {
            usage: None,
            cited: Vec::new(),
            grounding: Grounding::Trimmed,
            answered_by: None,
        };
    }
    let quoting = ExtractiveChat::lexical();
    let mut quote = match quoting.stream(job.prepared.request.clone()).await {
        Ok(stream) => stream,
        Err(e) => return Outcome::Failed(model_failed(&e)),
    };
    let mut cited = Vec::new();
    while let Some(chunk) = quote.next().await {
        match chunk {
            Ok(ChatChunk::Delta(piece)) => out.emit(piece).await,
            Ok(ChatChunk::Done(done)) => cited = done.citations,
            Err(e) => return Outcome::Failed(model_failed(&e)),
        }
    }
    Outcome::Done {
        usage: None,
        cited,
        grounding: Grounding::Replaced,
        answered_by: Some(quoting.id().to_owned()),
    }
}

/// Saves the text so far in a task of its own; `false` when the reply was cancelled in the
/// database meanwhile.
fn save_progress(
    state: &AppState,
    work: &Tenant,
    out: &Emitter,
) -> JoinHandle<Result<bool, DbErr>> {
    let (db, work, id) = (state.db.clone(), work.clone(), out.message_id.clone());
    let (text, first_token_ms) = (out.text.clone(), out.first_token_ms);
    tokio::spawn(async move {
        repo::conversations::save_progress(&db, &work, &id, &text, first_token_ms).await
    })
}

/// The passages a reply cites: those its text marks `[n]` (the n-th passage it was given),
/// else those the model named by source id, else — unless the model `names_all` it quotes —
/// every passage it was given (they grounded the reply). The marks come first: a source
/// gives several passages, and only the marks say which of them the reply used.
fn citations(
    passages: &[Hit],
    text: &str,
    cited_sources: &[String],
    names_all: bool,
) -> Vec<Citation> {
    let mut chosen: Vec<&Hit> = cited_positions(text, passages.len())
        .into_iter()
        .map(|i| &passages[i])
        .collect();
    if chosen.is_empty() {
        for source in cited_sources {
            if let Some(hit) = passages.iter().find(|h| &h.source.id == source) {
                chosen.push(hit);
            }
        }
    }
    if chosen.is_empty() && !names_all {
        chosen = passages.iter().collect();
    }
    chosen
        .into_iter()
        .map(|hit| Citation {
            source_id: hit.source.id.clone(),
            title: hit.source.title.clone(),
            chunk_text: hit.text.clone(),
            score: hit.score,
        })
        .collect()
}

fn elapsed_ms(since: Instant) -> i32 {
    i32::try_from(since.elapsed().as_millis()).unwrap_or(i32::MAX)
}
