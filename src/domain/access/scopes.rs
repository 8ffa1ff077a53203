//! Scopes: what an API key may do.

use std::fmt;

use crate::error::AppError;

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
