"""Bottom layer: files, hashing, npz, TensorFlow import; imports nothing else of the project."""
