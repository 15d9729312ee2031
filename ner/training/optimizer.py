"""Adam with global-norm clipping and the learning-rate schedule, as a tf.Module.

Slots are created up front for the given variables (so the step runs inside tf.function and
under a tf.distribute strategy scope) and are saved in the checkpoint with the model.

Fine-tuned BERT (config bert_finetune) has its own group: BERT's variables (ner/model/features/bert.py
names them bert/...) follow bert_learning_rate with its own warmup (bert_warmup_steps), the
same decay, and AdamW's decoupled weight decay (bert_weight_decay, not on LayerNorm and
biases, as Google's BERT optimizer).
"""
import tensorflow as tf

from ner.config import Config
from ner.model.features.bert import is_bert_variable, no_weight_decay


def learning_rate(config: Config, step: tf.Tensor) -> tf.Tensor:
    """Linear warmup to config.learning_rate, then exponential decay."""
    return _schedule(config, step, config.learning_rate, config.warmup_steps)


def bert_learning_rate(config: Config, step: tf.Tensor) -> tf.Tensor:
    """Fine-tuned BERT: linear warmup to config.bert_learning_rate, then the same decay."""
    return _schedule(config, step, config.bert_learning_rate, config.bert_warmup_steps)


def _schedule(config: Config, step: tf.Tensor, peak: float, warmup_steps: int) -> tf.Tensor:
    step = tf.cast(step, tf.float32)
    decayed = peak * tf.pow(config.lr_decay_rate, step / config.lr_decay_steps)
    if warmup_steps > 0:
        decayed *= tf.minimum(1.0, (step + 1.0) / warmup_steps)
    return decayed


class Adam(tf.Module):
    def __init__(self, config: Config, variables, beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-8,
                 name: str = "adam"):
        super().__init__(name=name)
        self.config = config
        self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.first_moments = [tf.Variable(tf.zeros_like(v), trainable=False, name="m") for v in variables]
        self.second_moments = [tf.Variable(tf.zeros_like(v), trainable=False, name="v") for v in variables]
        # Per variable: in BERT's group (own learning rate), and its weight decay rate.
        self.in_bert = [config.bert_finetune and is_bert_variable(v) for v in variables]
        self.decay = [config.bert_weight_decay if bert and not no_weight_decay(v) else 0.0
                      for v, bert in zip(variables, self.in_bert)]

    def apply(self, gradients, variables) -> tf.Tensor:
        """One update; returns the learning rate used."""
        gradients = [tf.convert_to_tensor(g) for g in gradients]  # embedding gradients arrive as IndexedSlices
        if self.config.clip_norm > 0:
            gradients, _ = tf.clip_by_global_norm(gradients, self.config.clip_norm)
        lr = learning_rate(self.config, self.step)
        t = tf.cast(self.step + 1, tf.float32)
        correction = tf.sqrt(1.0 - self.beta2 ** t) / (1.0 - self.beta1 ** t)
        bert_lr = bert_learning_rate(self.config, self.step) if any(self.in_bert) else None
        for g, v, m, s, in_bert, decay in zip(gradients, variables, self.first_moments, self.second_moments,
                                              self.in_bert, self.decay):
            m.assign(self.beta1 * m + (1.0 - self.beta1) * g)
            s.assign(self.beta2 * s + (1.0 - self.beta2) * tf.square(g))
            group_lr = bert_lr if in_bert else lr
            update = group_lr * correction * m / (tf.sqrt(s) + self.epsilon)
            if decay > 0:
                update += group_lr * decay * v  # AdamW: decay applied to the weights, outside the moments
            v.assign_sub(update)
        self.step.assign_add(1)
        return lr
