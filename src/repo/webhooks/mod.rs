//! Webhook endpoints, the event outbox, deliveries and their attempts.
//!
//! Deliveries are claimed like ingestion jobs: a compare-and-set on the row leases it to one
//! dispatcher until `lease_until`, so any number of replicas can drain the same table and a
//! crashed dispatcher's delivery is taken over when its lease expires.

mod deliveries;
mod endpoints;
mod events;

pub use self::{
    deliveries::{
        NewAttempt, NewDelivery, Settled, attempts, claim, claim_one, deliveries, find_delivery,
        insert_attempt, insert_delivery, next_due_at, requeue, settle,
    },
    endpoints::{
        EndpointPatch, NewEndpoint, PreviousSecret, delete, enabled, find, insert, list,
        rotate_secret, update,
    },
    events::{NewEvent, find_event, insert_event, prune},
};
