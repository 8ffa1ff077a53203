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

/// What a widget token allows: the visitor operations (open a session, attach context,
/// converse, read its own conversations, give feedback) of one visitor with one assistant.
#[derive(Debug, Clone)]
pub struct WidgetGrant {
    /// The OAuth app the token was minted for.
    pub app: AppId,
    /// The only assistant the visitor may talk to.
    pub assistant: AssistantId,
    /// The visitor's id: its sessions are the only ones it sees.
    pub visitor_id: String,
    /// The customer's own id of an authenticated visitor: its sessions are its own too.
    pub external_user_id: Option<String>,
    /// Origins the widget may run on (checked against `Origin`).
    pub allowed_origins: Vec<String>,
    /// When the token expires (Unix seconds).
    pub expires_at: i64,
}

impl WidgetGrant {
    /// Whether a session of `visitor_id` / `external_user_id` is this visitor's.
    pub fn owns(&self, visitor_id: &str, external_user_id: Option<&str>) -> bool {
        visitor_id == self.visitor_id
            || self
                .external_user_id
                .as_deref()
                .is_some_and(|own| external_user_id == Some(own))
    }

    /// Whether a browser page at `origin` may use the token.
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.allowed_origins.iter().any(|o| o == origin)
    }
}

#[derive(Debug, Clone)]
enum Credential {
    ApiKey(KeyId),
    Widget(Box<WidgetGrant>),
}

/// An authenticated caller, bound to exactly one organization.
#[derive(Debug, Clone)]
pub struct Principal {
    org: OrgId,
    credential: Credential,
    scopes: Scopes,
}

impl Principal {
    /// A caller authenticated by the API key `key` of `org`.
    pub(crate) fn api_key(org: OrgId, key: KeyId, scopes: Scopes) -> Self {
        Self {
            org,
            credential: Credential::ApiKey(key),
            scopes,
        }
    }

    /// A browser widget authenticated by a widget token of `org`.
    pub(crate) fn widget(org: OrgId, grant: WidgetGrant) -> Self {
        Self {
            org,
            credential: Credential::Widget(Box::new(grant)),
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
            Credential::Widget(_) => None,
        }
    }

    /// The widget token's grant, for a widget.
    pub fn widget_grant(&self) -> Option<&WidgetGrant> {
        match &self.credential {
            Credential::ApiKey(_) => None,
            Credential::Widget(grant) => Some(grant),
        }
    }

    /// The API key's id, for the request log.
    pub fn key_id(&self) -> Option<&str> {
        self.key().map(KeyId::as_str)
    }

    /// The OAuth app's id of a widget token, for the request log.
    pub fn app_id(&self) -> Option<&str> {
        self.widget_grant().map(|g| g.app.as_str())
    }

    /// The granted scopes (none for a widget token).
    pub fn scopes(&self) -> Scopes {
        self.scopes
    }

    /// Fails with `FORBIDDEN` unless `scope` is granted.
    pub fn require(&self, scope: Scope) -> Result<&OrgId, AppError> {
        if self.scopes.allows(scope) {
            Ok(&self.org)
        } else if self.widget_grant().is_some() {
            Err(AppError::Forbidden(
                "a widget token only allows the visitor's own sessions and conversations".into(),
            ))
        } else {
            Err(AppError::Forbidden(format!(
                "this key lacks the `{}` scope",
                scope.as_str()
            )))
        }
    }

    /// For a visitor operation: an API key needs `scope`; a widget token may, and the
    /// service then confines it to its visitor and assistant.
    pub fn require_visitor(&self, scope: Scope) -> Result<&OrgId, AppError> {
        match &self.credential {
            Credential::Widget(_) => Ok(&self.org),
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
