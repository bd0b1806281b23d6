"""Writers: image layers to MRC with their voxel size; labels to MRC or TIFF.

Round trips are exact for data, dtype and voxel size (the tests check each). The viewer shows MRC
data as 3dmod does, with file row 0 at the bottom, so the MRC writers store the displayed rows
bottom-up: a layer that came from an MRC file is written back in its original row order, and any
layer opens in IMOD (and again here) looking as it did on screen.
"""

from __future__ import annotations

import numpy as np

from napari_cryomat.io._pyramid import full_resolution

# dtypes that MRC stores as they are (mode in brackets)
_MRC_DTYPES = {np.dtype(np.int8): 0, np.dtype(np.uint8): 0, np.dtype(np.int16): 1,
               np.dtype(np.float32): 2, np.dtype(np.complex64): 4, np.dtype(np.uint16): 6,
               np.dtype(np.float16): 12}


def _voxel_size_angstrom(meta: dict, ndim: int) -> tuple[float, ...]:
    scale = [float(s) for s in meta.get("scale", [1.0] * ndim)]
    units = meta.get("units")
    if units:
        try:
            import pint

            ureg = pint.get_application_registry()
            scale = [
                float((s * ureg(str(u))).to("angstrom").magnitude) if str(u) not in ("pixel", "") else s
                for s, u in zip(scale, units)
            ]
        except Exception:
            pass
    return tuple(scale)


def _file_order(data) -> np.ndarray:
    """Displayed (top-down) rows to MRC (bottom-up) rows."""
    return np.asarray(data)[..., ::-1, :]


def _mrc_dtype_for_labels(data: np.ndarray) -> np.dtype:
    if data.dtype in _MRC_DTYPES:
        return data.dtype
    lo, hi = int(data.min(initial=0)), int(data.max(initial=0))
    for dt in (np.uint8, np.int16, np.uint16):
        info = np.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            return np.dtype(dt)
    if -(2**24) <= lo and hi <= 2**24:
        return np.dtype(np.float32)  # exact for integers up to 2**24
    raise ValueError(
        f"Label values up to {hi} cannot be stored exactly in MRC; save the labels as TIFF instead."
    )


def write_mrc(path: str, data, voxel_size_zyx, *, dtype=None) -> str:
    """Write (Z, Y, X) or (Y, X) ``data`` to ``path`` with voxel size in Å (same axis order)."""
    import mrcfile

    data = np.asarray(data)
    dtype = np.dtype(dtype or data.dtype)
    if dtype not in _MRC_DTYPES:
        raise ValueError(
            f"MRC cannot store {dtype} data; convert to float32, int16 or uint16 first."
        )
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(np.ascontiguousarray(data, dtype=dtype))
        vz = voxel_size_zyx[-3] if data.ndim >= 3 else 1.0
        mrc.voxel_size = (voxel_size_zyx[-1], voxel_size_zyx[-2], vz)
    return path


def write_image_mrc(path: str, data, meta: dict) -> list[str]:
    """npe2 writer: an image layer to MRC, voxel size kept (a multiscale layer: its full-resolution level)."""
    arr = _file_order(data[0] if meta.get("multiscale") else full_resolution(data))
    if arr.ndim not in (2, 3):
        raise ValueError("MRC holds 2D images or 3D volumes/stacks; this layer has "
                         f"{arr.ndim} dimensions.")
    if arr.dtype not in _MRC_DTYPES:
        arr = arr.astype(np.float32)
    return [write_mrc(path, arr, _voxel_size_angstrom(meta, arr.ndim))]


def write_labels_mrc(path: str, data, meta: dict) -> list[str]:
    """npe2 writer: a labels layer to MRC in the smallest integer mode that holds it exactly."""
    arr = _file_order(data)
    return [write_mrc(path, arr, _voxel_size_angstrom(meta, arr.ndim), dtype=_mrc_dtype_for_labels(arr))]


def write_labels_tiff(path: str, data, meta: dict) -> list[str]:
    """npe2 writer: a labels layer to TIFF; dtype and voxel size are kept exactly."""
    import tifffile

    arr = np.asarray(data)
    voxel = _voxel_size_angstrom(meta, arr.ndim)
    tifffile.imwrite(
        path, arr, photometric="minisblack",
        metadata={"voxel_size_angstrom": list(voxel), "labels": True},
    )
    return [path]
