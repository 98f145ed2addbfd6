"""Text encoders: sentence pairs in, registered encoders out (pooling, SIF, a trained siamese MLP), and their use."""
