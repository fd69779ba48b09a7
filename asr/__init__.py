"""asr: log-mel features -> BiLSTM-CTC -> CTC decoding -> WER. One module per pipeline stage."""

__version__ = "0.1.0"
