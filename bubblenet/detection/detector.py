"""A trained detector on disk: the network, its default boxes and its confidence threshold.

A detector is a folder holding ``model.keras`` (the network) and
``model_info.json`` (preset, default boxes, the confidence threshold chosen
on validation, and where the model came from). `bubblenet fit` writes its
run folder as one; the package ships one trained on the synthetic twin sky
(`default_model_path`), so detection works without training.

Loading never runs code from a file: ``.keras`` files are opened in Keras
``safe_mode`` (no Python lambdas), and there is no pickle anywhere.
"""

from __future__ import annotations

import dataclasses
import json
import os
import hashlib
import warnings
from importlib import resources
from pathlib import Path

from bubblenet.conventions import BOX_SCALE, CHANNEL_8UM, CHANNEL_24UM, CHANNELS
from bubblenet.detection.search import SearchConfig
from bubblenet.ssd.anchors import AnchorSpec
from bubblenet.training_data.cutouts import Normalisation
from bubblenet.errors import InputError
from bubblenet.outputs import package_versions, write_json

__all__ = ["Detector", "check_threshold", "load_detector", "resolve_detector_files", "save_detector", "model_info",
           "default_model_path", "file_sha256", "MODEL_FILE", "INFO_FILE", "SHARED_MODEL_FILE"]

MODEL_FILE = "model.keras"
INFO_FILE = "model_info.json"
#: The network the shared search mode runs, when the detector has one (`bubblenet.training.distillation`);
#: ``model_info.json`` describes it under ``"shared_model"``, with its SHA-256.
SHARED_MODEL_FILE = "shared_model.keras"


@dataclasses.dataclass
class Detector:
    """A network with what is needed to use it.

    Attributes
    ----------
    model : keras.Model
        The SSD (`bubblenet.ssd.model.build_ssd`), raw outputs.
    spec : AnchorSpec
        Its default boxes.
    threshold : float
        Confidence threshold chosen on validation.
    info : dict
        The whole ``model_info.json`` (preset, provenance, scores).
    source : pathlib.Path or None
        Where it was loaded from (None: the shipped detector, or one made in memory).
    shared_model : keras.Model or None
        The same network distilled for the shared search mode (`SHARED_MODEL_FILE`), or None: that mode
        then runs `model` itself.
    """

    model: object
    spec: AnchorSpec
    threshold: float
    info: dict
    source: Path | None = None
    shared_model: object | None = None

    def model_for(self, mode: str):
        """The network a search in `mode` runs: `shared_model` for the shared mode when there is one (else
        `model`, with a warning: a network trained per window finds fewer bubbles in that mode)."""
        if mode != "shared":
            return self.model
        if self.shared_model is None:
            warnings.warn("this detector has no network distilled for the shared search mode: running its own, "
                          "which finds fewer bubbles there (experiments/build_shared_model.py distils one)",
                          stacklevel=2)
            return self.model
        return self.shared_model

    @property
    def preset(self) -> str:
        return self.info.get("preset", "")

    @property
    def bands(self) -> str:
        """What the model sees: ``"24+8"`` or ``"8"`` (`bubblenet.training_data.cutouts.keep_bands`)."""
        return str(self.info.get("bands", "24+8"))

    @property
    def search(self) -> SearchConfig:
        """The search detection uses by default (``search`` in ``model_info.json``).

        `bubblenet fit` records there the search its validation ran, the one
        the threshold was chosen on. A detector that records none (made
        before searches were recorded) gets the default `SearchConfig` with
        the missing-data rule of its time (``"interpolate"``).
        """
        if "search" not in self.info:
            return SearchConfig(missing="interpolate")
        return SearchConfig.from_dict(self.info["search"])

    @property
    def box_scale(self) -> float:
        """Label-box half-side over bubble radius the model was trained with (`bubblenet.conventions.BOX_SCALE`)."""
        return float(self.info.get("box_scale", BOX_SCALE))

    @property
    def normalisation(self) -> Normalisation:
        """The input normalisation the model was trained with (`bubblenet.training_data.cutouts.Normalisation`)."""
        return Normalisation.from_dict(self.info.get("normalisation"))


def check_threshold(threshold: float | None, option: str = "--threshold") -> None:
    """Refuse a confidence threshold outside [0, 1] (None: the detector's), naming the option."""
    from bubblenet.errors import ConfigError

    if threshold is not None and not 0 <= threshold <= 1:
        raise ConfigError(f"{option} must be in [0, 1], got {threshold}")


def model_info(preset: str, spec: AnchorSpec, threshold: float, **extra) -> dict:
    """The ``model_info.json`` record: preset, default boxes, threshold, versions, and `extra` entries."""
    return {"preset": preset, "anchors": spec.to_dict(), "threshold": float(threshold), "box_scale": BOX_SCALE,
            "input": f"normalised (B, H, W, {len(CHANNELS)}) float32, channel {CHANNEL_24UM} = 24 um, "
                     f"{CHANNEL_8UM} = 8 um", **extra,
            "versions": package_versions()}


def default_model_path() -> Path:
    """Folder of the detector shipped with the package (trained on the synthetic twin sky)."""
    return Path(str(resources.files("bubblenet") / "resources" / "models" / "lite_synthetic"))


