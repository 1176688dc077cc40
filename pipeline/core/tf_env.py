"""Import TensorFlow the one way TF-MOT 0.8.1 accepts: Keras 2 (tf_keras), set up before import.

Every module that needs TensorFlow imports it from here, so the environment variable is
always set before the first `import tensorflow` and models are always tf_keras models.
"""
import os
import warnings

# Known, harmless: we save tf_keras models as HDF5 on purpose (TF-MOT's quantize_scope loads them),
# and the converter's note about input statistics does not apply to full-integer conversion.
warnings.filterwarnings("ignore", message="You are saving your model as an HDF5 file")
warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tensorflow_model_optimization as tfmot  # noqa: E402
import tf_keras as keras  # noqa: E402

tf.get_logger().setLevel("ERROR")

__all__ = ["tf", "keras", "tfmot"]
