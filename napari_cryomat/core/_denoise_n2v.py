"""Optional Noise2Void through careamics (PyTorch), only when the user has installed it.

careamics is not a dependency of napari-cryomat: it brings PyTorch and, on Linux, about 5 GB of
CUDA packages, and on a 512² crop it needed 14 minutes of training to reach (not beat) the
calibrated Gaussian of :func:`napari_cryomat.core.denoise.denoise` (issue #16). It is imported here
only when ``method="n2v"`` is asked for; nothing is downloaded at run time (no pretrained weights:
the network is trained on the image itself, as Noise2Void intends).

The careamics 0.x API used: ``careamics.config.create_n2v_configuration`` and
``careamics.CAREamist(...).train / .predict`` on numpy arrays. Not exercised by the test suite
(careamics is not installed there); the message for its absence is.
"""

from __future__ import annotations

import tempfile

import numpy as np

from napari_cryomat.core._progress import ProgressCallback, report

INSTALL_HINT = ("method 'n2v' (Noise2Void) needs careamics, which is not installed. It is optional and heavy: "
                "`pip install careamics` pulls PyTorch (about 5 GB with its CUDA libraries on Linux) and training "
                "takes minutes to tens of minutes per image. The calibrated methods ('auto') need none of it.")


def n2v_denoise(frames, image, *, epochs: int = 20, progress: ProgressCallback = None):
    """Train Noise2Void on ``frames`` (2D image or (T, Y, X) stack) and predict them."""
    try:
        from careamics import CAREamist
        from careamics.config import create_n2v_configuration
    except ImportError:
        raise ValueError(INSTALL_HINT) from None
    from napari_cryomat.core.denoise import DenoiseResult, NoiseModel

    data = np.asarray(frames, np.float32)
    axes = "YX" if data.ndim == 2 else "SYX"
    patch = int(min(64, 2 ** int(np.log2(min(data.shape[-2:])))))
    config = create_n2v_configuration(experiment_name="cryomat_n2v", data_type="array", axes=axes,
                                      patch_size=[patch, patch], batch_size=16, num_epochs=int(epochs))
    report(progress, 0.05)
    with tempfile.TemporaryDirectory(prefix="cryomat-n2v-") as work_dir:
        model = CAREamist(source=config, work_dir=work_dir)
        model.train(train_source=data)
        report(progress, 0.8)
        prediction = model.predict(source=data, data_type="array", axes=axes)
    out = np.asarray(prediction[0] if isinstance(prediction, list) else prediction, np.float32).reshape(data.shape)
    report(progress, 1.0)
    return DenoiseResult(out, "n2v", (("n2v", float(epochs), 1.0),), {}, float("nan"),
                         NoiseModel("gaussian", 1.0, 1.0), ())
