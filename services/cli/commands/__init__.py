"""Every CLI command, one module each; importing this package registers them all."""

from services.cli.commands import (  # noqa: F401  # noqa: F401  # noqa: F401
    classify_cmd,
    compare_cmd,
    data_cmd,
    evaluate_classifier_cmd,
    evaluate_word2vec_cmd,
    export_cmd,
    import_cmd,
    jobs_cmd,
    lm_cmd,
    models_cmd,
    neighbors_cmd,
    preprocess_cmd,
    serve_cmd,
    train_classifier_cmd,
    train_word2vec_cmd,
    worker_cmd,
)
