"""Rotation prediction: the encoder learns features by telling which of 0/90/180/270 degrees
an image was rotated by (Gidaris et al., 2018). Cheaper than SimCLR: one view per image."""
from __future__ import annotations

from pipeline.core.tf_env import keras, tf
from pipeline.training.augment import augment
from pipeline.training.augment_policy import AugmentPolicy
from pipeline.training.distribute import global_mean_gradients

ROTATIONS = 4


def rotate_batch(images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Rotate each image by a random multiple of 90 degrees; return images and the multiples."""
    labels = tf.random.uniform([tf.shape(images)[0]], 0, ROTATIONS, dtype=tf.int32)
    rotated = tf.map_fn(lambda pair: tf.image.rot90(pair[0], pair[1]), (images, labels),
                        fn_output_signature=images.dtype)
    return rotated, labels


def rotation_head(feature_dim: int) -> keras.Model:
    inputs = keras.Input(shape=(feature_dim,))
    return keras.Model(inputs, keras.layers.Dense(ROTATIONS)(inputs), name="rotation_head")


def make_train_step(encoder: keras.Model, head: keras.Model, optimizer, policy: AugmentPolicy):
    variables = encoder.trainable_variables + head.trainable_variables
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def step(images: tf.Tensor) -> tf.Tensor:
        rotated, labels = rotate_batch(augment(images, policy))
        with tf.GradientTape() as tape:
            logits = head(encoder(rotated, training=True), training=True)
            loss = loss_fn(labels, logits) + tf.add_n(encoder.losses or [0.0])
        optimizer.apply_gradients(zip(global_mean_gradients(tape.gradient(loss, variables)), variables, strict=True))
        return loss

    return step
