import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asr.data import BucketBatchSampler, ManifestError, Utterance, parse_manifest, read_manifest, write_manifest


def test_manifest_round_trip_and_relative_paths(tmp_path):
    utts = [Utterance("a.wav", 1.5, "HELLO"), Utterance("/abs/b.flac", 2.0, "WORLD")]
    write_manifest(tmp_path / "m.jsonl", utts)
    back = read_manifest(tmp_path / "m.jsonl")
    assert back[0] == Utterance(str(tmp_path / "a.wav"), 1.5, "HELLO")
    assert back[1] == utts[1]
    assert json.loads((tmp_path / "m.jsonl").read_text().splitlines()[0]).keys() == {"audio_filepath", "duration", "text"}


@pytest.mark.parametrize("line,problem", [
    ("{not json", "invalid JSON"),
    ('["a list"]', "expected a JSON object"),
    ('{"audio_filepath": "a.wav", "duration": 1.0}', "missing key 'text'"),
    ('{"audio_filepath": "a.wav", "duration": -1, "text": "A"}', "positive number"),
    ('{"audio_filepath": "a.wav", "duration": "long", "text": "A"}', "positive number"),
    ('{"audio_filepath": 3, "duration": 1, "text": "A"}', "non-empty string"),
    ('{"audio_filepath": "a.wav", "duration": 1, "text": null}', "must be a string"),
])
def test_bad_line_is_reported_with_its_number(tmp_path, line, problem):
    good = '{"audio_filepath": "a.wav", "duration": 1.0, "text": "A"}'
    path = tmp_path / "m.jsonl"
    path.write_text(f"{good}\n\n{good}\n{line}\n")
    with pytest.raises(ManifestError) as err:
        read_manifest(path)
    assert str(err.value).startswith(f"{path}:4: ")
    assert problem in str(err.value)


def test_several_bad_lines_are_counted(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text("{\n[]\nnope\n")
    with pytest.raises(ManifestError, match=r"m.jsonl:1: .*and 2 more bad lines"):
        read_manifest(path)


def test_missing_or_empty_manifest(tmp_path):
    with pytest.raises(ManifestError, match="cannot read manifest"):
        read_manifest(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(ManifestError, match="no utterances"):
        read_manifest(tmp_path / "empty.jsonl")


def test_sampler_respects_budget_and_covers_everything():
    durations = [0.5 + (i * 7919 % 100) / 10 for i in range(200)]
    sampler = BucketBatchSampler(durations, batch_seconds=30.0, seed=3)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        seen = sorted(i for batch in sampler for i in batch)
        assert seen == list(range(200))
        for batch in sampler:
            assert len(batch) == 1 or max(durations[i] for i in batch) * len(batch) <= 30.0


def test_sampler_groups_similar_lengths():
    durations = [1.0] * 50 + [10.0] * 50
    sampler = BucketBatchSampler(durations, batch_seconds=40.0, seed=0)
    for batch in sampler:
        lengths = {durations[i] for i in batch}
        assert len(lengths) == 1 or len(batch) <= 4


def test_sampler_is_deterministic_per_seed_and_epoch():
    durations = [float(1 + i % 13) for i in range(100)]
    a, b = BucketBatchSampler(durations, 50.0, seed=1), BucketBatchSampler(durations, 50.0, seed=1)
    a.set_epoch(4)
    b.set_epoch(4)
    assert list(a) == list(b)
    b.set_epoch(5)
    assert list(a) != list(b)


def test_utterance_longer_than_budget_gets_its_own_batch():
    sampler = BucketBatchSampler([1.0, 1.0, 100.0], batch_seconds=10.0)
    assert sorted(map(len, sampler)) == [1, 2]


def test_max_batch_size():
    sampler = BucketBatchSampler([1.0] * 10, batch_seconds=100.0, max_batch_size=3)
    assert max(map(len, sampler)) == 3


_JSON = st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                     max_leaves=6)
_LINE = st.one_of(st.text(max_size=40), _JSON.map(json.dumps),
                  st.fixed_dictionaries({"audio_filepath": _JSON, "duration": _JSON, "text": _JSON}).map(json.dumps))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_LINE, max_size=6))
def test_any_manifest_text_gives_utterances_or_numbered_problems(tmp_path, lines):
    path = tmp_path / "m.jsonl"
    path.write_text("\n".join(line.replace("\n", " ").replace("\r", " ") for line in lines) + "\n",
                    encoding="utf-8", errors="surrogatepass")
    try:
        utts, problems = parse_manifest(path)
    except ManifestError as e:
        assert str(e).startswith(f"{path}") and "\n" not in str(e)
        return
    for u in utts:
        assert isinstance(u.audio_filepath, str) and u.duration > 0 and isinstance(u.text, str)
    for p in problems:
        assert re.match(rf"{re.escape(str(path))}:\d+: ", p) and "\n" not in p


def test_manifest_optional_keys_round_trip_and_are_checked(tmp_path):
    utts = [Utterance(str(tmp_path / "a.wav"), 1.5, "HELLO"),
            Utterance(str(tmp_path / "b.wav"), 2.0, "A SEGMENT", 3.25, "spk1-b-0325", "spk1")]
    write_manifest(tmp_path / "m.jsonl", utts)
    lines = (tmp_path / "m.jsonl").read_text().splitlines()
    assert "offset" not in lines[0] and '"offset": 3.25' in lines[1]  # only what is set is written
    assert read_manifest(tmp_path / "m.jsonl") == utts
    (tmp_path / "bad.jsonl").write_text(
        '{"audio_filepath": "a.wav", "duration": 1, "text": "X", "offset": -1}\n'
        '{"audio_filepath": "a.wav", "duration": 1, "text": "X", "utt_id": 7}\n'
        '{"audio_filepath": "a.wav", "duration": 1, "text": "X", "offset": 0}\n')
    good, problems = parse_manifest(tmp_path / "bad.jsonl")
    assert len(good) == 1 and good[0].offset == 0.0
    assert "bad.jsonl:1: 'offset' must be a number of seconds >= 0" in problems[0]
    assert "bad.jsonl:2: 'utt_id' must be a string" in problems[1]
