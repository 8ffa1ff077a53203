//! `oauth_app`: client credentials for minting widget tokens.

use sea_orm::entity::prelude::*;

/// One OAuth app (`app_…`). Only a hash of the client secret is stored.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "oauth_app")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org_id: String,
    pub name: String,
    /// Public identifier sent with the secret (`cmp_client_…`).
    #[sea_orm(unique)]
    pub client_id: String,
    /// Hex SHA-256 of the client secret.
    pub client_secret_hash: String,
    /// JSON array of origins (`https://shop.example`) the widget may run on.
    pub allowed_origins: Json,
    /// The assistant a token is bound to when the request names none.
    pub default_assistant_id: Option<String>,
    pub created_at: DateTimeUtc,
    pub revoked_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
