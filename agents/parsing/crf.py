"""CRF span tagger (python-crfsuite) for underlying mentions the dictionary does not know.

Placeholder until the model is trained; see train_crf.py.
"""
from __future__ import annotations


def load_default_tagger():
    return None
