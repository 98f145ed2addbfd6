"""Evaluation of word vectors: analogies and word-pair similarity (``evaluate_embeddings``) and a 2D projection of a
handful of vectors (``projection``). Each trainer's own evaluation stays with it (e.g. ``classifier.evaluate``)."""
