"""A `keras.utils.PyDataset` whose batches vary in shape, as a `tf.data.Dataset` for `fit`."""


def epoch_tf_dataset(batches, variable):
    """A `tf.data.Dataset` of `batches`' items, one epoch per pass: each pass after the first
    begins by calling `batches.on_epoch_end()`, so `fit`'s next epoch gets the next order.

    `batches`: a PyDataset of `(inputs dict, answers)` items. `variable`: input name -> the axes
    (besides the batch axis, always unknown) whose size changes from batch to batch; they are left
    unknown in the element spec. Keras's own PyDataset adapter fixes the shapes of the first
    batches, which such batches would not keep.
    """
    import tensorflow as tf

    x, y = batches[0]
    spec = {k: tf.TensorSpec((None,) + tuple(None if d in variable.get(k, ()) else n
                                             for d, n in enumerate(v.shape[1:], start=1)),
                             tf.as_dtype(v.dtype), name=k)
            for k, v in x.items()}

    passes = []

    def one_epoch():
        # every pass after the first begins the next epoch: `fit` stops after the known number of
        # steps and may never ask past the last batch, so the end of a pass is not a signal
        if passes:
            batches.on_epoch_end()
        passes.append(None)
        for i in range(len(batches)):
            yield batches[i]

    signature = (spec, tf.TensorSpec((None,), tf.as_dtype(y.dtype)))
    ds = tf.data.Dataset.from_generator(one_epoch, output_signature=signature)
    # a known length: `fit` counts its steps and does not warn that the data "ran out" at each epoch's end
    return ds.apply(tf.data.experimental.assert_cardinality(len(batches))).prefetch(2)
