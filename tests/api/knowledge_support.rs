//! Helpers for knowledge tests: uploads, waiting for ingestion, sample files.

use std::time::Duration;

use reqwest::{Method, StatusCode, multipart};
use serde_json::{Value, json};

use crate::helpers::TestApp;

impl TestApp {
    /// Uploads a file over REST multipart; returns the created source.
    pub async fn upload(
        &self,
        key: &str,
        name: &str,
        bytes: Vec<u8>,
        description: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut form = multipart::Form::new().part(
            "file",
            multipart::Part::bytes(bytes).file_name(name.to_owned()),
        );
        if let Some(d) = description {
            form = form.text("description", d.to_owned());
        }
        TestApp::send(
            self.rest(Method::POST, "/api/v1/knowledge/files/", key)
                .multipart(form),
        )
        .await
    }

    /// Uploads a text file and waits until it is indexed; returns the source, `READY`.
    pub async fn uploaded(&self, key: &str, name: &str, text: &str) -> Value {
        let (status, created) = self.upload(key, name, text.as_bytes().to_vec(), None).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let source = self
            .settled(key, created["id"].as_str().unwrap_or_default())
            .await;
        assert_eq!(source["status"], "READY", "{source}");
        source
    }

    /// Waits until the source leaves PENDING/PROCESSING; returns it.
    pub async fn settled(&self, key: &str, id: &str) -> Value {
        let query = "query($id: ID!) { knowledgeSource(id: $id) { id status error chunkCount summary keywords contentHash embeddingModel indexedAt kind title answer } }";
        for _ in 0..600 {
            let data = self.gql_ok(key, query, json!({ "id": id })).await;
            let source = data["knowledgeSource"].clone();
            if source["status"] == "READY" || source["status"] == "FAILED" {
                return source;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("source {id} did not settle");
    }

    /// Searches over GraphQL.
    pub async fn search(&self, key: &str, query: &str, extra: Value) -> Vec<Value> {
        let mut vars = json!({ "query": query });
        if let (Some(vars), Some(extra)) = (vars.as_object_mut(), extra.as_object()) {
            vars.extend(extra.clone());
        }
        let data = self
            .gql_ok(
                key,
                "query($query: String!, $assistantId: ID, $topK: Int, $mode: SearchMode) { searchKnowledge(query: $query, assistantId: $assistantId, topK: $topK, mode: $mode) { text heading score similarity strongQaMatch chunkIndex source { id title kind answer } } }",
                vars,
            )
            .await;
        data["searchKnowledge"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Creates a Q&A pair over GraphQL; returns its id.
    pub async fn create_qa(&self, key: &str, question: &str, answer: &str) -> String {
        let data = self
            .gql_ok(
                key,
                "mutation($input: KnowledgeQaInput!) { createKnowledgeQa(input: $input) { id status } }",
                json!({ "input": { "question": question, "answer": answer } }),
            )
            .await;
        assert_eq!(
            data["createKnowledgeQa"]["status"], "PENDING",
            "accepted at once"
        );
        data["createKnowledgeQa"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// A one-page PDF whose text layer says `text`.
pub fn pdf(text: &str) -> Vec<u8> {
    companin::services::sandbox::samples::pdf(text)
}

/// A 640×480 PNG header: enough for format and size to be read.
pub fn png_header() -> Vec<u8> {
    let mut png = vec![
        0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, b'I', b'H', b'D', b'R',
    ];
    png.extend_from_slice(&640u32.to_be_bytes());
    png.extend_from_slice(&480u32.to_be_bytes());
    png.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
    png
}
