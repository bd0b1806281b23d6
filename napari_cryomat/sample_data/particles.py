"""Sample data: touching nanoparticles, and growing ice crystals (File > Open Sample > napari-cryomat)."""

from __future__ import annotations

from napari_cryomat.core.synthetic.particles import make_growth, make_particles

__all__ = ["particles_sample", "growth_sample"]


def particles_sample():
    """Touching nanoparticles of varied shape on a noisy amorphous support (512², 2 Å/pixel).

    The true labels are in ``metadata["truth"]``; shapes, radii (Å) and true areas (Å²) in
    ``metadata["synthetic"]``.
    """
    image, truth, info = make_particles()
    ps = info["pixel_size"]
    meta = dict(pixel_size=ps, truth=truth, synthetic=info, source="napari-cryomat synthetic particles")
    return [(image, dict(name="particles", scale=(ps, ps), units=("angstrom", "angstrom"),
                         colormap="gray", metadata=meta), "image")]


def growth_sample():
    """Eight frames of six hexagonal ice nanocrystals growing at different rates (320², 2 Å/pixel,
    frames 1 s apart: the time axis has scale 1 and unit second).

    The true labels (ids constant along time) are in ``metadata["truth"]``; growth rates (Å/frame)
    and true areas (Å²) per frame in ``metadata["synthetic"]``.
    """
    movie, truth, info = make_growth()
    ps = info["pixel_size"]
    meta = dict(pixel_size=ps, truth=truth, synthetic=info, source="napari-cryomat synthetic growth",
                axes="TYX")
    return [(movie, dict(name="growth", scale=(1.0, ps, ps), units=("second", "angstrom", "angstrom"),
                         axis_labels=("t", "y", "x"), colormap="gray", metadata=meta), "image")]
