//! The served model: the core's [`StaticModel`] plus what sentence-transformers' `encode` adds
//! around it (the model's default prompt), and a refusal of folders it would embed differently.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use embedforge::ndarray::Array2;
use embedforge::{StaticModel, MODULES_FILE};
use serde::Deserialize;

use crate::startup_error::StartupError;

/// sentence-transformers' model-level settings (prompts, default prompt).
const ST_CONFIG_FILE: &str = "config_sentence_transformers.json";

/// A static embedding model that embeds as `SentenceTransformer(folder).encode(texts)` does.
#[derive(Debug, Clone)]
pub struct ServedModel {
    model: StaticModel,
    /// Prepended to every text, as sentence-transformers does with the default prompt.
    prompt: Option<String>,
    path: PathBuf,
}

/// One entry of `modules.json`.
#[derive(Debug, Deserialize)]
struct ModuleEntry {
    #[serde(rename = "type")]
    kind: String,
}

/// The part of `config_sentence_transformers.json` that changes what `encode` computes.
#[derive(Debug, Default, Deserialize)]
struct SentenceTransformerConfig {
    #[serde(default)]
    prompts: HashMap<String, Option<String>>,
    #[serde(default)]
    default_prompt_name: Option<String>,
}

impl ServedModel {
    /// Loads a StaticEmbedding (+ Normalize) folder or a model2vec folder.
    ///
    /// Folders with other modules (a Dense layer after the embedding, say) are refused: the core
    /// only runs the embedding and the normalisation, so it would answer with other numbers.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, StartupError> {
        let path = dir.as_ref().to_path_buf();
        let model = StaticModel::load(&path).map_err(|source| StartupError::Model {
            path: path.clone(),
            source,
        })?;
        check_modules(&path)?;
        let prompt = default_prompt(&path)?;
        Ok(Self {
            model,
            prompt,
            path,
        })
    }

    /// Embeds `texts`; `normalize` L2-normalises on top of whatever the model does, like
    /// `encode(..., normalize_embeddings=True)` (false keeps the model's own setting).
    pub fn embed(&self, texts: &[String], normalize: bool) -> embedforge::Result<Array2<f32>> {
        let texts: Cow<'_, [String]> = match self.prompt.as_deref() {
            Some(prompt) => texts.iter().map(|t| format!("{prompt}{t}")).collect(),
            None => Cow::Borrowed(texts),
        };
        self.model
            .embed_with(&texts, if normalize { Some(true) } else { None })
    }

    /// Embedding width.
    pub fn dim(&self) -> usize {
        self.model.dim()
    }

    /// Whether embeddings are unit length without `normalize`.
    pub fn normalizes(&self) -> bool {
        self.model.normalize()
    }

    /// The default prompt prepended to every text, if the model has one.
    pub fn prompt(&self) -> Option<&str> {
        self.prompt.as_deref()
    }

    /// The folder the model was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Refuses a `modules.json` that is not StaticEmbedding followed only by Normalize.
fn check_modules(dir: &Path) -> Result<(), StartupError> {
    let modules_path = dir.join(MODULES_FILE);
    if !modules_path.is_file() {
        // A model2vec folder: the core has read its config.
        return Ok(());
    }
    let modules: Vec<ModuleEntry> = read_json(dir, &modules_path)?;
    let is = |m: &ModuleEntry, name: &str| m.kind == name || m.kind.ends_with(&format!(".{name}"));
    let supported = modules.first().is_some_and(|m| is(m, "StaticEmbedding"))
        && modules[1..].iter().all(|m| is(m, "Normalize"));
    // A model2vec folder may carry a modules.json without StaticEmbedding; the core accepted it.
    let has_static = modules.iter().any(|m| is(m, "StaticEmbedding"));
    if has_static && !supported {
        let kinds: Vec<&str> = modules.iter().map(|m| m.kind.as_str()).collect();
        return Err(StartupError::Unsupported {
            path: dir.to_path_buf(),
            message: format!(
                "{MODULES_FILE} lists [{}]; expected a StaticEmbedding module followed only by \
                 Normalize modules (other modules would change the embeddings)",
                kinds.join(", ")
            ),
        });
    }
    Ok(())
}

/// The text of the model's default prompt, if it has a non-empty one.
fn default_prompt(dir: &Path) -> Result<Option<String>, StartupError> {
    let config_path = dir.join(ST_CONFIG_FILE);
    if !config_path.is_file() {
        return Ok(None);
    }
    let config: SentenceTransformerConfig = read_json(dir, &config_path)?;
    let Some(name) = config.default_prompt_name else {
        return Ok(None);
    };
    match config.prompts.get(&name) {
        Some(prompt) => Ok(prompt.clone().filter(|p| !p.is_empty())),
        None => {
            let mut names: Vec<&str> = config.prompts.keys().map(String::as_str).collect();
            names.sort_unstable();
            Err(StartupError::Unsupported {
                path: dir.to_path_buf(),
                message: format!(
                    "{ST_CONFIG_FILE}: default_prompt_name is {name:?}, expected one of the \
                     prompts' names [{}]",
                    names.join(", ")
                ),
            })
        }
    }
}

fn read_json<T: serde::de::DeserializeOwned>(dir: &Path, path: &Path) -> Result<T, StartupError> {
    let unsupported = |message: String| StartupError::Unsupported {
        path: dir.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| unsupported(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| unsupported(format!("{} is not valid JSON: {e}", path.display())))
}
