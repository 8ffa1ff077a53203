//! The authenticated caller and what it may do.

use std::fmt;

use crate::{
    domain::ids::{AppId, AssistantId, KeyId, OrgId},
    error::AppError,
};

/// A permission carried by a credential. `admin` implies `write`, which implies `read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Read every resource of the organization.
    Read,
    /// Create and change resources.
    Write,
    /// Manage API keys and OAuth apps.
    Admin,
}

impl Scope {
    /// Every scope, lowest first.
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Write, Scope::Admin];

    /// The scope's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    /// Parses a wire name.
    pub fn parse(raw: &str) -> Result<Self, AppError> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "read" => Ok(Scope::Read),
            "write" => Ok(Scope::Write),
            "admin" => Ok(Scope::Admin),
            other => Err(AppError::bad_input(
                "scopes",
                format!("unknown scope `{other}`: use read, write or admin"),
            )),
        }
    }
}

/// A set of scopes, as granted to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes {
    read: bool,
    write: bool,
    admin: bool,
}

impl Scopes {
    /// All scopes.
    pub fn all() -> Self {
        Self::from_iter(Scope::ALL)
    }

    /// Whether `scope` is granted, directly or by a higher scope.
    pub fn allows(&self, scope: Scope) -> bool {
        match scope {
            Scope::Read => self.read || self.write || self.admin,
            Scope::Write => self.write || self.admin,
            Scope::Admin => self.admin,
        }
    }

    /// The scopes granted directly.
    pub fn granted(&self) -> Vec<Scope> {
        Scope::ALL
            .into_iter()
            .filter(|s| match s {
                Scope::Read => self.read,
                Scope::Write => self.write,
                Scope::Admin => self.admin,
            })
            .collect()
    }

    /// Whether no scope is granted.
    pub fn is_empty(&self) -> bool {
        self.granted().is_empty()
    }

    /// Parses a comma-separated list (`read,write`).
    pub fn parse_list(raw: &str) -> Result<Self, AppError> {
        raw.split(',')
            .filter(|s| !s.trim().is_empty())
            .map(Scope::parse)
            .collect()
    }

    /// Reads the stored form, which was written by [`Scopes::to_string`].
    pub fn from_db(raw: &str) -> Self {
        raw.split(',')
            .filter_map(|s| Scope::parse(s).ok())
            .collect()
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        let mut scopes = Scopes::default();
        for scope in iter {
            match scope {
                Scope::Read => scopes.read = true,
                Scope::Write => scopes.write = true,
                Scope::Admin => scopes.admin = true,
            }
        }
        scopes
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.granted().into_iter().map(Scope::as_str).collect();
        f.write_str(&names.join(","))
    }
}

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
    /// Whether a session of `visitor_id` / `external_user_id` is this visitor's.
    pub fn owns(&self, visitor_id: &str, external_user_id: Option<&str>) -> bool {
        visitor_id == self.visitor_id
            || self
                .external_user_id
                .as_deref()
                .is_some_and(|own| external_user_id == Some(own))
    }

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
    Visitor(Box<VisitorGrant>),
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
            credential: Credential::Visitor(Box::new(grant)),
            scopes: Scopes::default(),
        }
    }

    /// The organization every operation of this caller is confined to.
    pub fn org(&self) -> &OrgId {
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

    /// Fails with `FORBIDDEN` unless `scope` is granted.
    pub fn require(&self, scope: Scope) -> Result<&OrgId, AppError> {
        if self.scopes.allows(scope) {
            Ok(&self.org)
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

    /// For a visitor operation: an API key needs `scope`; a visitor credential may, and the
    /// service then confines it to its visitor (and assistant).
    pub fn require_visitor(&self, scope: Scope) -> Result<&OrgId, AppError> {
        match &self.credential {
            Credential::Visitor(_) => Ok(&self.org),
            Credential::ApiKey(_) => self.require(scope),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn higher_scopes_imply_lower_ones() {
        let admin = Scopes::from_iter([Scope::Admin]);
        assert!(admin.allows(Scope::Read) && admin.allows(Scope::Write));
        let read = Scopes::from_iter([Scope::Read]);
        assert!(!read.allows(Scope::Write) && !read.allows(Scope::Admin));
    }

    #[test]
    fn scope_lists_round_trip_through_their_stored_form() {
        let scopes = Scopes::parse_list("write, read").expect("valid");
        assert_eq!(scopes.to_string(), "read,write");
        assert_eq!(Scopes::from_db(&scopes.to_string()), scopes);
        assert!(Scopes::parse_list("read,owner").is_err());
    }
}
