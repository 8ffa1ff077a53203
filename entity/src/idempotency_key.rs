//! `idempotency_key`: the answer kept for a write sent with `Idempotency-Key`.

use sea_orm::entity::prelude::*;

/// One key of one organization (a visitor's keys are its own).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_key")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub org_id: String,
    /// SHA-256 (hex) of the client's key behind whose it is (`key:` for API keys,
    /// `visitor:<id>:` for a visitor's).
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// SHA-256 (hex) of the method, path, query and body of the first request.
    pub fingerprint: String,
    /// `PENDING` while the first request runs, `DONE` once its answer is kept.
    pub state: String,
    /// Until when a `PENDING` request holds the key; a request that died is taken over after.
    pub locked_until: DateTimeUtc,
    /// The answer's status.
    pub status: Option<i32>,
    /// The answer's headers (JSON array of `[name, value]`).
    pub headers: Json,
    /// The answer's body.
    pub body: Option<Vec<u8>>,
    pub created_at: DateTimeUtc,
    /// When the key may be used for another request (24 h after the first).
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
