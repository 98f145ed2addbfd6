"""Portuguese text in, trained artifacts out: readers, preprocessing, training, evaluation.

Grouped by concern:

- ``reading``: text in from files and the data set catalogue (corpus readers, TEI, the prepared-corpus cache).
- ``text``: text processing every trainer and query shares (normalisation, tokenisation, corpus preparation,
  phrases).
- ``runs``: what every training run has (its config from TOML and overrides, grids of runs, progress reports).
- ``word2vec``, ``classifier``, ``lm``, ``text_encoder``: training, one package per kind of model.
- ``evaluation``: intrinsic evaluation of word vectors and their 2D projection.
- ``serving``: trained models put to use (word vectors as served, document collections searched).
"""
