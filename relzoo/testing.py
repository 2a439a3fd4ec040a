"""A small harness that checks a Keras layer is first-class (see DESIGN.md).

`check_layer` runs, for one layer configuration and one set of inputs:

1. registration: the class is registered with Keras serialization;
2. symbolic call on `keras.Input`s, with the expected output shape;
3. eager call on arrays, with the expected output shape and finite values;
4. one `fit` step of a model around the layer: the loss is finite and every
   trainable weight changes;
5. `get_config` -> `from_config`: same config, JSON-serialisable, and with the
   same weights the same outputs;
6. `.keras` save -> `load_model(safe_mode=True)`: the same outputs.

It raises `AssertionError` naming the failed step. It has no pytest
dependency, so a user can run it on a layer of their own.
"""

import json
import os
import tempfile

import numpy as np

import keras


def _batchless(shape):
    return tuple(None if s is None else int(s) for s in shape[1:])


def _as_list_shape(shape):
    return tuple(None if s is None else int(s) for s in shape)


def _check_shape(step, got, expected):
    got = _as_list_shape(got)
    if expected is None:
        return
    expected = tuple(expected)
    if len(got) != len(expected) or any(e is not None and g != e for g, e in zip(got, expected)):
        raise AssertionError(f"[{step}] output shape {got}, expected {expected}")


def _flat_outputs(y):
    return [np.asarray(keras.ops.convert_to_numpy(t)) for t in keras.tree.flatten(y)]


def _assert_close(step, a, b, rtol, atol):
    fa, fb = _flat_outputs(a), _flat_outputs(b)
    if len(fa) != len(fb):
        raise AssertionError(f"[{step}] {len(fa)} outputs against {len(fb)}")
    for k, (x, y) in enumerate(zip(fa, fb)):
        if x.shape != y.shape:
            raise AssertionError(f"[{step}] output {k}: shape {x.shape} against {y.shape}")
        if not np.allclose(x, y, rtol=rtol, atol=atol):
            raise AssertionError(f"[{step}] output {k} differs: max abs diff {np.max(np.abs(x - y)):.3g}")


def check_layer(
    layer_cls,
    init_kwargs,
    inputs,
    expected_output_shape=None,
    call_kwargs=None,
    fit=True,
    rtol=1e-5,
    atol=1e-6,
):
    """Runs the six checks on `layer_cls(**init_kwargs)`.

    Args:
        layer_cls: the layer class.
        init_kwargs: dict of constructor arguments.
        inputs: dict of call-argument name -> numpy array with a batch axis
            (e.g. `{"objects": ..., "condition": ..., "mask": ...}`); passed as
            keyword arguments, except the first, which is passed positionally.
        expected_output_shape: the eager output shape, batch included (one
            output), or None to skip the shape check.
        call_kwargs: extra non-tensor keyword arguments for the call.
        fit: whether to run the one-step `fit` check (layers without trainable
            weights still run it, checking only that the loss is finite).
        rtol, atol: tolerances of the equal-output checks.

    Returns:
        The eager output of the original layer (a numpy array or a list).
    """
    call_kwargs = dict(call_kwargs or {})
    names = list(inputs)
    arrays = {k: np.asarray(v) for k, v in inputs.items()}
    first = names[0]

    # 1. registration
    registered = keras.saving.get_registered_name(layer_cls)
    if keras.saving.get_registered_object(registered) is not layer_cls or ">" not in registered:
        raise AssertionError(f"[register] {layer_cls.__name__} is not registered for serialization")

    def apply(layer, tensors):
        rest = {k: tensors[k] for k in names[1:]}
        return layer(tensors[first], **rest, **call_kwargs)

    # 2. symbolic call
    symbolic = {k: keras.Input(shape=_batchless(a.shape), dtype=str(a.dtype), name=k) for k, a in arrays.items()}
    layer = layer_cls(**init_kwargs)
    sym_out = apply(layer, symbolic)
    if expected_output_shape is not None:
        _check_shape("symbolic call", sym_out.shape, (None,) + tuple(expected_output_shape[1:]))

    # 3. eager call (same layer, now built)
    eager_out = apply(layer, arrays)
    for k, t in enumerate(_flat_outputs(eager_out)):
        if not np.all(np.isfinite(t)):
            raise AssertionError(f"[eager call] output {k} has non-finite values")
    if expected_output_shape is not None:
        _check_shape("eager call", keras.tree.flatten(eager_out)[0].shape, expected_output_shape)

    model = keras.Model(inputs=symbolic, outputs=sym_out)
    reference = model.predict(arrays, verbose=0)
    _assert_close("functional model vs eager call", reference, eager_out, rtol, atol)

    # 4. one fit step
    if fit:
        fit_model = keras.Model(inputs=symbolic, outputs=sym_out)
        before = [np.array(v) for v in fit_model.trainable_weights]
        fit_model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        targets = [np.ones_like(t) for t in _flat_outputs(reference)]
        hist = fit_model.fit(arrays, targets[0] if len(targets) == 1 else targets, epochs=1, batch_size=len(arrays[first]), verbose=0)
        loss = hist.history["loss"][-1]
        if not np.isfinite(loss):
            raise AssertionError(f"[fit] loss is {loss}")
        unchanged = [
            v.path for v, b in zip(fit_model.trainable_weights, before) if np.array_equal(np.array(v), b)
        ]
        if unchanged:
            raise AssertionError(f"[fit] these trainable weights did not change after one step: {unchanged}")
        # fit changed the shared layer's weights: take the new reference.
        reference = model.predict(arrays, verbose=0)
        eager_out = apply(layer, arrays)

    # 5. get_config / from_config
    config = layer.get_config()
    try:
        json.dumps(config)
    except TypeError as err:
        raise AssertionError(f"[get_config] config is not JSON-serialisable: {err}") from err
    clone = layer_cls.from_config(config)
    if clone.get_config() != config:
        raise AssertionError("[from_config] the round-tripped config differs from the original")
    clone_out = apply(clone, arrays)  # builds the clone
    clone.set_weights(layer.get_weights())
    clone_out = apply(clone, arrays)
    _assert_close("from_config", clone_out, eager_out, rtol, atol)

    # 6. .keras save / load
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "layer_check.keras")
        model.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True)
    _assert_close(".keras save/load", loaded.predict(arrays, verbose=0), reference, rtol, atol)
    return _flat_outputs(eager_out)[0] if len(keras.tree.flatten(eager_out)) == 1 else _flat_outputs(eager_out)
