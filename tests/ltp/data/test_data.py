"""Data sets: deterministic disjoint splits, user files, clear errors."""

import json

import pytest

from ltp.data.datasets import DataError, load_dataset


@pytest.mark.parametrize("name,sizes", [
    ("rt-polarity", {"train": 10201, "dev": 1275, "test": 1276}),
    ("amazon-food", {"train": 3600, "dev": 400, "test": 1000}),
])
def test_builtin_splits_are_deterministic_and_disjoint(name, sizes):
    first, again = load_dataset(name), load_dataset(name)
    assert first.sizes() == sizes
    assert first.train == again.train and first.test == again.test
    texts = {s: {e.text for e in first.split(s)} for s in ("train", "dev", "test")}
    if name == "rt-polarity":  # one shuffled pool: no text may sit in two splits
        assert not texts["train"] & texts["dev"]
        assert not texts["train"] & texts["test"]
        assert not texts["dev"] & texts["test"]
    assert len(first.labels) == 2
    # stratified: label shares in train and test within 2 points
    share = {s: sum(e.label for e in first.split(s)) / len(first.split(s)) for s in ("train", "test")}
    if name == "rt-polarity":
        assert abs(share["train"] - share["test"]) < 0.02


def test_user_csv_is_split_deterministically(tiny_csv):
    data = load_dataset(str(tiny_csv))
    assert data.labels == ["neg", "pos"]
    assert sum(data.sizes().values()) == 80
    assert data.sizes() == load_dataset(str(tiny_csv)).sizes()


def test_user_folder_with_pairs(tmp_path):
    rows = [{"q": f"question {i}", "a": f"answer {i}", "y": "yes" if i % 2 else "no"}
            for i in range(20)]
    for split in ("train", "test"):
        (tmp_path / f"{split}.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    from ltp.data.datasets import Columns

    data = load_dataset(str(tmp_path), Columns(text="q", label="y", pair="a"))
    assert data.train[0].text_pair is not None
    assert data.sizes()["test"] == 20 and data.sizes()["dev"] == 2


@pytest.mark.parametrize("content,message", [
    ("", "cannot be read|no rows"),
    ("text,label\n", "no rows"),
    ("words,label\nhello,pos\nbye,neg\n", "missing column"),
    ("text,label\nhello,pos\nbye,pos\n", "at least 2 labels"),
    ("text,label\n ,pos\nbye,neg\n", "empty text"),
])
def test_bad_user_files_give_clear_errors(tmp_path, content, message):
    path = tmp_path / "data.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        load_dataset(str(path))


def test_unknown_test_label_is_an_error(tmp_path):
    (tmp_path / "train.csv").write_text("text,label\na,x\nb,y\nc,x\nd,y\n")
    (tmp_path / "test.csv").write_text("text,label\ne,z\n")
    with pytest.raises(DataError, match="'z' is not one of the training labels"):
        load_dataset(str(tmp_path))


def test_unknown_name_and_bad_suffix(tmp_path):
    with pytest.raises(DataError, match="unknown data set"):
        load_dataset("no-such-set")
    bad = tmp_path / "data.txt"
    bad.write_text("hello")
    with pytest.raises(DataError, match="expected a .csv"):
        load_dataset(str(bad))


def write(path, text):
    path.write_text(text)
    return path


def rows(n, label=lambda i: "pos" if i % 2 else "neg", text=lambda i: f"text number {i}"):
    return "".join(f"{text(i)},{label(i)}\n" for i in range(n))


def test_misnamed_columns_list_the_columns_found_and_a_hint(tmp_path):
    path = write(tmp_path / "d.csv", "Review,Score\nhello,pos\nbye,neg\n")
    with pytest.raises(DataError) as err:
        load_dataset(str(path))
    message = str(err.value)
    assert "missing column(s) ['text', 'label']" in message
    assert "found ['Review', 'Score']" in message
    assert "did you mean 'Review' for 'text'?" in message and "--text-column" in message


def test_bad_rows_are_reported_with_line_numbers_not_dropped(tmp_path):
    body = "text,label\n" + rows(6) + ' ,pos\n"a quoted\nmulti-line text",neg\nlonely\nok,\n'
    path = write(tmp_path / "d.csv", body)
    with pytest.raises(DataError) as err:
        load_dataset(str(path))
    message = str(err.value)
    assert "3 bad row(s)" in message
    assert "line 8: empty text" in message  # header line 1, six rows on lines 2-7
    assert "line 11: 1 field(s), the header has 2" in message  # the quoted text spans 9-10
    assert "line 12: empty label" in message


def test_jsonl_and_tsv_bad_lines(tmp_path):
    good = [json.dumps({"text": f"t {i}", "label": i % 2}) for i in range(12)]
    path = write(tmp_path / "d.jsonl", "\n".join([*good[:3], "{not json", *good[3:]]) + "\n")
    with pytest.raises(DataError, match=r"line 4: not JSON"):
        load_dataset(str(path))
    tsv = write(tmp_path / "d.tsv", "text\tlabel\n" + "".join(f"t {i}\t{i % 2}\n" for i in range(20)))
    assert load_dataset(str(tsv)).labels == ["0", "1"]


@pytest.mark.parametrize("body,message", [
    (rows(30, label=lambda i: "pos"), "one class only"),
    (rows(40, label=lambda i: "rare" if i < 3 else ("pos" if i % 2 else "neg")),
     r"fewer than 5 training examples: \{'rare': [0-9]\}"),
])
def test_checks_that_stop_a_build(tmp_path, body, message):
    from ltp.data.checks import check_data

    path = write(tmp_path / "d.csv", "text,label\n" + body)
    with pytest.raises(DataError, match=message):
        check_data(load_dataset(str(path)))


def test_warnings_duplicates_imbalance_rare_labels(tmp_path):
    from ltp.data.checks import check_data

    (tmp_path / "data").mkdir()
    label = lambda i: "neg" if i < 12 else "pos"  # noqa: E731
    write(tmp_path / "data" / "train.csv", "text,label\n" + rows(200, label=lambda i: label(i)))
    write(tmp_path / "data" / "test.csv", "text,label\ntext number 3,neg\nnew text,pos\nother,neg\n")
    data = load_dataset(str(tmp_path / "data"))
    warnings = check_data(data)
    joined = "\n".join(warnings)
    assert "1 test text(s) also occur in train (test.csv:2)" in joined
    assert "severe class imbalance" in joined
    assert "fewer than 20 training examples" in joined
    assert data.sizes()["dev"] == 20  # 10% of train, stratified; nothing dropped
    assert sum(data.sizes().values()) == 203


def test_length_warning_gives_the_truncated_share():
    from ltp.data.checks import length_warning

    assert length_warning([10, 20, 30], 64) is None
    assert "1 of 4 train texts (25.0%) are longer than the max length 64" in length_warning(
        [10, 70, 20, 30], 64)
