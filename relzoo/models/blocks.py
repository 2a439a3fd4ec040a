"""Building blocks the model builders share: an image encoder, a question encoder, an answer head.

Plain functions over Keras tensors (the functional API); each creates its layers with the
names the published artifacts use, so a builder composed of them rebuilds those models exactly.
"""

import keras

CONV_NORMS = ("batch", "none")


def conv_stack(x, conv_layers, filters, prefix="conv", norm="batch"):
    """The RN paper's image encoder: `conv_layers` times conv 3x3 stride 2 (same padding), batch
    norm, ReLU. `(batch, s, s, c)` -> `(batch, s / 2^conv_layers, ..., filters)`; `norm="none"`
    leaves out the batch norm."""
    if norm not in CONV_NORMS:
        raise ValueError(f"conv_norm must be one of {CONV_NORMS}, got {norm!r}.")
    for k in range(conv_layers):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", name=f"{prefix}_{k}")(x)
        if norm == "batch":
            x = keras.layers.BatchNormalization(name=f"{prefix}_{k}_bn")(x)
        x = keras.layers.ReLU(name=f"{prefix}_{k}_relu")(x)
    return x


def question_lstm(question, vocab_size, embedding_dim, lstm_units):
    """Token ids `(batch, T)` -> the LSTM's last state `(batch, lstm_units)`; padding (id 0) is masked,
    so any length T gives the same answer."""
    x = keras.layers.Embedding(vocab_size, embedding_dim, mask_zero=True, name="word_embedding")(question)
    return keras.layers.LSTM(lstm_units, name="question_lstm")(x)


def answer_head(x, f_units, dropout, num_answers):
    """The RN paper's f: dense ReLU layers, dropout after the last one, answer logits
    `(batch, num_answers)`.

    f runs in float32 under any policy: it is cheap (once per question, not per pair) and its
    input, a sum over many pairs, needs float32's precision (see `PairwiseRelation`); the logits
    are float32 for a stable softmax and loss."""
    for k, units in enumerate(f_units):
        x = keras.layers.Dense(units, activation="relu", dtype="float32", name=f"f_{k}")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, dtype="float32", name="f_dropout")(x)
    return keras.layers.Dense(num_answers, dtype="float32", name="answer_logits")(x)


__all__ = ["CONV_NORMS", "answer_head", "conv_stack", "question_lstm"]
