"""The Wikipedia importer on the published files and on corrupted copies of them."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from cmhash.data import import_features
from cmhash.data.canonical import read_dataset
from cmhash.data.wikipedia import import_wikipedia
from cmhash.errors import ConfigError, DataError

WIKI = Path(__file__).resolve().parents[2] / "shared" / "data" / "wikipedia"


@pytest.fixture(scope="module")
def wiki() -> Path:
    if not (WIKI / "raw_features.mat").is_file():
        pytest.skip("../shared/data not present: no published Wikipedia files")
    return WIKI


def test_imports_the_published_split(wiki: Path) -> None:
    ds = import_wikipedia(wiki, n_validation=200, seed=4)
    assert ds.image.shape == (2866, 128) and ds.text.shape == (2866, 10) and ds.labels.shape == (2866, 10)
    assert ds.image.dtype == np.float32 and ds.text.dtype == np.float32 and ds.labels.dtype == np.uint8
    assert (ds.labels.sum(axis=1) == 1).all()
    np.testing.assert_array_equal(ds.splits.train, np.arange(2173))
    np.testing.assert_array_equal(ds.splits.database, np.arange(2173))
    np.testing.assert_array_equal(ds.splits.query, np.arange(2173, 2866))
    assert len(ds.splits.validation) == 200 and np.isin(ds.splits.validation, ds.splits.train).all()
    assert ds.meta["classes"][0] == "art" and ds.meta["classes"][-1] == "warfare" and len(ds.meta["classes"]) == 10

    mat = scipy.io.loadmat(str(wiki / "raw_features.mat"))
    np.testing.assert_allclose(ds.image[:2173], mat["I_tr"], rtol=1e-6)
    np.testing.assert_allclose(ds.text[2173:], mat["T_te"], rtol=1e-6)
    cats = [int(line.split("\t")[2]) for line in (wiki / "trainset_txt_img_cat.list").read_text().splitlines()]
    np.testing.assert_array_equal(ds.labels[:2173].argmax(axis=1), np.array(cats) - 1)
    assert ds.labels[:2173, 0].sum() == 138  # category 1 (art) in the training list
    assert ds.meta["ids"][0] == (wiki / "trainset_txt_img_cat.list").read_text().split("\t")[0]

    again = import_wikipedia(wiki, n_validation=200, seed=4)
    other = import_wikipedia(wiki, n_validation=200, seed=5)
    np.testing.assert_array_equal(again.splits.validation, ds.splits.validation)
    assert not np.array_equal(other.splits.validation, ds.splits.validation)


def test_import_features_writes_the_dataset_folder(wiki: Path, tmp_path: Path) -> None:
    written = import_features("wikipedia", wiki, tmp_path / "ds", n_validation=50, seed=0)
    back = read_dataset(tmp_path / "ds")
    np.testing.assert_array_equal(back.image, written.image)
    np.testing.assert_array_equal(back.splits.validation, written.splits.validation)
    assert back.meta["source"] == "wikipedia"


def _copy(wiki: Path, dest: Path, **replace) -> Path:
    """A copy of the published folder with some matrices replaced (None drops the key)."""
    dest.mkdir()
    for name in ("trainset_txt_img_cat.list", "testset_txt_img_cat.list", "categories.list"):
        shutil.copy(wiki / name, dest / name)
    mat = {k: v for k, v in scipy.io.loadmat(str(wiki / "raw_features.mat")).items() if not k.startswith("__")}
    for key, value in replace.items():
        if value is None:
            mat.pop(key)
        else:
            mat[key] = value(mat[key])
    scipy.io.savemat(str(dest / "raw_features.mat"), mat)
    return dest


def test_corrupted_copies_raise_errors_naming_file_and_key(wiki: Path, tmp_path: Path) -> None:
    bad = _copy(wiki, tmp_path / "nokey", T_te=None)
    with pytest.raises(DataError, match=r"raw_features\.mat: key 'T_te' not found"):
        import_wikipedia(bad, 0, 0)
    bad = _copy(wiki, tmp_path / "rows", I_tr=lambda a: a[:-1])
    with pytest.raises(DataError, match=r"raw_features\.mat: keys 'I_tr' \(2172 rows\) and 'T_tr' \(2173 rows\)"):
        import_wikipedia(bad, 0, 0)
    bad = _copy(wiki, tmp_path / "both", I_te=lambda a: a[:-1], T_te=lambda a: a[:-1])
    with pytest.raises(DataError, match=r"key 'I_te' has 692 rows but .*testset_txt_img_cat\.list lists 693"):
        import_wikipedia(bad, 0, 0)
    bad = _copy(wiki, tmp_path / "nan", T_tr=lambda a: np.where(np.arange(a.shape[0])[:, None] == 3, np.nan, a))
    with pytest.raises(DataError, match=r"key 'T_tr' holds NaN"):
        import_wikipedia(bad, 0, 0)

    bad = _copy(wiki, tmp_path / "list")
    lines = (bad / "trainset_txt_img_cat.list").read_text().splitlines()
    lines[4] = lines[4].rsplit("\t", 1)[0] + "\t11"
    (bad / "trainset_txt_img_cat.list").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"trainset_txt_img_cat\.list: line 5: category 11 outside 1\.\.10"):
        import_wikipedia(bad, 0, 0)
    lines[4] = "no tabs here"
    (bad / "trainset_txt_img_cat.list").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"trainset_txt_img_cat\.list: line 5: expected"):
        import_wikipedia(bad, 0, 0)
    (bad / "categories.list").unlink()
    with pytest.raises(DataError, match=r"categories\.list: file not found"):
        import_wikipedia(bad, 0, 0)
    with pytest.raises(DataError, match="Wikipedia folder not found"):
        import_wikipedia(tmp_path / "absent", 0, 0)
    with pytest.raises(ConfigError, match="n_validation"):
        import_wikipedia(wiki, 2173, 0)
