"""Reading: text in from files (``corpus``: .txt, .jsonl, .csv, gzipped or in folders; ``tei``: TEI XML), the
public data set catalogue (``datasets``, with ``catalogue.json``) and the prepared-corpus cache (``corpus_cache``)."""
