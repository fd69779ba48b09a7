"""The one model-file format: written atomically, read with `weights_only=True`, validated.

A checkpoint is a plain dict of tensors and primitives:
    format, model (state dict), config (nested dict), vocab (list of units),
    stats {mean, std}; a phone model adds lexicon (its pronunciations, as lexicon lines);
    last.pt adds the training state: optimizer, scheduler, scaler, progress, rng (see asr/train.py).
    An exported model (`asr export`) has fp16 weights and may add `decoding`: the beam and LM
    settings to use by default, the LM file beside the model.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import NamedTuple

import torch

from asr.config import Config, ConfigError, from_dict, to_dict
from asr.decode import BeamConfig, BeamDecoder, arpa_unigrams
from asr.features import LogMel
from asr.model import BiLSTMCTC
from asr.text import Pronunciations, Vocabulary, read_lexicon

FORMAT = "asr-checkpoint-1"
REQUIRED = ("format", "model", "config", "vocab", "stats")
# The model inside the package: what `asr transcribe FILE` uses when no --model is given.
DEFAULT_MODEL = Path(__file__).resolve().parent / "models" / "default.pt"


class CheckpointError(Exception):
    """A model file that cannot be used; the message names the file and the problem."""


class Recognizer(NamedTuple):
    """Everything inference needs, built from one checkpoint."""

    features: LogMel
    model: BiLSTMCTC
    vocab: Vocabulary
    config: Config
    decoding: BeamConfig | None = None  # an exported model's own beam and LM settings

    def to(self, device) -> "Recognizer":
        return self._replace(features=self.features.to(device), model=self.model.to(device))


def vocabulary(payload: dict, path) -> Vocabulary:
    """A model file's units, and its pronunciations if it is a phone model."""
    try:
        lexicon = payload.get("lexicon")
        return Vocabulary(payload["vocab"], read_lexicon(lexicon, f"{path} (its lexicon)") if lexicon else None)
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{path}: {e}") from None


