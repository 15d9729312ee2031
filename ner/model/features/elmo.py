"""ELMo (Peters et al. 2018): bilm-tf's bidirectional language model in TensorFlow 2, loaded from
its published files, options.json + weights.hdf5, and run frozen.

What bilm computes, step by step (bilm/model.py, bilm/data.py):

- Characters: each word's UTF-8 bytes (cut to max_characters_per_token - 2) between
  begin-of-word (258) and end-of-word (259), padded with 260; the sentence gets a <S> word
  (258, 256, 259, 260...) before it and a </S> word (258, 257, 259, ...) after it; every id is
  then shifted by 1 so that 0 marks the positions past a sentence, whose character embedding
  is a zero row added in front of the file's char_embed.
- Token embedding: character embedding -> one convolution per (width, filters) of
  char_cnn.filters over all max_characters_per_token positions (VALID) + bias -> max over
  positions -> activation (relu or tanh) -> concatenated -> n_highway highway layers
  (g = sigmoid(x W_carry + b_carry); x = g * relu(x W_transform + b_transform) + (1 - g) * x)
  -> projection to lstm.projection_dim (CNN_proj) when the filters do not already add up to it.
- Two directions of n_layers LSTMs (TF1's LSTMCell: gates i, j, f, o, forget bias 1, cell
  clipping, a projection of the output with projection clipping); from the second layer on
  each layer's output adds its input (use_skip_connections). The backward direction reads
  each sentence reversed within its length. The LSTMs start from zero states for every
  batch (bilm carries states over from one batch to the next; its README advises warming
  up with dummy batches because of it; zero states give each sentence one fixed vector).
- Layers: [token embedding, token embedding] concatenated, then each LSTM layer's
  [forward, backward]; the <S> and </S> positions are dropped.

hdf5 datasets: char_embed, CNN/W_cnn_i [1, width, dim, filters], CNN/b_cnn_i,
CNN_high_k/{W_carry,b_carry,W_transform,b_transform}, CNN_proj/{W_proj,b_proj},
RNN_d/RNN/MultiRNNCell/Celli/LSTMCell/{W_0 [in + proj, 4 dim], B, W_P_0 [dim, proj]}.
"""
from __future__ import annotations

import json
import os

import numpy as np
import tensorflow as tf

OPTIONS, WEIGHTS = "options.json", "weights.hdf5"
BOS_CHAR, EOS_CHAR, BOW_CHAR, EOW_CHAR, PAD_CHAR = 256, 257, 258, 259, 260
FORGET_BIAS = 1.0  # TF1's LSTMCell adds it to the forget gate


def _find(folder: str, suffix: str) -> str:
    """folder/options.json, or the one file named *options.json (as AllenNLP publishes them:
    elmo_2x4096_512_2048cnn_2xhighway_options.json); likewise weights.hdf5."""
    exact = os.path.join(folder, suffix)
    if os.path.exists(exact):
        return exact
    found = sorted(f for f in os.listdir(folder) if f.endswith(suffix)) if os.path.isdir(folder) else []
    if len(found) == 1:
        return os.path.join(folder, found[0])
    raise ValueError(f"elmo_path {folder!r}: no {suffix} (expected bilm's options.json + weights.hdf5)"
                     + (f"; several candidates: {', '.join(found)}" if found else ""))


def read_folder(path: str) -> tuple[dict, dict[str, np.ndarray]]:
    """-> options, weights by hdf5 dataset path."""
    import h5py

    options_path, weights_path = _find(path, OPTIONS), _find(path, WEIGHTS)
    with open(options_path, encoding="utf-8") as f:
        options = json.load(f)
    weights = {}
    with h5py.File(weights_path, "r") as f:
        f.visititems(lambda name, item: weights.__setitem__(name, item[...].astype(np.float32))
                     if isinstance(item, h5py.Dataset) else None)
    return options, weights


class _Take:
    def __init__(self, weights: dict[str, np.ndarray]):
        self.weights = weights

    def __call__(self, name: str, shape=None) -> np.ndarray:
        if name not in self.weights:
            raise ValueError(f"ELMo weights: no dataset {name}")
        value = self.weights[name]
        if shape is not None and list(value.shape) != list(shape):
            raise ValueError(f"ELMo weights: {name} has shape {list(value.shape)}, expected {list(shape)}")
        return value


def _constant_variable(value, name: str) -> tf.Variable:
    return tf.Variable(value, trainable=False, name=name)


