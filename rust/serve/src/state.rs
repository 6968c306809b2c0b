//! What every request handler shares: the engine (model and corpus), the batch worker and the
//! limits.

use std::sync::Arc;

use crate::batcher::Batcher;
use crate::cli::Args;
use crate::corpus::Corpus;
use crate::engine::Engine;
use crate::limits::Limits;
use crate::model::ServedModel;
use crate::startup_error::StartupError;

/// The shared state of the service; cloning is cheap.
#[derive(Debug, Clone)]
pub struct AppState {
    engine: Arc<Engine>,
    batcher: Batcher,
    limits: Limits,
}

impl AppState {
    /// State from its parts; starts the batch worker (it stops when the last clone is dropped).
    pub fn new(model: ServedModel, corpus: Option<Corpus>, limits: Limits) -> Self {
        let engine = Arc::new(Engine::new(model, corpus));
        let batcher = Batcher::start(Arc::clone(&engine));
        Self {
            engine,
            batcher,
            limits,
        }
    }

    /// Loads the model and the corpus the command line names (embedding a text corpus).
    pub fn load(args: &Args) -> Result<Self, StartupError> {
        let model = ServedModel::load(&args.model)?;
        let corpus = match (&args.corpus, &args.embeddings, &args.ids) {
            (Some(text), _, _) => Some(Corpus::from_text_file(text, &model)?),
            (None, Some(embeddings), Some(ids)) => {
                Some(Corpus::from_npy(embeddings, ids, model.dim())?)
            }
            // clap enforces that --embeddings and --ids come together.
            _ => None,
        };
        Ok(Self::new(model, corpus, args.limits()))
    }

    /// The model and the corpus.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The model.
    pub fn model(&self) -> &ServedModel {
        self.engine.model()
    }

    /// The corpus, if one was loaded.
    pub fn corpus(&self) -> Option<&Corpus> {
        self.engine.corpus()
    }

    /// The batch worker of `/embed` and `/search`.
    pub fn batcher(&self) -> &Batcher {
        &self.batcher
    }

    /// The request limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}
