"""Trained models put to use: word vectors as routes, the CLI and text encoders query them (``served_vectors``) and
collections of documents searched by meaning, by words or both (``search``), their metadata filters compared as JSON
values (``filters``)."""