class _LSTMDirection(tf.Module):
    def __init__(self, take: _Take, direction: int, layer: int, input_dim: int, cell_dim: int, projection_dim: int,
                 cell_clip, proj_clip):
        super().__init__(name=f"rnn_{direction}_cell_{layer}")
        scope = f"RNN_{direction}/RNN/MultiRNNCell/Cell{layer}/LSTMCell"
        self.projected = projection_dim < cell_dim
        output_dim = projection_dim if self.projected else cell_dim
        kernel = take(f"{scope}/W_0", [input_dim + output_dim, 4 * cell_dim])
        self.input_kernel = _constant_variable(kernel[:input_dim], "input_kernel")
        self.recurrent_kernel = _constant_variable(kernel[input_dim:], "recurrent_kernel")
        self.bias = _constant_variable(take(f"{scope}/B", [4 * cell_dim]), "bias")
        self.projection = (_constant_variable(take(f"{scope}/W_P_0", [cell_dim, projection_dim]), "projection")
                           if self.projected else None)
        self.cell_dim, self.output_dim = cell_dim, output_dim
        self.cell_clip, self.proj_clip = cell_clip, proj_clip

    def __call__(self, x_time_major):
        """x [T, B, D] -> outputs [T, B, output_dim] (from zero states)."""
        inputs = tf.tensordot(x_time_major, self.input_kernel, 1) + self.bias  # every step's input part at once
        batch = tf.shape(x_time_major)[1]
        initial = (tf.zeros([batch, self.cell_dim]), tf.zeros([batch, self.output_dim]))

        def step(state, projected_input):
            cell, output = state
            i, j, f, o = tf.split(projected_input + tf.matmul(output, self.recurrent_kernel), 4, axis=1)
            cell = tf.sigmoid(f + FORGET_BIAS) * cell + tf.sigmoid(i) * tf.tanh(j)
            if self.cell_clip:
                cell = tf.clip_by_value(cell, -self.cell_clip, self.cell_clip)
            output = tf.sigmoid(o) * tf.tanh(cell)
            if self.projection is not None:
                output = tf.matmul(output, self.projection)
                if self.proj_clip:
                    output = tf.clip_by_value(output, -self.proj_clip, self.proj_clip)
            return cell, output

        _, outputs = tf.scan(step, inputs, initializer=initial)
        return outputs


