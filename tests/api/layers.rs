//! The module graph points one way (docs/architecture.md): each layer of `src/` names only
//! the layers below it. Reads every `crate::…` path in the source (imports and inline paths
//! alike, comments aside) and fails on any that points up or sideways.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

/// The layers, top first. A module may use its own items and those of any later layer;
/// modules of one layer do not use each other.
const LAYERS: &[&[&str]] = &[
    &["cli"],
    &["startup"],
    &["http"],
    &["graphql"],
    &["views"],
    &["services"],
    &["ingest"],
    &["state"],
    &["auth", "runtime"],
    &[
        "repo",
        "vector",
        "models",
        "storage",
        "limiter",
        "shared_log",
        "egress",
        "chat_client",
    ],
    &["db", "metrics", "telemetry"],
    &["domain", "config", "tls", "language"],
    &["error"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("source dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The text without `//` comments (doc comments link freely across layers).
fn code(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            // `https://…` inside a string is not a comment.
            Some(at) if !line[..at].ends_with(':') => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules named by the `crate::…` paths of `code`.
fn used_modules(code: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a::b, c::{d, e}}`: the first segment of each top-level item.
            let (mut depth, mut item_start) = (0usize, true);
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        rest = &group[i..];
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_alphanumeric() || c == '_') => {
                        let name: String = group[i..]
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        used.insert(name);
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            used.insert(name);
        }
    }
    used
}

#[test]
fn each_layer_uses_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).expect("under src");
        let first = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .expect("path");
        let module = first.trim_end_matches(".rs");
        if module == "lib" || module == "main" {
            continue;
        }
        let Some(layer) = layer_of(module) else {
            violations.push(format!("{module}: not in any layer (add it to LAYERS)"));
            continue;
        };
        let text = std::fs::read_to_string(file).expect("readable source");
        for used in used_modules(&code(&text)) {
            if used == module {
                continue;
            }
            match layer_of(&used) {
                Some(below) if below > layer => {}
                Some(_) => violations.push(format!(
                    "{}: `{module}` uses `{used}`, which is not below it",
                    relative.display()
                )),
                None => violations.push(format!(
                    "{}: uses `crate::{used}`, which is in no layer",
                    relative.display()
                )),
            }
        }
    }
    assert!(
        violations.is_empty(),
        "upward or sideways uses:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_layer_check_reads_grouped_and_inline_paths() {
    let used = used_modules(&code(
        "use crate::{auth::{Principal, Scope}, repo,\n    error::AppError};\n\
         let x = crate::state::AppState::new(); // crate::cli::run\n\
         let url = \"https://example.com\"; crate::vector::search()",
    ));
    assert_eq!(
        used.into_iter().collect::<Vec<_>>(),
        ["auth", "error", "repo", "state", "vector"]
    );
}

/// The name and parameters of each public function of `code` (`pub`, `pub(crate)`).
fn public_parameters(code: &str) -> Vec<String> {
    let starts = [
        "pub async fn ",
        "pub fn ",
        "pub(crate) async fn ",
        "pub(crate) fn ",
    ];
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = starts.iter().filter_map(|s| rest.find(s)).min() {
        rest = &rest[at..];
        // Up to the parenthesis that closes the parameter list (types may hold tuples).
        let mut depth = 0usize;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth = depth.saturating_sub(1),
                    _ => return false,
                }
                c == ')' && depth == 0
            })
            .map_or(rest.len(), |(i, _)| i);
        found.push(rest[..end].to_owned());
        rest = &rest[end..];
    }
    found
}

#[test]
fn no_repository_reaches_organization_data_with_a_bare_organization_id() {
    // The organization record itself is read by id: authentication and rate limiting need
    // it before any handle exists.
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/repo");
    let mut files = Vec::new();
    rust_files(&repo, &mut files);
    let mut bare = Vec::new();
    for file in files.iter().filter(|f| !f.ends_with("organizations.rs")) {
        let text = std::fs::read_to_string(file).expect("readable source");
        for parameters in public_parameters(&code(&text)) {
            if parameters.contains("OrgId") {
                let name = parameters.split('(').next().unwrap_or_default();
                bare.push(format!("{}: {name}", file.display()));
            }
        }
    }
    assert!(
        bare.is_empty(),
        "take the `Tenant` handle instead of an `OrgId`:\n{}",
        bare.join("\n")
    );
}

#[test]
fn handles_for_work_are_made_only_where_that_work_starts() {
    // Each place that reaches an organization's data on its behalf, named (see
    // docs/architecture.md, "The organization boundary"). A new one is added here on purpose.
    let allowed = [
        "auth/builtin.rs",
        "cli/admin.rs",
        "domain/access/tenant.rs",
        "ingest/worker.rs",
        "runtime/rate_limits.rs",
        "services/api_keys.rs",
        "services/idempotency.rs",
        "services/oauth_apps.rs",
        "services/organizations.rs",
        "services/webhooks/dispatch.rs",
    ];
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut unexpected = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).expect("under src");
        let name = relative.to_string_lossy().replace('\\', "/");
        let text = std::fs::read_to_string(file).expect("readable source");
        if code(&text).contains("for_work(") && !allowed.contains(&name.as_str()) {
            unexpected.push(name);
        }
    }
    assert!(
        unexpected.is_empty(),
        "handles made for work in unexpected places: {unexpected:?}"
    );
}
