"""Bad-input cases for napari_cryomat.core.morph3d (read by benchmarks/core_api_fuzz.py)."""

import numpy as np


def _plate():
    m = np.zeros((12, 14, 16), bool)
    m[4:8, 2:12, 2:14] = True
    return m


def _particles():
    lab = np.zeros((12, 14, 16), np.int32)
    lab[9:11, 3:5, 3:5] = 1
    lab[9:11, 8:10, 10:12] = 2
    return lab


def specs(Spec, Factory):
    plate = Factory(_plate)
    thick = Factory(lambda: __import__("napari_cryomat.core.morph3d", fromlist=["x"]).local_thickness(
        _plate(), voxel_size=2.0))
    return [
        Spec("morph3d.local_thickness", {"mask": plate, "voxel_size": 2.0},
             {"mask": "mask", "voxel_size": "len"}, pos=("mask",)),
        Spec("morph3d.local_thickness", {"mask": plate, "voxel_size": (2.0, 1.0, 1.0)},
             {"voxel_size": "vec2"}, pos=("mask",)),
        Spec("morph3d.thickness_histogram", {"thickness": thick, "bins": 10, "mask": plate},
             {"thickness": "array", "bins": "count", "mask": "mask"}, pos=("thickness",)),
        Spec("morph3d.skeleton_graph", {"mask": plate, "voxel_size": 2.0},
             {"mask": "mask", "voxel_size": "len"}, pos=("mask",)),
        Spec("morph3d.porosity", {"solid": plate, "region": Factory(lambda: np.ones((12, 14, 16), bool))},
             {"solid": "mask", "region": "mask"}, pos=("solid",)),
        Spec("morph3d.particle_support_distances",
             {"particles": Factory(_particles), "support": plate, "voxel_size": 2.0},
             {"particles": "labels", "support": "mask", "voxel_size": "len"}, pos=("particles", "support")),
    ]
