"""Recurrent sequence classifiers: the Relational Memory Core (Santoro et al. 2018) and an LSTM baseline."""

import keras

from relzoo.layers import RelationalMemoryCell


def _readout(x, mlp_units, num_answers):
    """The paper's final MLP (ReLU on every layer) and the answer logits."""
    for k, units in enumerate(mlp_units):
        x = keras.layers.Dense(units, activation="relu", name=f"mlp_{k}")(x)
    return keras.layers.Dense(num_answers, dtype="float32", name="answer_logits")(x)


def build_rmc_sequence(seq_len=8, step_dim=40, num_answers=8, mem_slots=4, head_size=64, num_heads=4, num_blocks=1,
                       gate_style="unit", attention_mlp_layers=2, forget_bias=1.0, input_bias=0.0,
                       mlp_units=(256, 256, 256, 256), name="rmc_sequence"):
    """`RNN(RelationalMemoryCell)` over a sequence, its last memory through an MLP to answer logits.

    Input `sequence` `(batch, seq_len, step_dim)`; output `answer_logits` `(batch, num_answers)`.
    The memory has `mem_slots` rows of `num_heads * head_size` features.
    """
    sequence = keras.Input((seq_len, step_dim), name="sequence")
    cell = RelationalMemoryCell(
        mem_slots=mem_slots, head_size=head_size, num_heads=num_heads, num_blocks=num_blocks, gate_style=gate_style,
        attention_mlp_layers=attention_mlp_layers, forget_bias=forget_bias, input_bias=input_bias, name="rmc_cell",
    )
    memory = keras.layers.RNN(cell, name="rmc")(sequence)  # (batch, mem_slots * mem_size)
    return keras.Model({"sequence": sequence}, _readout(memory, mlp_units, num_answers), name=name)


def build_lstm_sequence(seq_len=8, step_dim=40, num_answers=8, units=512, mlp_units=(256, 256, 256, 256),
                        name="lstm_sequence"):
    """The LSTM baseline: `LSTM(units)` over the sequence, its last output through the same MLP.

    Input `sequence` `(batch, seq_len, step_dim)`; output `answer_logits` `(batch, num_answers)`.
    """
    sequence = keras.Input((seq_len, step_dim), name="sequence")
    h = keras.layers.LSTM(units, name="lstm")(sequence)  # (batch, units)
    return keras.Model({"sequence": sequence}, _readout(h, mlp_units, num_answers), name=name)
