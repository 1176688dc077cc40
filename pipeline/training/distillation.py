"""Knowledge distillation (Hinton et al., 2015): a student learns from a teacher's softened outputs.

loss = alpha * CE(labels, student) + (1 - alpha) * T^2 * KL(softmax(teacher / T) || softmax(student / T))

The T^2 factor keeps the soft term's gradients on the scale of the hard term's as T grows.
Unlabeled images carry no label, so for them only the soft term counts: this is where
self-supervised pretraining (a better teacher) and distillation (a smaller student) combine.
The student stays a flat functional model; the training step lives in `Distiller`, a wrapper
used only during fit and never saved. The teacher's logits come with each batch: they are computed
once per augmented view of the training images (teacher_training.py), not in every step.
"""
from __future__ import annotations

from pipeline.core.tf_env import keras, tf
from pipeline.errors import UserError
from pipeline.training.distribute import global_mean_gradients


def distillation_loss(labels: tf.Tensor, labeled: tf.Tensor, student_logits: tf.Tensor, teacher_logits: tf.Tensor,
                      temperature: float, alpha: float) -> tf.Tensor:
    """Mean over the batch; `labeled` (1.0 / 0.0 per image) switches the hard term off for unlabeled images."""
    soft_teacher = tf.nn.softmax(teacher_logits / temperature)
    log_soft_student = tf.nn.log_softmax(student_logits / temperature)
    log_soft_teacher = tf.nn.log_softmax(teacher_logits / temperature)
    kl = tf.reduce_sum(soft_teacher * (log_soft_teacher - log_soft_student), axis=-1)
    hard = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(labels, tf.int32), logits=student_logits)
    labeled = tf.cast(labeled, student_logits.dtype)
    # An unlabeled image has no hard term, so its soft term takes the whole weight.
    per_image = labeled * (alpha * hard + (1 - alpha) * temperature ** 2 * kl) + (1 - labeled) * temperature ** 2 * kl
    return tf.reduce_mean(per_image)


def check_settings(temperature: float, alpha: float) -> None:
    if not temperature > 0:
        raise UserError(f"distill.temperature = {temperature!r} must be greater than 0")
    if not 0.0 <= alpha <= 1.0:
        raise UserError(f"distill.alpha = {alpha!r} must be in [0, 1]")


class Distiller(keras.Model):
    """Trains `student` on (images, labels, labeled, teacher logits) batches."""

    def __init__(self, student: keras.Model, temperature: float, alpha: float):
        super().__init__()
        check_settings(temperature, alpha)
        self.student = student
        self.temperature, self.alpha = temperature, alpha

    def call(self, images, training=False):
        return self.student(images, training=training)

    def train_step(self, batch):
        images, labels, labeled, teacher_logits = batch
        with tf.GradientTape() as tape:
            student_logits = self.student(images, training=True)
            loss = distillation_loss(labels, labeled, student_logits, teacher_logits, self.temperature, self.alpha)
            loss += tf.add_n(self.student.losses) if self.student.losses else 0.0
        variables = self.student.trainable_variables
        # A clustered student's centroids get IndexedSlices (gathers); scaling needs them dense.
        gradients = [tf.convert_to_tensor(gradient) for gradient in tape.gradient(loss, variables)]
        # Each replica's loss is the mean over its share of the batch; the optimizer sums over replicas.
        self.optimizer.apply_gradients(zip(global_mean_gradients(gradients), variables, strict=True))
        return {"loss": loss}