def save(path: str | os.PathLike, payload: dict) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over `path`: a crash at
    any point leaves either the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a model file is for sharing
        with os.fdopen(fd, "wb") as f:
            torch.save({"format": FORMAT, **payload}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:  # a full disk, a quota, a vanished mount: the previous file stays whole
        Path(tmp).unlink(missing_ok=True)
        raise CheckpointError(f"{path}: not written ({e.strerror or e}); any earlier {path.name} there is intact") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def load(path: str | os.PathLike) -> dict:
    """Read a checkpoint dict on the CPU. Never unpickles code: `weights_only=True`."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{path}: {'is a directory' if p.is_dir() else 'no such file'}")
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "unsafe content"
        raise CheckpointError(f"{path}: refused to load, not a plain weights file ({first})") from None
    except Exception as e:  # whatever a damaged file makes the parser raise (zip, struct, EOF...)
        raise CheckpointError(f"{path}: not a readable checkpoint, truncated or corrupt ({type(e).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an asr checkpoint (format {FORMAT!r} expected)")
    missing = [k for k in REQUIRED if k not in payload]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {', '.join(missing)}")
    return payload


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device {name!r}: not a device torch knows (auto, cpu, cuda, cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r}: no CUDA GPU is usable here (torch.cuda.is_available() is False)")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    return device


def build(config: Config, vocab: Vocabulary) -> tuple[LogMel, BiLSTMCTC]:
    features = LogMel(config.features)
    model = BiLSTMCTC(config.model, config.features.n_mels, len(vocab))
    return features, model


def load_recognizer(path: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                    hop_ms: float | None = None) -> Recognizer:
    """The recognizer in the model file `path`; None: the default model inside the package.
    `hop_ms`: the front-end's frame step instead of the model's own (see `export`)."""
    if path is None:
        if not DEFAULT_MODEL.is_file():
            raise CheckpointError(f"no --model given, and the default model {DEFAULT_MODEL} is not installed")
        path = DEFAULT_MODEL
    check_hop(hop_ms)
    payload = load(path)
    decoding = None
    try:
        if payload.get("decoding"):
            decoding = BeamConfig(**payload["decoding"])
            if decoding.lm:  # stored as a name beside the model file
                decoding.lm = str(Path(path).resolve().parent / decoding.lm)
        config = _with_hop(from_dict(Config, payload["config"]), hop_ms)
        vocab = vocabulary(payload, path)
        features, model = build(config, vocab)
        features.set_stats(payload["stats"]["mean"], payload["stats"]["std"])
        model.load_state_dict(payload["model"])
    except (ConfigError, ValueError, TypeError, KeyError, RuntimeError) as e:
        problem = " ".join(str(e).split())[:300]
        raise CheckpointError(f"{path}: model does not match its config or vocabulary ({problem})") from None
    model.eval()
    return Recognizer(features, model, vocab, config, decoding).to(device)


def check_hop(hop_ms: float | None) -> None:
    """ValueError unless `hop_ms` is None or a frame step the front-end can take."""
    if hop_ms is not None and not (isinstance(hop_ms, (int, float)) and 0 < hop_ms < float("inf")):
        raise ValueError(f"hop_ms must be a positive number of milliseconds, got {hop_ms}")


def _with_hop(config: Config, hop_ms: float | None) -> Config:
    """`config` with its front-end's frame step set to `hop_ms` (None: as it is)."""
    if hop_ms is None:
        return config
    return dataclasses.replace(config, features=dataclasses.replace(config.features, hop_ms=hop_ms))


def with_hop(recognizer: Recognizer, hop_ms: float | None) -> Recognizer:
    """`recognizer` reading audio at the frame step `hop_ms` (None: as it is): a new front-end with
    the same normalisation, the same acoustic model; for trying several steps without reloading."""
    check_hop(hop_ms)
    if hop_ms is None:
        return recognizer
    config = _with_hop(recognizer.config, hop_ms)
    features = LogMel(config.features)
    features.set_stats(recognizer.features.mean.cpu(), recognizer.features.std.cpu())
    return recognizer._replace(features=features.to(recognizer.features.mean.device), config=config)


def export(src: str | os.PathLike, out: str | os.PathLike, lm: str | os.PathLike | None = None,
           decoding: BeamConfig | None = None, hop_ms: float | None = None,
           words: Pronunciations | None = None) -> int:
    """A model file for users from a training checkpoint: the weights in fp16 (half the size;
    they load back into fp32), config, vocabulary and statistics, no training state; with `lm`,
    a copy of the LM beside it (OUT-stem.lm + the LM's format suffix: .arpa.gz for lm4.v2.arpa.gz)
    and `decoding` as its default settings. Returns the model file's size in bytes.

    `words` (word -> pronunciations) join a phone model's lexicon: the words of an LM's domain text
    that it lacked (`asr export --lm-text`).

    `hop_ms`: the frame step its front-end uses from now on, instead of the one it trained with.
    A shorter step reads speech as slower than it is, so that each phone of a fast talker gets
    more of the model's output frames (recipes/default/ablation.md, "A shorter frame step")."""
    check_hop(hop_ms)
    payload = load(src)
    out = Path(out)
    model = {k: v.half() if v.is_floating_point() else v for k, v in payload["model"].items()}
    exported = {k: payload[k] for k in (*REQUIRED, "lexicon") if k in payload and k not in ("format", "model")}
    exported["model"] = model
    if hop_ms is not None:
        exported["config"] = to_dict(_with_hop(from_dict(Config, payload["config"]), hop_ms))
    if lm is not None:
        lm = Path(lm)
        settings = dataclasses.replace(decoding or BeamConfig(), lm=str(lm), lexicon="", workers=1)
        vocab = vocabulary(payload, src)
        if words and vocab.pronunciations:
            vocab = Vocabulary(vocab.units, {**vocab.pronunciations, **words})
        BeamDecoder(vocab, settings)  # an LM that every transcription would refuse is refused now (DecodeError)
        if vocab.pronunciations:  # the LM's likeliest words first: what a search without it says of homophones
            exported["lexicon"] = vocab.lexicon_text(arpa_unigrams(lm))
        name = f"{out.stem}.lm{''.join(lm.suffixes[-2:] if lm.suffix == '.gz' else lm.suffixes[-1:])}"
        tmp = out.parent / f".{name}.tmp"
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(lm, tmp)
        os.replace(tmp, out.parent / name)
        exported["decoding"] = {**dataclasses.asdict(settings), "lm": name}
    save(out, exported)
    return out.stat().st_size


def export_onnx(src: str | os.PathLike, out: str | os.PathLike) -> int:
    """The acoustic model as ONNX (opset 17) for onnxruntime; returns the file's size in bytes.

    In: `features` (batch, steps, n_mels x stack), float32, the normalised log-mel frames already
    stacked, and `lengths` (batch,), int64, each utterance's steps. Out: `log_probs` (batch, steps,
    units). Batch and time are dynamic. The front-end (log-mel, normalisation, stacking) stays in
    Python (`OnnxRecognizer`): it is a few percent of the work, and torchaudio's spectrogram does
    not export cleanly, while the network, where the time goes, exports exactly. The model file's
    config, vocabulary and statistics travel in the ONNX file's metadata."""
    import json
    import warnings

    recognizer = load_recognizer(src, "cpu")
    model = recognizer.model.float().eval()

    class Stacked(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, features, lengths):
            return self.model.from_stacked(features, lengths)

    wrapper = Stacked().eval()
    width = recognizer.config.features.n_mels * recognizer.config.model.stack
    example = (torch.zeros(2, 9, width), torch.tensor([9, 5]))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated (torch.export's needs onnxscript)
        torch.onnx.export(wrapper, example, str(tmp), input_names=["features", "lengths"], output_names=["log_probs"],
                          dynamic_axes={"features": {0: "batch", 1: "steps"}, "lengths": {0: "batch"},
                                        "log_probs": {0: "batch", 1: "steps"}}, opset_version=17, dynamo=False)
    import onnx

    graph = onnx.load(str(tmp))
    payload = load(src)
    meta = {"config": payload["config"], "vocab": payload["vocab"], "lexicon": payload.get("lexicon", ""),
            "stats": {k: v.float().tolist() for k, v in payload["stats"].items()}}
    onnx.helper.set_model_props(graph, {"asr": json.dumps(meta)})
    onnx.save(graph, str(tmp))
    os.replace(tmp, out)
    return out.stat().st_size


class OnnxRecognizer:
    """An exported model run by onnxruntime, with our own front-end in front of it."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        import json

        import onnxruntime

        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            meta = json.loads(self.session.get_modelmeta().custom_metadata_map["asr"])
        except Exception as e:  # onnxruntime raises its own types for every kind of bad file
            raise CheckpointError(f"{path}: not an ONNX model exported by asr ({type(e).__name__}: {e})") from None
        self.config = from_dict(Config, meta["config"])
        self.vocab = vocabulary(meta, path)
        self.features, self._model = build(self.config, self.vocab)  # the model: for its frame stacking only
        self.features.set_stats(torch.tensor(meta["stats"]["mean"]), torch.tensor(meta["stats"]["std"]))

    @torch.no_grad()
    def emissions(self, waves: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """CTC log-probabilities (B, T, V) and their lengths, as `transcribe.emissions` gives ours."""
        lengths = torch.tensor([len(w) for w in waves])
        feats, feat_lens = self.features(torch.nn.utils.rnn.pad_sequence(list(waves), batch_first=True), lengths)
        x, out_lengths = self._model.stack_frames(feats, feat_lens)
        log_probs = self.session.run(None, {"features": x.numpy(), "lengths": out_lengths.numpy()})[0]
        return torch.from_numpy(log_probs), out_lengths


def average(paths: list[str | os.PathLike]) -> dict:
    """A checkpoint whose weights are the mean of those in `paths` (same config and vocabulary):
    averaging the last or best few epochs usually lowers WER a little, for free."""
    if not paths:
        raise CheckpointError("average: no checkpoints given")
    first = load(paths[0])
    total = {k: v.double() if v.is_floating_point() else v for k, v in first["model"].items()}
    for path in paths[1:]:
        payload = load(path)
        for what, get in (("model config", lambda c: c["config"]["model"]), ("features", lambda c: c["config"]["features"]),
                          ("vocabulary", lambda c: (c["vocab"], c.get("lexicon", "")))):
            if get(payload) != get(first):
                raise CheckpointError(f"{path}: its {what} differs from {paths[0]}'s; only one model's checkpoints average")
        if payload["model"].keys() != total.keys():
            raise CheckpointError(f"{path}: its weights do not match {paths[0]}'s")
        for k, v in payload["model"].items():
            if v.is_floating_point():
                total[k] += v.double()
    weights = {k: (v / len(paths)).to(first["model"][k].dtype) if v.is_floating_point() else v for k, v in total.items()}
    keep = {k: first[k] for k in (*REQUIRED, "lexicon") if k in first and k not in ("format", "model")}
    return {**keep, "model": weights, "averaged": [str(p) for p in paths]}
