//! The authenticated caller and the handles its scopes give it.

use std::sync::Arc;

use super::{Scope, Scopes, Tenant};
use crate::{
    domain::ids::{AppId, AssistantId, KeyId, OrgId},
    error::AppError,
};

/// What a visitor credential allows: the visitor operations (open a session, attach
/// context, converse, read its own conversations, give feedback) of one visitor. Granted by a
/// widget token (bound to an OAuth app and one assistant) or by a token of the customer's own
/// identity provider (see [`crate::auth::ExternalJwtAuthenticator`]).
#[derive(Debug, Clone)]
pub struct VisitorGrant {
    /// The OAuth app a widget token was minted for (`None` for an external issuer's token).
    pub app: Option<AppId>,
    /// Who issued the credential: `companin` for widget tokens, else the external issuer.
    pub issuer: String,
    /// The only assistant the visitor may talk to; `None`: any of the organization's.
    pub assistant: Option<AssistantId>,
    /// The visitor's id: its sessions are the only ones it sees.
    pub visitor_id: String,
    /// The customer's own id of an authenticated visitor: its sessions are its own too.
    pub external_user_id: Option<String>,
    /// Origins a browser may use the credential on (checked against `Origin`); `None`: any.
    pub allowed_origins: Option<Vec<String>>,
    /// When the credential expires (Unix seconds).
    pub expires_at: i64,
}

impl VisitorGrant {
    /// Whether a browser page at `origin` may use the credential.
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.allowed_origins
            .as_ref()
            .is_none_or(|allowed| allowed.iter().any(|o| o == origin))
    }
}

#[derive(Debug, Clone)]
enum Credential {
    ApiKey(KeyId),
    Visitor(Arc<VisitorGrant>),
}

/// An authenticated caller, bound to exactly one organization.
#[derive(Debug, Clone)]
pub struct Principal {
    org: OrgId,
    credential: Credential,
    scopes: Scopes,
}

impl Principal {
    /// A caller authenticated by the API key `key` of `org`, with its scopes.
    pub fn api_key(org: OrgId, key: KeyId, scopes: Scopes) -> Self {
        Self {
            org,
            credential: Credential::ApiKey(key),
            scopes,
        }
    }

    /// A visitor of `org` (a browser widget, or a user of the customer's own identity
    /// provider), confined to `grant`.
    pub fn visitor(org: OrgId, grant: VisitorGrant) -> Self {
        Self {
            org,
            credential: Credential::Visitor(Arc::new(grant)),
            scopes: Scopes::default(),
        }
    }

    /// The organization a request counts against: its rate-limit budget, request log and
    /// metrics. Not a way to its data, which only a [`Tenant`] reaches.
    pub fn billed_org(&self) -> &OrgId {
        &self.org
    }

    /// The API key the caller authenticated with.
    pub fn key(&self) -> Option<&KeyId> {
        match &self.credential {
            Credential::ApiKey(key) => Some(key),
            Credential::Visitor(_) => None,
        }
    }

    /// The visitor grant, for a visitor credential.
    pub fn visitor_grant(&self) -> Option<&VisitorGrant> {
        match &self.credential {
            Credential::ApiKey(_) => None,
            Credential::Visitor(grant) => Some(grant),
        }
    }

    /// The API key's id, for the request log.
    pub fn key_id(&self) -> Option<&str> {
        self.key().map(KeyId::as_str)
    }

    /// The OAuth app's id of a widget token, for the request log.
    pub fn app_id(&self) -> Option<&str> {
        self.visitor_grant()
            .and_then(|g| g.app.as_ref())
            .map(AppId::as_str)
    }

    /// The granted scopes (none for a visitor credential).
    pub fn scopes(&self) -> Scopes {
        self.scopes
    }

    /// A handle on the organization's data for an operation needing `scope`: `FORBIDDEN`
    /// unless an API key grants it. Visitor credentials get none: see
    /// [`Principal::visitor_scope`].
    pub fn scope(&self, scope: Scope) -> Result<Tenant, AppError> {
        if self.scopes.allows(scope) {
            Ok(Tenant::member(self.org.clone()))
        } else if self.visitor_grant().is_some() {
            Err(AppError::Forbidden(
                "a visitor token only allows the visitor's own sessions and conversations".into(),
            ))
        } else {
            Err(AppError::Forbidden(format!(
                "this key lacks the `{}` scope",
                scope.as_str()
            )))
        }
    }

    /// A handle for a visitor operation (opening a session, conversing, reading its own
    /// conversations, giving feedback): an API key needs `scope`; a visitor credential gets
    /// a handle confined to its own visitor (and assistant).
    pub fn visitor_scope(&self, scope: Scope) -> Result<Tenant, AppError> {
        match &self.credential {
            Credential::Visitor(grant) => Ok(Tenant::confined(self.org.clone(), grant.clone())),
            Credential::ApiKey(_) => self.scope(scope),
        }
    }
}
