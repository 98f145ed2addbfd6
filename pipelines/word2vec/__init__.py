"""Word vectors: run config, gensim training, conversion, post-processing, word2vec file formats."""
