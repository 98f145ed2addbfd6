"""Text classification: bags of words and character n-grams -> embedding -> pooling -> MLP -> softmax.

Entry points: ``train.train_classifier`` (a run -> a registered version), ``artifact.load_classifier`` (an
artifact -> a :class:`~pipelines.classifier.predictor.TextClassifier` with ``classify(texts)``),
``evaluate.evaluate_classifier``, ``compare.compare_classifiers``.
"""
