"""Text processing: normalisation recorded in every model (``normalize``), Portuguese tokenisation (``tokenize``),
raw corpus files to one prepared token file (``preprocess``, its worker processes ``preprocess_worker``) and phrase
detection on it (``phrases``)."""
