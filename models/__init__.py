"""What a trained thing is: word vectors and their search index, the torch MLP, the artifact registry."""
