"""Training settings: the ``training:`` config section, with per-network overrides.

:class:`TrainSettings` decides a fold's recipe (network, input size, optimizer, augmentation,
backend, precision, determinism); :meth:`TrainSettings.output_settings` is what a train rule's
``params`` hold, so that changing one network's settings reruns only its jobs.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from cellmoa.train import networks

#: the Keras backends a job can train on (``training.backend``)
BACKENDS = ("tensorflow", "jax", "torch")
#: the input modes (``training.inputs``): crops held in memory, or streamed from the tensors
INPUTS = ("memory", "stream")

#: keys of the ``training:`` section that are not per-network settings
SECTION_KEYS = ("networks", "per_network", "folds", "imagenet_weights_url", "jobs", "fold_models")


@dataclass
class TrainSettings:
    """How one network trains on a fold (the ``training:`` config section).

    Every field is a setting of that section (and of ``per_network.<network>``) but
    ``network``, ``fold_scheme`` (``training.folds.scheme``) and ``threads`` (the job's).

    Examples
    --------
    >>> TrainSettings(network="ResNet50", backend="jax").jit_compile
    True
    """

    network: str = "ResNet50"
    #: input size in pixels (square); None = the network's pretraining size
    input_size: int | None = None
    weights: str | None = "imagenet"
    epochs: int = 10
    batch_size: int = 8
    optimizer: str = "sgd"
    learning_rate: float = 1e-4
    momentum: float = 0.9
    #: multiply the learning rate by lr_decay_factor every lr_decay_epochs epochs (0 = never)
    lr_decay_epochs: int = 0
    lr_decay_factor: float = 0.1
    l2: float = 0.0
    class_weights: bool = True
    #: True (all), False (none), or a list of AUGMENTATIONS
    augment: bool | list = True
    #: z-scores become pixels as 127.5 + pixel_scale * z, clipped to [0, 255]
    pixel_scale: float = 16.0
    batchnorm_momentum: float | None = None
    #: "softmax" (one unit per class, the paper's BBBC021 head) or "sigmoid" (one unit, two
    #: classes; the paper's BBBC014 head)
    head: str = "softmax"
    #: what feeds the network's 3 input channels: stored channel names or None for a zero
    #: channel (the dataset's ``network_channels``); None = the stored channels as they are
    input_channels: list | None = None
    #: how stored channels feed the 3-channel networks: "select" (``input_channels`` picks three)
    #: or "stem" (every stored channel: the first convolution widened to take them all; with
    #: ImageNet weights each further channel's kernel is the mean of the RGB kernels, all scaled
    #: by 3 / channels); with "stem", ``input_channels`` is not used
    channel_adapter: str = "select"
    fold_scheme: str = "nsc"
    seed: int = 0
    #: how training crops are fed: "memory" (read and resized once per job into a float16
    #: array, batches gathered by index and augmented on the device: cellmoa.train.memory) or
    #: "stream" (read, resized and augmented on the CPU every batch); they feed different
    #: (equally valid) batches, so the setting changes outputs
    inputs: str = "memory"
    #: the Keras backend the job trains on: "tensorflow" (tf.data input), "jax" or "torch"
    #: (numpy input, no TensorFlow needed)
    backend: str = "tensorflow"
    #: False (float32), True or "float16" (mixed float16, loss-scaled), "bfloat16" (mixed bfloat16)
    mixed_precision: bool | str = False
    #: XLA-compile the training step; None = the backend's way (TensorFlow and PyTorch off, JAX on:
    #: Keras on JAX without jit runs op by op, many times slower)
    jit_compile: bool | None = None
    #: deterministic ops: a seeded fold gives the same predictions every run (and after a
    #: resume); off trades that for speed (cuDNN's fastest kernels); TensorFlow needs it off for XLA
    deterministic: bool = True
    #: TensorFlow's graph optimizer (Grappler): off cut InceptionResNetV2's first-step tracing by
    #: a third and its CPU steps by 14% on the demo; on GPUs it fuses kernels and picks layouts
    graph_optimizer: bool = True
    #: least minutes between two checkpoints of a fold's model; 0 = after every epoch
    checkpoint_minutes: float = 0.0
    threads: int = 0

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; use one of {', '.join(BACKENDS)}")
        if self.inputs not in INPUTS:
            raise ValueError(f"inputs must be {' or '.join(INPUTS)}, not {self.inputs!r}")
        if self.channel_adapter not in ("select", "stem"):
            raise ValueError(
                f"channel_adapter must be select or stem, not {self.channel_adapter!r}"
            )
        if self.channel_adapter == "stem":
            self.input_channels = None
        if self.mixed_precision not in (False, True, "float16", "bfloat16"):
            raise ValueError(
                "mixed_precision must be false, true, float16 or bfloat16, "
                f"not {self.mixed_precision!r}"
            )
        if self.jit_compile is None:
            self.jit_compile = self.backend == "jax"
        if self.backend == "tensorflow" and self.jit_compile and self.deterministic:
            raise ValueError(
                "jit_compile (XLA) cannot run with deterministic ops (TensorFlow has no "
                "deterministic XLA; Keras would silently train without XLA): set "
                "training.deterministic: false to use XLA, or jit_compile: false"
            )

    #: settings that change how long a job takes or how it resumes, never what it outputs
    NOT_OUTPUTS = ("checkpoint_minutes", "threads")

    def output_settings(self) -> dict:
        """What changes a job's outputs (a rule's ``params``): every setting but `NOT_OUTPUTS`.

        Per network, so that changing one network's settings reruns only its jobs.
        """
        return {
            f.name: getattr(self, f.name) for f in fields(self) if f.name not in self.NOT_OUTPUTS
        }

    @classmethod
    def from_config(cls, training: dict, network: str, threads: int = 0) -> TrainSettings:
        """Settings from the ``training:`` config section, with ``per_network.<network>`` overrides.

        Parameters
        ----------
        training : dict
            The ``training:`` section.
        network : str
            The network the settings are for.
        threads : int
            The job's threads (0 = every core).

        Returns
        -------
        TrainSettings
            With the network's pretraining size where no ``input_size`` is given.

        Raises
        ------
        ValueError
            On a setting of neither the section nor :class:`TrainSettings`, named.
        """
        known = {f.name for f in fields(cls)} - {"network", "fold_scheme", "threads"}
        values = {k: v for k, v in training.items() if k not in SECTION_KEYS}
        overrides = (training.get("per_network") or {}).get(network, {})
        for where, given in (("training", values), (f"training.per_network.{network}", overrides)):
            unknown = sorted(set(given) - known)
            if unknown:
                raise ValueError(
                    f"{where}: unknown setting(s) {', '.join(unknown)}; "
                    f"known: {', '.join(sorted(known))}"
                )
        values.update(overrides)
        values["fold_scheme"] = (training.get("folds") or {}).get("scheme", "nsc")
        settings = cls(**values, network=network, threads=threads)
        if settings.input_size is None:
            settings.input_size = networks.network(network).default_size
        return settings
