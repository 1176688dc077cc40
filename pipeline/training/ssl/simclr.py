"""SimCLR: contrastive pretraining with two augmented views and the NT-Xent loss.

Each image is augmented twice; the encoder plus a small projection head maps both views
to embeddings; NT-Xent pulls the two views of one image together and pushes the other
2N-2 embeddings of the batch away. Only the encoder is kept (Chen et al., 2020).
"""
from __future__ import annotations

from pipeline.core.tf_env import keras, tf
from pipeline.training.augment import augment
from pipeline.training.augment_policy import AugmentPolicy
from pipeline.training.distribute import global_mean_gradients

HIDDEN_UNITS = 128  # projection head width


def nt_xent_loss(z1: tf.Tensor, z2: tf.Tensor, temperature: float) -> tf.Tensor:
    """Normalized-temperature cross-entropy over the 2N embeddings of a batch."""
    z = tf.math.l2_normalize(tf.concat([z1, z2], axis=0), axis=1)
    n = tf.shape(z1)[0]
    similarity = tf.matmul(z, z, transpose_b=True) / temperature
    similarity -= tf.eye(2 * n) * 1e9  # an embedding is not its own positive
    positives = tf.concat([tf.range(n, 2 * n), tf.range(0, n)], axis=0)
    return tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(positives, similarity, from_logits=True))


def projection_head(feature_dim: int, projection_dim: int) -> keras.Model:
    inputs = keras.Input(shape=(feature_dim,))
    x = keras.layers.Dense(HIDDEN_UNITS, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(projection_dim)(x), name="projection_head")


def make_train_step(encoder: keras.Model, head: keras.Model, optimizer, temperature: float, policy: AugmentPolicy):
    """A compiled step: augment twice (`policy`: a preset's views), embed both views, descend on NT-Xent."""
    variables = encoder.trainable_variables + head.trainable_variables

    @tf.function
    def step(images: tf.Tensor) -> tf.Tensor:
        view1, view2 = augment(images, policy), augment(images, policy)
        with tf.GradientTape() as tape:
            z1 = head(encoder(view1, training=True), training=True)
            z2 = head(encoder(view2, training=True), training=True)
            loss = nt_xent_loss(z1, z2, temperature) + tf.add_n(encoder.losses or [0.0])
        optimizer.apply_gradients(zip(global_mean_gradients(tape.gradient(loss, variables)), variables, strict=True))
        return loss

    return step
