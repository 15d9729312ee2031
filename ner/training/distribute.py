"""tf.distribute for train.py: which strategy, who writes files, and one training step that
gives the same update as the single-process step on the same global batch.

    default       one device, the plain step (no strategy)
    mirrored      every local GPU (MirroredStrategy); without GPUs, the CPU, or N logical CPU
                  devices with logical_cpus=N (to test and measure the distributed path)
    multi_worker  MultiWorkerMirroredStrategy over the hosts that TF_CONFIG lists

The strategy must be made before TensorFlow runs any op: multi-worker collectives are
configured at program startup and fail once the runtime is up, and logical devices can only
be set before it initializes. train.py therefore makes it first.

The batch size is the global batch. Every worker builds the same sequence of global batches
(the shuffle depends only on seed and epoch) and each replica takes its contiguous share of
each one, so a step consumes exactly the single-process batch. Each replica's loss is its
share's mean loss times its share of the global batch (count / global size); the gradients are
summed over all replicas (sparse embedding gradients stay IndexedSlices through the
all-reduce), so every replica applies the same update, the gradient of the global mean, with
the same clipping, learning rate and Adam state as one process would.
"""
from __future__ import annotations

import os

STRATEGIES = ("default", "mirrored", "multi_worker")


def make_strategy(name: str, logical_cpus: int = 0):
    """The tf.distribute strategy for `name`, or None for default (the plain single-device step)."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; expected one of {', '.join(STRATEGIES)}")
    if name == "multi_worker" and not os.environ.get("TF_CONFIG"):
        raise ValueError("--strategy multi_worker reads the cluster from the TF_CONFIG environment variable, "
                         "which is not set (see docs/scale-out.md)")
    if logical_cpus and name != "mirrored":
        raise ValueError("--logical_cpus only applies to --strategy mirrored")
    import tensorflow as tf
    if name == "default":
        return None
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if logical_cpus:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * logical_cpus)
        return tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])
    return tf.distribute.MirroredStrategy()  # every GPU, or the CPU when there is none


def is_chief(strategy) -> bool:
    """Whether this process writes files: always without a strategy or with one process; in a
    cluster, the task named chief, else worker 0."""
    return strategy is None or bool(strategy.extended.should_checkpoint)


def replica_share(batch: dict):
    """This replica's contiguous share of a global batch (in a replica context), trimmed to its
    longest sentence, and the number of its rows that count. A replica whose share is empty
    (a last batch smaller than the number of replicas) gets the batch's first sentence with
    count 0, so every replica runs the same ops on a non-empty batch."""
    import tensorflow as tf
    context = tf.distribute.get_replica_context()
    size = tf.shape(batch["lengths"])[0]
    share = (size + context.num_replicas_in_sync - 1) // context.num_replicas_in_sync
    start = tf.minimum(tf.cast(context.replica_id_in_sync_group, tf.int32) * share, size)
    end = tf.minimum(start + share, size)
    count = end - start
    start = tf.where(count > 0, start, 0)
    end = tf.where(count > 0, end, 1)
    width = tf.reduce_max(batch["lengths"][start:end])
    # Words, features and tags are trimmed to the share's longest sentence; contexts have their own width.
    return {key: value[start:end] if key in ("lengths", "left_context", "right_context") else value[start:end, :width]
            for key, value in batch.items()}, count


def first_replica_values(strategy):
    """A function values (float64 [N]) -> replica 0's values, on every worker: decisions taken
    from them (early stopping) cannot diverge between workers even if their float results did."""
    import tensorflow as tf

    def from_first(values):
        context = tf.distribute.get_replica_context()
        first = tf.equal(tf.cast(context.replica_id_in_sync_group, tf.int32), 0)
        return context.all_reduce(tf.distribute.ReduceOp.SUM, tf.where(first, values, tf.zeros_like(values)))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float64)])
    def agree(values):
        return strategy.experimental_local_results(strategy.run(from_first, args=(values,)))[0]

    return agree
