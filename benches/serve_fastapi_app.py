"""The peer of embedforge-serve in benches/bench_serve.py: what a user would otherwise run.

A FastAPI app served by uvicorn around ``sentence_transformers.SentenceTransformer(folder)``, with
the same /embed and /search endpoints (same JSON in and out) as embedforge-serve; /search ranks
the corpus with sentence-transformers' ``util.semantic_search``. Endpoints are plain ``def``
functions, FastAPI's advice for blocking work (they run in its thread pool).

Run: python benches/serve_fastapi_app.py --model DIR --corpus FILE.txt --port 8000
"""

from __future__ import annotations

import argparse

import torch
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
from sentence_transformers import SentenceTransformer, util


class EmbedRequest(BaseModel):
    """``{"inputs": [...], "normalize": false}``."""

    inputs: list[str]
    normalize: bool = False


class SearchRequest(BaseModel):
    """``{"queries": [...], "top_k": 10}``."""

    queries: list[str]
    top_k: int = 10


def build_app(model_dir: str, corpus_path: str) -> FastAPI:
    """The app over ``model_dir``, with the lines of ``corpus_path`` embedded at start."""
    model = SentenceTransformer(model_dir, device="cpu")
    with open(corpus_path, encoding="utf-8") as f:
        documents = f.read().splitlines()
    corpus = model.encode(documents, convert_to_tensor=True)
    app = FastAPI()

    @app.post("/embed")
    def embed(request: EmbedRequest) -> dict:
        embeddings = model.encode(request.inputs, normalize_embeddings=request.normalize)
        return {"embeddings": embeddings.tolist()}

    @app.post("/search")
    def search(request: SearchRequest) -> dict:
        queries = model.encode(request.queries, convert_to_tensor=True)
        hits = util.semantic_search(queries, corpus, top_k=request.top_k)
        return {"results": [[{"id": h["corpus_id"], "score": h["score"]} for h in row] for row in hits]}

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--torch-threads", type=int, default=1, help="torch intra-op threads (match the pinned cores)")
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)
    app = build_app(args.model, args.corpus)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
