"""Feature scaling at dataset assembly."""
import numpy as np
import pytest

from cmhash.errors import ConfigError
from cmhash.features.scaling import scale_features


def test_center_scale_uses_training_rows_only():
    x = np.array([[1.0, 2.0], [3.0, 6.0], [100.0, 100.0]], dtype=np.float32)
    out, record = scale_features(x, np.array([0, 1]), "center_scale")
    # train mean (2, 4); centred train rows (-1,-2),(1,2): overall std sqrt((1+4+1+4)/4)
    scale = np.sqrt(2.5)
    assert record == {"normalize": "center_scale", "scale": pytest.approx(scale)}
    np.testing.assert_allclose(out[0], [-1 / scale, -2 / scale], rtol=1e-6)
    np.testing.assert_allclose(out[2], [98 / scale, 96 / scale], rtol=1e-6)
    same, rec = scale_features(x, np.array([0, 1]), "none")
    assert same is x and rec == {"normalize": "none"}


def test_errors_name_the_key():
    with pytest.raises(ConfigError, match="normalize: unknown scaling 'zscore'"):
        scale_features(np.ones((2, 2)), np.array([0]), "zscore")
    with pytest.raises(ConfigError, match="vary"):
        scale_features(np.ones((3, 2)), np.array([0, 1]), "center_scale")
