//! `POST /search` against a brute-force cosine ranking of sentence-transformers' embeddings.

use axum::http::StatusCode;
use embedforge::ndarray::Axis;
use embedforge_serve::corpus::Corpus;
use embedforge_serve::Limits;
use serde_json::{json, Value};

use crate::common::*;

/// Query rows of the oracle's texts (the corpus is all of them).
const QUERIES: [usize; 4] = [2, 5, 9, 17];

/// Asserts that `results` are `want`'s rows, ids mapped by `id`, scores to 1e-5.
fn assert_results(results: &Value, want: &[Vec<(usize, f64)>], id: impl Fn(usize) -> Value) {
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), want.len());
    for (got, want) in results.iter().zip(want) {
        let got = got.as_array().unwrap();
        assert_eq!(got.len(), want.len());
        for (hit, &(row, score)) in got.iter().zip(want) {
            assert_eq!(hit["id"], id(row), "{hit}");
            let got_score = hit["score"].as_f64().unwrap();
            assert!((got_score - score).abs() < 1e-5, "{hit} vs {score}");
        }
    }
}

fn text_corpus_state(limits: Limits) -> (tempfile::TempDir, embedforge_serve::AppState) {
    let (texts, _) = expected();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corpus.txt");
    // Blank and whitespace-only lines stay documents, so line numbers stay ids.
    std::fs::write(&path, texts.join("\n") + "\n").unwrap();
    let model = fixture_model();
    let corpus = Corpus::from_text_file(&path, &model).unwrap();
    assert_eq!(corpus.len(), texts.len());
    (dir, state(model, Some(corpus), limits))
}

#[tokio::test]
async fn text_corpus_hits_are_line_numbers_ranked_by_cosine() {
    let (texts, embeddings) = expected();
    let (_dir, state) = text_corpus_state(Limits::default());
    let queries: Vec<&String> = QUERIES.iter().map(|&i| &texts[i]).collect();
    let query_embeddings = embeddings.select(Axis(0), &QUERIES);
    for top_k in [1, 3, 26] {
        let body = json!({ "queries": queries, "top_k": top_k }).to_string();
        let (status, answer) = call(&state, "POST", "/search", &body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let want = reference_top_k(&query_embeddings, &embeddings, top_k);
        assert_results(&answer["results"], &want, |row| json!(row));
    }
    // Each query finds itself first.
    let body = json!({ "queries": queries, "top_k": 1 }).to_string();
    let (_, answer) = call(&state, "POST", "/search", &body).await;
    for (hits, &row) in answer["results"].as_array().unwrap().iter().zip(&QUERIES) {
        assert_eq!(hits[0]["id"], json!(row));
    }
}

#[tokio::test]
async fn top_k_defaults_to_ten_and_is_capped_by_the_corpus() {
    let (texts, _) = expected();
    let (_dir, state) = text_corpus_state(Limits::default());
    let body = json!({ "queries": [&texts[3]] }).to_string();
    let (_, answer) = call(&state, "POST", "/search", &body).await;
    assert_eq!(answer["results"][0].as_array().unwrap().len(), 10);
    let body = json!({ "queries": [&texts[3], &texts[4]], "top_k": 500 }).to_string();
    let (status, answer) = call(&state, "POST", "/search", &body).await;
    assert_eq!(status, StatusCode::OK);
    for hits in answer["results"].as_array().unwrap() {
        assert_eq!(hits.as_array().unwrap().len(), texts.len());
    }
    let (_, answer) = call(&state, "POST", "/search", r#"{"queries": []}"#).await;
    assert_eq!(answer, json!({ "results": [] }));
}

#[tokio::test]
async fn npy_corpus_hits_are_the_ids_file_strings() {
    let (_, embeddings) = expected();
    let ids: Vec<String> = (0..embeddings.nrows())
        .map(|i| format!("doc-{i}"))
        .collect();
    let (texts, _) = expected();
    let queries: Vec<&String> = QUERIES.iter().map(|&i| &texts[i]).collect();
    let want = reference_top_k(&embeddings.select(Axis(0), &QUERIES), &embeddings, 5);
    for version in [1, 2, 3] {
        let dir = tempfile::tempdir().unwrap();
        let (npy, ids_path) = (dir.path().join("e.npy"), dir.path().join("ids.txt"));
        write_npy(&npy, &embeddings, version);
        std::fs::write(&ids_path, ids.join("\n")).unwrap();
        let corpus = Corpus::from_npy(&npy, &ids_path, 8).unwrap();
        let state = state(fixture_model(), Some(corpus), Limits::default());
        let body = json!({ "queries": queries, "top_k": 5 }).to_string();
        let (status, answer) = call(&state, "POST", "/search", &body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_results(&answer["results"], &want, |row| json!(format!("doc-{row}")));
    }
}

#[tokio::test]
async fn bad_top_k_and_missing_corpus_are_client_errors() {
    let limits = Limits {
        max_top_k: 20,
        max_texts: 2,
        ..Limits::default()
    };
    let (_dir, with_corpus) = text_corpus_state(limits);
    let cases: [(&str, StatusCode, &[&str]); 6] = [
        (
            r#"{"queries": ["a"], "top_k": 0}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            &["`top_k`", "got 0", "positive integer"],
        ),
        (
            r#"{"queries": ["a"], "top_k": 21}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            &["`top_k`", "got 21", "at most 20", "--max-top-k"],
        ),
        (
            r#"{"queries": ["a"], "top_k": -1}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            &["`top_k`", "-1", "positive integer"],
        ),
        (
            r#"{"queries": ["a"], "top_k": 2.5}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            &["`top_k`", "2.5", "positive integer"],
        ),
        (
            r#"{"queries": "a"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            &["`queries`", "expected a sequence"],
        ),
        (
            r#"{"queries": ["a", "b", "c"]}"#,
            StatusCode::PAYLOAD_TOO_LARGE,
            &["`queries`", "got 3 texts", "--max-texts"],
        ),
    ];
    for (body, status, fragments) in cases {
        assert_error(
            &call(&with_corpus, "POST", "/search", body).await,
            status,
            fragments,
        );
    }

    let without = state(fixture_model(), None, Limits::default());
    let got = call(&without, "POST", "/search", r#"{"queries": ["a"]}"#).await;
    assert_error(
        &got,
        StatusCode::NOT_FOUND,
        &["no corpus", "--corpus", "--embeddings"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_get_the_answers_they_get_alone() {
    let (texts, _) = expected();
    let (_dir, state) = text_corpus_state(Limits::default());
    let requests: Vec<(&str, String)> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| match i % 3 {
            0 => (
                "/search",
                json!({ "queries": [text], "top_k": i + 1 }).to_string(),
            ),
            1 => ("/embed", json!({ "inputs": [text, &texts[0]] }).to_string()),
            _ => (
                "/embed",
                json!({ "inputs": [text], "normalize": true }).to_string(),
            ),
        })
        .collect();
    let mut alone = Vec::new();
    for (path, body) in &requests {
        alone.push(call(&state, "POST", path, body).await);
    }
    let tasks: Vec<_> = requests
        .iter()
        .cloned()
        .map(|(path, body)| {
            let state = state.clone();
            tokio::spawn(async move { call(&state, "POST", path, &body).await })
        })
        .collect();
    for (task, want) in tasks.into_iter().zip(alone) {
        assert_eq!(task.await.unwrap(), want);
    }
}
