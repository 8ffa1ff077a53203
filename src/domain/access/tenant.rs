//! The handle on one organization's data.

use std::sync::Arc;

use super::VisitorGrant;
use crate::{
    domain::ids::{AssistantId, OrgId},
    error::AppError,
};

/// Work the system does on an organization's behalf, with the organization's own reach
/// rather than a caller's: a visitor's reply is prepared from knowledge the visitor itself
/// may not search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// Preparing, generating and storing replies: retrieval, history, the reply itself.
    Replies,
    /// Indexing knowledge: the job queue's workers and the URL refresh scheduler.
    Ingestion,
    /// Delivering webhook events: the dispatchers.
    Webhooks,
    /// Minting a widget token for an OAuth app's client credentials.
    WidgetTokens,
    /// Checking a credential against the organization's records (a widget token's app) and
    /// recording a key's use.
    Authentication,
    /// Counting requests against the organization's limits and raising its rate-limit
    /// alerts.
    Governance,
    /// The operator's commands (the command line: keys, limits, the sandbox) and creating
    /// an organization with its first key.
    Operator,
}

#[derive(Debug, Clone)]
enum Reach {
    /// An API key holding the scope the handle was made for.
    Member,
    /// A visitor credential: its own sessions and their conversations only.
    Visitor(Arc<VisitorGrant>),
    /// The system, for the named work.
    System(Work),
}

/// A handle on one organization's data, made by a scope check
/// ([`Principal::scope`](super::Principal::scope),
/// [`Principal::visitor_scope`](super::Principal::visitor_scope)) or, for work the system
/// does on the organization's behalf, by [`Tenant::for_work`]. Services reach organization
/// data only through it; repositories of visitor-visible records confine a visitor's
/// handle to its own records inside their queries.
#[derive(Debug, Clone)]
pub struct Tenant {
    org: OrgId,
    reach: Reach,
}

impl Tenant {
    pub(super) fn member(org: OrgId) -> Self {
        Self {
            org,
            reach: Reach::Member,
        }
    }

    pub(super) fn confined(org: OrgId, grant: Arc<VisitorGrant>) -> Self {
        Self {
            org,
            reach: Reach::Visitor(grant),
        }
    }

    /// A handle for `work` the system does for `org`, started by the service that owns that
    /// work (never by a request's caller on its own behalf).
    pub fn for_work(org: OrgId, work: Work) -> Self {
        Self {
            org,
            reach: Reach::System(work),
        }
    }

    /// The same organization, for `work` the system does on its behalf — a visitor's reply
    /// is prepared with the organization's reach, not the visitor's.
    pub(crate) fn on_behalf(&self, work: Work) -> Self {
        Self::for_work(self.org.clone(), work)
    }

    /// The organization.
    pub fn org(&self) -> &OrgId {
        &self.org
    }

    /// The visitor this handle is confined to, for a visitor credential.
    pub fn visitor(&self) -> Option<&VisitorGrant> {
        match &self.reach {
            Reach::Visitor(grant) => Some(grant),
            Reach::Member | Reach::System(_) => None,
        }
    }

    /// The work a system handle was made for.
    pub fn work(&self) -> Option<Work> {
        match self.reach {
            Reach::System(work) => Some(work),
            Reach::Member | Reach::Visitor(_) => None,
        }
    }

    /// The assistant a visitor operation uses: the credential's own when it names one
    /// (naming another is `FORBIDDEN`), otherwise the one asked for.
    pub fn assistant_for(
        &self,
        asked: Option<AssistantId>,
    ) -> Result<Option<AssistantId>, AppError> {
        let Some(bound) = self.visitor().and_then(|g| g.assistant.as_ref()) else {
            return Ok(asked);
        };
        match asked {
            Some(id) if id != *bound => Err(AppError::Forbidden(
                "this token is bound to another assistant".into(),
            )),
            _ => Ok(Some(bound.clone())),
        }
    }

    /// The assistant a visitor's credential is bound to, if any.
    pub fn bound_assistant(&self) -> Option<&AssistantId> {
        self.visitor().and_then(|g| g.assistant.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::access::{Principal, Scope, Scopes};

    fn grant(assistant: Option<AssistantId>) -> VisitorGrant {
        VisitorGrant {
            app: None,
            issuer: "companin".into(),
            assistant,
            visitor_id: "vis_1".into(),
            external_user_id: None,
            allowed_origins: None,
            expires_at: 0,
        }
    }

    #[test]
    fn a_visitor_gets_a_confined_handle_only_for_visitor_operations() {
        let org = OrgId::generate();
        let visitor = Principal::visitor(org.clone(), grant(None));
        assert!(matches!(
            visitor.scope(Scope::Read),
            Err(AppError::Forbidden(_))
        ));
        let tenant = visitor.visitor_scope(Scope::Write).expect("visitor handle");
        assert_eq!(tenant.org(), &org);
        assert_eq!(
            tenant.visitor().map(|g| g.visitor_id.as_str()),
            Some("vis_1")
        );
        let system = tenant.on_behalf(Work::Replies);
        assert!(system.visitor().is_none() && system.work() == Some(Work::Replies));
        assert_eq!(system.org(), &org);
    }

    #[test]
    fn a_key_needs_the_scope_for_either_kind_of_handle() {
        let key = Principal::api_key(
            OrgId::generate(),
            crate::domain::ids::KeyId::generate(),
            Scopes::from_iter([Scope::Read]),
        );
        assert!(key.scope(Scope::Read).is_ok());
        assert!(key.scope(Scope::Write).is_err());
        assert!(key.visitor_scope(Scope::Write).is_err());
        assert!(
            key.visitor_scope(Scope::Read)
                .is_ok_and(|t| t.visitor().is_none())
        );
    }

    #[test]
    fn a_bound_visitor_may_not_name_another_assistant() {
        let bound = AssistantId::generate();
        let tenant = Principal::visitor(OrgId::generate(), grant(Some(bound.clone())))
            .visitor_scope(Scope::Write)
            .expect("handle");
        assert_eq!(
            tenant.assistant_for(None).ok().flatten(),
            Some(bound.clone())
        );
        assert!(tenant.assistant_for(Some(bound)).is_ok());
        assert!(tenant.assistant_for(Some(AssistantId::generate())).is_err());
    }
}
