"""Stage ``train`` (rules in ``workflow/rules/train.smk``): one network, one fold.

Importing this package does not import Keras or TensorFlow; the modules that need them import
them when a network is built.

- :mod:`~cellmoa.train.settings`       training settings (``training:`` with per-network overrides)
- :mod:`~cellmoa.train.folds`          fold schemes, fold names, which crops a fold trains on
- :mod:`~cellmoa.train.networks`       the pretrained networks and their ImageNet weights
- :mod:`~cellmoa.train.models`         Keras models of them: backbone, stem adapter, classifier
- :mod:`~cellmoa.train.augment`        the augmentations, in TensorFlow and in numpy
- :mod:`~cellmoa.train.inputs`         what the input pipelines share: crop reader, channels, order
- :mod:`~cellmoa.train.tf_pipeline`    the tf.data input pipeline (TensorFlow backend)
- :mod:`~cellmoa.train.numpy_pipeline` the numpy input pipeline (JAX, PyTorch)
- :mod:`~cellmoa.train.pipeline`       the input pipeline of a job's backend (``make_dataset``)
- :mod:`~cellmoa.train.checkpoints`    kill-safe per-epoch checkpoints
- :mod:`~cellmoa.train.gpus`           one GPU per job on multi-GPU machines
- :mod:`~cellmoa.train.backends`       the Keras backend: choice, seeds, determinism, precision
- :mod:`~cellmoa.train.training`       one fold's training, one fold after another
- :mod:`~cellmoa.train.prediction`     predictions and embeddings of a trained model
"""
