"""DIGITS' learning-rate policies as a Keras schedule (job processes only)."""

import keras
import numpy as np
import tensorflow as tf

from apps.mlmodels.lr_policies import learning_rate


@keras.saving.register_keras_serializable(package="digits")
class DigitsSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """The learning rate of every iteration, computed once with ``lr_policies.learning_rate``.

    A table makes the Keras schedule agree exactly with the documented formulas.
    """

    def __init__(
        self, policy, base_lr, max_iter, gamma=0.1, power=1.0, step_size=33.0, step_values=(50.0,)
    ):
        self.config = {
            "policy": policy, "base_lr": base_lr, "max_iter": int(max_iter), "gamma": gamma,
            "power": power, "step_size": step_size, "step_values": list(step_values),
        }  # fmt: skip
        table = [
            learning_rate(policy, i, base_lr=base_lr, max_iter=max_iter, gamma=gamma, power=power,
                          step_size=step_size, step_values=tuple(step_values))
            for i in range(int(max_iter) + 1)
        ]  # fmt: skip
        self.values = np.asarray(table, np.float32)
        self.table = tf.constant(self.values)

    def __call__(self, step):
        index = tf.minimum(tf.cast(step, tf.int32), tf.shape(self.table)[0] - 1)
        return tf.gather(self.table, index)

    def value(self, step: int) -> float:
        """The rate at ``step`` without a TensorFlow op (about 1 ms eagerly): for callbacks."""
        return float(self.values[min(int(step), len(self.values) - 1)])

    def get_config(self):
        return dict(self.config)
