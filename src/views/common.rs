//! Small shared shapes.

use async_graphql::{ID, SimpleObject};
use serde::Serialize;
use utoipa::ToSchema;

/// The result of a delete.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct DeletePayload {
    /// The id of the deleted record.
    #[schema(value_type = String)]
    pub id: ID,
    /// Always true: a failed delete is an error instead.
    pub deleted: bool,
}

impl DeletePayload {
    /// A successful delete of `id`.
    pub fn of(id: impl Into<String>) -> Self {
        Self {
            id: ID(id.into()),
            deleted: true,
        }
    }
}
