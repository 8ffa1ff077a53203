//! The failures every REST operation may answer, declared once in the OpenAPI document
//! rather than on each route: what a route declares itself (its 404, 409…) is kept.

use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder, path::Operation};

/// The statuses any operation may answer, with what they mean.
const ANY_OPERATION: [(&str, &str); 5] = [
    (
        "400",
        "The request could not be read: malformed JSON, query string or content type \
         (`BAD_USER_INPUT`).",
    ),
    ("401", "No valid credential (`UNAUTHENTICATED`)."),
    ("403", "The credential may not do this (`FORBIDDEN`)."),
    (
        "422",
        "A value is invalid (`BAD_USER_INPUT`; `details.field` names it).",
    ),
    (
        "429",
        "Over the organization's rate limit (`RATE_LIMITED`); `Retry-After` says when to try \
         again.",
    ),
];

/// Answered by operations that name a record, in their path, query or body.
const NAMED_RECORD: (&str, &str) = (
    "404",
    "A record the request names does not exist in the caller's organization (`NOT_FOUND`).",
);

/// Answered by operations that take a body.
const WITH_BODY: (&str, &str) = (
    "413",
    "The body is larger than the server takes (`PAYLOAD_TOO_LARGE`).",
);

/// Declares on every operation of `doc` the failures it may answer and does not declare
/// itself, each with the error envelope (`ErrorBody`).
pub fn declare(doc: &mut OpenApi) {
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            let mut failures = ANY_OPERATION.to_vec();
            if names_record(operation) {
                failures.push(NAMED_RECORD);
            }
            if operation.request_body.is_some() {
                failures.push(WITH_BODY);
            }
            for (status, description) in failures {
                add(operation, status, description);
            }
        }
    }
}

/// Whether the operation names a record: an id in its path or query, or a body that may
/// carry one (a body's schema is not followed here: most bodies name a record).
fn names_record(operation: &Operation) -> bool {
    operation.request_body.is_some()
        || operation.parameters.iter().flatten().any(|p| match p {
            RefOr::T(p) => p.name == "id" || p.name.ends_with("_id") || p.name.ends_with("_ids"),
            RefOr::Ref(_) => true,
        })
}

fn add(operation: &mut Operation, status: &str, description: &str) {
    let responses = &mut operation.responses.responses;
    if responses.contains_key(status) {
        return;
    }
    let body = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("ErrorBody")))
        .build();
    let response = ResponseBuilder::new()
        .description(description)
        .content("application/json", body)
        .build();
    responses.insert(status.to_owned(), RefOr::T(response));
}
