//! The running pieces the application state holds, below the services: the replies being
//! generated and their broker, the group commit of sent messages, admission against rate limits, the request-log queue, the
//! webhook outbox, the widget origins cache and the workers' wake-up signals. Services and
//! ingestion use them; none of them knows a service.

pub mod exchanges;
pub mod outbox;
pub mod rate_limits;
pub mod replies;
pub mod request_log;
pub mod signals;
pub mod widget_origins;
