//! What a GraphQL request costs against its organization's rate limit: each root field that
//! starts work (a reply, an ingestion job, a webhook call, a session) is a request of its
//! own, so one `POST /graphql` with 600 aliased `sendMessage` pays for 600 replies.

use std::collections::HashSet;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, Selection, SelectionSet,
};

/// Root fields that start work.
const WORK: [&str; 12] = [
    "sendMessage",
    "chat",
    "createSession",
    "uploadKnowledgeFile",
    "addKnowledgeUrl",
    "refreshKnowledgeUrl",
    "reembedKnowledge",
    "createKnowledgeQa",
    "updateKnowledgeQa",
    "testWebhook",
    "resendWebhookDelivery",
    "createConversation",
];

/// Requests `request` counts as: one, or one per root field of its operation that starts
/// work. A document that does not parse costs one (it is refused before running).
pub fn cost(request: &async_graphql::Request) -> u64 {
    let Ok(document) = async_graphql::parser::parse_query(&request.query) else {
        return 1;
    };
    let operation = match &document.operations {
        DocumentOperations::Single(op) => Some(&op.node),
        DocumentOperations::Multiple(ops) => match &request.operation_name {
            Some(name) => ops.get(name.as_str()).map(|op| &op.node),
            None => ops.values().next().map(|op| &op.node),
        },
    };
    operation.map_or(1, |op| work_fields(&document, op).max(1))
}

/// Root fields of `operation` that start work, through fragments (each fragment read once:
/// a fragment that spreads itself is refused by validation, not followed here).
fn work_fields(document: &ExecutableDocument, operation: &OperationDefinition) -> u64 {
    let mut seen = HashSet::new();
    let mut pending: Vec<&SelectionSet> = vec![&operation.selection_set.node];
    let mut count = 0;
    while let Some(set) = pending.pop() {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    if WORK.contains(&field.node.name.node.as_str()) {
                        count += 1;
                    }
                }
                Selection::InlineFragment(fragment) => {
                    pending.push(&fragment.node.selection_set.node);
                }
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    if seen.insert(name.clone())
                        && let Some(fragment) = document.fragments.get(name)
                    {
                        pending.push(&fragment.node.selection_set.node);
                    }
                }
            }
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(query: &str) -> u64 {
        cost(&async_graphql::Request::new(query))
    }

    #[test]
    fn each_aliased_or_spread_field_that_starts_work_counts_once() {
        let aliased: String = (0..600)
            .map(|i| format!("m{i}: sendMessage(input: {{message: \"hi\"}}) {{ reply {{ id }} }} "))
            .collect();
        assert_eq!(of(&format!("mutation {{ {aliased} }}")), 600);
        assert_eq!(
            of(
                "mutation { ...A ...A ... on Mutation { testWebhook(id: \"w\") { ok } } } \
                fragment A on Mutation { a: reembedKnowledge { count } b: reembedKnowledge { count } }"
            ),
            3
        );
        assert_eq!(of("query { viewer { scopes } }"), 1);
        assert_eq!(
            of("mutation { setRateLimit(input: {limit: 5}) { limit } }"),
            1
        );
        assert_eq!(
            of("fragment A on Mutation { ...A sendMessage { id } } mutation { ...A }"),
            1,
            "a fragment that spreads itself is read once"
        );
        assert_eq!(of("not graphql"), 1);
    }
}