class ELMo(tf.Module):
    """words [B, T] (strings, '' padding), lengths [B] -> [B, T, n_layers + 1, 2 * projection_dim]."""

    def __init__(self, path: str, name: str = "elmo"):
        super().__init__(name=name)
        options, weights = read_folder(path)
        take = _Take(weights)
        try:
            cnn, lstm = options["char_cnn"], options["lstm"]
            filters = [(int(w), int(n)) for w, n in cnn["filters"]]
            self.max_chars = int(cnn["max_characters_per_token"])
            char_dim = int(cnn["embedding"]["dim"])
            activation = cnn.get("activation", "relu")
            n_highway = int(cnn.get("n_highway") or 0)
            cell_dim, projection_dim = int(lstm["dim"]), int(lstm["projection_dim"])
            n_layers = int(lstm.get("n_layers", 1))
            self.skip_connections = bool(lstm.get("use_skip_connections", False))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{os.path.join(path, OPTIONS)}: not a bilm options file ({e!r})") from None
        if activation not in ("relu", "tanh"):
            raise ValueError(f"{os.path.join(path, OPTIONS)}: char_cnn activation {activation!r}: expected relu or tanh")
        self.activation = tf.nn.relu if activation == "relu" else tf.tanh
        char_embed = take("char_embed")
        if char_embed.shape[1] != char_dim or char_embed.shape[0] < PAD_CHAR + 1:
            raise ValueError(f"ELMo weights: char_embed has shape {list(char_embed.shape)}, expected "
                             f"[{PAD_CHAR + 1} or more, {char_dim}]")
        # Row 0: the positions past a sentence (bilm adds it in front of the file's rows).
        self.char_embedding = _constant_variable(
            np.concatenate([np.zeros([1, char_dim], np.float32), char_embed]), "char_embedding")
        self.conv_kernels = [_constant_variable(take(f"CNN/W_cnn_{i}", [1, w, char_dim, n])[0], f"conv_{i}")
                             for i, (w, n) in enumerate(filters)]
        self.conv_biases = [_constant_variable(take(f"CNN/b_cnn_{i}", [n]), f"conv_bias_{i}")
                            for i, (w, n) in enumerate(filters)]
        n_filters = sum(n for _, n in filters)
        self.highways = [tuple(_constant_variable(take(f"CNN_high_{k}/{part}", shape), f"highway_{k}_{part}")
                               for part, shape in (("W_carry", [n_filters, n_filters]), ("b_carry", [n_filters]),
                                                   ("W_transform", [n_filters, n_filters]),
                                                   ("b_transform", [n_filters])))
                         for k in range(n_highway)]
        if n_filters != projection_dim:
            self.projection = _constant_variable(take("CNN_proj/W_proj", [n_filters, projection_dim]), "projection")
            self.projection_bias = _constant_variable(take("CNN_proj/b_proj", [projection_dim]), "projection_bias")
        else:
            self.projection = self.projection_bias = None
        self.lstms = []
        for direction in (0, 1):
            layers = []
            input_dim = projection_dim
            for i in range(n_layers):
                layer = _LSTMDirection(take, direction, i, input_dim, cell_dim, projection_dim,
                                       lstm.get("cell_clip"), lstm.get("proj_clip"))
                layers.append(layer)
                input_dim = layer.output_dim
            self.lstms.append(layers)
        if self.skip_connections and n_layers > 1 and projection_dim != self.lstms[0][0].output_dim:
            raise ValueError("ELMo options: skip connections need projection_dim == the LSTM output width")
        self.num_layers = n_layers + 1
        self.output_dim = 2 * projection_dim

    def char_ids(self, words: tf.Tensor, lengths: tf.Tensor) -> tf.Tensor:
        """[B, T] -> [B, T + 2, max_chars]: <S>, the words, </S>, then zeros (bilm's Batcher ids)."""
        shape = tf.shape(words)
        batch, width = shape[0], shape[1]
        max_bytes = self.max_chars - 2
        byte_values = tf.cast(tf.io.decode_raw(words, tf.uint8, fixed_length=max_bytes), tf.int32)  # [B, T, max_bytes]
        byte_count = tf.minimum(tf.strings.length(words), max_bytes)[..., None]
        position = tf.range(self.max_chars)[None, None, :]
        inner = tf.pad(byte_values, [[0, 0], [0, 0], [1, 1]])
        word_ids = tf.where(position == 0, BOW_CHAR,
                            tf.where(position <= byte_count, inner,
                                     tf.where(position == byte_count + 1, EOW_CHAR, PAD_CHAR)))

        def marker(char):
            ids = tf.constant([BOW_CHAR, char, EOW_CHAR] + [PAD_CHAR] * (self.max_chars - 3), tf.int32)
            return tf.broadcast_to(ids, [batch, 1, self.max_chars])

        ids = tf.concat([marker(BOS_CHAR), word_ids, tf.zeros([batch, 1, self.max_chars], tf.int32)], axis=1)
        # </S> right after each sentence; everything past it is 0 (no word).
        slot = tf.range(width + 2)[None, :]
        ids = tf.where((slot == lengths[:, None] + 1)[..., None], marker(EOS_CHAR), ids)
        real = (slot <= lengths[:, None] + 1)[..., None]
        return tf.where(real, ids + 1, 0)

    def token_embeddings(self, char_ids: tf.Tensor) -> tf.Tensor:
        """[B, S, max_chars] -> [B, S, projection_dim]."""
        shape = tf.shape(char_ids)
        embedded = tf.gather(self.char_embedding, tf.reshape(char_ids, [-1, self.max_chars]))
        pooled = [self.activation(tf.reduce_max(tf.nn.conv1d(embedded, kernel, 1, "VALID") + bias, axis=1))
                  for kernel, bias in zip(self.conv_kernels, self.conv_biases)]
        x = tf.concat(pooled, axis=-1)
        for w_carry, b_carry, w_transform, b_transform in self.highways:
            gate = tf.sigmoid(tf.matmul(x, w_carry) + b_carry)
            x = gate * tf.nn.relu(tf.matmul(x, w_transform) + b_transform) + (1.0 - gate) * x
        if self.projection is not None:
            x = tf.matmul(x, self.projection) + self.projection_bias
        return tf.reshape(x, tf.concat([shape[:2], [-1]], axis=0))

    def __call__(self, words: tf.Tensor, lengths: tf.Tensor, training: bool = False) -> tf.Tensor:
        lengths = tf.cast(lengths, tf.int32)
        full_lengths = lengths + 2
        embedding = self.token_embeddings(self.char_ids(words, lengths))
        time_major = tf.transpose(embedding, [1, 0, 2])
        outputs = {0: [], 1: []}
        for direction in (0, 1):
            h = time_major
            if direction == 1:
                h = tf.reverse_sequence(h, full_lengths, seq_axis=0, batch_axis=1)
            for i, layer in enumerate(self.lstms[direction]):
                out = layer(h)
                if self.skip_connections and i > 0:
                    out += h
                outputs[direction].append(out)
                h = out
            if direction == 1:
                outputs[1] = [tf.reverse_sequence(o, full_lengths, seq_axis=0, batch_axis=1) for o in outputs[1]]
        layers = [tf.concat([time_major, time_major], axis=-1)]
        layers += [tf.concat([f, b], axis=-1) for f, b in zip(outputs[0], outputs[1])]
        stacked = tf.stack(layers, axis=2)  # [S, B, K, 2P]
        width = tf.shape(words)[1]
        return tf.transpose(stacked, [1, 0, 2, 3])[:, 1:width + 1]  # drop <S>; </S> and after are past the lengths
