"""Importers of the published feature files (cmhash.data.published): on the real MIRFlickr label
and tag files and NRCH noise files in ../shared/data, and on files written here in the exact
published layouts (keys, shapes, dtypes, MATLAB version, transposition) for the others."""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from cmhash.data import SOURCES, import_features
from cmhash.data.canonical import read_dataset
from cmhash.data.mirflickr import MIRFLICKR_CONCEPTS
from cmhash.data.published import (
    configured_noise_file,
    import_coco_doc2vec,
    import_dcgmh,
    import_iapr_rand,
    import_ucch,
    load_mat,
    published_noise,
    published_noise_file,
)
from cmhash.errors import ConfigError, DataError
from cmhash.noise import corrupt

MIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mirflickr25k"


def write_mat73(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """A MATLAB v7.3 file as MATLAB writes it: HDF5 behind a 512-byte header, each array
    stored column-major (so h5py sees it transposed), with its MATLAB class attribute."""
    classes = {np.dtype(np.float64): "double", np.dtype(np.float32): "single", np.dtype(np.uint8): "uint8"}
    with h5py.File(path, "w", userblock_size=512) as f:
        for key, value in arrays.items():
            value = np.asarray(value)
            ds = f.create_dataset(key, data=value.T)
            ds.attrs["MATLAB_class"] = np.bytes_(classes[value.dtype])
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    with open(path, "r+b") as f:
        f.write(header.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM")


def multi_hot(rng: np.random.Generator, n: int, c: int) -> np.ndarray:
    labels = (rng.random((n, c)) < 0.2).astype(np.float64)
    labels[np.arange(n), rng.integers(0, c, n)] = 1  # every row has a label, as published
    return labels


# -- the real MIRFlickr files ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def mir_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (MIR / "mirflickr25k-lall.mat").is_file():
        pytest.skip("../shared/data not present: no published MIRFlickr files")
    folder = tmp_path_factory.mktemp("mir")
    (folder / "mirflickr25k-lall.mat").symlink_to(MIR / "mirflickr25k-lall.mat")
    (folder / "mirflickr25k-yall.mat").symlink_to(MIR / "mirflickr25k-yall.mat")
    # the VGG features are not shipped here: an XAll of the published shape, written like LAll/YAll (MATLAB v5)
    xall = np.random.default_rng(0).standard_normal((20015, 4096), dtype=np.float32)
    scipy.io.savemat(folder / "mirflickr25k-iall-vgg.mat", {"XAll": xall})
    return folder


@pytest.fixture(scope="module")
def mir_ucch(mir_folder: Path):
    return import_ucch(mir_folder, n_validation=500, seed=3, dataset="mirflickr25k")


def test_mirflickr_ucch_reproduces_the_published_labels_and_tags(mir_ucch) -> None:
    ds = mir_ucch
    lall = scipy.io.loadmat(str(MIR / "mirflickr25k-lall.mat"))["LAll"]
    yall = scipy.io.loadmat(str(MIR / "mirflickr25k-yall.mat"))["YAll"]
    assert ds.labels.shape == (20015, 24) and ds.text.shape == (20015, 1386) and ds.image.shape == (20015, 4096)
    assert ds.labels.dtype == np.uint8 and ds.text.dtype == np.float32 and ds.image.dtype == np.float32
    np.testing.assert_array_equal(ds.labels, lall)
    np.testing.assert_array_equal(ds.text, yall)
    assert ds.meta["classes"] == list(MIRFLICKR_CONCEPTS)
    np.testing.assert_array_equal(ds.splits.query, np.arange(2000))
    np.testing.assert_array_equal(ds.splits.train, np.arange(2000, 12000))
    np.testing.assert_array_equal(ds.splits.database, np.arange(2000, 20015))
    assert len(ds.splits.validation) == 500 and np.isin(ds.splits.validation, ds.splits.train).all()
    assert set(ds.meta["source_files"]) == {"mirflickr25k-iall-vgg.mat", "mirflickr25k-yall.mat",
                                            "mirflickr25k-lall.mat"}
    assert SOURCES["mirflickr25k_ucch"].kind == "features"
    checks = ds.meta["checksums"]
    # LAll and YAll are NRCH's bytes; the XAll here is made by the test, so it cannot match NRCH's
    assert checks["mirflickr25k-lall.mat"]["status"] == checks["mirflickr25k-yall.mat"]["status"] == "verified"
    assert checks["mirflickr25k-iall-vgg.mat"]["status"] == "mismatch"
    assert checks["mirflickr25k-iall-vgg.mat"]["published_sha256"].startswith("95ed1d9f")


def test_checksum_mismatch_warns_naming_the_file_and_both_hashes(tmp_path: Path, caplog) -> None:
    from cmhash.data.published import checksum_record

    path = tmp_path / "mirflickr25k-lall-noise_0.2.h5"
    path.write_bytes(b"a re-export")
    with caplog.at_level("WARNING", logger="cmhash"):
        record = checksum_record(path)
    assert record["status"] == "mismatch"
    assert str(path) in caplog.text and record["sha256"] in caplog.text and "9b45b5beb112be3e" in caplog.text
    other = tmp_path / "my-own-file.mat"
    other.write_bytes(b"x")
    assert checksum_record(other)["status"] == "unlisted"


@pytest.mark.parametrize("rate", [0.2, 0.5, 0.8])
def test_published_noise_gives_the_files_noisy_rows(mir_ucch, rate: float) -> None:
    ds = mir_ucch
    path = published_noise_file(MIR, "mirflickr25k", rate)
    clean = ds.labels[ds.splits.train]
    noisy, corrupted = published_noise(path, clean)
    with h5py.File(path, "r") as f:
        result = f["result"][()]
    assert noisy.dtype == np.uint8 and noisy.shape == (10000, 24)
    np.testing.assert_array_equal(noisy, result)  # bit for bit: the file holds exactly 0.0 and 1.0
    assert corrupted.sum() == round(rate * 10000)
    diff = (noisy != clean).sum(axis=1)
    assert set(np.unique(diff[corrupted])) == {2} and (diff[~corrupted] == 0).all()
    np.testing.assert_array_equal(noisy.sum(axis=1), clean.sum(axis=1))  # one 1->0 and one 0->1 per row
    with pytest.raises(DataError, match=r"noise_0\.\d\.h5: key 'True' differs .*first: training row 0"):
        published_noise(path, ds.labels[:10000])  # the query rows are not the noisy file's rows


# -- NUS-WIDE-TC21 (UCCH), MATLAB v7.3 -----------------------------------------------------------
def test_nuswide_ucch_v73_with_iall_key(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    n = 60
    x = rng.standard_normal((n, 16)).astype(np.float32)
    y = (rng.random((n, 30)) < 0.1).astype(np.float64)
    lab = multi_hot(rng, n, 21)
    write_mat73(tmp_path / "nus-wide-tc21-xall-vgg-clean.mat", {"IAll": x})
    write_mat73(tmp_path / "nus-wide-tc21-yall-clean.mat", {"YAll": y})
    write_mat73(tmp_path / "nus-wide-tc21-lall-clean.mat", {"LAll": lab})
    assert h5py.File(tmp_path / "nus-wide-tc21-lall-clean.mat", "r")["LAll"].shape == (21, n)  # stored transposed
    ds = import_features("nuswide_tc21_ucch", tmp_path, tmp_path / "out", n_validation=2, seed=0,
                         options={"n_query": 10, "n_train": 20})
    np.testing.assert_array_equal(ds.image, x)
    np.testing.assert_array_equal(ds.text, y.astype(np.float32))
    np.testing.assert_array_equal(ds.labels, lab.astype(np.uint8))
    back = read_dataset(tmp_path / "out")
    np.testing.assert_array_equal(back.splits.query, np.arange(10))
    np.testing.assert_array_equal(back.splits.train, np.arange(10, 30))
    np.testing.assert_array_equal(back.splits.database, np.arange(10, n))
    with pytest.raises(ConfigError, match="query \\(2100\\) \\+ train \\(10500\\) exceed the 60 rows"):
        import_ucch(tmp_path, n_validation=0, seed=0, dataset="nuswide_tc21")
    with pytest.raises(ConfigError, match=r"options: \['n_bits'\] not accepted"):
        import_features("nuswide_tc21_ucch", tmp_path, tmp_path / "o2", n_validation=0, seed=0, options={"n_bits": 3})


def test_missing_key_and_shape_mismatch_name_file_and_key(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    n = 40
    scipy.io.savemat(tmp_path / "mirflickr25k-iall-vgg.mat", {"XAll": rng.standard_normal((n, 8))})
    scipy.io.savemat(tmp_path / "mirflickr25k-yall.mat", {"YAll": rng.random((n - 1, 5)).round()})
    scipy.io.savemat(tmp_path / "mirflickr25k-lall.mat", {"LALL": multi_hot(rng, n, 24)})
    with pytest.raises(DataError, match=r"mirflickr25k-lall\.mat: key 'LAll' not found .*'LALL'"):
        import_ucch(tmp_path, 0, 0, dataset="mirflickr25k", n_query=5, n_train=10)
    scipy.io.savemat(tmp_path / "mirflickr25k-lall.mat", {"LAll": multi_hot(rng, n, 24)})
    with pytest.raises(DataError, match=r"keys \('XAll', 'YAll', 'LAll'\) have shapes \[\(40, 8\), \(39, 5\), \(40, 24\)\]"):
        import_ucch(tmp_path, 0, 0, dataset="mirflickr25k", n_query=5, n_train=10)
    scipy.io.savemat(tmp_path / "mirflickr25k-yall.mat", {"YAll": rng.random((n, 5)).round()})
    bad = multi_hot(rng, n, 24)
    bad[3, 3] = 2
    scipy.io.savemat(tmp_path / "mirflickr25k-lall.mat", {"LAll": bad})
    with pytest.raises(DataError, match=r"mirflickr25k-lall\.mat: key 'LAll' must hold only 0 and 1"):
        import_ucch(tmp_path, 0, 0, dataset="mirflickr25k", n_query=5, n_train=10)
    (tmp_path / "mirflickr25k-iall-vgg.mat").write_bytes(b"not a mat file")
    with pytest.raises(DataError, match=r"mirflickr25k-iall-vgg\.mat: not a readable MATLAB file"):
        load_mat(tmp_path / "mirflickr25k-iall-vgg.mat", ["XAll"])
    write_mat73(tmp_path / "v73.mat", {"A": np.ones((3, 2))})
    with pytest.raises(DataError, match=r"v73\.mat: key 'XAll' / 'IAll' not found \(HDF5 file holding \['A'\]\)"):
        load_mat(tmp_path / "v73.mat", [("XAll", "IAll")])


# -- IAPR TC-12 (UCCH), MATLAB v5 ----------------------------------------------------------------
def test_iapr_rand_concatenates_database_then_test(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n_db, n_te, c = 300, 40, 255
    arrays = {"VDatabase": rng.standard_normal((n_db, 12)).astype(np.float32),
              "YDatabase": (rng.random((n_db, 29)) < 0.1).astype(np.float64),
              "databaseL": multi_hot(rng, n_db, c),
              "VTest": rng.standard_normal((n_te, 12)).astype(np.float32),
              "YTest": (rng.random((n_te, 29)) < 0.1).astype(np.float64),
              "testL": multi_hot(rng, n_te, c)}
    scipy.io.savemat(tmp_path / "iapr-tc12-rand.mat", arrays)
    ds = import_iapr_rand(tmp_path / "iapr-tc12-rand.mat", n_validation=5, seed=1, n_query=40, n_train=100)
    np.testing.assert_array_equal(ds.image[:n_db], arrays["VDatabase"])
    np.testing.assert_array_equal(ds.image[n_db:], arrays["VTest"])
    np.testing.assert_array_equal(ds.labels[n_db:], arrays["testL"].astype(np.uint8))
    assert ds.labels.shape == (n_db + n_te, 255)
    np.testing.assert_array_equal(ds.splits.query, np.arange(40))  # the first rows: database rows
    np.testing.assert_array_equal(ds.splits.database, np.arange(40, n_db + n_te))
    arrays["YTest"] = arrays["YTest"][:, :28]
    scipy.io.savemat(tmp_path / "iapr-tc12-rand.mat", arrays)
    with pytest.raises(DataError, match=r"keys 'YDatabase' and 'YTest' have different widths \(29 vs 28\)"):
        import_iapr_rand(tmp_path, n_validation=0, seed=0, n_query=40, n_train=100)


# -- MS-COCO (UCCH), plain HDF5 -------------------------------------------------------------------
def test_coco_doc2vec_concatenates_train_then_test(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    n_tr, n_te = 120, 30
    arrays = {"train_imgs_deep": rng.standard_normal((n_tr, 10)).astype(np.float32),
              "train_text": rng.standard_normal((n_tr, 300)).astype(np.float32),
              "train_imgs_labels": multi_hot(rng, n_tr, 80),
              "test_imgs_deep": rng.standard_normal((n_te, 10)).astype(np.float32),
              "test_text": rng.standard_normal((n_te, 300)).astype(np.float32),
              "test_imgs_labels": multi_hot(rng, n_te, 80)}
    with h5py.File(tmp_path / "MSCOCO_deep_doc2vec_data.h5py", "w") as f:
        for key, value in arrays.items():
            f.create_dataset(key, data=value)
    ds = import_features("mscoco_ucch", tmp_path, tmp_path / "out", n_validation=3, seed=0,
                         options={"n_query": 20, "n_train": 50})
    np.testing.assert_array_equal(ds.text, np.vstack([arrays["train_text"], arrays["test_text"]]))
    np.testing.assert_array_equal(ds.labels[n_tr:], arrays["test_imgs_labels"].astype(np.uint8))
    assert ds.text.shape == (150, 300) and ds.labels.shape == (150, 80)
    np.testing.assert_array_equal(ds.splits.train, np.arange(20, 70))
    del arrays["test_text"]
    with h5py.File(tmp_path / "MSCOCO_deep_doc2vec_data.h5py", "w") as f:
        for key, value in arrays.items():
            f.create_dataset(key, data=value)
    with pytest.raises(DataError, match=r"MSCOCO_deep_doc2vec_data\.h5py: key 'test_text' not found"):
        import_coco_doc2vec(tmp_path, n_validation=0, seed=0, n_query=20, n_train=50)


# -- DCGMH, MATLAB v7.3 stored transposed -----------------------------------------------------------
def test_dcgmh_cnn_twt_own_split(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    sizes = {"tr": 50, "te": 12, "db": 80}
    arrays = {}
    for s, n in sizes.items():
        arrays[f"I_{s}"] = rng.standard_normal((n, 16)).astype(np.float32)
        arrays[f"T_{s}"] = (rng.random((n, 25)) < 0.2).astype(np.float64)
        arrays[f"L_{s}"] = multi_hot(rng, n, 24)
    write_mat73(tmp_path / "mir_cnn_twt.mat", arrays)
    with h5py.File(tmp_path / "mir_cnn_twt.mat", "r") as f:  # what the published loader transposes
        assert f["I_tr"].shape == (16, 50) and f["L_db"].shape == (24, 80)
    ds = import_features("mirflickr25k_dcgmh", tmp_path / "mir_cnn_twt.mat", tmp_path / "out", n_validation=4,
                         seed=2)
    np.testing.assert_array_equal(ds.image[:50], arrays["I_tr"])
    np.testing.assert_array_equal(ds.image[50:62], arrays["I_te"])
    np.testing.assert_array_equal(ds.labels[62:], arrays["L_db"].astype(np.uint8))
    np.testing.assert_array_equal(ds.splits.train, np.arange(50))
    np.testing.assert_array_equal(ds.splits.query, np.arange(50, 62))
    np.testing.assert_array_equal(ds.splits.database, np.arange(62, 142))
    assert len(ds.splits.validation) == 4 and ds.splits.validation.max() < 50
    assert read_dataset(tmp_path / "out").labels.shape == (142, 24)

    arrays["T_te"] = arrays["T_te"][:, :20]
    write_mat73(tmp_path / "mir_cnn_twt.mat", arrays)
    with pytest.raises(DataError, match=r"mir_cnn_twt\.mat: keys T_tr/T_te/T_db have different widths"):
        import_dcgmh(tmp_path, n_validation=0, seed=0, dataset="mirflickr25k")
    with pytest.raises(DataError, match=r"nus_cnn_twt\.mat not found"):
        import_dcgmh(tmp_path / "elsewhere", n_validation=0, seed=0, dataset="nuswide")


# -- the noise model `published` in the pipeline's noise stage and config checks -------------------
def test_noise_stage_with_the_published_model_writes_the_files_rows(mir_ucch, tmp_path: Path) -> None:
    from cmhash.io import save_json, save_npy
    from cmhash.pipeline import stage_noise

    ds_dir = tmp_path / "dataset"
    save_npy(ds_dir / "labels.npy", mir_ucch.labels)
    save_json(ds_dir / "splits.json", mir_ucch.splits.to_json())
    cfg = {"source": "mirflickr25k_ucch", "published_noise": {"dir": str(MIR)}}
    path = configured_noise_file("mir", cfg, 0.5)
    stage_noise(ds_dir, "published", 0.5, 7, tmp_path / "noise", published_file=path)
    noisy = np.load(tmp_path / "noise" / "noisy_labels.npy")
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(noisy, f["result"][()])
    corrupted = np.load(tmp_path / "noise" / "corrupted.npy")
    assert corrupted.sum() == 5000
    meta = json.loads((tmp_path / "noise" / "noise.json").read_text())
    assert meta["file"] == str(path) and meta["n_corrupted"] == 5000 and meta["model"] == "published"
    assert meta["checksum"]["status"] == "verified"  # the bytes NRCH published
    assert meta["checksum"]["sha256"] == "9d00abebf089f8a59d7dad71ebfe85aaa9aaffeb2ab2a61fb31979af91ba6598"
    stage_noise(ds_dir, "published", 0.0, 7, tmp_path / "clean")  # rate 0: the clean rows, no file read
    np.testing.assert_array_equal(np.load(tmp_path / "clean" / "noisy_labels.npy"),
                                  mir_ucch.labels[mir_ucch.splits.train])


def test_config_names_a_missing_published_noise_entry_or_file(tmp_path: Path) -> None:
    from cmhash.config import check_config

    cfg = {"experiment": "x", "datasets": {"mir": {"source": "mirflickr25k_ucch", "path": str(tmp_path),
                                                   "split": {"n_validation": 10}}},
           "grid": {"datasets": ["mir"], "methods": ["baseline"], "noise_models": ["published"],
                    "noise_rates": [0.5], "bits": [16], "seeds": [0], "protocols": ["sound"]}}
    with pytest.raises(ConfigError, match=r"datasets\.mir\.published_noise: required by the noise model"):
        check_config(cfg)
    cfg["datasets"]["mir"]["published_noise"] = {"dir": str(tmp_path)}
    with pytest.raises(ConfigError, match=r"datasets\.mir\.published_noise: .*mirflickr25k-lall-noise_0\.5\.h5 "
                                          r"not found \(needed by grid\.noise_models 'published' at rate 0\.5\)"):
        check_config(cfg)
    with pytest.raises(ConfigError, match="'published' reads files"):
        corrupt(np.eye(3, dtype=np.uint8), "published", 0.5, 0)
