"""asr: log-mel features -> BiLSTM-CTC -> CTC decoding -> WER. One module per pipeline stage."""

__version__ = "0.1.0"


def __getattr__(name):
    # `asr.load_model` and `asr.Model` import torch on first use, not on `import asr` (the
    # command's start-up, `asr --help`, stays quick).
    if name in ("load_model", "Model", "Transcript", "Evaluation"):
        from asr import transcribe

        return getattr(transcribe, name)
    raise AttributeError(f"module 'asr' has no attribute {name!r}")