def resolve_detector_files(path: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """The ``(model.keras, model_info.json)`` files of a detector given as in `load_detector`.

    Raises
    ------
    InputError
        If either file is missing, naming it.
    """
    path = Path(path) if path is not None else default_model_path()
    folder, model_file = (path, path / MODEL_FILE) if path.is_dir() else (path.parent, path)
    if not model_file.exists():
        raise InputError("no such model (expected a folder with model.keras and model_info.json, "
                         "or a .keras file)", model_file)
    info_file = folder / INFO_FILE
    if not info_file.exists():
        raise InputError(f"no {INFO_FILE} beside the model: it records the preset and threshold", folder)
    return model_file, info_file


def load_detector(path: str | os.PathLike | None = None) -> Detector:
    """Load a detector folder, a ``.keras`` file beside its ``model_info.json``, or the shipped default.

    Parameters
    ----------
    path : path-like, optional
        A folder with ``model.keras`` and ``model_info.json`` (a `bubblenet fit`
        run folder is one), or a ``.keras`` file in such a folder (for example
        ``best.keras``). None loads `default_model_path`.

    Raises
    ------
    InputError
        If the files are missing or the model cannot be loaded (corrupt or
        not a Keras model), or ``model_info.json`` describes a shared-search
        network (``"shared_model"``) that is missing or is not the one
        recorded (its SHA-256, or its teacher's), naming the file.
    """
    from bubblenet.ssd.model import L2Norm  # noqa: F401  (registers the custom layer for loading)

    model_file, info_file = resolve_detector_files(path)
    try:
        info = json.loads(info_file.read_text())
        spec = AnchorSpec.from_dict(info["anchors"])
        threshold = float(info["threshold"])
    except KeyError as exc:
        raise InputError(f"model description lacks the entry {exc} (needs 'anchors' and 'threshold')",
                         info_file) from None
    except (ValueError, TypeError) as exc:
        raise InputError(f"unreadable model description ({exc})", info_file) from None
    recorded = info.get("model_sha256")  # of the model.keras saved with it (not of best.keras beside it)
    if recorded is not None and model_file.name == MODEL_FILE and recorded != file_sha256(model_file):
        raise InputError(f"{model_file.name} is not the model {INFO_FILE} describes (a save was interrupted, or "
                         "one file was replaced): save or train the detector again", model_file)
    model = _load_network(model_file, spec)
    shared = None
    # The shared-search network was distilled from model.keras: another model beside it (best.keras) has none.
    if isinstance(info.get("shared_model"), dict) and model_file.name == MODEL_FILE:
        shared = _load_shared_network(model_file, info["shared_model"], spec)
        if shared.output_shape != model.output_shape:
            raise InputError(f"{SHARED_MODEL_FILE} gives {shared.output_shape[1:]} per window but the model "
                             f"{model.output_shape[1:]}", model_file.parent / SHARED_MODEL_FILE)
    else:
        info = {k: v for k, v in info.items() if k != "shared_model"}
    return Detector(model, spec, threshold, info, source=None if path is None else Path(path), shared_model=shared)


def _load_shared_network(model_file: Path, record: dict, spec: AnchorSpec):
    """The ``shared_model.keras`` beside `model_file`, checked against its record (its own SHA-256 and its
    teacher's, the ``model.keras`` it was distilled from)."""
    shared_file = model_file.parent / SHARED_MODEL_FILE
    if not shared_file.exists():
        raise InputError(f"{INFO_FILE} describes a shared-search network but there is no {SHARED_MODEL_FILE}",
                         shared_file)
    if record.get("sha256") != file_sha256(shared_file):
        raise InputError(f"{SHARED_MODEL_FILE} is not the network {INFO_FILE} describes: distil it again",
                         shared_file)
    if record.get("teacher_sha256") not in (None, file_sha256(model_file)):
        raise InputError(f"{SHARED_MODEL_FILE} was distilled from another {MODEL_FILE}: distil it again "
                         "(experiments/build_shared_model.py)", shared_file)
    return _load_network(shared_file, spec)


def _load_network(model_file: Path, spec: AnchorSpec):
    """A ``.keras`` network in safe mode, checked against the default boxes' input size."""
    import keras

    try:
        model = keras.saving.load_model(model_file, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many kinds for a damaged or foreign file
        raise InputError(f"cannot load the model: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}",
                         model_file) from None
    if tuple(model.input_shape[1:]) != (spec.image_size, spec.image_size, 2):
        raise InputError(f"the network takes {model.input_shape[1:]} but {INFO_FILE} describes "
                         f"{spec.image_size} px, 2 bands", model_file)
    return model


def save_detector(detector: Detector, folder: str | os.PathLike) -> Path:
    """Write ``folder/model.keras`` (and `SHARED_MODEL_FILE` when the detector has a shared-search network) and
    ``folder/model_info.json``, each atomically; nothing else in `folder` changes.

    ``model_info.json`` is written last and records the SHA-256 of the
    ``model.keras`` it belongs with (``model_sha256``), so a save interrupted
    between the two files can never pass for a detector: `load_detector`
    refuses the mismatched pair.
    """
    from bubblenet.outputs import atomic_path, ensure_dir

    folder = ensure_dir(folder)
    with atomic_path(folder / MODEL_FILE) as tmp:
        detector.model.save(tmp)
    info = {**detector.info, "model_sha256": file_sha256(folder / MODEL_FILE)}
    if detector.shared_model is None:
        info.pop("shared_model", None)  # the folder holds no shared-search network: none is described
    else:
        # The pair is the caller's: a Detector holds a model and the network distilled from it.
        with atomic_path(folder / SHARED_MODEL_FILE) as tmp:
            detector.shared_model.save(tmp)
        info["shared_model"] = {**info.get("shared_model", {}), "sha256": file_sha256(folder / SHARED_MODEL_FILE),
                                "teacher_sha256": info["model_sha256"]}
    write_json(folder / INFO_FILE, info)
    return folder


def file_sha256(path: Path) -> str:
    """SHA-256 hex digest of a file (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
