//! Micro-batching of `/embed` and `/search`: the requests that arrive while the worker is busy
//! are served together, with one call to the core for all of their texts.
//!
//! One search costs a pass over the whole corpus (the core packs and normalises it block by
//! block), whether it carries one query or a hundred, so under concurrent load answering
//! requests one by one spends most of its time re-reading the corpus. The worker instead takes
//! everything queued (up to [`BATCH_TEXTS`] texts), embeds all texts in one call, searches all
//! queries in one call, and splits the answers. Nothing waits for a batch to fill: an idle server
//! answers a lone request at once. Answers do not depend on the batch a request lands in: every
//! text is embedded and every query ranked on its own.
//!
//! The worker is a plain thread, so this work never runs on the async runtime's threads; inside
//! a batch the core spreads the work over its own thread pool (`--threads`).

use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use embedforge::ndarray::s;
use tokio::sync::{mpsc, oneshot};

use crate::answers;
use crate::engine::Engine;
use crate::error::ApiError;
use crate::json_body::JsonBody;

/// A batch stops taking queued requests once it holds this many texts.
pub const BATCH_TEXTS: usize = 1024;

/// Requests that may wait for the worker; beyond this, handlers wait to enqueue (backpressure).
const QUEUE_CAPACITY: usize = 4096;

/// What a request asks of its texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Work {
    /// `/embed`, normalised or not.
    Embed {
        /// L2-normalise on top of the model.
        normalize: bool,
    },
    /// `/search` with this many hits per query.
    Search {
        /// Hits per query.
        top_k: usize,
    },
}

/// One request waiting for the worker.
struct Job {
    work: Work,
    texts: Vec<String>,
    reply: oneshot::Sender<Result<JsonBody, ApiError>>,
}

/// The handle through which handlers submit work; cloning it shares the same worker, which
/// stops once every handle is dropped.
#[derive(Debug, Clone)]
pub struct Batcher {
    queue: mpsc::Sender<Job>,
}

impl Batcher {
    /// Starts the worker thread over `engine`.
    pub fn start(engine: Arc<Engine>) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE_CAPACITY);
        std::thread::Builder::new()
            .name("embedforge-batcher".into())
            .spawn(move || work_loop(&engine, receiver))
            .expect("the operating system refused to start the batch worker thread");
        Self { queue }
    }

    /// Queues `texts` for `work` and waits for the encoded answer.
    pub(crate) async fn submit(
        &self,
        work: Work,
        texts: Vec<String>,
    ) -> Result<JsonBody, ApiError> {
        let (reply, answer) = oneshot::channel();
        let job = Job { work, texts, reply };
        self.queue
            .send(job)
            .await
            .map_err(|_| ApiError::internal("the batch worker has stopped"))?;
        answer
            .await
            .map_err(|_| ApiError::internal("the batch worker failed on this request's batch"))?
    }
}

