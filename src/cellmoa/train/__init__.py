"""Stage ``train`` (rules in ``workflow/rules/train.smk``): one network, one fold.

Importing this package does not import Keras or TensorFlow; the modules that need them import
them when a network is built.

- :mod:`~cellmoa.train.folds`       fold schemes, fold names, which crops a fold trains on
- :mod:`~cellmoa.train.models`      ImageNet-pretrained networks from keras.applications, weights
- :mod:`~cellmoa.train.inputs`      augmentation and the input pipelines
- :mod:`~cellmoa.train.checkpoints` kill-safe per-epoch checkpoints
- :mod:`~cellmoa.train.gpus`        one GPU per job on multi-GPU machines
- :mod:`~cellmoa.train.training`    training settings, one fold's training, prediction, embeddings
"""
