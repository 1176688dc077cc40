"""Self-supervised pretraining methods: each a head and a train step over an encoder."""