/// Takes batches off the queue until every [`Batcher`] handle is gone.
fn work_loop(engine: &Engine, mut receiver: mpsc::Receiver<Job>) {
    while let Some(first) = receiver.blocking_recv() {
        let mut texts = first.texts.len();
        let mut jobs = vec![first];
        while texts < BATCH_TEXTS {
            match receiver.try_recv() {
                Ok(job) => {
                    texts += job.texts.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        // A panic would drop the batch's reply senders (their requests get a 500) but must not
        // end the worker, or every later request would fail too.
        let outcome = catch_unwind(AssertUnwindSafe(|| serve_batch(engine, jobs)));
        if outcome.is_err() {
            tracing::error!("the batch worker panicked; the requests of that batch got a 500");
        }
    }
}

/// Serves one batch: each kind of work in one call to the core.
fn serve_batch(engine: &Engine, jobs: Vec<Job>) {
    let (mut plain, mut normalized, mut searches) = (Vec::new(), Vec::new(), Vec::new());
    for job in jobs {
        match job.work {
            Work::Embed { normalize: false } => plain.push(job),
            Work::Embed { normalize: true } => normalized.push(job),
            Work::Search { .. } => searches.push(job),
        }
    }
    embed_together(engine, plain, false);
    embed_together(engine, normalized, true);
    search_together(engine, searches);
}

/// The texts of all `jobs` in one list, and each job's rows in it.
fn concatenate(jobs: &mut [Job]) -> (Vec<String>, Vec<Range<usize>>) {
    let mut texts = Vec::with_capacity(jobs.iter().map(|j| j.texts.len()).sum());
    let mut rows = Vec::with_capacity(jobs.len());
    for job in jobs {
        let start = texts.len();
        texts.append(&mut job.texts);
        rows.push(start..texts.len());
    }
    (texts, rows)
}

/// `/embed` jobs with the same `normalize`, embedded in one call.
fn embed_together(engine: &Engine, mut jobs: Vec<Job>, normalize: bool) {
    if jobs.is_empty() {
        return;
    }
    let (texts, rows) = concatenate(&mut jobs);
    match engine.embed(&texts, normalize, "inputs") {
        Ok(embeddings) => {
            for (job, rows) in jobs.into_iter().zip(rows) {
                let answer = answers::embeddings(embeddings.slice(s![rows, ..]));
                let _ = job.reply.send(answer);
            }
        }
        // The error belongs to one request's texts: embed each alone to give it to that one.
        Err(_) => {
            for (job, rows) in jobs.into_iter().zip(rows) {
                let answer = engine
                    .embed(&texts[rows], normalize, "inputs")
                    .and_then(|e| answers::embeddings(e.view()));
                let _ = job.reply.send(answer);
            }
        }
    }
}

/// `/search` jobs, searched in one call with the largest `top_k` among them.
///
/// A smaller `top_k` is a prefix of a larger one: hits come best first with ties broken
/// towards the lower corpus row, a total order.
fn search_together(engine: &Engine, mut jobs: Vec<Job>) {
    if jobs.is_empty() {
        return;
    }
    let corpus = match engine.corpus_or_404() {
        Ok(corpus) => corpus,
        Err(error) => {
            for job in jobs {
                let _ = job.reply.send(Err(error.clone()));
            }
            return;
        }
    };
    let top_k_of = |job: &Job| match job.work {
        Work::Search { top_k } => top_k,
        Work::Embed { .. } => unreachable!("only search jobs are passed here"),
    };
    let k = jobs.iter().map(top_k_of).max().unwrap_or(1);
    let (queries, rows) = concatenate(&mut jobs);
    match engine.search(&queries, k) {
        Ok(hits) => {
            for (job, rows) in jobs.into_iter().zip(rows) {
                let k = top_k_of(&job).min(hits.indices.ncols());
                let answer = answers::search_results(
                    hits.indices.slice(s![rows.clone(), ..k]),
                    hits.scores.slice(s![rows, ..k]),
                    corpus,
                );
                let _ = job.reply.send(answer);
            }
        }
        Err(_) => {
            for (job, rows) in jobs.into_iter().zip(rows) {
                let answer = engine
                    .search(&queries[rows], top_k_of(&job))
                    .and_then(|hits| {
                        answers::search_results(hits.indices.view(), hits.scores.view(), corpus)
                    });
                let _ = job.reply.send(answer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::corpus::{Corpus, CorpusIds};
    use crate::model::ServedModel;

    const TEXTS: [&str; 8] = [
        "the cat and the dog",
        "walking quickly, again.",
        "",
        "Caf\u{e9} na\u{ef}ve!",
        "the dog",
        "again and again",
        "quickly the cat",
        "na\u{ef}ve walking",
    ];

    fn engine() -> Engine {
        let dir =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/tests/fixtures/python_static");
        let model = ServedModel::load(dir).unwrap();
        let texts: Vec<String> = TEXTS.iter().map(|t| (*t).to_owned()).collect();
        let embeddings = model.embed(&texts, false).unwrap();
        let corpus = Corpus::new(embeddings, CorpusIds::LineNumbers).unwrap();
        Engine::new(model, Some(corpus))
    }

    /// Serves `requests` as one batch; the answer bodies, in order.
    fn serve(engine: &Engine, requests: &[(Work, Vec<String>)]) -> Vec<String> {
        let mut answers = Vec::new();
        let jobs = requests
            .iter()
            .map(|(work, texts)| {
                let (reply, answer) = oneshot::channel();
                answers.push(answer);
                Job {
                    work: *work,
                    texts: texts.clone(),
                    reply,
                }
            })
            .collect();
        serve_batch(engine, jobs);
        answers
            .into_iter()
            .map(|a| String::from_utf8(a.blocking_recv().unwrap().unwrap().0).unwrap())
            .collect()
    }

    #[test]
    fn a_batch_answers_each_request_as_if_it_were_alone() {
        let engine = engine();
        let texts = |range: Range<usize>| TEXTS[range].iter().map(|t| (*t).to_owned()).collect();
        let requests: Vec<(Work, Vec<String>)> = vec![
            (Work::Search { top_k: 3 }, texts(0..2)),
            (Work::Embed { normalize: false }, texts(2..5)),
            (Work::Search { top_k: 8 }, texts(3..4)),
            (Work::Embed { normalize: true }, texts(0..3)),
            (Work::Search { top_k: 1 }, texts(4..8)),
            (Work::Search { top_k: 100 }, texts(1..3)),
            (Work::Embed { normalize: false }, texts(5..8)),
        ];
        let together = serve(&engine, &requests);
        for (request, answer) in requests.iter().zip(&together) {
            let alone = serve(&engine, std::slice::from_ref(request));
            assert_eq!(answer, &alone[0], "{request:?}");
        }
        // The `top_k: 1` answer really is cut to one hit per query.
        let hits: serde_json::Value = serde_json::from_str(&together[4]).unwrap();
        assert!(hits["results"].as_array().unwrap().iter().all(|row| row
            .as_array()
            .unwrap()
            .len()
            == 1));
    }
}
