import pytest

from normlab.train import History
from normlab.train.history import append_jsonl


def _records():
    return [
        {"step": 1, "epoch": 1, "train_loss": 2.0, "val_acc": None, "epoch_end": False},
        {"step": 2, "epoch": 1, "train_loss": 1.5, "val_acc": 0.25, "epoch_end": True},
        {"step": 3, "epoch": 2, "train_loss": 1.0, "val_acc": None, "epoch_end": False},
        {"step": 4, "epoch": 2, "train_loss": 0.5, "val_acc": 0.75, "epoch_end": True},
    ]


def test_column_access_skips_missing_values_and_can_return_steps():
    h = History(_records())
    assert h["train_loss"] == [2.0, 1.5, 1.0, 0.5]
    assert h["val_acc"] == [0.25, 0.75]
    assert h.column("val_acc", with_steps=True) == ([2, 4], [0.25, 0.75])
    assert [r["step"] for r in h.epochs()] == [2, 4]
    assert len(h) == 4 and [r["step"] for r in h] == [1, 2, 3, 4]


def test_unknown_column_lists_the_available_keys():
    with pytest.raises(KeyError, match=r"expected one of \['step', 'epoch', 'train_loss', "
                                       r"'val_acc', 'epoch_end'\], got 'val_accuracy'"):
        History(_records())["val_accuracy"]


def test_jsonl_round_trip_is_exact(tmp_path):
    h = History(_records() + [{"step": 5, "train_loss": 0.1 + 0.2, "big": 2 ** 70}])
    h.to_jsonl(tmp_path / "h.jsonl")
    back = History.from_jsonl(tmp_path / "h.jsonl")
    assert back.records == h.records
    assert (tmp_path / "h.jsonl").read_text().count("\n") == 5


def test_records_are_copied_not_shared():
    rec = {"step": 1}
    h = History([rec])
    h.append(rec)
    rec["step"] = 99
    assert h["step"] == [1, 1]


def test_appended_lines_read_back_and_a_truncated_last_line_is_dropped(tmp_path):
    path = tmp_path / "history.jsonl"
    for r in _records()[:2]:
        append_jsonl(path, r)
    with open(path, "a") as f:
        f.write('{"step": 3, "epo')  # a process killed while appending
    assert History.from_jsonl(path).records == _records()[:2]


def test_corrupt_or_missing_files_raise(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"expected a JSON-lines file, got .*nope"):
        History.from_jsonl(tmp_path / "nope.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"step": 1}\n{broken\n{"step": 3}\n')
    with pytest.raises(ValueError, match=r"expected a JSON object on line 2 of .* corrupt"):
        History.from_jsonl(bad)
    bad.write_text('{"step": 1}\n[1, 2]\n')
    with pytest.raises(ValueError, match=r"expected a JSON object on line 2 .*got list"):
        History.from_jsonl(bad)


def test_repr_names_the_last_step():
    assert repr(History(_records())) == "History(4 records, last step=4)"
