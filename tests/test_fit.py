"""The one supervised recipe (train_on_labels) learns: above chance by a margin on a few hundred real images."""
import numpy as np

from models import build_classifier
from pipeline.training.augment_policy import NONE
from pipeline.training.config import DataConfig
from pipeline.training.datasets import in_memory, load_dataset
from pipeline.training.fit import keras_accuracy, labeled_dataset, seed_everything, train_on_labels


def test_train_on_labels_beats_chance_on_fashion_mnist():
    """500 images, 6 epochs of batches of 16: enough steps for BatchNorm's moving statistics to follow."""
    data = load_dataset(DataConfig(train_limit=500, test_limit=200))
    seed_everything(1)
    model = build_classifier("resnet8", data.input_shape, 10, width=0.25)
    train_on_labels(model, data.train, epochs=6, batch_size=16, learning_rate=3e-3,
                    seed=1, policy=NONE, description="test")
    chance = np.bincount(data.test.labels).max() / len(data.test.labels)  # always guessing the commonest class
    assert keras_accuracy(model, data.test) > chance + 0.15


def test_labeled_dataset_batches_every_image_once_per_epoch():
    images = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1) * 20
    labels = np.arange(10)
    batches = list(labeled_dataset(in_memory(images, labels), batch_size=4, seed=0, policy=NONE))
    assert [len(y) for _, y in batches] == [4, 4, 2]
    seen = np.concatenate([y.numpy() for _, y in batches])
    assert sorted(seen.tolist()) == list(range(10)) and seen.tolist() != list(range(10))  # all, shuffled
    pixels = np.concatenate([x.numpy().ravel() for x, _ in batches])
    np.testing.assert_allclose(pixels, seen * 20 / 255, rtol=1e-6)  # each image stays with its label
