"""Portuguese text in, trained artifacts out: readers, preprocessing, training, evaluation."""
