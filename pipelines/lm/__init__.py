"""Neural language models: training (``train``), the served model (``predictor``) and its configuration."""
