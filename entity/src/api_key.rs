//! `api_key`: hashed credentials of an organization.

use sea_orm::entity::prelude::*;

/// One API key (`key_…`). Only hashes of the key and its optional secret are stored.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_key")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org_id: String,
    pub name: String,
    /// The first characters of the plaintext key, for recognising it in lists.
    pub prefix: String,
    /// Hex SHA-256 of the plaintext key.
    #[sea_orm(unique)]
    pub key_hash: String,
    /// Hex SHA-256 of the plaintext secret, when the key was issued as a pair.
    pub secret_hash: Option<String>,
    /// Comma-separated scopes: `read`, `write`, `admin`.
    pub scopes: String,
    pub created_at: DateTimeUtc,
    pub expires_at: Option<DateTimeUtc>,
    pub revoked_at: Option<DateTimeUtc>,
    pub last_used_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
