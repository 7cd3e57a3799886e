"""Multi-label and regression data: the file formats, their errors, the checks per problem type,
and the built-in data sets of each kind."""

import json

import pytest

from ltp.core.heads import MULTI_LABEL, REGRESSION
from ltp.data.checks import check_data
from ltp.data.datasets import Columns, DataError, load_dataset

TAGS = ["comedy", "drama", "war"]


def tagged_rows(n: int) -> list[tuple[str, list[str]]]:
    """Texts with 0 to 2 tags each, every tag common enough to pass the checks."""
    return [(f"text number {i}", [t for k, t in enumerate(TAGS) if (i >> k) & 1 and k < 2 or
                                  (k == 2 and i % 5 == 0)]) for i in range(n)]


def test_delimited_label_column(tmp_path):
    path = tmp_path / "tags.csv"
    path.write_text("text,label\n" + "".join(f"{t},{'|'.join(tags)}\n" for t, tags in tagged_rows(60)))
    data = load_dataset(str(path), Columns(delimiter="|"))
    assert data.problem_type == MULTI_LABEL and data.labels == TAGS
    assert data.sizes() == {"train": 48, "dev": 6, "test": 6}
    by_text = {e.text: e.label for s in ("train", "dev", "test") for e in data.split(s)}
    assert by_text["text number 3"] == (0, 1)  # comedy|drama
    assert by_text["text number 0"] == (2,)
    assert by_text["text number 4"] == ()  # no tag: an all-zero row
    warnings = check_data(data)
    assert any("carry no label (all-zero rows)" in w for w in warnings)


def test_one_binary_column_per_label_and_json_lists(tmp_path):
    path = tmp_path / "flags.csv"
    lines = ["text,toxic,insult"] + [f"t{i},{i % 2},{'true' if i % 3 == 0 else 'false'}"
                                    for i in range(40)]
    path.write_text("\n".join(lines) + "\n")
    data = load_dataset(str(path), Columns(labels=("toxic", "insult")))
    assert data.labels == ["toxic", "insult"]  # the columns' order
    by_text = {e.text: e.label for s in ("train", "dev", "test") for e in data.split(s)}
    assert by_text["t3"] == (0, 1) and by_text["t2"] == () and by_text["t1"] == (0,)
    jsonl = tmp_path / "tags.jsonl"
    jsonl.write_text("".join(json.dumps({"text": t, "label": tags}) + "\n" for t, tags in tagged_rows(40)))
    data = load_dataset(str(jsonl), problem_type=MULTI_LABEL)
    assert data.labels == TAGS and data.problem_type == MULTI_LABEL


def test_bad_binary_cells_and_missing_label_columns_name_the_lines(tmp_path):
    path = tmp_path / "flags.csv"
    path.write_text("text,toxic,insult\na,1,0\nb,maybe,0\nc,0,2\n")
    with pytest.raises(DataError, match=r"line 3: column 'toxic': 'maybe' is not 0 or 1.*line 4"):
        load_dataset(str(path), Columns(labels=("toxic", "insult")))
    with pytest.raises(DataError, match=r"missing column\(s\) \['threat'\]"):
        load_dataset(str(path), Columns(labels=("toxic", "threat")))
    with pytest.raises(DataError, match="not both"):
        Columns(labels=("a", "b"), delimiter="|")
    with pytest.raises(DataError, match="describe multi-label data"):
        load_dataset(str(path), Columns(labels=("toxic", "insult")), problem_type=REGRESSION)


def test_regression_labels_are_numbers(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("text,stars\n" + "".join(f"review {i},{i % 5 + 1}.5\n" for i in range(50)))
    data = load_dataset(str(path), Columns(label="stars"), problem_type=REGRESSION)
    assert data.labels == ["stars"] and data.problem_type == REGRESSION
    assert all(isinstance(e.label, float) for e in data.train)
    assert check_data(data) == []
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\n" + "".join(f"r{i},{i}\n" for i in range(20)) + "r20,five\nr21,nan\n")
    with pytest.raises(DataError, match="regression needs a number") as err:
        load_dataset(str(bad), problem_type=REGRESSION)
    assert "bad.csv:22: label 'five' is not a number" in str(err.value)
    assert "bad.csv:23: label 'nan' is not finite" in str(err.value)


def test_checks_that_stop_a_multi_label_build(tmp_path):
    rare = tmp_path / "rare.csv"
    rows = [(t, tags + (["rare"] if i < 3 else [])) for i, (t, tags) in enumerate(tagged_rows(60))]
    rare.write_text("text,label\n" + "".join(f"{t},{';'.join(g)}\n" for t, g in rows))
    with pytest.raises(DataError, match=r"fewer than 5 positive training rows: \{'rare': [0-3]\}"):
        check_data(load_dataset(str(rare), Columns(delimiter=";")))
    empty = tmp_path / "empty.csv"
    empty.write_text("text,a,b\n" + "".join(f"t{i},0,0\n" for i in range(30)))
    with pytest.raises(DataError, match="fewer than 5 positive"):
        check_data(load_dataset(str(empty), Columns(labels=("a", "b"))))
    constant = tmp_path / "constant.csv"
    constant.write_text("text,label\n" + "".join(f"t{i},3\n" for i in range(30)))
    with pytest.raises(DataError, match="at least 3 distinct training targets"):
        check_data(load_dataset(str(constant), problem_type=REGRESSION))


def test_built_in_multi_label_and_regression_sets():
    genres = load_dataset("movielens-genres")
    assert genres.problem_type == MULTI_LABEL and len(genres.labels) == 19
    assert sum(genres.sizes().values()) > 9000
    assert all(e.label for e in genres.train)  # films without genres are dropped
    assert genres.train[0].text.endswith(")")  # "Title (year)", as MovieLens writes it
    tweets = load_dataset("trump-tweets")
    assert tweets.problem_type == REGRESSION and tweets.labels == ["log_favorites"]
    assert tweets.sizes() == {"train": 3750, "dev": 500, "test": 750}
    assert check_data(genres) is not None and check_data(tweets) is not None
    with pytest.raises(DataError, match="is regression data"):
        load_dataset("trump-tweets", problem_type=MULTI_LABEL)
